// A mock out of file descriptors refuses new connections at once (a reset)
// instead of leaving them in the listen backlog until the client's connect
// or request times out, and counts them. The truth is the client's: every
// connection this test opens either gets its answer or a reset, none waits,
// and the mock's count of refusals equals the resets the test saw.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace mock_fd_limit_test {

// Low enough that a few dozen connections fill a worker, high enough for
// the worker's own descriptors (listener, epoll, timers, eventfds, stdio).
constexpr uint64_t kOpenFileLimit = 48;
constexpr int kConnections = 150;

struct Outcome {
  int served = 0;   // an HTTP answer came back
  int refused = 0;  // reset or closed without an answer
  int waiting = 0;  // neither within 5 s: what a full mock did before
};

// Opens kConnections connections (held open), sends a request on each and
// sorts them by what came back.
Outcome load(int port, std::vector<int>* held) {
  Outcome out;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = connect_loopback(port);
    if (fd < 0) {
      ++out.refused;  // a reset during the handshake
      continue;
    }
    held->push_back(fd);
  }
  const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int fd : *held)
    (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  // One deadline for all of them: 5 s after the last request was sent.
  std::vector<pollfd> pending;
  for (int fd : *held)
    pending.push_back({fd, POLLIN, 0});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!pending.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 ||
        poll(pending.data(), pending.size(), static_cast<int>(left.count())) <= 0)
      break;
    std::erase_if(pending, [&out](const pollfd& p) {
      if (p.revents == 0) return false;
      char buf[512];
      const ssize_t n = recv(p.fd, buf, sizeof buf, 0);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).starts_with("HTTP/1.1 200")) {
        ++out.served;
      } else {
        ++out.refused;
      }
      return true;
    });
  }
  out.waiting = static_cast<int>(pending.size());
  return out;
}

// The mock's count, once the test's connections are closed and the mock
// has descriptors again to answer (bounded).
uint64_t refused_by_the_mock(MockServer& mock) {
  for (int i = 0; i < 100; ++i) {
    const std::string body = http_get(mock.port(), "/__millstone/stats");
    if (!body.empty()) return nlohmann::json::parse(body).value("refused_at_fd_limit", uint64_t{0});
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "the mock never answered its stats again";
  return 0;
}

Outcome run_against(int workers, uint64_t* counted) {
  MockServer mock("routes:\n  - path: /health\n", workers, {}, kOpenFileLimit);
  std::vector<int> held;
  const Outcome out = load(mock.port(), &held);
  for (int fd : held)
    close(fd);
  *counted = refused_by_the_mock(mock);
  return out;
}

TEST(MockFdLimit, AFullMockRefusesAtOnceAndCountsIt) {
  uint64_t counted = 0;
  const Outcome out = run_against(1, &counted);
  EXPECT_EQ(out.waiting, 0) << "connections left waiting in the backlog";
  EXPECT_GT(out.served, 0);
  EXPECT_GT(out.refused, 0) << "the limit was never reached: raise kConnections";
  EXPECT_EQ(out.served + out.refused + out.waiting, kConnections);
  EXPECT_EQ(counted, static_cast<uint64_t>(out.refused));
}

// Two workers, each with its own limit: a full worker hands the waiting
// connections to the one with room, so a connection is refused only when
// both are full and about twice as many are served as with one worker.
TEST(MockFdLimit, AFullWorkerHandsConnectionsToOneWithRoom) {
  uint64_t counted_one = 0;
  const Outcome one = run_against(1, &counted_one);
  uint64_t counted_two = 0;
  const Outcome two = run_against(2, &counted_two);
  EXPECT_EQ(two.waiting, 0) << "connections left waiting in the backlog";
  EXPECT_EQ(two.served + two.refused, kConnections);
  EXPECT_GT(two.refused, 0);
  EXPECT_EQ(counted_two, static_cast<uint64_t>(two.refused));
  // Each worker's capacity is the same; both filled before any refusal.
  EXPECT_GE(two.served, 2 * one.served - 4) << one.served << " served with one worker";
  std::printf("served %d with one worker, %d with two\n", one.served, two.served);
}

}  // namespace mock_fd_limit_test
}  // namespace millstone::testing
