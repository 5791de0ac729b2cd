// A complete scenario compiled into a Plan: programs, jumps, names, indexes,
// templates rendered, data sources and the scenario timeline.
#include "scenario/loader.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace millstone::scenario {
namespace loader_test {

using ::testing::ElementsAre;
using ::testing::Pair;

const std::string kDataDir = MILLSTONE_SOURCE_DIR "/tests/scenario/data";

std::unique_ptr<Plan> parse(std::string_view text) {
  return parse_scenario(text, "s.yaml", kDataDir);
}

// Renders with the variables set by name.
struct Vu {
  explicit Vu(const Plan& plan) : plan(plan), variables(plan.variables.size()) {
    for (const auto& [slot, value] : plan.constants) {
      variables[slot] = value;
    }
    context.variables = &variables;
    context.vu_id = 7;
    context.iteration = 3;
  }
  Vu& set(std::string_view name, std::string value) {
    const int slot = plan.variables.find(name);
    EXPECT_GE(slot, 0) << name;
    variables.at(static_cast<size_t>(slot)) = std::move(value);
    return *this;
  }
  std::string render(const Template& t) const { return t.render(context); }

  const Plan& plan;
  std::vector<std::string> variables;
  RenderContext context;
};

constexpr std::string_view kShop = R"(
name: shop
target: http://127.0.0.1:8080
seed: 42
defaults:
  headers: {Accept: application/json, X-Session: "s-{{ vu }}"}
  timeout: 5s
  max_body_capture: 1024
vars: {currency: EUR, limit: 10}
data:
  users: {file: users.csv, mode: unique}
  items: items.json
flows:
  shopper:
    weight: 3
    on_check_failure: abort_iteration
    steps:
      - name: login
        post: /login
        headers: {X-Trace: "{{ uuid }}", Accept: text/plain}
        query: {page: "{{ iteration }}", q: a b}
        json: {user: "{{ users.name }}", password: "{{ users.password }}", n: 1, ok: true, none: null, s: "2", list: [1, "x"]}
        timeout: 2s
        check:
          status: 200
          header: {Content-Type: {contains: json}}
          body: {contains: token}
          json: {"$.token": {exists: true}, "$.user": ann, "$.total": {gt: 10}}
          duration: {lt: 500ms}
        extract:
          token: {json: $.token}
          id: {regex: 'order-(\d+)', default: "0"}
      - think: 1s
      - group: checkout
        steps:
          - name: pay
            put: "/orders/{{ id }}"
            form: {card: "{{ token }}", note: "a&b"}
          - loop: 2
            steps:
              - get: /status?x=1
                query: {limit: "{{ limit }}"}
              - think: 1s..3s
      - think: {distribution: lognormal, median: 1s, p99: 5s}
  browser:
    steps:
      - get: "/items/{{ items.sku }}"
        body: "plain {{ currency }}"
        check: {status: [200, 404]}
      - request: {method: PURGE, path: /cache}
scenarios:
  steady: {executor: constant-vus, vus: 20, duration: 30s}
  ramp: {executor: ramping-vus, start_vus: 0, stages: [{duration: 10s, target: 50}, {duration: 20s, target: 50}], start: after steady}
  rate: {executor: constant-arrival-rate, rate: 100, duration: 30s, pre_allocated_vus: 20, max_vus: 100, flows: [shopper], start: after ramp, graceful_stop: 0s}
  ramp_rate: {executor: ramping-arrival-rate, start_rate: 6000/m, stages: [{duration: 5s, target: 20}], pre_allocated_vus: 20, max_vus: 200, start: 1m}
  fixed: {executor: iterations, vus: 10, iterations: 1000, max_duration: 1m, flows: [browser, shopper]}
thresholds:
  - latency.p99 < 200ms
  - latency.p95{step=login} < 300ms
  - latency.p99.9{step=checkout/pay} <= 1.5s
  - checks > 99.9%
  - "checks{check=login: status in [200]} >= 1"
  - error_rate < 0.1%
  - iterations{flow=shopper} > 10
  - rps > 50
  - requests >= 100
  - dropped_iterations < 1
  - latency.mean{step=browser/GET /items/{{ items.sku }}} < 1s
)";

