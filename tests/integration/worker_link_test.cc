// Real worker processes behind the coordinator's links: the handshake, the
// shared clock and the give-up path, end to end.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace worker_link_test {

const char* kRoutes = R"(
routes:
  - path: /hello
    body: "hello\n"
)";

std::vector<pid_t> workers_of(pid_t coordinator) {
  std::ifstream in("/proc/" + std::to_string(coordinator) + "/task/" + std::to_string(coordinator) +
                   "/children");
  std::vector<pid_t> pids;
  for (pid_t pid = 0; in >> pid;)
    pids.push_back(pid);
  return pids;
}

// Every worker said Hello, got its share and started at one instant: the
// per-second series and the summary hold exactly what the mock served.
TEST(WorkerLink, TwoWorkersCountWhatTheMockServedSecondBySecond) {
  MockServer mock(kRoutes);
  std::string out = write_temp_file("", ".json");
  std::string series = write_temp_file("", ".ndjson");
  auto r = run_millstone({"run", mock.url("/hello"), "-c", "4", "--rate", "200", "-d", "3s", "-w",
                          "2", "-q", "--no-history", "-o", out, "--timeseries", series},
                         60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = read_json(out);
  const uint64_t requests = j["requests"].get<uint64_t>();
  // The mock's own count: nothing a worker sent went missing on a link.
  // (A request in flight at the end may or may not have reached it.)
  const uint64_t served = mock.stats()["requests"].get<uint64_t>();
  EXPECT_GE(served, requests);
  EXPECT_LE(served, requests + j["in_flight"].get<uint64_t>());
  std::ifstream in(series);
  uint64_t summed = 0;
  int seconds = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto row = nlohmann::json::parse(line);
    if (row.contains("requests")) summed += row["requests"].get<uint64_t>();
    ++seconds;
  }
  EXPECT_EQ(summed, requests);
  EXPECT_GE(seconds, 3);
  // 200/s shared by two workers, both counting from one start instant to one
  // end: exactly 600 requests were due, each sent, still waiting, or counted
  // as not started.
  EXPECT_EQ(j["schedule"]["scheduled"].get<uint64_t>(), 600u) << j["schedule"].dump();
  EXPECT_EQ(requests + j["transport_errors"].get<uint64_t>() + j["in_flight"].get<uint64_t>() +
                j["schedule"]["not_started"].get<uint64_t>(),
            600u);
}

// A worker that stops answering (SIGSTOP) is given up on after the run's end
// plus its timeouts and a grace period, killed, and named; the run finishes
// with what the others (and it, before) reported.
TEST(WorkerLink, AWorkerThatStopsAnsweringIsGivenUpOnKilledAndNamed) {
  MockServer mock(kRoutes);
  std::string out = write_temp_file("", ".json");
  Process p({"run", mock.url("/hello"), "-c", "4", "-d", "2s", "-w", "2", "--timeout", "1s",
             "--connect-timeout", "1s", "-q", "--no-history", "-o", out});
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  std::vector<pid_t> workers = workers_of(p.pid());
  ASSERT_EQ(workers.size(), 2u);
  ASSERT_EQ(kill(workers[0], SIGSTOP), 0);
  auto r = p.wait(30);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_NE(r.out.find("did not finish in time and was given up on"), std::string::npos) << r.out;
  auto j = read_json(out);
  EXPECT_FALSE(j["complete"].get<bool>());
  ASSERT_EQ(j["worker_failures"].size(), 1u);
  EXPECT_GT(j["requests"].get<uint64_t>(), 0u);
  // Killed, not left behind stopped.
  EXPECT_NE(kill(workers[0], 0), 0);
}

}  // namespace worker_link_test
}  // namespace millstone::testing
