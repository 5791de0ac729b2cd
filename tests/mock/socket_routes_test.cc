// SocketRuntime driven in-process over a socketpair: the test is both the
// event loop's owner and the (slow) client.
#include "mock/socket_routes.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include <gtest/gtest.h>

#include "mock/config.h"
#include "mock/template.h"
#include "net/event_loop.h"
#include "random/randomness.h"
#include "ws/frame.h"

namespace millstone::mock {
namespace socket_routes_test {

// Reads at most `limit` bytes from a non-blocking fd; returns what it got.
std::string read_some(int fd, size_t limit) {
  std::string out;
  char chunk[16384];
  while (out.size() < limit) {
    ssize_t n = ::recv(fd, chunk, std::min(sizeof chunk, limit - out.size()), 0);
    if (n <= 0) break;
    out.append(chunk, static_cast<size_t>(n));
  }
  return out;
}

// A client that reads a little less than the mock echoes, every round, for
// megabytes: the send queue never drains completely yet stays far below
// kMaxQueuedBytes. The memory the session holds must follow the queue, not
// the total sent (the sent prefix of the buffer used to be kept until the
// queue drained), and be released once the client catches up.
TEST(SocketRuntimeTest, SlowReaderDoesNotGrowTheSendBuffer) {
  const MockConfig config = parse_mock_config(R"(
websockets:
  - path: /ws/echo
    echo: true
    max_message_bytes: 65536
)",
                                              "mock.yaml");
  net::EventLoop loop;
  Prng prng(1);
  std::atomic<uint64_t> slots[4] = {};
  TemplateRenderer renderer(prng, slots, 1);
  SocketCounters counters[1];
  SocketRuntime runtime(config, loop, renderer, counters, 1);

  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  const int client = fds[0];
  // A small kernel buffer on the mock's side, so the queue lives in the mock;
  // still over four reads' worth, so the socket never runs dry between the
  // EPOLLOUT edges (a unix socket is writable again at a quarter full).
  const int small = 48 * 1024;
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  runtime.adopt_websocket(fds[1], 0, {}, {});

  constexpr size_t kPayload = 16 * 1024;
  constexpr size_t kRounds = 512;  // 8 MiB echoed in all
  constexpr size_t kReadPerRound = kPayload - 512;
  std::string expected;
  std::string received;
  size_t most_held = 0;
  for (size_t round = 0; round < kRounds; ++round) {
    const std::string payload(kPayload, static_cast<char>('a' + round % 26));
    std::string wire;
    ws::append_frame(&wire, ws::Opcode::kText, payload, true,
                     static_cast<uint32_t>(0x11223344u + round));
    ASSERT_EQ(::send(client, wire.data(), wire.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(wire.size()))
        << "round " << round << ", errno " << errno;
    ws::append_frame(&expected, ws::Opcode::kText, payload, true, std::nullopt);
    loop.run_once(0);
    received += read_some(client, kReadPerRound);
    loop.run_once(0);
    most_held = std::max(most_held, runtime.buffered_bytes());
  }
  EXPECT_EQ(counters[0].open.load(), 1u);
  EXPECT_EQ(counters[0].overflow_closes.load(), 0u);
  // The queue is a few hundred KiB at the end; the total echoed is 8 MiB.
  EXPECT_GT(expected.size() - received.size(), 64u * 1024);
  EXPECT_LT(most_held, kMaxQueuedBytes) << "held " << most_held;

  // The client catches up: everything arrives in order and the idle session
  // holds no buffer.
  for (int i = 0; i < 10000 && received.size() < expected.size(); ++i) {
    received += read_some(client, expected.size());
    loop.run_once(1'000'000);
  }
  ASSERT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected);
  loop.run_once(0);
  EXPECT_EQ(runtime.buffered_bytes(), 0u);
  ::close(client);
}

}  // namespace socket_routes_test
}  // namespace millstone::mock