TEST(LoaderTest, TopLevel) {
  const auto plan = parse(kShop);
  EXPECT_EQ(plan->source_path, "s.yaml");
  EXPECT_EQ(plan->name, "shop");
  EXPECT_EQ(plan->target.host, "127.0.0.1");
  EXPECT_EQ(plan->target.port, 8080);
  EXPECT_TRUE(plan->seed_given);
  EXPECT_EQ(plan->seed, 42u);
  EXPECT_EQ(plan->timeout_us, 5'000'000);
  EXPECT_EQ(plan->max_body_capture, 1024u);
  // Literal defaults stay plan-wide; templated ones are copied into requests.
  EXPECT_THAT(plan->default_headers, ElementsAre(Pair("Accept", "application/json")));
  ASSERT_EQ(plan->constants.size(), 2u);
  EXPECT_EQ(plan->variables.name(plan->constants[0].first), "currency");
  EXPECT_EQ(plan->constants[0].second, "EUR");
  EXPECT_EQ(plan->constants[1].second, "10");
}

TEST(LoaderTest, DataSources) {
  const auto plan = parse(kShop);
  ASSERT_EQ(plan->data.size(), 2u);
  const DataSource& users = plan->data[0];
  EXPECT_EQ(users.name, "users");
  EXPECT_EQ(users.mode, DataSource::Mode::kUnique);
  EXPECT_EQ(users.path, kDataDir + "/users.csv");
  ASSERT_EQ(users.column_slots.size(), 2u);
  EXPECT_EQ(plan->variables.name(users.column_slots[0]), "users.name");
  EXPECT_EQ(plan->variables.name(users.column_slots[1]), "users.password");
  EXPECT_THAT(users.table.rows(),
              ElementsAre(ElementsAre("ann", "se,cret"), ElementsAre("bob", "say \"hi\"")));
  const DataSource& items = plan->data[1];
  EXPECT_EQ(items.mode, DataSource::Mode::kSequential);
  std::vector<std::string> columns;
  for (uint32_t slot : items.column_slots) {
    columns.push_back(plan->variables.name(slot));
  }
  EXPECT_THAT(columns,
              ElementsAre("items.sku", "items.price", "items.stock", "items.note", "items.tag"));
  EXPECT_THAT(items.table.rows(), ElementsAre(ElementsAre("A-1", "2.5", "true", "", ""),
                                              ElementsAre("B-2", "10", "", "", "new")));
  // Each flow takes rows only from the sources its templates read.
  EXPECT_THAT(plan->flows[0].data_sources, ElementsAre(0u));
  EXPECT_THAT(plan->flows[1].data_sources, ElementsAre(1u));
}

