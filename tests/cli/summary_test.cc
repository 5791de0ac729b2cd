#include "cli/summary.h"

#include <gtest/gtest.h>

#include "cli/scenario_summary.h"
#include "scenario/thresholds.h"

namespace millstone::cli {
namespace summary_test {

cluster::RunResult sample_result() {
  cluster::RunResult r;
  r.duration_s = 2.0;
  r.workers = 2;
  for (uint64_t v = 1; v <= 1000; ++v)
    r.total.latency.record(v * 100);  // 0.1 .. 100 ms
  r.total.requests = 1000;
  r.total.status_counts[200] = 990;
  r.total.status_counts[503] = 10;
  r.total.add_error(metrics::ErrorCause::kTimeout, 3);
  r.total.add_error(metrics::ErrorCause::kReset, 2);
  r.total.scheduled = 1005;
  r.total.started_late = 7;
  r.total.not_started = 2;
  r.seconds[0] = r.total;
  return r;
}

TEST(SummaryJson, HasTheDocumentedFields) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 500, 2, 2000};
  auto j = summary_json(run, sample_result());
  EXPECT_EQ(j["requests"], 1000);
  EXPECT_DOUBLE_EQ(j["duration_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j["rps"].get<double>(), 500.0);
  EXPECT_EQ(j["errors"]["timeout"], 3);
  EXPECT_EQ(j["errors"]["reset"], 2);
  EXPECT_FALSE(j["errors"].contains("bad_chunk"));
  EXPECT_EQ(j["error_total"], 5);
  EXPECT_EQ(j["status"]["503"], 10);
  EXPECT_NEAR(j["latency_ms"]["p50"].get<double>(), 50.0, 0.5);
  EXPECT_NEAR(j["latency_ms"]["p99"].get<double>(), 99.0, 1.0);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["min"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["max"].get<double>(), 100.0);
  for (const char* k : {"p90", "p999", "mean"})
    EXPECT_TRUE(j["latency_ms"].contains(k)) << k;
  EXPECT_EQ(j["model"], "open");
  EXPECT_EQ(j["schedule"]["started_late"], 7);
  EXPECT_EQ(j["schedule"]["not_started"], 2);
  EXPECT_EQ(j["timeline"].size(), 1u);
  EXPECT_TRUE(j["complete"].get<bool>());
}

TEST(SummaryJson, TimelineEntriesCarryWhatTheReportAndSeriesNeed) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 2, 2000};
  cluster::RunResult r = sample_result();
  r.duration_s = 1.5;
  r.seconds[0].bytes_sent = 1000;
  r.seconds[0].bytes_received = 5000;
  r.seconds[0].connections_opened = 10;
  r.seconds[1].requests = 100;
  r.seconds[1].interval_index = 1;
  r.seconds[1].latency.record(2000);
  auto j = summary_json(run, r);
  ASSERT_EQ(j["timeline"].size(), 2u);
  const auto& t = j["timeline"][0];
  EXPECT_EQ(t["second"], 0);
  EXPECT_DOUBLE_EQ(t["rps"].get<double>(), 1000.0);
  EXPECT_NEAR(t["p90_ms"].get<double>(), 90.0, 1.0);
  EXPECT_NEAR(t["p95_ms"].get<double>(), 95.0, 1.0);
  for (const char* k : {"p50_ms", "p99_ms", "max_ms", "requests", "errors"})
    EXPECT_TRUE(t.contains(k)) << k;
  EXPECT_EQ(t["bytes_sent"], 1000);
  EXPECT_EQ(t["bytes_received"], 5000);
  EXPECT_EQ(t["connections_opened"], 10);
  EXPECT_EQ(t["error_causes"]["timeout"], 3);
  EXPECT_EQ(t["error_causes"]["reset"], 2);
  EXPECT_FALSE(t["error_causes"].contains("closed"));
  for (const char* k : {"vus", "dropped_iterations", "checks_passed", "checks_failed"})
    EXPECT_EQ(t[k], 0) << k;
  EXPECT_FALSE(t.contains("steps")) << "URL runs have no steps";
  // The last second lasted half a second: its rate is per second, not per interval.
  EXPECT_DOUBLE_EQ(j["timeline"][1]["rps"].get<double>(), 200.0);
}

