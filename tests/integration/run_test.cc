// End-to-end: `millstone run` against `millstone mock` on loopback.
#include <signal.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace {

const char* kRoutes = R"(
seed: 7
routes:
  - path: /hello
    body: "hello\n"
  - path: /fixed20
    body: "slow\n"
    latency: 20ms
  - path: /stall
    body: "ok\n"
    latency: 1ms
    errors:
      - {rate: 0.01, stall: 300ms}
  - path: /chunky
    headers: {Content-Type: text/plain}
    body: "0123456789abcdef0123456789abcdef0123456789abcdef"
)";

TEST(RunIntegration, FixedLatencyRouteReportsP50Within1ms) {
  MockServer mock(kRoutes);
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone(
      {"run", mock.url("/fixed20"), "-c", "10", "-d", "2s", "-w", "1", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = read_json(out);
  EXPECT_GT(j["requests"].get<uint64_t>(), 500u);
  EXPECT_NEAR(j["latency_ms"]["p50"].get<double>(), 20.0, 1.0) << j.dump(2);
  EXPECT_GE(j["latency_ms"]["min"].get<double>(), 19.9);
  EXPECT_EQ(j["errors"].size(), 0u);
}

TEST(RunIntegration, RequestCountMatchesWhatTheMockServedWithinInFlight) {
  MockServer mock(kRoutes, 2);
  std::string out = write_temp_file("", ".json");
  const int connections = 20;
  auto r = run_millstone({"run", mock.url("/hello"), "-c", std::to_string(connections), "-d", "2s",
                          "-w", "2", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = read_json(out);
  uint64_t reported = j["requests"].get<uint64_t>();
  uint64_t served = mock.stats()["routes"][0]["requests"].get<uint64_t>();
  EXPECT_GT(reported, 1000u);
  // The mock may have served requests whose responses arrived after the stop:
  // at most one per connection.
  EXPECT_GE(served, reported);
  EXPECT_LE(served - reported, static_cast<uint64_t>(connections));
  EXPECT_EQ(j["status"]["200"].get<uint64_t>(), reported);
  EXPECT_EQ(j["error_total"].get<uint64_t>(), 0u);
}

TEST(RunIntegration, OpenModelShowsAStallInP99AndCountsLateStarts) {
  MockServer mock(kRoutes);
  std::string out = write_temp_file("", ".json");
  // One connection: while a response stalls, the requests due meanwhile wait.
  // Their latency counts from when they were due, so the stall shows.
  auto r = run_millstone({"run", mock.url("/stall"), "--rate", "100", "-c", "1", "-d", "4s", "-w",
                          "1", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = read_json(out);
  EXPECT_EQ(j["model"], "open");
  EXPECT_GE(j["latency_ms"]["p99"].get<double>(), 150.0) << j.dump(2);
  EXPECT_LT(j["latency_ms"]["p50"].get<double>(), 150.0);
  EXPECT_GT(j["schedule"]["started_late"].get<uint64_t>(), 0u);
  EXPECT_NEAR(j["schedule"]["scheduled"].get<double>(), 400, 10);
}

TEST(RunIntegration, ClosedModelCannotSeeTheSameStallAsClearly) {
  // The contrast that motivates the open model: with one connection in the
  // closed model, requests are simply not sent during a stall, so only the
  // stalled ones are slow.
  MockServer mock(kRoutes);
  std::string out = write_temp_file("", ".json");
  auto r =
      run_millstone({"run", mock.url("/stall"), "-c", "1", "-d", "3s", "-w", "1", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = read_json(out);
  EXPECT_LT(j["latency_ms"]["p50"].get<double>(), 5.0) << j.dump(2);
}

TEST(RunIntegration, InterruptStopsEarlyAndStillPrintsTheSummary) {
  MockServer mock(kRoutes);
  std::string out = write_temp_file("", ".json");
  Process p({"run", mock.url("/hello"), "-c", "4", "-d", "60s", "-w", "2", "-q", "-o", out});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  p.signal(SIGINT);
  auto r = p.wait(15);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 130);
  EXPECT_NE(r.out.find("interrupted"), std::string::npos) << r.out;
  auto j = read_json(out);
  EXPECT_TRUE(j["interrupted"].get<bool>());
  EXPECT_GT(j["requests"].get<uint64_t>(), 0u);
  EXPECT_LT(j["duration_s"].get<double>(), 10.0);
}

TEST(RunIntegration, ADeadWorkerIsReportedAndTheRunStillFinishes) {
  MockServer mock(kRoutes);
  std::string out = write_temp_file("", ".json");
  Process p({"run", mock.url("/hello"), "-c", "4", "-d", "3s", "-w", "2", "-q", "-o", out});
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  // Kill one worker (a child of the coordinator).
  std::string children =
      "/proc/" + std::to_string(p.pid()) + "/task/" + std::to_string(p.pid()) + "/children";
  std::ifstream in(children);
  pid_t worker = 0;
  in >> worker;
  ASSERT_GT(worker, 0);
  kill(worker, SIGKILL);
  auto r = p.wait(20);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_NE(r.out.find("died"), std::string::npos) << r.out;
  auto j = read_json(out);
  EXPECT_FALSE(j["complete"].get<bool>());
  EXPECT_EQ(j["worker_failures"].size(), 1u);
  EXPECT_GT(j["requests"].get<uint64_t>(), 0u);
}

}  // namespace
}  // namespace millstone::testing