TEST(LoaderTest, ProgramsAndNames) {
  const auto plan = parse(kShop);
  ASSERT_EQ(plan->flows.size(), 2u);
  const Flow& shopper = plan->flows[0];
  EXPECT_EQ(shopper.name, "shopper");
  EXPECT_EQ(shopper.weight, 3);
  EXPECT_TRUE(shopper.abort_on_check_failure);
  EXPECT_EQ(shopper.max_loop_depth, 1u);
  using Op = Instruction::Op;
  const std::vector<Instruction>& p = shopper.program;
  ASSERT_EQ(p.size(), 8u);
  EXPECT_EQ(p[0].op, Op::kRequest);
  EXPECT_EQ(p[0].arg, 0u);
  EXPECT_EQ(p[0].metric, 0u);
  EXPECT_EQ(p[1].op, Op::kThink);
  EXPECT_EQ(p[1].arg, 0u);
  EXPECT_EQ(p[2].op, Op::kRequest);  // checkout/pay
  EXPECT_EQ(p[2].arg, 1u);
  EXPECT_EQ(p[2].metric, 1u);
  EXPECT_EQ(p[3].op, Op::kLoopBegin);
  EXPECT_EQ(p[3].count, 2u);
  EXPECT_EQ(p[3].jump, 7u);  // after the loop's end
  EXPECT_EQ(p[4].op, Op::kRequest);
  EXPECT_EQ(p[4].metric, 2u);
  EXPECT_EQ(p[5].op, Op::kThink);
  EXPECT_EQ(p[5].arg, 1u);
  EXPECT_EQ(p[6].op, Op::kLoopEnd);
  EXPECT_EQ(p[6].jump, 4u);  // the first body instruction
  EXPECT_EQ(p[7].op, Op::kThink);
  EXPECT_EQ(p[7].arg, 2u);

  ASSERT_EQ(shopper.think_times.size(), 3u);
  EXPECT_EQ(shopper.think_times[0].distribution, random::LatencyModel::Distribution::kFixed);
  EXPECT_DOUBLE_EQ(shopper.think_times[0].value_us, 1e6);
  EXPECT_EQ(shopper.think_times[1].distribution, random::LatencyModel::Distribution::kUniform);
  EXPECT_DOUBLE_EQ(shopper.think_times[1].min_us, 1e6);
  EXPECT_DOUBLE_EQ(shopper.think_times[1].max_us, 3e6);
  EXPECT_EQ(shopper.think_times[2].distribution, random::LatencyModel::Distribution::kLognormal);

  EXPECT_THAT(
      plan->step_names,
      ElementsAre("shopper/login", "shopper/checkout/pay", "shopper/checkout/GET /status?x=1",
                  "browser/GET /items/{{ items.sku }}", "browser/PURGE /cache"));
  EXPECT_EQ(plan->flows[1].program[1].metric, 4u);
  EXPECT_EQ(plan->flows[1].requests[1].method, "PURGE");

  EXPECT_THAT(
      plan->check_names,
      ElementsAre("shopper/login: status in [200]",
                  "shopper/login: header Content-Type contains \"json\"",
                  "shopper/login: body contains \"token\"", "shopper/login: json $.token exists",
                  "shopper/login: json $.user == \"ann\"", "shopper/login: json $.total > 10",
                  "shopper/login: duration < 500ms",
                  "browser/GET /items/{{ items.sku }}: status in [200, 404]"));
  const HttpRequest& login = shopper.requests[0];
  ASSERT_EQ(login.checks.size(), 7u);
  for (uint32_t i = 0; i < 7; ++i) {
    EXPECT_EQ(login.checks[i].check_index, i);
  }
  EXPECT_EQ(login.checks[0].check.subject(), Check::Subject::kStatus);
  EXPECT_EQ(login.checks[3].check.subject(), Check::Subject::kJson);
  EXPECT_EQ(login.checks[6].check.subject(), Check::Subject::kDuration);
  EXPECT_EQ(plan->flows[1].requests[0].checks[0].check_index, 7u);
}

