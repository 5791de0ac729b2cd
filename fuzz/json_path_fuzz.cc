// Fuzzes JsonPath::compile and JsonEvaluator: the first line of the input is a
// path, the rest a response body. Also checks the invariants callers rely on:
// a rejected path always says why, an accepted one keeps its source, the
// evaluator answers every path, a body is JSON for all paths or for none, and
// the same body gives the same answer when the evaluator is reused (its
// padded buffer grows and shrinks across inputs). JSON checks run on what was
// found so the why-text code sees arbitrary bytes too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "scenario/check.h"
#include "scenario/extract.h"

namespace {

using namespace millstone::scenario;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "json_path_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One evaluator for the whole run, like one per worker: buffer reuse across
  // bodies of different sizes is part of what is tested.
  static JsonEvaluator evaluator;

  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string_view path_text = input.substr(0, newline);
  std::string_view body = newline == std::string_view::npos ? "" : input.substr(newline + 1);

  std::string error;
  std::optional<JsonPath> path = JsonPath::compile(path_text, &error);
  if (!path) {
    if (error.empty()) die("path rejected without a message");
    return 0;
  }
  if (path->source() != path_text) die("source differs from the compiled text");

  // A second, fixed path shares the parse, as extractors and checks do.
  static const JsonPath root = *JsonPath::compile("$", nullptr);
  std::vector<const JsonPath*> paths = {&*path, &root};
  std::vector<JsonEvaluator::Outcome> outcomes;
  std::vector<JsonEvaluator::Value> values;
  evaluator.evaluate(body, paths, &outcomes, &values);
  if (outcomes.size() != 2 || values.size() != 2) die("not one answer per path");
  bool not_json = outcomes[1] == JsonEvaluator::Outcome::kNotJson;
  if (not_json != (outcomes[0] == JsonEvaluator::Outcome::kNotJson)) {
    die("kNotJson for one path but not the other");
  }
  if (!not_json && outcomes[1] != JsonEvaluator::Outcome::kFound) die("root of JSON missing");

  std::vector<JsonEvaluator::Outcome> again_outcomes;
  std::vector<JsonEvaluator::Value> again;
  evaluator.evaluate(body, paths, &again_outcomes, &again);
  if (again_outcomes != outcomes) die("outcome changed on re-evaluation");
  if (outcomes[0] == JsonEvaluator::Outcome::kFound && again[0].text != values[0].text) {
    die("value changed on re-evaluation");
  }

  ResponseView response;
  response.status = 200;
  response.body = body;
  const JsonEvaluator::Value* value =
      outcomes[0] == JsonEvaluator::Outcome::kFound ? &values[0] : nullptr;
  static const char* const kOps[][2] = {
      {"gt", "0"},      {"length", "2"},        {"contains", "a"},     {"equals", "1"},
      {"matches", "."}, {"not_exists", "true"}, {"not_contains", "\""}};
  for (const auto& op : kOps) {
    std::optional<Expectation> e = make_expectation(op[0], op[1], op[0][0] == 'e', nullptr);
    if (!e) die("fixed expectation rejected");
    std::optional<Check> check = Check::json(path_text, std::move(*e), nullptr);
    if (!check) die("path compiled once but not twice");
    std::string why;
    if (!check->evaluate(response, outcomes[0], value, &why) && why.empty()) {
      die("check failed without a why");
    }
  }
  return 0;
}
