// A run of more connections than one process may hold plans by itself: worker
// processes from the open-file limit, the limits it cannot change said before
// it starts, and still ends at its duration however many workers it took
// (docs/scale.md). The machine's limit is forced low here (setrlimit in the
// child) so that a few hundred connections need many workers, as a million do
// at 20,000.
#include <string>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace scale_plan_test {

constexpr const char* kMock = R"(
websockets:
  - path: /ws/hold
    echo: true
)";

std::string hold_scenario(int port, int vus) {
  return "target: http://127.0.0.1:" + std::to_string(port) + R"(
flows:
  holder:
    steps:
      - ws.connect: /ws/hold
      - ws.hold: 24h
scenarios:
  hold:
    executor: ramping-vus
    start_vus: 0
    graceful_stop: 0s
    stages: [{duration: 1s, target: )" +
         std::to_string(vus) + "}, {duration: 2s, target: " + std::to_string(vus) + "}]\n";
}

// 640 held WebSockets at a limit of 96 descriptors (64 for connections, 32
// kept for each worker's own): 10 workers. Every VU connects once (the
// mock's count), the summary's plan says what was decided, and the run ends
// at its 3 s although the workers started one after another on a machine
// with fewer cores.
TEST(ScalePlan, ManyVusAtALowFdLimitPlanWorkersAndEndAtTheDuration) {
  MockServer mock(kMock, 2);
  const std::string scenario = write_temp_file(hold_scenario(mock.port(), 640), ".yaml");
  const std::string out = write_temp_file("", ".json");
  Process run({"run", scenario, "-q", "--no-history", "-o", out}, 96);
  const ProcessResult r = run.wait(60);
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("millstone run: plan: 640 connections on 10 worker processes (open-file "
                       "limit 96 per process"),
            std::string::npos)
      << r.err;
  const nlohmann::json j = read_json(out);
  const nlohmann::json& plan = j["plan"];
  EXPECT_EQ(plan["connections"], 640);
  EXPECT_EQ(plan["fd_limit"], 96);
  EXPECT_EQ(plan["workers_for_descriptors"], 10);
  EXPECT_EQ(plan["workers"], 10);
  EXPECT_EQ(j["workers"], 10);
  // 640 connections fit one source address's ports: none chosen.
  EXPECT_EQ(plan["source_addresses"], 0);
  EXPECT_FALSE(plan["source_addresses_chosen"].get<bool>());
  ASSERT_EQ(plan["warnings"].size(), 1u) << plan.dump();
  EXPECT_NE(plan["warnings"][0].get<std::string>().find("need 10 worker processes"),
            std::string::npos);
  // Ground truth from the mock: every VU upgraded exactly once.
  const nlohmann::json stats = mock.stats();
  ASSERT_EQ(stats["sockets"].size(), 1u);
  EXPECT_EQ(stats["sockets"][0]["total"], 640) << stats.dump();
  EXPECT_EQ(j["sockets"]["connected"], 640);
  // The run's peak is its largest second, summed over the 10 workers.
  EXPECT_EQ(j["peak_vus"], 640) << j["timeline"].dump();
  // The measured duration is the scenario's: start-up neither shortened nor
  // lengthened it, and the timeline has its three seconds.
  EXPECT_DOUBLE_EQ(j["duration_s"].get<double>(), 3.0);
  ASSERT_EQ(j["timeline"].size(), 3u) << j["timeline"].dump();
  EXPECT_EQ(j["timeline"][2]["second"], 2);
  EXPECT_TRUE(j["complete"].get<bool>()) << j["worker_failures"].dump();
}

// -w below what the limit needs is refused before anything starts, naming
// the count it needs: for a million connections at 20,000, 51.
TEST(ScalePlan, AMillionConnectionsOnTooFewWorkersIsRefusedWithTheCountNeeded) {
  MockServer mock(kMock, 1);
  Process run(
      {"run", mock.url("/ws/hold"), "-c", "1000000", "-d", "1s", "-w", "2", "-q", "--no-history"},
      20000);
  const ProcessResult r = run.wait(30);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("use --workers 51 or more"), std::string::npos) << r.err;
}

// `millstone mock --connections N` starts the workers N needs at its limit.
TEST(ScalePlan, TheMockPlansItsWorkersForTheConnectionsItIsToHold) {
  const std::string config = write_temp_file(kMock, ".yaml");
  Process mock({"mock", "--config", config, "--listen", "127.0.0.1:0", "--connections", "200"}, 96);
  EXPECT_EQ(mock.wait_for_output("with (\\d+) workers", 15), "4");
  mock.signal(SIGTERM);
  const ProcessResult r = mock.wait(15);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("4 workers for 200 connections at the open-file limit of 96"),
            std::string::npos)
      << r.err;
  const ProcessResult refused =
      run_millstone({"mock", "--config", config, "--listen", "127.0.0.1:0", "--connections",
                     "100000000", "-w", "2"},
                    15);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("need --workers"), std::string::npos) << refused.err;
}

}  // namespace scale_plan_test
}  // namespace millstone::testing