TEST(LoaderTest, RequestsRender) {
  const auto plan = parse(kShop);
  Vu vu(*plan);
  vu.set("users.name", "ann").set("users.password", "p\"w").set("token", "t k").set("id", "9");
  const HttpRequest& login = plan->flows[0].requests[0];
  EXPECT_EQ(login.method, "POST");
  EXPECT_EQ(vu.render(login.target), "/login?page=3&q=a%20b");
  EXPECT_EQ(
      vu.render(login.body),
      R"({"user":"ann","password":"p\"w","n":1,"ok":true,"none":null,"s":"2","list":[1,"x"]})");
  EXPECT_EQ(login.content_type, "application/json");
  EXPECT_EQ(login.timeout_us, 2'000'000);
  // The templated default comes first, then the step's own headers.
  ASSERT_EQ(login.headers.size(), 3u);
  EXPECT_EQ(login.headers[0].first, "X-Session");
  EXPECT_EQ(vu.render(login.headers[0].second), "s-7");
  EXPECT_EQ(login.headers[1].first, "X-Trace");
  EXPECT_EQ(login.headers[2].first, "Accept");
  EXPECT_EQ(vu.render(login.headers[2].second), "text/plain");

  ASSERT_EQ(login.extractions.size(), 2u);
  EXPECT_EQ(plan->variables.name(login.extractions[0].slot), "token");
  EXPECT_EQ(login.extractions[0].extractor.kind(), Extractor::Kind::kJson);
  EXPECT_FALSE(login.extractions[0].default_value.has_value());
  EXPECT_EQ(login.extractions[1].extractor.kind(), Extractor::Kind::kRegex);
  EXPECT_EQ(login.extractions[1].default_value, "0");
  ResponseView response;
  response.body = "ok order-42 done";
  std::string value;
  ASSERT_TRUE(login.extractions[1].extractor.apply(response, &value));
  EXPECT_EQ(value, "42");  // group 1 by default when the pattern has one

  const HttpRequest& pay = plan->flows[0].requests[1];
  EXPECT_EQ(pay.method, "PUT");
  EXPECT_EQ(vu.render(pay.target), "/orders/9");
  EXPECT_EQ(vu.render(pay.body), "card=t%20k&note=a%26b");
  EXPECT_EQ(pay.content_type, "application/x-www-form-urlencoded");
  EXPECT_EQ(pay.timeout_us, 0);

  const HttpRequest& status = plan->flows[0].requests[2];
  EXPECT_EQ(vu.render(status.target), "/status?x=1&limit=10");
  EXPECT_TRUE(status.body.is_literal());
  EXPECT_EQ(vu.render(status.body), "");

  const HttpRequest& item = plan->flows[1].requests[0];
  vu.set("items.sku", "A-1");
  EXPECT_EQ(vu.render(item.target), "/items/A-1");
  EXPECT_EQ(vu.render(item.body), "plain EUR");
  EXPECT_EQ(item.content_type, "");
}

TEST(LoaderTest, Scenarios) {
  const auto plan = parse(kShop);
  ASSERT_EQ(plan->scenarios.size(), 5u);
  const ScenarioRun& steady = plan->scenarios[0];
  EXPECT_EQ(steady.name, "steady");
  EXPECT_EQ(steady.executor.kind, Executor::Kind::kConstantVus);
  EXPECT_EQ(steady.executor.vus, 20u);
  EXPECT_EQ(steady.executor.duration_us, 30'000'000);
  EXPECT_EQ(steady.executor.graceful_stop_us, 5'000'000);
  EXPECT_THAT(steady.flows, ElementsAre(0u, 1u));
  EXPECT_EQ(steady.start_us, 0);
  EXPECT_EQ(steady.end_us(), 35'000'000);

  const ScenarioRun& ramp = plan->scenarios[1];
  EXPECT_EQ(ramp.executor.kind, Executor::Kind::kRampingVus);
  EXPECT_EQ(ramp.executor.vus, 0u);
  ASSERT_EQ(ramp.executor.stages.size(), 2u);
  EXPECT_EQ(ramp.executor.stages[1].duration_us, 20'000'000);
  EXPECT_EQ(ramp.executor.stages[1].target, 50);
  EXPECT_EQ(ramp.start_us, 35'000'000);
  EXPECT_EQ(ramp.end_us(), 35'000'000 + 30'000'000 + 5'000'000);

  const ScenarioRun& rate = plan->scenarios[2];
  EXPECT_EQ(rate.executor.kind, Executor::Kind::kConstantArrivalRate);
  EXPECT_EQ(rate.executor.rate, 100);
  EXPECT_EQ(rate.executor.pre_allocated_vus, 20u);
  EXPECT_EQ(rate.executor.max_vus, 100u);
  EXPECT_EQ(rate.executor.graceful_stop_us, 0);
  EXPECT_THAT(rate.flows, ElementsAre(0u));
  EXPECT_EQ(rate.start_us, 70'000'000);
  EXPECT_EQ(rate.end_us(), 100'000'000);

  const ScenarioRun& ramp_rate = plan->scenarios[3];
  EXPECT_EQ(ramp_rate.executor.start_rate, 100);  // 6000/m
  EXPECT_EQ(ramp_rate.executor.stages[0].target, 20);
  EXPECT_EQ(ramp_rate.start_us, 60'000'000);
  EXPECT_EQ(ramp_rate.executor.max_vus, 200u);

  const ScenarioRun& fixed = plan->scenarios[4];
  EXPECT_EQ(fixed.executor.kind, Executor::Kind::kIterations);
  EXPECT_EQ(fixed.executor.iterations, 1000u);
  EXPECT_EQ(fixed.executor.duration_us, 60'000'000);
  EXPECT_THAT(fixed.flows, ElementsAre(1u, 0u));
  EXPECT_EQ(fixed.end_us(), 65'000'000);

  EXPECT_EQ(plan->total_duration_us(), 100'000'000);
}