// Agents lost while the run went on: named in the text and the JSON, and each
// second from the loss on carries the share that was missing.
TEST(SummaryJson, AgentLossesMarkTheSecondsFromTheLossOn) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 4, 3000};
  cluster::RunResult r = sample_result();
  r.duration_s = 3;
  r.seconds[1].interval_index = 1;
  r.seconds[2].interval_index = 2;
  r.losses.push_back({"agent 10.0.0.7:40112", "load-a", 1, 0.25, "sent nothing for 2 s"});
  r.losses.push_back({"agent 10.0.0.8:40113", "load-b\x1b[2J", 2, 0.5, "its link closed"});
  auto j = summary_json(run, r);
  ASSERT_EQ(j["agent_losses"].size(), 2u);
  EXPECT_EQ(j["agent_losses"][0]["agent"], "agent 10.0.0.7:40112");
  EXPECT_EQ(j["agent_losses"][0]["host"], "load-a");
  EXPECT_EQ(j["agent_losses"][0]["at_second"], 1);
  EXPECT_DOUBLE_EQ(j["agent_losses"][1]["missing_share"].get<double>(), 0.5);
  EXPECT_EQ(j["agent_losses"][1]["cause"], "its link closed");
  EXPECT_FALSE(j["timeline"][0].contains("missing_share"));
  EXPECT_DOUBLE_EQ(j["timeline"][1]["missing_share"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["timeline"][2]["missing_share"].get<double>(), 0.75);
  EXPECT_TRUE(j["complete"].get<bool>());  // degraded, not incomplete
  const std::string text = format_summary(run, r);
  EXPECT_NE(text.find("AGENT LOST: agent 10.0.0.7:40112 (load-a) at second 1: sent nothing for 2 "
                      "s; 25% of the load is missing from then on"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("(load-b\\x1b[2J)"), std::string::npos) << text;  // printable
  EXPECT_NE(text.find("completed degraded"), std::string::npos);
  // A local run has no agents: nothing about them.
  EXPECT_FALSE(summary_json(run, sample_result()).contains("agent_losses"));
}

TEST(SummaryJson, PercentileCurveIsMonotonicFromMinToMax) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 2, 2000};
  auto j = summary_json(run, sample_result());
  const auto& curve = j["latency_percentiles"];
  ASSERT_GT(curve.size(), 30u);
  EXPECT_EQ(curve.front()[0], 0.0);
  EXPECT_DOUBLE_EQ(curve.front()[1].get<double>(), 0.1);
  EXPECT_EQ(curve.back()[0], 100.0);
  EXPECT_DOUBLE_EQ(curve.back()[1].get<double>(), 100.0);
  std::vector<double> wanted = {50, 75, 90, 95, 99, 99.5, 99.9, 99.99};
  for (size_t i = 1; i < curve.size(); ++i) {
    EXPECT_GT(curve[i][0].get<double>(), curve[i - 1][0].get<double>()) << curve.dump();
    EXPECT_GE(curve[i][1].get<double>(), curve[i - 1][1].get<double>()) << curve.dump();
    std::erase(wanted, curve[i][0].get<double>());
  }
  EXPECT_TRUE(wanted.empty()) << "missing percentiles, first " << wanted.front();
  for (const auto& point : curve) {
    if (point[0] == 99.0) {
      EXPECT_NEAR(point[1].get<double>(), 99.0, 1.0);
    }
  }
  EXPECT_TRUE(percentile_curve_json(metrics::Histogram{}).empty());
}

