// A run against its baseline: tolerance edges, the error-rate floor, steps,
// checks and thresholds.
#include "results/compare.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace millstone::results {
namespace compare_test {

using ::testing::HasSubstr;

RunRecord record(const std::string& id, double rps, double p99_ms, uint64_t requests = 100000,
                 uint64_t errors = 0) {
  RunRecord r;
  r.id = id;
  r.key = "GET http://127.0.0.1/x";
  r.summary = {{"requests", requests},
               {"rps", rps},
               {"error_total", errors},
               {"status", {{"200", requests}}},
               {"latency_ms", {{"p50", 1.0}, {"p90", 2.0}, {"p99", p99_ms}, {"max", 50.0}}}};
  return r;
}

const MetricComparison& metric(const Comparison& c, const std::string& name) {
  for (const MetricComparison& m : c.metrics) {
    if (m.metric == name) return m;
  }
  static MetricComparison missing;
  missing.metric = "(missing " + name + ")";
  ADD_FAILURE() << "no metric " << name;
  return missing;
}

Verdict verdict_of(const RunRecord& run, const RunRecord& base, const std::string& name,
                   double tolerance = 0.10) {
  return metric(compare_runs(run, base, {tolerance, 0.001}), name).verdict;
}

TEST(ParseTolerance, AcceptsPercentagesAndFractions) {
  double t = -1;
  std::string error;
  ASSERT_TRUE(parse_tolerance("10%", &t, &error));
  EXPECT_DOUBLE_EQ(t, 0.10);
  ASSERT_TRUE(parse_tolerance("0.1", &t, &error));
  EXPECT_DOUBLE_EQ(t, 0.10);
  ASSERT_TRUE(parse_tolerance("2.5%", &t, &error));
  EXPECT_DOUBLE_EQ(t, 0.025);
  ASSERT_TRUE(parse_tolerance("0", &t, &error));
  EXPECT_DOUBLE_EQ(t, 0);
  ASSERT_TRUE(parse_tolerance("150%", &t, &error));
  EXPECT_DOUBLE_EQ(t, 1.5);
}

TEST(ParseTolerance, RejectsAmbiguousNegativeAndMalformedValues) {
  double t = 0;
  std::string error;
  EXPECT_FALSE(parse_tolerance("10", &t, &error));
  EXPECT_THAT(error, HasSubstr("10%"));
  EXPECT_FALSE(parse_tolerance("-5%", &t, &error));
  EXPECT_FALSE(parse_tolerance("", &t, &error));
  EXPECT_FALSE(parse_tolerance("%", &t, &error));
  EXPECT_FALSE(parse_tolerance("ten%", &t, &error));
  EXPECT_FALSE(parse_tolerance("10%%", &t, &error));
  EXPECT_FALSE(parse_tolerance("nan", &t, &error));
}

TEST(Compare, IdenticalRunsAreTheSameEverywhere) {
  RunRecord a = record("a", 1000, 10);
  Comparison c = compare_runs(a, a, {});
  EXPECT_FALSE(c.regression());
  EXPECT_TRUE(c.warnings.empty());
  for (const MetricComparison& m : c.metrics)
    EXPECT_EQ(m.verdict, Verdict::kSame) << m.metric;
  EXPECT_THAT(format_comparison(c), HasSubstr("no regression beyond 10%"));
}

TEST(Compare, ThroughputLowerIsWorseAndTheToleranceItselfIsAllowed) {
  RunRecord base = record("b", 100, 10);
  EXPECT_EQ(verdict_of(record("r", 90, 10), base, "throughput"), Verdict::kWorse);
  EXPECT_EQ(verdict_of(record("r", 89.9, 10), base, "throughput"), Verdict::kRegression);
  EXPECT_EQ(verdict_of(record("r", 96, 10), base, "throughput"), Verdict::kSame);
  EXPECT_EQ(verdict_of(record("r", 94, 10), base, "throughput"), Verdict::kWorse);
  EXPECT_EQ(verdict_of(record("r", 106, 10), base, "throughput"), Verdict::kBetter);
  EXPECT_EQ(verdict_of(record("r", 300, 10), base, "throughput"), Verdict::kBetter);
}

TEST(Compare, LatencyHigherIsWorse) {
  RunRecord base = record("b", 100, 100);
  EXPECT_EQ(verdict_of(record("r", 100, 110), base, "latency p99"), Verdict::kWorse);
  EXPECT_EQ(verdict_of(record("r", 100, 110.01), base, "latency p99"), Verdict::kRegression);
  EXPECT_EQ(verdict_of(record("r", 100, 104.9), base, "latency p99"), Verdict::kSame);
  EXPECT_EQ(verdict_of(record("r", 100, 94), base, "latency p99"), Verdict::kBetter);
  // A zero tolerance makes any worsening a regression.
  EXPECT_EQ(verdict_of(record("r", 100, 100.5), base, "latency p99", 0), Verdict::kRegression);
  EXPECT_EQ(verdict_of(record("r", 100, 100), base, "latency p99", 0), Verdict::kSame);
  Comparison c = compare_runs(record("r", 100, 150), base, {});
  const MetricComparison& p99 = metric(c, "latency p99");
  ASSERT_TRUE(p99.change_pct);
  EXPECT_DOUBLE_EQ(*p99.change_pct, 50.0);
  EXPECT_TRUE(c.regression());
  std::string text = format_comparison(c);
  EXPECT_THAT(text, HasSubstr("latency p99"));
  EXPECT_THAT(text, HasSubstr("+50.0%  REGRESSION"));
  EXPECT_THAT(text, HasSubstr("REGRESSION: 1 metric worse than the baseline beyond 10%"));
}

TEST(Compare, ErrorRateNeedsToPassTheAbsoluteFloor) {
  // 1,000,000 attempts: 10 errors is 0.001%, 20 is 0.002%: double, but noise.
  RunRecord base = record("b", 100, 10, 1000000 - 10, 10);
  EXPECT_EQ(verdict_of(record("r", 100, 10, 1000000 - 20, 20), base, "error rate"), Verdict::kSame);
  // 0.001% -> 0.1% is just under the 0.1 point floor: still noise.
  EXPECT_EQ(verdict_of(record("r", 100, 10, 1000000 - 1000, 1000), base, "error rate"),
            Verdict::kSame);
  // 0.001% -> 0.2%: beyond the floor and the relative tolerance.
  EXPECT_EQ(verdict_of(record("r", 100, 10, 1000000 - 2000, 2000), base, "error rate"),
            Verdict::kRegression);
  // From zero: any rise above the floor is a regression.
  RunRecord clean = record("b", 100, 10, 100000, 0);
  EXPECT_EQ(verdict_of(record("r", 100, 10, 100000 - 50, 50), clean, "error rate"), Verdict::kSame);
  EXPECT_EQ(verdict_of(record("r", 100, 10, 100000 - 500, 500), clean, "error rate"),
            Verdict::kRegression);
  // 5% -> 5.4%: above the floor, but within 10% relative.
  RunRecord five = record("b", 100, 10, 95000, 5000);
  EXPECT_EQ(verdict_of(record("r", 100, 10, 94600, 5400), five, "error rate"), Verdict::kWorse);
  EXPECT_EQ(verdict_of(record("r", 100, 10, 94400, 5600), five, "error rate"),
            Verdict::kRegression);
}

TEST(Compare, ErrorRateCountsServerErrorsLikeTheThreshold) {
  RunRecord base = record("b", 100, 10);
  RunRecord run = record("r", 100, 10);
  run.summary["status"] = {{"200", 90000}, {"500", 10000}};
  Comparison c = compare_runs(run, base, {});
  const MetricComparison& m = metric(c, "error rate");
  ASSERT_TRUE(m.run);
  EXPECT_NEAR(*m.run, 10.0, 1e-9);
  EXPECT_EQ(m.verdict, Verdict::kRegression);
}

nlohmann::json step(const std::string& name, uint64_t requests, double p99) {
  return {{"name", name},
          {"requests", requests},
          {"failed", 0},
          {"errors", 0},
          {"latency_ms", {{"p50", p99 / 2}, {"p99", p99}}}};
}

TEST(Compare, ComparesEachStepThatBothRunsHave) {
  RunRecord base = record("b", 100, 10);
  RunRecord run = record("r", 100, 10);
  base.summary["steps"] = {step("buy/items", 1000, 10), step("buy/order", 1000, 20),
                           step("buy/idle", 0, 0)};
  run.summary["steps"] = {step("buy/items", 1000, 10.5), step("buy/order", 1000, 40),
                          step("buy/idle", 10, 5), step("buy/new", 1000, 99)};
  Comparison c = compare_runs(run, base, {});
  EXPECT_EQ(metric(c, "step buy/items p99").verdict, Verdict::kSame);
  EXPECT_EQ(metric(c, "step buy/order p99").verdict, Verdict::kRegression);
  for (const MetricComparison& m : c.metrics) {
    EXPECT_EQ(m.metric.find("buy/idle"), std::string::npos) << "no requests in the baseline";
    EXPECT_EQ(m.metric.find("buy/new"), std::string::npos) << "not in the baseline";
  }
  EXPECT_TRUE(c.regression());
}

TEST(Compare, CheckPassRateUsesTheFloorToo) {
  RunRecord base = record("b", 100, 10);
  RunRecord run = record("r", 100, 10);
  base.summary["checks"] = {{{"name", "status 200"}, {"passed", 10000}, {"failed", 0}},
                            {{"name", "has id"}, {"passed", 10000}, {"failed", 0}}};
  run.summary["checks"] = {{{"name", "status 200"}, {"passed", 9995}, {"failed", 5}},
                           {{"name", "has id"}, {"passed", 9500}, {"failed", 500}}};
  Comparison c = compare_runs(run, base, {});
  EXPECT_EQ(metric(c, "check status 200 pass rate").verdict, Verdict::kSame);
  const MetricComparison& id = metric(c, "check has id pass rate");
  EXPECT_EQ(id.verdict, Verdict::kRegression);
  ASSERT_TRUE(id.baseline && id.run);
  EXPECT_DOUBLE_EQ(*id.baseline, 100.0);
  EXPECT_DOUBLE_EQ(*id.run, 95.0);
}

TEST(Compare, AThresholdThatNowFailsIsARegression) {
  RunRecord base = record("b", 100, 10);
  RunRecord run = record("r", 100, 10);
  base.summary["thresholds"] = {
      {{"threshold", "latency.p99 < 50ms"}, {"passed", true}, {"observed", "10ms"}},
      {{"threshold", "error_rate < 1%"}, {"passed", false}, {"observed", "2.000%"}}};
  run.summary["thresholds"] = {
      {{"threshold", "latency.p99 < 50ms"}, {"passed", false}, {"observed", "60ms"}},
      {{"threshold", "error_rate < 1%"}, {"passed", true}, {"observed", "0.000%"}}};
  Comparison c = compare_runs(run, base, {});
  const MetricComparison& p99 = metric(c, "threshold latency.p99 < 50ms");
  EXPECT_EQ(p99.verdict, Verdict::kRegression);
  EXPECT_EQ(p99.baseline_text, "pass (10ms)");
  EXPECT_EQ(p99.run_text, "FAIL (60ms)");
  EXPECT_EQ(metric(c, "threshold error_rate < 1%").verdict, Verdict::kBetter);
}

TEST(Compare, AFailedRunAfterAPassingBaselineIsARegression) {
  RunRecord base = record("b", 100, 10);
  RunRecord run = record("r", 100, 10);
  run.exit_code = 99;
  Comparison c = compare_runs(run, base, {});
  EXPECT_EQ(metric(c, "result").verdict, Verdict::kRegression);
  EXPECT_EQ(metric(c, "result").run_text, "exit 99");
  EXPECT_EQ(metric(compare_runs(base, run, {}), "result").verdict, Verdict::kBetter);
}

TEST(Compare, DifferentTargetsAreComparedWithAWarning) {
  RunRecord base = record("b", 100, 10);
  RunRecord run = record("r", 100, 10);
  run.key = "GET http://127.0.0.1/slow";
  Comparison c = compare_runs(run, base, {});
  ASSERT_EQ(c.load_differences.size(), 1u);
  EXPECT_EQ(c.load_differences[0].what, "target");
  EXPECT_EQ(c.load_differences[0].baseline, "GET http://127.0.0.1/x");
  EXPECT_EQ(c.load_differences[0].run, "GET http://127.0.0.1/slow");
  EXPECT_TRUE(c.warnings.empty()) << "the target line already says the keys differ";
  EXPECT_THAT(format_comparison(c), HasSubstr("WARNING: the two runs did not apply the same load"));
  EXPECT_FALSE(c.regression());
}

// A URL run as `millstone run URL -c N [--rate R] -d D` records it.
RunRecord url_run(const std::string& id, const std::string& url, uint64_t connections, double rate,
                  double rps) {
  RunRecord r = record(id, rps, 10);
  r.key = "GET " + url;
  r.summary["url"] = url;
  r.summary["method"] = "GET";
  r.summary["model"] = rate > 0 ? "open" : "closed";
  r.summary["connections"] = connections;
  if (rate > 0) r.summary["rate"] = rate;
  r.summary["planned_duration_s"] = 10.0;
  return r;
}

TEST(Compare, AnOpenModelRunAgainstAClosedBaselineWarnsBeforeItsVerdicts) {
  RunRecord base = url_run("b", "http://127.0.0.1:8080/x", 20, 0, 2500);
  RunRecord run = url_run("r", "http://127.0.0.1:8080/x", 20, 500, 500);
  Comparison c = compare_runs(run, base, {});
  EXPECT_TRUE(c.regression()) << "the numbers are still compared";
  ASSERT_EQ(c.load_differences.size(), 2u);
  EXPECT_EQ(c.load_differences[0].what, "load model");
  EXPECT_EQ(c.load_differences[1].what, "rate");
  EXPECT_EQ(c.load_differences[1].baseline, "none (closed model)");
  EXPECT_EQ(c.load_differences[1].run, "500 req/s");
  std::string text = format_comparison(c);
  size_t warning = text.find("WARNING: the two runs did not apply the same load");
  size_t table = text.find("  metric ");
  ASSERT_NE(warning, std::string::npos) << text;
  ASSERT_NE(table, std::string::npos) << text;
  EXPECT_LT(warning, table) << "the warning comes first:\n" << text;
  EXPECT_THAT(text, HasSubstr("  rate        none (closed model)     500 req/s\n"));
  EXPECT_THAT(text, HasSubstr("(but the load differed: see the WARNING above)"));
  nlohmann::json j = to_json(c);
  EXPECT_EQ(j["load_differs"], true);
  ASSERT_EQ(j["load_differences"].size(), 2u);
  EXPECT_EQ(j["load_differences"][1],
            nlohmann::json(
                {{"what", "rate"}, {"baseline", "none (closed model)"}, {"run", "500 req/s"}}));
}

TEST(Compare, ConnectionsDurationAndRateEachCount) {
  RunRecord base = url_run("b", "http://127.0.0.1:8080/x", 20, 400, 400);
  RunRecord run = url_run("r", "http://127.0.0.1:8080/x", 50, 500, 500);
  run.summary["planned_duration_s"] = 30.0;
  std::vector<LoadDifference> d = load_differences(load_shape(run), load_shape(base));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].what, "rate");
  EXPECT_EQ(d[1].what, "connections");
  EXPECT_EQ(d[1].baseline, "20");
  EXPECT_EQ(d[1].run, "50");
  EXPECT_EQ(d[2].what, "planned duration");
  EXPECT_EQ(d[2].baseline, "10s");
  EXPECT_EQ(d[2].run, "30s");
  // The same load on the same target: nothing to say.
  EXPECT_TRUE(load_differences(load_shape(base), load_shape(base)).empty());
  EXPECT_TRUE(compare_runs(base, base, {}).load_differences.empty());
  EXPECT_EQ(to_json(compare_runs(base, base, {}))["load_differs"], false);
}

