// The proxy driven through its C++ API on an event loop in the test's own
// thread, as a drill in the same process will drive it: no HTTP, toxics
// added and removed between turns of the loop. The upstream is an echo
// server on a thread of its own that stamps what it receives with its clock.
#include <fcntl.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"
#include "net/clock.h"
#include "net/event_loop.h"
#include "proxy/fault_proxy.h"

namespace millstone::proxy {
namespace in_process_test {

using testing::monotonic_ns;

class EchoServer {
 public:
  EchoServer() : fd_(testing::listen_any(&port_)) {
    thread_ = std::thread([this] {
      int fd = testing::accept_within(fd_);
      if (fd < 0) return;
      char buffer[65536];
      for (;;) {
        ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        {
          std::lock_guard lock(mutex_);
          arrivals_.push_back(monotonic_ns());
          received_ += static_cast<size_t>(n);
        }
        if (!testing::send_all(fd, std::string_view(buffer, static_cast<size_t>(n)))) break;
      }
      close(fd);
    });
  }
  ~EchoServer() {
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  std::vector<int64_t> arrivals() {
    std::lock_guard lock(mutex_);
    return arrivals_;
  }

 private:
  int port_ = 0;
  int fd_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<int64_t> arrivals_;
  size_t received_ = 0;
};

// Turns the loop until `done` or 10 s.
template <typename Done>
bool run_until(net::EventLoop& loop, Done done) {
  const int64_t deadline = net::now_ns() + 10 * net::kNsPerSec;
  while (!done()) {
    if (net::now_ns() > deadline) return false;
    loop.run_once(5 * net::kNsPerMs);
  }
  return true;
}

int listen_port(const ProxyState& state) {
  return std::atoi(state.listen.substr(state.listen.rfind(':') + 1).c_str());
}

TEST(InProcess, DrillAddsAndRemovesToxicsBetweenTurns) {
  net::EventLoop loop;
  FaultProxy proxies(loop, FaultProxyOptions{.seed = 11, .open_listener = {}, .resolve = {}});
  EchoServer echo;
  ProxyState state;
  ASSERT_TRUE(proxies
                  .create({.name = "db",
                           .listen = "127.0.0.1:0",
                           .upstream = "127.0.0.1:" + std::to_string(echo.port())},
                          &state)
                  .ok());
  int client = testing::connect_to(listen_port(state));
  ASSERT_GE(client, 0);
  fcntl(client, F_SETFL, O_NONBLOCK);
  std::string got;
  auto received = [&](size_t n) {
    return [&, n] {
      char buffer[65536];
      ssize_t r = recv(client, buffer, sizeof buffer, 0);
      if (r > 0) got.append(buffer, static_cast<size_t>(r));
      return got.size() >= n;
    };
  };
  // No toxic: straight through.
  ASSERT_TRUE(testing::send_all(client, "one"));
  ASSERT_TRUE(run_until(loop, received(3)));
  EXPECT_EQ(got, "one");

  // 150 ms upstream, added to the open connection.
  ToxicSpec latency{.name = "slow_db",
                    .type = ToxicType::kLatency,
                    .stream = Direction::kUpstream,
                    .toxicity = 1.0,
                    .attributes = {.latency = 150}};
  ASSERT_TRUE(proxies.add_toxic("db", latency, nullptr).ok());
  const int64_t sent = monotonic_ns();
  ASSERT_TRUE(testing::send_all(client, "two"));
  ASSERT_TRUE(run_until(loop, received(6)));
  EXPECT_EQ(got, "onetwo");
  auto arrivals = echo.arrivals();
  ASSERT_EQ(arrivals.size(), 2u);
  EXPECT_GE(arrivals[1] - sent, 150 * net::kNsPerMs);

  // A held byte is released when the toxic goes.
  latency.attributes.latency = 60'000;
  ASSERT_TRUE(proxies.update_toxic("db", latency, nullptr).ok());
  ASSERT_TRUE(testing::send_all(client, "three"));
  for (int i = 0; i < 20; ++i)
    loop.run_once(5 * net::kNsPerMs);
  EXPECT_EQ(got, "onetwo");
  ASSERT_TRUE(proxies.remove_toxic("db", "slow_db").ok());
  ASSERT_TRUE(run_until(loop, received(11)));
  EXPECT_EQ(got, "onetwothree");

  // limit_data downstream: 4 more bytes, then the proxy closes the connection.
  ASSERT_TRUE(proxies
                  .add_toxic("db",
                             ToxicSpec{.name = "cap",
                                       .type = ToxicType::kLimitData,
                                       .stream = Direction::kDownstream,
                                       .toxicity = 1.0,
                                       .attributes = {.bytes = 4}},
                             nullptr)
                  .ok());
  ASSERT_TRUE(testing::send_all(client, "abcdefgh"));
  bool eof = false;
  ASSERT_TRUE(run_until(loop, [&] {
    char buffer[64];
    ssize_t r = recv(client, buffer, sizeof buffer, 0);
    if (r > 0) got.append(buffer, static_cast<size_t>(r));
    eof = r == 0;
    return eof;
  }));
  EXPECT_EQ(got, "onetwothreeabcd");
  close(client);
  // The proxy finishes closing; the echo server sees its EOF and ends.
  for (int i = 0; i < 20; ++i)
    loop.run_once(5 * net::kNsPerMs);
  ProxyState after;
  ASSERT_TRUE(proxies.get("db", &after).ok());
  EXPECT_EQ(after.connections, 0u);
  EXPECT_EQ(after.accepted, 1u);
}

TEST(InProcess, ManyConnectionsWithMixedToxicsAllFinish) {
  net::EventLoop loop;
  FaultProxy proxies(loop, FaultProxyOptions{.seed = 3, .open_listener = {}, .resolve = {}});
  int upstream_port = 0;
  int upstream = testing::listen_any(&upstream_port);
  ProxyState state;
  ASSERT_TRUE(proxies
                  .create({.name = "mix",
                           .listen = "127.0.0.1:0",
                           .upstream = "127.0.0.1:" + std::to_string(upstream_port)},
                          &state)
                  .ok());
  for (const ToxicSpec& spec :
       {ToxicSpec{.name = "s",
       .type = ToxicType::kSlicer,
       .stream = Direction::kUpstream,
       .toxicity = 0.5,
       .attributes = {.delay = 100, .average_size = 7, .size_variation = 3}},
        ToxicSpec{.name = "l",
        .type = ToxicType::kLatency,
        .stream = Direction::kDownstream,
        .toxicity = 0.5,
        .attributes = {.latency = 5, .jitter = 5}},
        ToxicSpec{.name = "b",
        .type = ToxicType::kBandwidth,
        .stream = Direction::kDownstream,
        .toxicity = 0.5,
        .attributes = {.rate = 1000}}}) {
    ASSERT_TRUE(proxies.add_toxic("mix", spec, nullptr).ok());
  }
  // 20 clients each send 2 KB and half-close; the server thread echoes each
  // connection to its end.
  constexpr int kClients = 20;
  std::atomic<int> served{0};
  std::thread server([&] {
    std::vector<std::thread> handlers;
    for (int i = 0; i < kClients; ++i) {
      int fd = testing::accept_within(upstream);
      if (fd < 0) break;
      handlers.emplace_back([fd, &served] {
        testing::ReadResult r = testing::read_until_end(fd);
        testing::send_all(fd, r.bytes);
        close(fd);
        ++served;
      });
    }
    for (auto& t : handlers)
      t.join();
  });
  std::vector<int> clients;
  std::vector<std::string> got(kClients);
  std::vector<bool> done(kClients, false);
  const std::string payload = testing::pattern_for_in_process(2048);
  for (int i = 0; i < kClients; ++i) {
    int fd = testing::connect_to(listen_port(state));
    ASSERT_GE(fd, 0);
    testing::send_all(fd, payload);
    shutdown(fd, SHUT_WR);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    clients.push_back(fd);
  }
  const bool all = run_until(loop, [&] {
    bool finished = true;
    for (int i = 0; i < kClients; ++i) {
      if (done[i]) continue;
      char buffer[4096];
      ssize_t r;
      while ((r = recv(clients[i], buffer, sizeof buffer, 0)) > 0)
        got[i].append(buffer, static_cast<size_t>(r));
      if (r == 0) done[i] = true;
      finished = finished && done[i];
    }
    return finished;
  });
  server.join();
  close(upstream);
  EXPECT_TRUE(all);
  EXPECT_EQ(served.load(), kClients);
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(got[i], payload) << "client " << i;
    close(clients[i]);
  }
}

}  // namespace in_process_test
}  // namespace millstone::proxy
