#include "net/uring_stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "net/clock.h"
#include "net/event_loop.h"

namespace millstone::net {
namespace uring_stream_test {

using metrics::ErrorCause;

class Recorder : public IoHandler {
 public:
  void on_io(uint32_t events) override { seen.push_back(events); }
  std::vector<uint32_t> seen;
};

// A connected pair: the UringStream under test on an io_uring loop, and the raw peer.
struct Pair {
  Pair() : loop(IoBackend::kUring) {
    if (!loop.ok()) return;
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    stream = std::make_unique<UringStream>(*loop.uring(), fds[0], recorder);
    peer = fds[1];
  }
  ~Pair() {
    stream.reset();
    if (peer >= 0) ::close(peer);
  }
  // Turns the loop until the handler has seen `count` events (bounded).
  bool turn_until(size_t count) {
    const int64_t deadline = now_ns() + kNsPerSec;
    while (recorder.seen.size() < count && now_ns() < deadline)
      loop.run_once(10 * kNsPerMs);
    return recorder.seen.size() >= count;
  }
  EventLoop loop;
  Recorder recorder;
  std::unique_ptr<UringStream> stream;
  int peer = -1;
};

#define SKIP_WITHOUT_URING(pair) \
  if (!(pair).loop.ok()) GTEST_SKIP() << (pair).loop.error()

TEST(UringStream, IsReadyWithoutAHandshakeAndWaitsForArrivals) {
  Pair pair;
  SKIP_WITHOUT_URING(pair);
  EXPECT_EQ(pair.stream->handshake().status, StreamStatus::kOk);
  char buffer[16];
  const StreamResult r = pair.stream->read(buffer, sizeof buffer);
  EXPECT_EQ(r.status, StreamStatus::kWouldBlock);
  EXPECT_EQ(r.wait, Readiness::kReadable);
}

TEST(UringStream, AnArrivalIsReportedAndReadDrainsIt) {
  Pair pair;
  SKIP_WITHOUT_URING(pair);
  ASSERT_EQ(::send(pair.peer, "hello", 5, 0), 5);
  ASSERT_TRUE(pair.turn_until(1));
  EXPECT_TRUE(pair.recorder.seen[0] & EPOLLIN);
  char buffer[64];
  StreamResult r = pair.stream->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, StreamStatus::kOk);
  EXPECT_EQ(std::string(buffer, r.bytes), "hello");
  EXPECT_TRUE(r.drained);
  EXPECT_EQ(pair.stream->read(buffer, sizeof buffer).status, StreamStatus::kWouldBlock);
}

TEST(UringStream, ASmallBufferIsNotDrainedAndTheRestFollows) {
  Pair pair;
  SKIP_WITHOUT_URING(pair);
  ASSERT_EQ(::send(pair.peer, "0123456789", 10, 0), 10);
  ASSERT_TRUE(pair.turn_until(1));
  char buffer[4];
  StreamResult r = pair.stream->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, StreamStatus::kOk);
  EXPECT_EQ(r.bytes, 4u);
  EXPECT_FALSE(r.drained);
  std::string all(buffer, r.bytes);
  while (!r.drained) {
    r = pair.stream->read(buffer, sizeof buffer);
    ASSERT_EQ(r.status, StreamStatus::kOk);
    all.append(buffer, r.bytes);
  }
  EXPECT_EQ(all, "0123456789");
}

TEST(UringStream, WritesLeaveWithTheNextTurnAndThePeerReads) {
  Pair pair;
  SKIP_WITHOUT_URING(pair);
  const StreamResult w = pair.stream->write("GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(w.status, StreamStatus::kOk);
  EXPECT_EQ(w.bytes, 18u);
  pair.loop.run_once(0);  // the turn's one submit
  char buffer[64];
  ssize_t n = -1;
  const int64_t deadline = now_ns() + kNsPerSec;
  while (n < 0 && now_ns() < deadline) {
    n = ::recv(pair.peer, buffer, sizeof buffer, 0);
    if (n < 0) pair.loop.run_once(kNsPerMs);
  }
  ASSERT_EQ(n, 18);
  EXPECT_EQ(std::string(buffer, 18), "GET / HTTP/1.1\r\n\r\n");
}

TEST(UringStream, BatchedWritesWaitForTheTurnsSubmit) {
  Pair pair;
  SKIP_WITHOUT_URING(pair);
  ASSERT_FALSE(pair.loop.uring()->submit_each());  // the default: one submit per turn
  ASSERT_EQ(pair.stream->write("ping").status, StreamStatus::kOk);
  char buffer[16];
  // Queued as an SQE only: nothing has reached the peer before the turn.
  EXPECT_EQ(::recv(pair.peer, buffer, sizeof buffer, MSG_DONTWAIT), -1);
  pair.loop.run_once(0);
  EXPECT_EQ(::recv(pair.peer, buffer, sizeof buffer, MSG_DONTWAIT), 4);
}

TEST(UringStream, SubmitEachSendsBeforeTheTurn) {
  // The measurement knob of bench/README.md#batching-sends, from the environment.
  ::setenv("MILLSTONE_URING_SUBMIT", "each", 1);
  Pair pair;
  ::unsetenv("MILLSTONE_URING_SUBMIT");
  SKIP_WITHOUT_URING(pair);
  ASSERT_TRUE(pair.loop.uring()->submit_each());
  ASSERT_EQ(pair.stream->write("ping").status, StreamStatus::kOk);
  char buffer[16];
  // Submitted by write() itself; a socketpair with room completes it inline.
  ASSERT_EQ(::recv(pair.peer, buffer, sizeof buffer, MSG_DONTWAIT), 4);
  EXPECT_EQ(std::string(buffer, 4), "ping");
  // The completion is still the loop's to deliver, and the stream keeps working.
  ASSERT_EQ(::send(pair.peer, "pong", 4, 0), 4);
  ASSERT_TRUE(pair.turn_until(1));
  const StreamResult r = pair.stream->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, StreamStatus::kOk);
  EXPECT_EQ(std::string(buffer, r.bytes), "pong");
}