TEST(ScenarioJson, NamesEachSecondsStepsAndAddsPerStepCurves) {
  scenario::Plan plan;
  plan.name = "shop";
  plan.step_names = {"buyer/items", "buyer/order"};
  plan.check_names = {"buyer/items: status in [200]"};
  plan.flows.resize(1);
  plan.flows[0].name = "buyer";
  cluster::RunResult r;
  r.duration_s = 2;
  r.workers = 1;
  for (uint64_t second : {0, 1}) {
    metrics::Snapshot& s = r.seconds[second];
    s.interval_index = second;
    s.vus = 3 + second;
    s.steps.resize(2);
    s.checks.resize(1);
    s.flows.resize(1);
    s.steps[0].requests = 5;
    s.steps[0].latency.record(1000 * (second + 1));
    s.requests = 5;
    s.latency.record(1000 * (second + 1));
    if (second == 1) {
      s.steps[1].requests = 2;
      s.steps[1].failed = 1;
      s.steps[1].latency.record(4000);
      s.requests += 2;
      s.latency.record(4000);
      s.dropped_iterations = 7;
    }
    s.checks[0].passed = 4;
    s.checks[0].failed = second;
    r.total.merge(s);
  }
  RunDescription run{"shop.yaml", "", 0, 0, 1, 2000, true};
  auto j = summary_json(run, r);
  add_scenario_json(plan, r.total, {}, &j);
  ASSERT_EQ(j["timeline"].size(), 2u);
  const auto& t0 = j["timeline"][0];
  const auto& t1 = j["timeline"][1];
  EXPECT_EQ(t0["vus"], 3);
  EXPECT_EQ(t1["vus"], 4);
  EXPECT_EQ(t1["dropped_iterations"], 7);
  EXPECT_EQ(t0["checks_passed"], 4);
  EXPECT_EQ(t0["checks_failed"], 0);
  EXPECT_EQ(t1["checks_failed"], 1);
  ASSERT_TRUE(t0["steps"].is_object()) << t0.dump();
  EXPECT_EQ(t0["steps"].size(), 1u) << "an idle step is left out: " << t0.dump();
  EXPECT_EQ(t0["steps"]["buyer/items"]["requests"], 5);
  EXPECT_NEAR(t0["steps"]["buyer/items"]["p99_ms"].get<double>(), 1.0, 0.02);
  EXPECT_EQ(t1["steps"]["buyer/order"]["failed"], 1);
  EXPECT_NEAR(t1["steps"]["buyer/order"]["p50_ms"].get<double>(), 4.0, 0.05);
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][1]["latency_percentiles"].back()[1], j["steps"][1]["latency_ms"]["max"]);
  EXPECT_FALSE(j["latency_percentiles"].empty());
}

TEST(ScenarioJson, NamesTheTargetAndWhenEachScenarioRan) {
  scenario::Plan plan;
  plan.name = "shop";
  plan.target.scheme = "http";
  plan.target.host = "127.0.0.1";
  plan.target.port = 8080;
  plan.scenarios.resize(2);
  plan.scenarios[0].name = "warm";
  plan.scenarios[0].executor.duration_us = 10'000'000;
  plan.scenarios[0].executor.graceful_stop_us = 1'000'000;
  plan.scenarios[1].name = "main";
  plan.scenarios[1].executor.kind = scenario::Executor::Kind::kConstantArrivalRate;
  plan.scenarios[1].executor.duration_us = 20'000'000;
  plan.scenarios[1].start_us = 11'000'000;  // start: after warm
  nlohmann::json j = nlohmann::json::object();
  add_scenario_json(plan, metrics::Snapshot{}, {}, &j);
  EXPECT_EQ(j["target"], "http://127.0.0.1:8080");
  ASSERT_EQ(j["scenarios"].size(), 2u);
  EXPECT_EQ(j["scenarios"][0], nlohmann::json({{"name", "warm"},
                                               {"executor", "constant-vus"},
                                               {"start_s", 0.0},
                                               {"end_s", 11.0},
                                               {"graceful_stop_s", 1.0}}));
  EXPECT_EQ(j["scenarios"][1]["executor"], "constant-arrival-rate");
  EXPECT_DOUBLE_EQ(j["scenarios"][1]["start_s"].get<double>(), 11.0);
  EXPECT_DOUBLE_EQ(j["scenarios"][1]["end_s"].get<double>(), 31.0);
}

TEST(SummaryText, NamesErrorsStatusesAndWorkerFailures) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 2, 2000};
  auto result = sample_result();
  result.worker_failures.push_back("worker 1 (pid 42) died before finishing: killed by signal 9");
  std::string text = format_summary(run, result);
  EXPECT_NE(text.find("1,000"), std::string::npos) << text;
  EXPECT_NE(text.find("timeout: 3"), std::string::npos) << text;
  EXPECT_NE(text.find("503: 10"), std::string::npos) << text;
  EXPECT_NE(text.find("WARNING: worker 1"), std::string::npos) << text;
  EXPECT_NE(text.find("incomplete"), std::string::npos) << text;
  EXPECT_EQ(text.find("schedule"), std::string::npos) << "closed model has no schedule line";
}

TEST(SummaryText, MachineLimitErrorsSayWhichLimitAndHowToRaiseIt) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 2, 2000};
  auto result = sample_result();
  EXPECT_EQ(format_summary(run, result).find("ulimit"), std::string::npos);
  result.total.add_error(metrics::ErrorCause::kLocalPorts, 5);
  result.total.add_error(metrics::ErrorCause::kFdLimit, 1);
  std::string text = format_summary(run, result);
  EXPECT_NE(text.find("local_ports_exhausted: 5"), std::string::npos) << text;
  EXPECT_NE(text.find("--source-address"), std::string::npos) << text;
  EXPECT_NE(text.find("fd_limit: 1"), std::string::npos) << text;
  EXPECT_NE(text.find("ulimit -Hn"), std::string::npos) << text;
}