TEST(LoaderTest, Thresholds) {
  const auto plan = parse(kShop);
  const std::vector<Threshold>& t = plan->thresholds;
  ASSERT_EQ(t.size(), 11u);
  using M = Threshold::Metric;
  EXPECT_EQ(t[0].text, "latency.p99 < 200ms");
  EXPECT_EQ(t[0].location, "s.yaml:58:5");
  EXPECT_EQ(t[0].metric, M::kLatency);
  EXPECT_EQ(t[0].statistic, Threshold::Statistic::kPercentile);
  EXPECT_EQ(t[0].percentile, 99);
  EXPECT_EQ(t[0].op, Threshold::Op::kLt);
  EXPECT_EQ(t[0].value, 200'000);
  EXPECT_EQ(t[1].step, "shopper/login");  // resolved from the suffix
  EXPECT_EQ(t[2].step, "shopper/checkout/pay");
  EXPECT_EQ(t[2].percentile, 99.9);
  EXPECT_EQ(t[2].op, Threshold::Op::kLe);
  EXPECT_EQ(t[2].value, 1'500'000);
  EXPECT_EQ(t[3].metric, M::kCheckPassRate);
  EXPECT_DOUBLE_EQ(t[3].value, 0.999);
  EXPECT_EQ(t[4].check, "shopper/login: status in [200]");
  EXPECT_EQ(t[5].metric, M::kErrorRate);
  EXPECT_DOUBLE_EQ(t[5].value, 0.001);
  EXPECT_EQ(t[6].metric, M::kIterations);
  EXPECT_EQ(t[6].flow, "shopper");
  EXPECT_EQ(t[7].metric, M::kRps);
  EXPECT_EQ(t[8].metric, M::kRequests);
  EXPECT_EQ(t[8].op, Threshold::Op::kGe);
  EXPECT_EQ(t[9].metric, M::kDroppedIterations);
  EXPECT_EQ(t[10].statistic, Threshold::Statistic::kMean);
  EXPECT_EQ(t[10].step, "browser/GET /items/{{ items.sku }}");
}

TEST(LoaderTest, TimelineFollowsAfterInAnyFileOrder) {
  const auto plan = parse(R"(
target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios:
  third: {executor: iterations, iterations: 5, max_duration: 4s, graceful_stop: 1s, start: after second}
  second: {executor: ramping-arrival-rate, stages: [{duration: 2s, target: 5}, {duration: 3s, target: 0}], pre_allocated_vus: 1, graceful_stop: 0s, start: after first}
  first: {executor: constant-vus, duration: 10s, start: 1s}
  parallel: {executor: constant-vus, duration: 1s}
)");
  ASSERT_EQ(plan->scenarios.size(), 4u);
  EXPECT_EQ(plan->scenarios[2].start_us, 1'000'000);
  EXPECT_EQ(plan->scenarios[2].end_us(), 16'000'000);  // 1s + 10s + 5s graceful stop
  EXPECT_EQ(plan->scenarios[1].start_us, 16'000'000);
  EXPECT_EQ(plan->scenarios[1].end_us(), 21'000'000);  // stages add up to 5s
  EXPECT_EQ(plan->scenarios[0].start_us, 21'000'000);
  EXPECT_EQ(plan->scenarios[0].end_us(), 26'000'000);  // max_duration + graceful stop
  EXPECT_EQ(plan->scenarios[3].start_us, 0);
  EXPECT_EQ(plan->total_duration_us(), 26'000'000);
  EXPECT_EQ(plan->scenarios[1].executor.max_vus, 1u);  // defaults to pre_allocated_vus
  EXPECT_EQ(plan->scenarios[0].executor.vus, 1u);
}

TEST(LoaderTest, DefaultsWhenOmitted) {
  const auto plan = parse_scenario("target: http://localhost:9\nflows: {a: {steps: [{get: /}]}}\n",
                                   "dir/basic.yaml", "");
  EXPECT_EQ(plan->name, "basic");
  EXPECT_FALSE(plan->seed_given);
  EXPECT_EQ(plan->timeout_us, 10'000'000);
  ASSERT_EQ(plan->scenarios.size(), 1u);
  const ScenarioRun& run = plan->scenarios[0];
  EXPECT_EQ(run.executor.kind, Executor::Kind::kConstantVus);
  EXPECT_EQ(run.executor.vus, 1u);
  EXPECT_EQ(run.executor.duration_us, 10'000'000);
  EXPECT_THAT(run.flows, ElementsAre(0u));
  EXPECT_EQ(plan->total_duration_us(), 15'000'000);
  EXPECT_THAT(plan->step_names, ElementsAre("a/GET /"));
  EXPECT_EQ(plan->flows[0].weight, 1);
  EXPECT_FALSE(plan->flows[0].abort_on_check_failure);
  EXPECT_TRUE(plan->check_names.empty());
}

TEST(LoaderTest, ExtractedNamesAreKnownEverywhere) {
  // b's template uses a name that only a later flow extracts: two passes.
  const auto plan = parse(R"(
target: http://localhost:9
flows:
  b: {steps: [{get: "/x/{{ later }}"}]}
  a: {steps: [{get: /, extract: {later: {header: Location}}}]}
)");
  Vu vu(*plan);
  vu.set("later", "v");
  EXPECT_EQ(vu.render(plan->flows[0].requests[0].target), "/x/v");
}

TEST(LoaderTest, JsonBodyDetails) {
  const auto plan = parse(R"(
target: http://localhost:9
defaults: {headers: {Content-Type: text/plain}}
vars: {n: "5"}
flows:
  a:
    steps:
      - post: /a
        json:
          - !raw "{{ n }}"
          - !!str 42
          - "{{ n }} \"q\" \\{{ lit }}"
          - '{"k": 1}'
          - -1.5e3
          - 0x10
          - {"{{ key }}": ~}
      - post: /b
        headers: {content-type: application/vnd.x+json}
        json: {}
)");
  Vu vu(*plan);
  const HttpRequest& a = plan->flows[0].requests[0];
  EXPECT_EQ(vu.render(a.body),
            R"([5,"42","5 \"q\" {{ lit }}","{\"k\": 1}",-1.5e3,"0x10",{"{{ key }}":null}])");
  // A json: body beats a default Content-Type, by an explicit header.
  EXPECT_EQ(a.content_type, "");
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0].first, "Content-Type");
  EXPECT_EQ(vu.render(a.headers[0].second), "application/json");
  // The step's own Content-Type beats the json: body.
  const HttpRequest& b = plan->flows[0].requests[1];
  EXPECT_EQ(b.content_type, "");
  ASSERT_EQ(b.headers.size(), 1u);
  EXPECT_EQ(vu.render(b.headers[0].second), "application/vnd.x+json");
  EXPECT_EQ(vu.render(b.body), "{}");
}

