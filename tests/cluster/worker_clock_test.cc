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
namespace {

class WorkerClockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mock::MockConfig config =
        mock::parse_mock_config("routes:\n  - path: /fast\n    body: ok\n", "test");
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
  };
  // Plays the coordinator: Start with `start_ns`, then reads to Done.
  Seen run(int64_t start_ns, uint64_t duration_ms) {
    Seen seen;
    int code = -1;
    std::thread worker([&] { code = serve_worker(*worker_, local_hello(0), WorkerOptions{}); });
    MessageType type;
    std::string payload;
    const int64_t deadline = net::now_ns() + 20 * net::kNsPerSec;
    EXPECT_EQ(receive_until(*coordinator_, deadline, &type, &payload), WaitResult::kOk);
    EXPECT_EQ(type, MessageType::kHello);
    Start start;
    start.start_ns = start_ns;
    start.plan = plan(duration_ms);
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
      } else {
        ADD_FAILURE() << message_type_name(type);
        break;
      }
    }
    worker.join();
    EXPECT_EQ(code, 0);
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
  ASSERT_TRUE(seen.done);
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
  ASSERT_TRUE(seen.done);
  EXPECT_LT(seen.ack.ready_ns, start_ns);
  ASSERT_EQ(seen.seconds.size(), 2u);
  EXPECT_EQ(seen.seconds[0].interval_index, 0u);
  EXPECT_EQ(seen.seconds[1].interval_index, 1u);
  EXPECT_GT(seen.seconds[0].requests, 0u);
}

}  // namespace
}  // namespace millstone::cluster
