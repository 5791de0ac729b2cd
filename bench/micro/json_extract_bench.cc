// What a JSON extraction costs per response: JsonEvaluator answering two paths
// ($.token and $.items[-1].id) on a ~340-byte body, the typical login/order
// response of a scenario. Beside it: a bare simdjson On-Demand walk of the same
// paths (what the evaluator adds: whole-body validation, copies, exact number
// text) and a DOM parse of the body (the alternative design).
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "scenario/check.h"
#include "scenario/extract.h"

namespace {

using millstone::scenario::Check;
using millstone::scenario::JsonEvaluator;
using millstone::scenario::JsonPath;

const std::string kBody =
    R"({"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl","expires_in":3600,)"
    R"("user":{"id":42,"name":"Ada Lovelace","email":"ada@example.com","roles":["admin","ops"]},)"
    R"("items":[{"id":"sku-1001","qty":2,"price":9.99},{"id":"sku-1002","qty":1,"price":24.5},)"
    R"({"id":"sku-1003","qty":5,"price":3.25}],"status":"paid","total":60.73,"currency":"EUR"})";

void BM_JsonEvaluatorTwoPaths(benchmark::State& state) {
  JsonPath token = *JsonPath::compile("$.token", nullptr);
  JsonPath last_id = *JsonPath::compile("$.items[-1].id", nullptr);
  std::vector<const JsonPath*> paths = {&token, &last_id};
  JsonEvaluator evaluator;
  std::vector<JsonEvaluator::Outcome> outcomes;
  std::vector<JsonEvaluator::Value> values;
  for (auto _ : state) {
    evaluator.evaluate(kBody, paths, &outcomes, &values);
    benchmark::DoNotOptimize(values.data());
  }
  if (values[1].text != "sku-1003") state.SkipWithError("wrong value");
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kBody.size()));
  state.counters["body_bytes"] = static_cast<double>(kBody.size());
}
BENCHMARK(BM_JsonEvaluatorTwoPaths);

// The evaluator plus a numeric check on one of the values: the whole per-
// response cost of `extract: {json: ...}` + `check: {json: {...: {gt: 10}}}`.
void BM_JsonEvaluatorTwoPathsAndCheck(benchmark::State& state) {
  JsonPath token = *JsonPath::compile("$.token", nullptr);
  Check total_check = *Check::json(
      "$.total", *millstone::scenario::make_expectation("gt", "10", true, nullptr), nullptr);
  std::vector<const JsonPath*> paths = {&token, total_check.json_path()};
  JsonEvaluator evaluator;
  std::vector<JsonEvaluator::Outcome> outcomes;
  std::vector<JsonEvaluator::Value> values;
  millstone::scenario::ResponseView response;
  response.status = 200;
  response.body = kBody;
  std::string why;
  for (auto _ : state) {
    evaluator.evaluate(kBody, paths, &outcomes, &values);
    bool ok = total_check.evaluate(response, outcomes[1], &values[1], &why);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_JsonEvaluatorTwoPathsAndCheck);

// Baseline: simdjson On-Demand, same two lookups (rewinding between them),
// copying the values out as the evaluator does.
void BM_OnDemandBaselineTwoPaths(benchmark::State& state) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(kBody);
  std::string token_out, id_out;
  for (auto _ : state) {
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc)) {
      state.SkipWithError("parse");
      break;
    }
    std::string_view token, id;
    if (doc["token"].get_string().get(token)) {
      state.SkipWithError("token");
      break;
    }
    token_out.assign(token);
    doc.rewind();
    simdjson::ondemand::array items;
    if (doc["items"].get_array().get(items)) {
      state.SkipWithError("items");
      break;
    }
    size_t count = 0;
    if (items.count_elements().get(count)) break;  // a negative index needs the size
    items.reset();
    size_t i = 0;
    for (auto item : items) {
      if (++i < count) continue;
      if (item["id"].get_string().get(id)) break;
    }
    id_out.assign(id);
    benchmark::DoNotOptimize(id_out.data());
  }
  if (id_out != "sku-1003") state.SkipWithError("wrong value");
}
BENCHMARK(BM_OnDemandBaselineTwoPaths);

// The alternative the evaluator does not take: a DOM parse builds the whole
// tape before the first lookup.
void BM_DomTwoPaths(benchmark::State& state) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(kBody);
  std::string token_out, id_out;
  for (auto _ : state) {
    simdjson::dom::element root;
    if (parser.parse(padded).get(root)) {
      state.SkipWithError("parse");
      break;
    }
    std::string_view token, id;
    simdjson::dom::array items;
    if (root["token"].get_string().get(token) || root["items"].get_array().get(items) ||
        items.at(items.size() - 1)["id"].get_string().get(id)) {
      state.SkipWithError("lookup");
      break;
    }
    token_out.assign(token);
    id_out.assign(id);
    benchmark::DoNotOptimize(id_out.data());
  }
}
BENCHMARK(BM_DomTwoPaths);

}  // namespace

BENCHMARK_MAIN();