// A URL run where 4.5% of responses are 500s: the text, the JSON and the
// error_rate threshold give the same number under the same names.
TEST(SummaryErrors, OneDefinitionInTextJsonAndThresholds) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 2, 2000};
  cluster::RunResult r;
  r.duration_s = 2;
  r.total.requests = 1000;
  r.total.status_counts[200] = 955;
  r.total.status_counts[500] = 45;
  r.seconds[0] = r.total;
  std::string text = format_summary(run, r);
  EXPECT_EQ(text.find("errors       none"), std::string::npos) << text;
  EXPECT_NE(text.find("4.50% of 1,000 attempts failed: 45 HTTP failures (status >= 400), 0 "
                      "transport errors"),
            std::string::npos)
      << text;
  auto j = summary_json(run, r);
  EXPECT_EQ(j["http_failures"], 45);
  EXPECT_EQ(j["transport_errors"], 0);
  EXPECT_EQ(j["failed"], 45);
  EXPECT_EQ(j["attempts"], 1000);
  EXPECT_DOUBLE_EQ(j["error_rate"].get<double>(), 0.045);
  EXPECT_EQ(j["timeline"][0]["http_failures"], 45);
  scenario::Plan plan;
  scenario::Threshold t;
  t.metric = scenario::Threshold::Metric::kErrorRate;
  t.op = scenario::Threshold::Op::kLt;
  t.value = 0.01;
  plan.thresholds.push_back(t);
  auto outcomes = scenario::evaluate_thresholds(plan, r.total, r.duration_s);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_DOUBLE_EQ(outcomes[0].observed, j["error_rate"].get<double>());
  EXPECT_FALSE(outcomes[0].passed);
}

TEST(SummaryText, ConnectionsEstablishedOfAttemptedAndRequestsInFlight) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 200'000, 0, 2, 1000};
  cluster::RunResult r = sample_result();
  r.total.connections_opened = 40'000;
  r.total.connections_established = 128;
  r.total.in_flight = 12;
  std::string text = format_summary(run, r);
  EXPECT_NE(text.find("128 established of 40,000 attempted"), std::string::npos) << text;
  EXPECT_NE(text.find("only 40,000 of the 200,000 connections"), std::string::npos) << text;
  EXPECT_NE(text.find("12 requests were still waiting"), std::string::npos) << text;
  auto j = summary_json(run, r);
  EXPECT_EQ(j["connections_attempted"], 40'000);
  EXPECT_EQ(j["connections_established"], 128);
  EXPECT_EQ(j["in_flight"], 12);
  EXPECT_FALSE(j["measured_nothing"].get<bool>());
}

TEST(SummaryText, ARunWithNoResponseSaysNothingWasMeasured) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 1, 1000};
  cluster::RunResult r;
  r.duration_s = 1;
  r.total.connections_opened = 10;
  r.total.connections_established = 10;
  r.total.in_flight = 10;
  EXPECT_TRUE(measured_nothing(r.total));
  std::string text = format_summary(run, r);
  EXPECT_NE(text.find("NO RESULTS"), std::string::npos) << text;
  EXPECT_NE(text.find("errors       none: no request completed or failed"), std::string::npos)
      << text;
  EXPECT_TRUE(summary_json(run, r)["measured_nothing"].get<bool>());
  // A socket-only scenario whose steps succeeded measured something.
  r.total.steps.resize(1);
  r.total.steps[0].requests = 3;
  EXPECT_FALSE(measured_nothing(r.total));
}

TEST(SummaryJson, PeakVusIsTheMostAliveAtOnceNotAnEndOfSecondSample) {
  RunDescription run{"shop.yaml", "", 0, 0, 1, 1000, true};
  cluster::RunResult r;
  r.duration_s = 0.8;
  r.seconds[0].peak_vus = 5;  // all five finished before the second ended
  r.seconds[0].vus = 0;
  r.total.peak_vus = 5;
  EXPECT_EQ(peak_vus(r), 5u);
  auto j = summary_json(run, r);
  EXPECT_EQ(j["peak_vus"], 5);
  EXPECT_EQ(j["timeline"][0]["peak_vus"], 5);
}

