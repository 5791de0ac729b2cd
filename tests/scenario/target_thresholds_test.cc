// Thresholds and SLOs on the monitored target's series (scenario/target_thresholds.h,
// docs/monitoring.md#thresholds-and-slos): the text parsed, the points
// aggregated, no data left unevaluated, and what makes one a config error.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "scenario/loader.h"
#include "scenario/slo.h"
#include "scenario/target_thresholds.h"
#include "scenario/threshold_parse.h"

namespace millstone::scenario {
namespace target_thresholds_test {

using K = Threshold::TargetSeries::Kind;
using A = Threshold::TargetSeries::Aggregate;

Threshold parsed(std::string_view text) {
  std::string error;
  size_t offset = 0;
  std::optional<Threshold> t = parse_threshold(text, &error, &offset);
  EXPECT_TRUE(t.has_value()) << text << ": " << error;
  return t.value_or(Threshold{});
}

std::string parse_error(std::string_view text, size_t* offset) {
  std::string error;
  EXPECT_FALSE(parse_threshold(text, &error, offset).has_value()) << text;
  return error;
}

monitor::Series series(std::string target, std::string name, std::string kind,
                       std::vector<double> values, uint64_t first_second = 0) {
  monitor::Series s{std::move(target), std::move(name), std::move(kind), "", {}};
  for (double v : values)
    s.points.push_back({first_second++, v});
  return s;
}

TEST(TargetThresholdTest, ParsesSeriesAggregationsAndUnits) {
  Threshold t = parsed("target.cpu < 80%");
  EXPECT_EQ(t.metric, Threshold::Metric::kTarget);
  EXPECT_EQ(t.target.kind, K::kCpu);
  EXPECT_EQ(t.target.aggregate, A::kMax) << "max is the default";
  EXPECT_EQ(t.target.monitor, "");
  EXPECT_EQ(t.value, 80);

  t = parsed("target.cpu.p95<=75");
  EXPECT_EQ(t.target.aggregate, A::kPercentile);
  EXPECT_EQ(t.target.percentile, 95);
  EXPECT_EQ(t.value, 75);

  t = parsed("target.memory.avg < 2GiB");
  EXPECT_EQ(t.target.kind, K::kMemory);
  EXPECT_EQ(t.target.aggregate, A::kAvg);
  EXPECT_EQ(t.value, 2.0 * 1024 * 1024 * 1024);

  t = parsed("target.network.rx < 100MB/s");
  EXPECT_EQ(t.target.kind, K::kNetworkRx);
  EXPECT_EQ(t.value, 100e6);
  t = parsed("target.network.tx.min >= 1000");
  EXPECT_EQ(t.target.kind, K::kNetworkTx);
  EXPECT_EQ(t.target.aggregate, A::kMin);

  // A monitor's name may hold dots (HOST:PORT); the series is the last part.
  t = parsed("target.10.0.0.5:9100.network.tx < 1MiB/s");
  EXPECT_EQ(t.target.kind, K::kNetworkTx);
  EXPECT_EQ(t.target.monitor, "10.0.0.5:9100");
  EXPECT_EQ(t.value, 1024 * 1024);

  t = parsed("target.api.db_pool_in_use.p99 < 40");
  EXPECT_EQ(t.target.kind, K::kSelected);
  EXPECT_EQ(t.target.monitor, "api");
  EXPECT_EQ(t.target.series, "db_pool_in_use");
  EXPECT_EQ(t.target.percentile, 99);
  EXPECT_EQ(t.value, 40);

  // Labels as the summary shows them, dots and operators inside quotes included.
  t = parsed(R"(target.api.http_requests_total{code="500",path="/a.b<c"}.max < 0.5)");
  EXPECT_EQ(t.target.series, R"(http_requests_total{code="500",path="/a.b<c"})");
  EXPECT_EQ(t.target.monitor, "api");
  EXPECT_EQ(t.value, 0.5);
  t = parsed("target.api.temperature > -3.5");
  EXPECT_EQ(t.value, -3.5);
}

TEST(TargetThresholdTest, ErrorsNameTheSeriesAndWhatWasExpected) {
  size_t at = 0;
  EXPECT_NE(parse_error("target.cpux < 80%", &at)
                .find("unknown target series \"cpux\" (did you "
                      "mean \"target.cpu\"?)"),
            std::string::npos);
  EXPECT_EQ(at, 7u);
  EXPECT_NE(parse_error("target.network < 5", &at).find("target series \"network\" is incomplete"),
            std::string::npos);
  EXPECT_NE(parse_error("target < 5", &at).find("target needs a series"), std::string::npos);
  EXPECT_NE(parse_error("target.cpu < 120%", &at).find("not a CPU share"), std::string::npos);
  EXPECT_EQ(at, 13u);
  EXPECT_NE(parse_error("target.memory < 2XB", &at).find("is not a size"), std::string::npos);
  EXPECT_NE(parse_error("target.api.9bad < 1", &at).find("is not a Prometheus series"),
            std::string::npos);
  EXPECT_EQ(at, 11u);
  EXPECT_NE(parse_error(R"(target.api.up{job="x < 1)", &at).find("labels are not closed"),
            std::string::npos);
  EXPECT_NE(parse_error("target.api.up.p0 < 1", &at).find("percentile \"p0\" is out of range"),
            std::string::npos);
  EXPECT_NE(parse_error("target.api.up < many", &at).find("is not a number"), std::string::npos);
}

TEST(TargetThresholdTest, AggregatesThePointsOfEveryMatchingSeries) {
  const std::vector<monitor::Series> all = {
      series("node", "cpu_percent", "node", {10, 20, 90, 30}),
      series("other", "cpu_percent", "node", {50}),
      series("api", "http_requests_total{code=\"200\"}", "counter", {100, 200}),
      series("api", "http_requests_total{code=\"500\"}", "counter", {1, 3}),
      series("api", "http_requests_totally", "gauge", {1e9}),
  };
  Threshold t = parsed("target.cpu < 80%");
  ThresholdOutcome o = evaluate_target_threshold(t, all);
  EXPECT_TRUE(o.has_data);
  EXPECT_FALSE(o.unevaluated);
  EXPECT_EQ(o.observed, 90);
  EXPECT_FALSE(o.passed);
  EXPECT_EQ(o.observed_text, "90.0% (max of 5 points)");

  t = parsed("target.node.cpu.avg < 80%");
  o = evaluate_target_threshold(t, all);
  EXPECT_DOUBLE_EQ(o.observed, 37.5);
  EXPECT_TRUE(o.passed);

  t = parsed("target.cpu.p50 < 80%");  // nearest rank over 10, 20, 30, 50, 90
  EXPECT_EQ(evaluate_target_threshold(t, all).observed, 30);
  t = parsed("target.cpu.min > 5%");
  EXPECT_EQ(evaluate_target_threshold(t, all).observed, 10);

  // A span of seconds: [1, 3) of node's points.
  t = parsed("target.node.cpu < 80%");
  o = evaluate_target_threshold(t, all, 1, 3);
  EXPECT_EQ(o.observed, 90);
  o = evaluate_target_threshold(t, all, 3, -1);
  EXPECT_EQ(o.observed, 30);
  EXPECT_TRUE(o.passed);

  // A metric name takes every label set; with labels, exactly that series.
  t = parsed("target.api.http_requests_total.max < 150");
  EXPECT_EQ(evaluate_target_threshold(t, all).observed, 200);
  t = parsed(R"(target.api.http_requests_total{code="500"} < 2)");
  o = evaluate_target_threshold(t, all);
  EXPECT_EQ(o.observed, 3);
  EXPECT_FALSE(o.passed);
}

TEST(TargetThresholdTest, NoPointsIsUnevaluatedNeitherPassedNorFailed) {
  const std::vector<monitor::Series> dead = {series("api", "up", "gauge", {})};
  for (const char* text : {"target.cpu < 80%", "target.api.up > 0", "target.api.memory < 1GB"}) {
    const Threshold t = parsed(text);
    const ThresholdOutcome o = evaluate_target_threshold(t, dead);
    EXPECT_TRUE(o.unevaluated) << text;
    EXPECT_FALSE(o.has_data) << text;
    EXPECT_FALSE(o.passed) << text;
    EXPECT_TRUE(threshold_ok(o)) << text << ": a dead endpoint never fails the run by itself";
    EXPECT_EQ(o.observed_text, "no data");
  }
}

TEST(TargetThresholdTest, ProblemsAreConfigErrorsWithTheLocation) {
  Threshold t = parsed("target.cpu < 80%");
  t.location = "s.yaml:9:5";
  EXPECT_EQ(target_threshold_problem(t, {}),
            "s.yaml:9:5: threshold \"target.cpu < 80%\" is on the target's series, but nothing "
            "is monitored; expected monitor: in the scenario file or --monitor URL");
  const std::vector<monitor::Target> endpoints = {
      {"node", "http://127.0.0.1:9100/metrics", {}, 1000, ""},
      {"api", "http://127.0.0.1:8080/metrics", {"http_.*", "db_pool_in_use"}, 1000, ""}};
  EXPECT_EQ(target_threshold_problem(t, endpoints), "");
  t = parsed("target.apx.cpu < 80%");
  EXPECT_EQ(target_threshold_problem(t, endpoints),
            "threshold \"target.apx.cpu < 80%\": no monitored endpoint is named \"apx\"; expected "
            "one of: node, api");
  t = parsed("target.api.db_pool_in_use < 10");
  EXPECT_EQ(target_threshold_problem(t, endpoints), "");
  t = parsed("target.api.process_open_fds < 10");
  EXPECT_EQ(target_threshold_problem(t, endpoints),
            "threshold \"target.api.process_open_fds < 10\": monitor api keeps only metrics "
            "matching http_.*, db_pool_in_use, not process_open_fds; expected a metric it keeps "
            "(or add it to its metrics:)");
  t = parsed("target.node.process_open_fds < 10");  // node keeps everything
  EXPECT_EQ(target_threshold_problem(t, endpoints), "");
}

std::string load_error(const std::string& yaml) {
  try {
    parse_scenario(yaml, "s.yaml", ".");
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(TargetThresholdTest, TheLoaderChecksNamesAgainstTheFilesMonitors) {
  const std::string head = R"(target: http://127.0.0.1:9
flows: {a: {steps: [{get: /}]}}
monitor:
  - {name: api, url: 'http://127.0.0.1:8080/metrics', metrics: ['http_.*']}
)";
  EXPECT_EQ(load_error(head + "thresholds: ['target.cpu < 80%', 'target.api.http_x.p95 < 3']\n"),
            "");
  EXPECT_EQ(load_error(head + "thresholds:\n  - target.apx.cpu < 80%\n"),
            "s.yaml:6:12: threshold \"target.apx.cpu < 80%\": no monitored endpoint is named "
            "\"apx\"; expected one of: api");
  EXPECT_EQ(load_error(head + "slo:\n  - target.api.up > 0\n"),
            "s.yaml:6:12: threshold \"target.api.up > 0\": monitor api keeps only metrics matching "
            "http_.*, not up; expected a metric it keeps (or add it to its metrics:)");
  EXPECT_EQ(load_error(head + "slo:\n  guards: ['target.cpu < 90%']\n"),
            "s.yaml:6:12: guard \"target.cpu < 90%\" is on the target's series; expected an "
            "objective (not a guard): target.* series are judged after the run");
  EXPECT_EQ(load_error("target: http://127.0.0.1:9\nflows: {a: {steps: [{get: /}]}}\n"
                       "thresholds: ['target.api.cpu < 80%']\n"),
            "s.yaml:3:22: no monitor: entry is named \"api\"; expected a monitor: entry with "
            "name: api (or target.cpu, target.memory... for every endpoint)");
}

TEST(TargetThresholdTest, SloJudgesTheTargetPerPhaseAndWindow) {
  Plan plan;
  Objective o;
  o.threshold = parsed("target.cpu < 80%");
  o.window_s = 2;
  o.recovery_window_s = 2;
  plan.objectives.push_back(o);
  Objective dead;
  dead.threshold = parsed("target.api.up > 0");
  dead.window_s = 2;
  plan.objectives.push_back(dead);
  std::map<uint64_t, metrics::Snapshot> seconds;
  for (uint64_t s = 0; s < 6; ++s) {
    seconds[s].requests = 10;
    seconds[s].latency.record_n(1000, 10);
  }
  monitor::MonitorResult monitored;
  monitored.series.push_back(series("node", "cpu_percent", "node", {10, 20, 95, 20, 10, 10}));
  FaultWindows faults;
  FaultWindow f;
  f.name = "kill";
  f.start_s = 2;
  f.end_s = 3;
  faults.push_back(f);
  const SloJudgment j = judge_objectives(plan, seconds, faults, 6.0, &monitored);
  ASSERT_EQ(j.objectives.size(), 2u);
  const ObjectiveJudgment& cpu = j.objectives[0];
  ASSERT_EQ(j.phases.size(), 3u);  // before, during kill, after kill
  EXPECT_TRUE(cpu.phases[0].outcome.passed);
  EXPECT_FALSE(cpu.phases[1].outcome.passed);
  EXPECT_EQ(cpu.phases[1].outcome.observed, 95);
  EXPECT_TRUE(cpu.phases[2].outcome.passed);
  EXPECT_EQ(cpu.windows, 5u);
  EXPECT_EQ(cpu.windows_failed, 2u);  // [1,3) and [2,4)
  EXPECT_FALSE(cpu.passed);
  EXPECT_FALSE(cpu.unevaluated);
  ASSERT_EQ(cpu.recovery.size(), 1u);
  EXPECT_EQ(cpu.recovery[0].status, Recovery::Status::kRecovered);
  const ObjectiveJudgment& up = j.objectives[1];
  EXPECT_TRUE(up.unevaluated);
  EXPECT_TRUE(up.passed) << "no data never fails an objective";
  EXPECT_EQ(up.windows_failed, 0u);
  EXPECT_FALSE(j.passed());
}

}  // namespace target_thresholds_test
}  // namespace millstone::scenario