RunRecord scenario_run(const std::string& id, const std::string& target, const std::string& source,
                       uint64_t peak_vus) {
  RunRecord r = record(id, 100, 10);
  r.key = "/home/me/shop.yaml";
  r.name = "shop.yaml";
  r.summary["model"] = "scenario";
  r.summary["url"] = "shop.yaml -> " + target;
  r.summary["target"] = target;
  r.summary["peak_vus"] = peak_vus;
  r.summary["planned_duration_s"] = 15.0;
  r.config = {{"scenario_file", "shop.yaml"}, {"scenario_source", source}};
  return r;
}

TEST(Compare, AScenarioAgainstAnotherTargetOrEditedFileWarns) {
  const std::string text = "target: http://a\nflows: {}\nscenarios:\n  s: {vus: 20}\n";
  RunRecord base = scenario_run("b", "http://staging:8080", text, 20);
  // Same file, same key: only --target differs. Peak VUs alone are a result.
  RunRecord other = scenario_run("r", "http://127.0.0.1:8080", text, 19);
  std::vector<LoadDifference> d = load_differences(load_shape(other), load_shape(base));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].what, "target");
  EXPECT_EQ(d[0].baseline, "http://staging:8080");
  EXPECT_EQ(d[0].run, "http://127.0.0.1:8080");
  // The file was edited between the runs: its text and the VUs it made.
  std::string edited = text;
  edited.replace(edited.find("20"), 2, "50");
  RunRecord changed = scenario_run("r", "http://staging:8080", edited, 50);
  d = load_differences(load_shape(changed), load_shape(base));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].what, "scenario text");
  EXPECT_EQ(d[0].run, "differs from line 4");
  EXPECT_EQ(d[1].what, "peak VUs");
  // Runs recorded before the summary had `target` still name it from `url`.
  other.summary.erase("target");
  EXPECT_EQ(load_shape(other).target, "http://127.0.0.1:8080");
}

TEST(Compare, JsonListsEveryMetricWithItsVerdict) {
  Comparison c = compare_runs(record("r", 50, 10), record("b", 100, 10), {0.2, 0.001});
  nlohmann::json j = to_json(c);
  EXPECT_EQ(j["run"], "r");
  EXPECT_EQ(j["baseline"], "b");
  EXPECT_DOUBLE_EQ(j["tolerance"].get<double>(), 0.2);
  EXPECT_EQ(j["regression"], true);
  bool found = false;
  for (const nlohmann::json& m : j["metrics"]) {
    if (m["metric"] != "throughput") continue;
    found = true;
    EXPECT_EQ(m["verdict"], "REGRESSION");
    EXPECT_DOUBLE_EQ(m["change_pct"].get<double>(), -50.0);
    EXPECT_EQ(m["unit"], "req/s");
  }
  EXPECT_TRUE(found);
}

}  // namespace compare_test
}  // namespace millstone::results
