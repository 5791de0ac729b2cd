#include "results/junit.h"

#include <gtest/gtest.h>

namespace millstone::results {
namespace junit_test {

RunRecord scenario_record() {
  RunRecord r;
  r.id = "20261123-032041-4f2a";
  r.name = "shop.yaml";
  r.env.host = "ci-runner";
  r.env.started_unix_ms = 1795000000000;
  r.summary = {
      {"model", "scenario"},
      {"scenario", "shop"},
      {"duration_s", 2.5},
      {"worker_failures", nlohmann::json::array()},
      {"thresholds",
       {{{"threshold", "latency.p99 < 1s"},
         {"location", "shop.yaml:40:5"},
         {"passed", true},
         {"observed", "12.3ms"}},
        {{"threshold", "checks > 99%"},
         {"location", "shop.yaml:41:5"},
         {"passed", false},
         {"observed", "97.50%"}}}},
      {"checks",
       {{{"name", "buyer/items: status in [200]"}, {"passed", 40}, {"failed", 0}, {"samples", {}}},
        {{"name", "buyer/order: json $.id exists"},
         {"passed", 39},
         {"failed", 1},
         {"samples", {"status 500, body \"<oops>\""}}}}}};
  return r;
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = 0; (at = text.find(what, at)) != std::string::npos; at += what.size())
    ++n;
  return n;
}

TEST(Junit, OneSuiteForThresholdsChecksAndTheRunWithCounts) {
  std::string xml = junit_xml(scenario_record());
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites ", 0), 0u) << xml;
  EXPECT_NE(xml.find("tests=\"5\" failures=\"2\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<testsuite name=\"thresholds\" tests=\"2\" failures=\"1\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testsuite name=\"checks\" tests=\"2\" failures=\"1\""), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testsuite name=\"run\" tests=\"1\" failures=\"0\""), std::string::npos)
      << xml;
  EXPECT_EQ(occurrences(xml, "<testcase "), 5u);
  EXPECT_EQ(occurrences(xml, "<failure "), 2u);
  EXPECT_NE(xml.find("message=\"observed 97.50%, limit: checks &gt; 99%\""), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("message=\"failed 1 of 40 times (97.50% passed)\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("e.g. status 500, body &quot;&lt;oops&gt;&quot;"), std::string::npos) << xml;
  EXPECT_NE(xml.find("timestamp=\"2026-11-18T"), std::string::npos) << xml;
  EXPECT_NE(xml.find("time=\"2.500\""), std::string::npos) << xml;
}

TEST(Junit, WorkerFailuresFailTheRunSuite) {
  RunRecord r;
  r.name = "http://127.0.0.1:1/";
  r.summary = {{"model", "closed"},
               {"duration_s", 1.0},
               {"worker_failures", {"worker 1 (pid 42) died: killed by signal 9"}}};
  std::string xml = junit_xml(r);
  EXPECT_NE(xml.find("<testsuite name=\"thresholds\" tests=\"0\" failures=\"0\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testsuite name=\"run\" tests=\"1\" failures=\"1\""), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("worker 1 (pid 42) died: killed by signal 9"), std::string::npos) << xml;
}

// An objective judged in two phases, over windows and for recovery after
// one fault, and a guard that stopped the run.
RunRecord slo_record() {
  RunRecord r = scenario_record();
  r.exit_code = 97;
  const nlohmann::json span = {
      {"start_s", 0}, {"end_s", 3}, {"passed", true}, {"observed", "12.0ms"}, {"value", 12000.0}};
  nlohmann::json before = span;
  before["phase"] = "before";
  nlohmann::json during = span;
  during["phase"] = "during kill-api";
  during["passed"] = false;
  during["observed"] = "412.0ms";
  r.summary["slo"] = {{"passed", false},
                      {"faults", {{{"name", "kill-api"}, {"start_s", 3.0}, {"end_s", 6.0}}}},
                      {"phases", nlohmann::json::array()},
                      {"objectives",
                       {{{"objective", "latency.p99 < 250ms"},
                         {"location", "shop.yaml:50:7"},
                         {"guard", false},
                         {"window_s", 10},
                         {"recovery_window_s", 5},
                         {"passed", false},
                         {"phases", {before, during}},
                         {"windows", {{"count", 4}, {"failed", 2}, {"worst", during}}},
                         {"recovery",
                          {{{"fault", "kill-api"},
                            {"status", "not_recovered"},
                            {"time_s", 4.0},
                            {"recovered_at_s", nullptr}}}}}}},
                      {"abort",
                       {{"objective", "error_rate < 50%"},
                        {"location", "shop.yaml:53:7"},
                        {"second", 7},
                        {"failing_s", 4},
                        {"observed", "100.000%"},
                        {"reason", "abort guard \"error_rate < 50%\" failed for 4s in a row"}}}};
  return r;
}

TEST(Junit, OneCasePerObjectivePerPhaseWindowsAndRecovery) {
  const std::string xml = junit_xml(slo_record());
  EXPECT_NE(xml.find("<testsuite name=\"slo\" tests=\"4\" failures=\"3\""), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testcase name=\"latency.p99 &lt; 250ms [before]\" classname=\"shop.slo\" "
                     "time=\"0\"/>"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("message=\"observed 412.0ms in phase during kill-api (0s-3s), limit: "
                     "latency.p99 &lt; 250ms\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("message=\"2 of 4 windows failed; worst observed 412.0ms in 0s-3s"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("latency.p99 &lt; 250ms [recovery after kill-api]"), std::string::npos) << xml;
  EXPECT_NE(xml.find("message=\"did not recover within 4.0s after kill-api ended\""),
            std::string::npos)
      << xml;
  // The guard's stop fails the run suite.
  EXPECT_NE(xml.find("<testsuite name=\"run\" tests=\"2\" failures=\"1\""), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("not stopped by an abort guard"), std::string::npos) << xml;
}

TEST(Junit, NoSloSuiteWithoutSlo) {
  EXPECT_EQ(junit_xml(scenario_record()).find("name=\"slo\""), std::string::npos);
}

TEST(Junit, GuardAbortVerdictIsAbortedWithItsReason) {
  const RunVerdict v = run_verdict(slo_record());
  EXPECT_EQ(v.word, "ABORTED");
  EXPECT_FALSE(v.good);
  EXPECT_NE(v.judged.find("failed for 4s in a row"), std::string::npos) << v.judged;
  RunRecord failed = slo_record();
  failed.exit_code = 99;
  failed.summary["thresholds"][1]["passed"] = true;
  EXPECT_EQ(run_verdict(failed).judged.rfind("1 of 1 SLO objectives failed, first latency.p99 < "
                                             "250ms",
                                             0),
            0u)
      << run_verdict(failed).judged;
}

TEST(Junit, EscapesMarkupControlCharactersAndBadUtf8) {
  RunRecord r = scenario_record();
  r.summary["checks"][1]["name"] = std::string("a<b>&\"c'\x01\x1f\tend \xc3\xa9 \xff");
  r.summary["checks"][1]["samples"] = {std::string("nul\0byte", 8) + " \xef\xbf\xbf"};
  std::string xml = junit_xml(r);
  EXPECT_NE(xml.find("name=\"a&lt;b&gt;&amp;&quot;c&apos;\\x01\\x1f&#9;end \xc3\xa9 \\xff\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("nul\\x00byte \\uFFFF"), std::string::npos) << xml;
  for (char c : xml) {
    unsigned char u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 || c == '\n') << "raw control byte " << int(u);
  }
}

}  // namespace junit_test
}  // namespace millstone::results