TEST(LoaderTest, TemplatedDefaultContentTypeIsReplacedNotDuplicated) {
  const auto plan = parse(R"(
target: http://localhost:9
defaults: {headers: {Content-Type: "text/{{ vu }}"}}
flows: {a: {steps: [{post: /, form: {a: 1}}, {post: /b, body: x}]}}
)");
  Vu vu(*plan);
  const HttpRequest& form = plan->flows[0].requests[0];
  ASSERT_EQ(form.headers.size(), 1u);
  EXPECT_EQ(vu.render(form.headers[0].second), "application/x-www-form-urlencoded");
  const HttpRequest& text = plan->flows[0].requests[1];
  ASSERT_EQ(text.headers.size(), 1u);
  EXPECT_EQ(vu.render(text.headers[0].second), "text/7");
}

TEST(LoaderTest, ShopExampleCompiles) {
  const auto plan = load_scenario_file(MILLSTONE_SOURCE_DIR "/examples/shop.yaml");
  EXPECT_EQ(plan->name, "shop");
  EXPECT_EQ(plan->flows.size(), 2u);
  EXPECT_EQ(plan->scenarios.size(), 2u);
  EXPECT_EQ(plan->scenarios[1].start_us, 11'000'000);
  EXPECT_EQ(plan->total_duration_us(), 22'000'000);
  EXPECT_EQ(plan->thresholds.size(), 5u);
  EXPECT_EQ(plan->thresholds[1].step, "shopper/login");
  Vu vu(*plan);
  vu.set("product_id", "3").set("users.email", "a@b").set("token", "t");
  const HttpRequest& order = plan->flows[0].requests[3];
  EXPECT_EQ(vu.render(order.body),
            R"({"product":3,"quantity":1,"currency":"EUR","customer":{"email":"a@b"}})");
  EXPECT_EQ(plan->step_names[3], "shopper/checkout/order");
}

