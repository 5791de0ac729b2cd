// A real worker body (serve_worker) against the real mock: its seconds are the
// coordinator's seconds, whenever it starts.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <thread>

#include "cluster/link.h"
#include "cluster/wire.h"
#include "cluster/worker_process.h"
#include "http/request_builder.h"
#include "http/url.h"
#include "mock/server.h"
#include "net/clock.h"

namespace millstone::cluster {
namespace worker_clock_test {

class WorkerClockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mock::MockConfig config = mock::parse_mock_config(
        "routes:\n  - path: /fast\n    body: ok\n"
        "  - path: /u/ann\n    body: ok\n  - path: /u/bob\n    body: ok\n",
        "test");
    mock::ServerOptions options;
    options.listen = *net::make_endpoint("127.0.0.1", 0);
    options.print_stats_on_exit = false;
    std::string error;
    pid_ = mock::start_mock_server(config, options, &bound_, &error);
    ASSERT_GT(pid_, 0) << error;
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    coordinator_ = StreamLink::over_socket(fds[0], "worker 0");
    worker_ = StreamLink::over_socket(fds[1], "coordinator");
  }
  void TearDown() override { mock::stop_mock_server(pid_); }

  engine::RunPlan plan(uint64_t duration_ms) {
    engine::RunPlan p;
    p.address = "127.0.0.1";
    p.port = bound_.port();
    std::string error;
    auto url = http::parse_url("http://127.0.0.1:" + std::to_string(p.port) + "/fast", &error);
    p.request_bytes = http::build_request("GET", *url, {}, "");
    p.connections = 1;
    p.duration_ms = duration_ms;
    p.timeout_ms = 1000;
    p.connect_timeout_ms = 1000;
    return p;
  }

  struct Seen {
    Ack ack;
    std::vector<metrics::Snapshot> seconds;
    bool done = false;
    std::string error;  // an Error message's text
    int code = -1;      // serve_worker's
  };
  Seen run(int64_t start_ns, uint64_t duration_ms) {
    Start start;
    start.start_ns = start_ns;
    start.plan = plan(duration_ms);
    return run(start);
  }
  // Plays the coordinator: sends `start`, then reads to Done or Error.
  Seen run(const Start& start) {
    Seen seen;
    int code = -1;
    std::thread worker([&] { code = serve_worker(*worker_, local_hello(0), WorkerOptions{}); });
    MessageType type;
    std::string payload;
    const int64_t deadline = net::now_ns() + 20 * net::kNsPerSec;
    EXPECT_EQ(receive_until(*coordinator_, deadline, &type, &payload), WaitResult::kOk);
    EXPECT_EQ(type, MessageType::kHello);
    coordinator_->send(MessageType::kStart, encode_start(start));
    while (receive_until(*coordinator_, deadline, &type, &payload) == WaitResult::kOk) {
      if (type == MessageType::kAck) {
        EXPECT_TRUE(decode_ack(payload, &seen.ack));
      } else if (type == MessageType::kSnapshot) {
        metrics::Snapshot s;
        EXPECT_TRUE(decode_snapshot(payload, &s));
        seen.seconds.push_back(s);
      } else if (type == MessageType::kDone) {
        seen.done = true;
        break;
      } else if (type == MessageType::kError) {
        EXPECT_TRUE(decode_error(payload, &seen.error));
        break;
      } else {
        ADD_FAILURE() << message_type_name(type);
        break;
      }
    }
    worker.join();
    seen.code = code;
    return seen;
  }

  pid_t pid_ = -1;
  net::Endpoint bound_;
  std::unique_ptr<StreamLink> coordinator_;
  std::unique_ptr<StreamLink> worker_;
};

// Started 1.5 s after the run's second 0: its first report is second 1 (the
// half second it ran of it), and it ends at the run's end, not 3 s after
// joining.
TEST_F(WorkerClockTest, AWorkerThatStartsLateLandsItsCountsInTheRightSeconds) {
  const int64_t start_ns = net::now_ns() - 1500 * net::kNsPerMs;
  Seen seen = run(start_ns, 3000);
  ASSERT_TRUE(seen.done) << seen.error;
  EXPECT_EQ(seen.code, 0);
  EXPECT_GE(seen.ack.ready_ns - start_ns, 1500 * net::kNsPerMs);
  ASSERT_EQ(seen.seconds.size(), 2u);
  EXPECT_EQ(seen.seconds[0].interval_index, 1u);
  EXPECT_GT(seen.seconds[0].requests, 0u);
  EXPECT_EQ(seen.seconds[1].interval_index, 2u);  // the final one, at second 3
  EXPECT_GT(seen.seconds[1].requests, 0u);
}

// Start arrives before the start instant: the worker waits for it (no request
// before), then counts from it.
TEST_F(WorkerClockTest, AWorkerWaitsForTheStartInstant) {
  const int64_t start_ns = net::now_ns() + 700 * net::kNsPerMs;
  Seen seen = run(start_ns, 1500);
  ASSERT_TRUE(seen.done) << seen.error;
  EXPECT_EQ(seen.code, 0);
  EXPECT_LT(seen.ack.ready_ns, start_ns);
  ASSERT_EQ(seen.seconds.size(), 2u);
  EXPECT_EQ(seen.seconds[0].interval_index, 0u);
  EXPECT_EQ(seen.seconds[1].interval_index, 1u);
  EXPECT_GT(seen.seconds[0].requests, 0u);
}

constexpr const char* kScenario = R"(
target: http://127.0.0.1:1
data:
  users: {file: users.csv, mode: unique}
flows:
  signup: {steps: [{get: "/u/{{ users.name }}", check: {status: 200}}]}
scenarios:
  once: {executor: iterations, vus: 2, iterations: 2, max_duration: 5s, flows: [signup]}
)";

Start scenario_start(const engine::RunPlan& base) {
  Start start;
  start.start_ns = net::now_ns();
  start.plan = base;
  start.plan.scenario_path = "signup.yaml";
  start.plan.scenario_source = kScenario;
  // Nothing exists there: the rows can only come from Start.
  start.plan.scenario_base_dir = "/nonexistent-millstone-dir";
  start.plan.duration_ms = 5000;
  start.plan.target_override = "http://127.0.0.1:" + std::to_string(base.port);
  return start;
}

TEST_F(WorkerClockTest, DataFilesComeWithStartNotFromTheWorkersDisk) {
  Start start = scenario_start(plan(5000));
  start.data_files.push_back({"/nonexistent-millstone-dir/users.csv", "name\nann\nbob\n"});
  Seen seen = run(start);
  ASSERT_TRUE(seen.done) << seen.error;
  uint64_t requests = 0;
  uint64_t ok = 0;
  for (const metrics::Snapshot& s : seen.seconds) {
    requests += s.requests;
    if (auto it = s.status_counts.find(200); it != s.status_counts.end()) ok += it->second;
  }
  EXPECT_EQ(requests, 2u);
  EXPECT_EQ(ok, 2u);  // /u/ann and /u/bob (any other path is a 404): both rows, from the bytes sent
}

TEST_F(WorkerClockTest, ADataFileThatWasNotSentIsRefusedByName) {
  Seen seen = run(scenario_start(plan(5000)));
  EXPECT_FALSE(seen.done);
  EXPECT_EQ(seen.code, 1);
  EXPECT_NE(seen.error.find("data file \"/nonexistent-millstone-dir/users.csv\" was not sent"),
            std::string::npos)
      << seen.error;
}

}  // namespace worker_clock_test
}  // namespace millstone::cluster
