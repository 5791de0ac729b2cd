// Thresholds and SLOs on the monitored target's series, end to end
// (docs/monitoring.md#thresholds-and-slos): `millstone mock` serves a
// Prometheus text endpoint whose gauge the test chose (42), one threshold
// on it passes and one fails, and a dead endpoint's threshold is reported as
// "no data" without changing the exit code.
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support.h"

namespace millstone::testing {
namespace target_threshold_test {

// The value the endpoint serves: the truth the thresholds are judged against.
constexpr double kQueueDepth = 42;

const char* kMock = R"(
routes:
  - path: /api
    body: ok
  - path: /metrics
    headers: {Content-Type: 'text/plain; version=0.0.4'}
    body: "# TYPE queue_depth gauge\nqueue_depth 42\n"
)";

int closed_port() {
  int port = 0;
  const int fd = listen_loopback(&port);
  close(fd);
  return port;
}

std::string scenario(const MockServer& mock, const std::string& judged) {
  return "target: http://127.0.0.1:1\n"
         "flows: {a: {steps: [{get: /api}]}}\n"
         "scenarios: {main: {executor: constant-vus, vus: 1, duration: 1500ms, graceful_stop: "
         "200ms}}\n"
         "monitor:\n"
         "  - {name: app, url: '" +
         mock.url("/metrics") +
         "', metrics: [queue_depth], interval: 250ms}\n"
         "  - {name: dead, url: 'http://127.0.0.1:" +
         std::to_string(closed_port()) + "/metrics', interval: 250ms}\n" + judged;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

struct MonitoredRun {
  ProcessResult process;
  nlohmann::json summary;
  std::string junit;
};

MonitoredRun run(const MockServer& mock, const std::string& judged) {
  const std::string path = write_temp_file(scenario(mock, judged), ".yaml");
  const std::string out = write_temp_file("", ".json");
  const std::string junit = write_temp_file("", ".xml");
  MonitoredRun r;
  r.process = run_millstone({"run", path, "--target", mock.url(""), "-w", "1", "-q", "--no-history",
                             "-o", out, "--junit", junit},
                            30);
  std::ifstream in(junit);
  std::stringstream s;
  s << in.rdbuf();
  r.junit = s.str();
  if (r.process.exit_code >= 0) r.summary = read_json(out);
  return r;
}

TEST(TargetThresholdIntegration, ThresholdsOnTheServedSeriesPassFailOrHaveNoData) {
  MockServer mock(kMock);
  const MonitoredRun r = run(mock,
                             "thresholds:\n"
                             "  - target.app.queue_depth.max < 50\n"
                             "  - target.app.queue_depth < 40\n"
                             "  - target.dead.cpu < 80%\n");
  ASSERT_EQ(r.process.exit_code, 99) << r.process.out << r.process.err;
  const nlohmann::json& t = r.summary["thresholds"];
  ASSERT_EQ(t.size(), 3u) << t.dump();
  EXPECT_EQ(t[0]["status"], "passed");
  EXPECT_EQ(t[0]["value"], kQueueDepth);
  EXPECT_EQ(t[1]["status"], "failed");
  EXPECT_EQ(t[1]["value"], kQueueDepth);
  EXPECT_EQ(t[2]["status"], "no_data");
  EXPECT_TRUE(t[2]["value"].is_null());
  EXPECT_EQ(r.summary["thresholds_passed"], false);
  // The text summary and the warning say which was not evaluated.
  EXPECT_NE(r.process.out.find("target.dead.cpu < 80%"), std::string::npos) << r.process.out;
  EXPECT_NE(r.process.out.find("not evaluated: no data from the monitored target"),
            std::string::npos)
      << r.process.out;
  EXPECT_NE(r.process.err.find("warning: threshold target.dead.cpu < 80%"), std::string::npos)
      << r.process.err;
  EXPECT_NE(r.process.err.find("millstone run: thresholds failed"), std::string::npos);
  // JUnit: one failure, one skipped.
  EXPECT_NE(r.junit.find("<skipped message=\"not evaluated: no data from the monitored target\"/>"),
            std::string::npos)
      << r.junit;
  EXPECT_NE(r.junit.find("observed 42 (max of"), std::string::npos) << r.junit;
}

TEST(TargetThresholdIntegration, NoDataAloneLeavesTheVerdictAsItWas) {
  MockServer mock(kMock);
  const MonitoredRun r =
      run(mock,
          "thresholds: ['target.app.queue_depth.avg <= 42', 'target.dead.memory < 1GB']\n"
          "slo: ['target.app.queue_depth < 43', 'target.dead.cpu < 80%']\n");
  ASSERT_EQ(r.process.exit_code, 0) << r.process.out << r.process.err;
  EXPECT_EQ(r.summary["thresholds_passed"], true);
  EXPECT_EQ(r.summary["thresholds"][1]["status"], "no_data");
  const nlohmann::json& slo = r.summary["slo"]["objectives"];
  ASSERT_EQ(slo.size(), 2u);
  EXPECT_EQ(slo[0]["status"], "passed");
  EXPECT_EQ(slo[0]["phases"][0]["value"], kQueueDepth);
  EXPECT_EQ(slo[1]["status"], "no_data");
  EXPECT_NE(r.process.err.find("warning: SLO target.dead.cpu < 80%"), std::string::npos)
      << r.process.err;
}

TEST(TargetThresholdIntegration, NothingMonitoredIsAConfigError) {
  const std::string path = write_temp_file(
      "target: http://127.0.0.1:1\nflows: {a: {steps: [{get: /}]}}\n"
      "thresholds: ['target.cpu < 80%']\n",
      ".yaml");
  const ProcessResult r = run_millstone({"run", path, "-q", "--no-history"}, 10);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(":3:14: threshold \"target.cpu < 80%\" is on the target's series, but "
                       "nothing is monitored"),
            std::string::npos)
      << r.err;
}

}  // namespace target_threshold_test
}  // namespace millstone::testing
