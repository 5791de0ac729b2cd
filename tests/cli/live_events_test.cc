// `run --live-events`: what `millstone serve` streams. Each line is one JSON
// object: seconds with the summary's timeline fields and totals, steps by
// name, drill actions as they happen; a reader that is gone ends nothing.
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/live_events.h"

namespace millstone::cli {
namespace live_events_test {

std::vector<nlohmann::json> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(LiveEvents, SecondsCarryTheTimelineFieldsTotalsAndStepNamesAndDrillsFollow) {
  const std::string path = ::testing::TempDir() + "live_events_test.ndjson";
  ::unlink(path.c_str());
  RunDescription run;
  run.scenario = true;
  run.duration_ms = 3000;
  std::string error;
  auto live = LiveEvents::open(path, run, {"shop/login"}, &error);
  ASSERT_TRUE(live) << error;
  live->on_start(0);
  metrics::Snapshot second;
  second.requests = 7;
  second.latency.record(2000);
  second.steps.resize(1);
  second.steps[0].requests = 7;
  metrics::Snapshot total = second;
  total.requests = 19;
  live->on_second(1, second, total);
  drill::DrillEvent drill;
  drill.kind = drill::DrillEvent::Kind::kStarted;
  drill.name = "slow-db";
  drill.at_s = 1.5;
  drill.detail = "POST http://127.0.0.1:1/: HTTP 200";
  live->on_drill_event(drill);
  live->on_finish();
  const std::vector<nlohmann::json> events = lines_of(path);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["event"], "start");
  EXPECT_EQ(events[0]["planned_s"], 3.0);
  EXPECT_EQ(events[1]["event"], "second");
  EXPECT_EQ(events[1]["second"], 1);
  EXPECT_EQ(events[1]["requests"], 7);
  EXPECT_NEAR(events[1]["p50_ms"].get<double>(), 2.0, 0.05);
  EXPECT_EQ(events[1]["total"]["requests"], 19);
  EXPECT_EQ(events[1]["steps"]["shop/login"]["requests"], 7);
  EXPECT_EQ(events[2]["event"], "drill");
  EXPECT_EQ(events[2]["drill"], "slow-db");
  EXPECT_EQ(events[2]["kind"], "started");
  EXPECT_EQ(events[2]["at_s"], 1.5);
}

TEST(LiveEvents, AnInheritedSocketWhoseReaderLeftCostsTheRunNothing) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  std::string error;
  auto live = LiveEvents::open("/dev/fd/" + std::to_string(pair[1]), RunDescription{}, {}, &error);
  ASSERT_TRUE(live) << error;
  ::close(pair[1]);
  live->on_start(0);
  char buffer[256];
  const ssize_t n = ::read(pair[0], buffer, sizeof buffer);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buffer, static_cast<size_t>(n)).rfind("{\"event\":\"start\"", 0), 0u);
  ::close(pair[0]);
  // EPIPE, not SIGPIPE: the process goes on, and so do later seconds.
  metrics::Snapshot s;
  for (uint64_t i = 0; i < 3; ++i)
    live->on_second(i, s, s);
  live->on_finish();
  EXPECT_EQ(live->dropped_lines(), 0u);
}

}  // namespace live_events_test
}  // namespace millstone::cli