TEST(UringStream, PeerCloseIsTheEndOfTheStream) {
  Pair pair;
  SKIP_WITHOUT_URING(pair);
  ASSERT_EQ(::send(pair.peer, "bye", 3, 0), 3);
  ::close(pair.peer);
  pair.peer = -1;
  ASSERT_TRUE(pair.turn_until(2));
  EXPECT_TRUE(pair.recorder.seen.back() & EPOLLRDHUP);
  char buffer[16];
  StreamResult r = pair.stream->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, StreamStatus::kOk);
  EXPECT_EQ(std::string(buffer, r.bytes), "bye");
  EXPECT_EQ(pair.stream->read(buffer, sizeof buffer).status, StreamStatus::kClosed);
}

TEST(UringStream, WriteToAClosedPeerIsAResetWithItsText) {
  Pair pair;
  SKIP_WITHOUT_URING(pair);
  ::close(pair.peer);
  pair.peer = -1;
  ASSERT_EQ(pair.stream->write("x").status, StreamStatus::kOk);  // queued
  // The send fails (EPIPE) or the end of the stream arrives first: either
  // way the next read reports it, as recv/send would on epoll.
  ASSERT_TRUE(pair.turn_until(1));
  char buffer[16];
  StreamResult r = pair.stream->read(buffer, sizeof buffer);
  if (r.status == StreamStatus::kClosed) {
    pair.turn_until(2);
    r = pair.stream->write("y");
  }
  if (r.status == StreamStatus::kOk) {
    ASSERT_TRUE(pair.turn_until(2));
    r = pair.stream->read(buffer, sizeof buffer);
  }
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kReset);
  EXPECT_FALSE(pair.stream->error_text().empty());
}

TEST(UringStream, CloseIsIdempotentAndForgetsTheDescriptor) {
  Pair pair;
  SKIP_WITHOUT_URING(pair);
  ASSERT_EQ(pair.stream->write("pending").status, StreamStatus::kOk);
  pair.stream->close(false);
  pair.stream->close(true);
  EXPECT_EQ(pair.stream->fd(), -1);
  // Completions for the closed stream are dropped, not delivered.
  (void)::send(pair.peer, "late", 4, MSG_NOSIGNAL);  // fails if the socket is gone already
  pair.loop.run_once(5 * kNsPerMs);
  EXPECT_TRUE(pair.recorder.seen.empty());
}

TEST(UringStream, CloseCancelsOnlyItsOwnRequestsAndThePeerSeesTheEnd) {
  // Two streams on one ring: closing one cancels its armed recv (by its
  // user_data), so the kernel drops the socket and its peer reads the end;
  // the other stream's recv stays armed and still delivers.
  EventLoop loop(IoBackend::kUring);
  if (!loop.ok()) GTEST_SKIP() << loop.error();
  int a[2];
  int b[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, a), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, b), 0);
  Recorder seen_a;
  Recorder seen_b;
  auto stream_a = std::make_unique<UringStream>(*loop.uring(), a[0], seen_a);
  auto stream_b = std::make_unique<UringStream>(*loop.uring(), b[0], seen_b);
  loop.run_once(0);  // both recvs armed in the kernel
  stream_a->close(false);
  char buffer[16];
  ssize_t n = -1;
  const int64_t deadline = now_ns() + kNsPerSec;
  while (n != 0 && now_ns() < deadline) {
    n = ::recv(a[1], buffer, sizeof buffer, MSG_DONTWAIT);
    if (n != 0) loop.run_once(kNsPerMs);
  }
  EXPECT_EQ(n, 0) << "the ring still holds the closed stream's socket";
  ASSERT_EQ(::send(b[1], "still", 5, 0), 5);
  const int64_t until = now_ns() + kNsPerSec;
  while (seen_b.seen.empty() && now_ns() < until)
    loop.run_once(10 * kNsPerMs);
  ASSERT_FALSE(seen_b.seen.empty());
  const StreamResult r = stream_b->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, StreamStatus::kOk);
  EXPECT_EQ(std::string(buffer, r.bytes), "still");
  EXPECT_TRUE(seen_a.seen.empty());
  stream_b.reset();
  ::close(a[1]);
  ::close(b[1]);
}

}  // namespace uring_stream_test
}  // namespace millstone::net