TEST(ScenarioText, ACheckThatNeverRanSaysSoInsteadOfOkZeroOfZero) {
  scenario::Plan plan;
  plan.step_names = {"f/a"};
  plan.check_names = {"f/a: status in [200]", "f/a: body contains ok"};
  plan.flows.resize(1);
  plan.flows[0].name = "f";
  metrics::Snapshot total;
  total.steps.resize(1);
  total.checks.resize(2);
  total.flows.resize(1);
  total.checks[0].passed = 3;
  std::string text = format_scenario_summary(plan, total, {}, {50, 90, 99});
  EXPECT_NE(text.find("ok   f/a: status in [200]  3/3"), std::string::npos) << text;
  EXPECT_NE(text.find("f/a: body contains ok  not run"), std::string::npos) << text;
  EXPECT_EQ(text.find("0/0"), std::string::npos) << text;
}

TEST(SummaryText, ASocketOnlyScenarioOpensWithItsStepsNotZeroRequests) {
  RunDescription run{"ws.yaml -> http://127.0.0.1:1", "", 0, 0, 1, 2000, true};
  run.http_steps = false;
  cluster::RunResult r;
  r.duration_s = 2;
  r.total.steps.resize(2);
  r.total.steps[0].requests = 40;
  r.total.steps[1].requests = 38;
  r.total.steps[1].failed = 2;
  r.total.steps[1].errors = 2;
  std::string text = format_summary(run, r);
  EXPECT_NE(text.find("steps        78 succeeded, 2 failed"), std::string::npos) << text;
  EXPECT_EQ(text.find("requests"), std::string::npos) << text;
  EXPECT_EQ(text.find("no complete responses"), std::string::npos) << text;
  EXPECT_EQ(text.find("NO RESULTS"), std::string::npos) << text;
}

TEST(Format, ThousandsAndLatency) {
  EXPECT_EQ(group_thousands(0), "0");
  EXPECT_EQ(group_thousands(999), "999");
  EXPECT_EQ(group_thousands(1234567), "1,234,567");
  EXPECT_EQ(format_latency(620), "0.62ms");
  EXPECT_EQ(format_latency(12'345), "12.3ms");
  EXPECT_EQ(format_latency(1'520'000), "1.52s");
}

TEST(Format, PlainNumbersAndCounts) {
  EXPECT_EQ(plain_number(10'000'000), "10000000");
  EXPECT_EQ(plain_number(2.5), "2.5");
  EXPECT_EQ(plain_number(99.99), "99.99");
  EXPECT_EQ(count_of(1, "connection", "connections"), "1 connection");
  EXPECT_EQ(count_of(0, "flow", "flows"), "0 flows");
  EXPECT_EQ(count_of(1000, "flow", "flows"), "1,000 flows");
  EXPECT_EQ(format_seconds(90), "90s");
  EXPECT_EQ(format_seconds(6.5), "6.5s");
}

// The header said "1e+07 req/s" and "1 connections, 1 workers".
TEST(Format, HeaderNumbersArePlainAndSingularWhereOne) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 1, 1e7, 1, 2000};
  cluster::RunResult result = sample_result();
  result.workers = 1;
  const std::string text = format_summary(run, result);
  EXPECT_NE(text.find("(open model, 10000000 req/s, 1 connection, 1 worker, 2.0s)"),
            std::string::npos)
      << text;
}

TEST(Format, ChosenPercentilesInTextAndJson) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 2, 2000};
  run.percentiles = {75, 99.99};
  const std::string text = format_summary(run, sample_result());
  EXPECT_NE(text.find("min 0.10ms  p75 75."), std::string::npos) << text;
  EXPECT_NE(text.find("  p99.99 "), std::string::npos) << text;
  EXPECT_EQ(text.find(" p50 "), std::string::npos) << text;
  const nlohmann::json j = summary_json(run, sample_result());
  ASSERT_EQ(j["percentiles_ms"].size(), 2u) << j["percentiles_ms"].dump();
  EXPECT_NEAR(j["percentiles_ms"]["75"].get<double>(), 75.0, 0.75);
  EXPECT_TRUE(j["percentiles_ms"].contains("99.99"));
  // p95 is shown by default (k6's summaryTrendStats) and always in latency_ms.
  RunDescription defaults{"http://127.0.0.1:1/x", "GET", 10, 0, 2, 2000};
  EXPECT_NE(format_summary(defaults, sample_result()).find("  p95 "), std::string::npos);
  EXPECT_NEAR(summary_json(defaults, sample_result())["latency_ms"]["p95"].get<double>(), 95.0,
              1.0);
}

}  // namespace summary_test
}  // namespace millstone::cli