TEST(LoaderTest, MissingFileIsOneLine) {
  try {
    load_scenario_file("/nonexistent/x.yaml");
    FAIL();
  } catch (const ScenarioError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/x.yaml: cannot read: No such file or directory");
  }
}

}  // namespace loader_test
}  // namespace millstone::scenario

namespace millstone::scenario {
namespace loader_test {

// defaults: http: sets every request's HTTP version; a step's http: overrides it.
TEST(LoaderHttpVersion, DefaultsAndStepOverride) {
  const auto plan = parse_scenario(R"(target: http://localhost:9
defaults: {http: 2}
flows:
  a:
    steps:
      - get: /two
      - get: /one
        http: 1.1
)",
                                   "s.yaml", ".");
  ASSERT_EQ(plan->flows[0].requests.size(), 2u);
  EXPECT_EQ(plan->flows[0].requests[0].http_version, 2);
  EXPECT_EQ(plan->flows[0].requests[1].http_version, 1);
  EXPECT_TRUE(plan->uses_http_version(1));
  EXPECT_TRUE(plan->uses_http_version(2));
  EXPECT_EQ(plan->connections_per_vu(), 2u);  // an HTTP/1.1 and an HTTP/2 connection

  const auto plain = parse_scenario("target: http://localhost:9\nflows: {a: {steps: [{get: /}]}}\n",
                                    "s.yaml", ".");
  EXPECT_EQ(plain->flows[0].requests[0].http_version, 1);
  EXPECT_FALSE(plain->uses_http_version(2));
}

TEST(LoaderHttpVersion, UnknownVersionNamesItsLine) {
  try {
    parse_scenario(
        "target: http://localhost:9\nflows:\n  a:\n    steps:\n      - get: /\n"
        "        http: 3\n",
        "s.yaml", ".");
    FAIL() << "http: 3 loaded";
  } catch (const ScenarioError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("s.yaml:6:15: http: \"3\"; expected 2"));
  }
  try {
    parse_scenario(
        "target: http://localhost:9\ndefaults: {http: h2}\nflows: {a: {steps: [{get: /}]}}\n",
        "s.yaml", ".");
    FAIL() << "http: h2 loaded";
  } catch (const ScenarioError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("s.yaml:2:18: http: \"h2\"; expected 2"));
  }
}

}  // namespace loader_test
}  // namespace millstone::scenario
