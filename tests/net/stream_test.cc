#include "net/stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

namespace millstone::net {
namespace stream_test {

using metrics::ErrorCause;

// A connected pair: the PlainStream under test and the raw peer.
struct Pair {
  Pair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    stream = std::make_unique<PlainStream>(fds[0]);
    peer = fds[1];
  }
  ~Pair() {
    if (peer >= 0) ::close(peer);
  }
  std::unique_ptr<PlainStream> stream;
  int peer = -1;
};

TEST(PlainStream, IsReadyWithoutAHandshake) {
  Pair pair;
  EXPECT_EQ(pair.stream->handshake().status, StreamStatus::kOk);
  EXPECT_GE(pair.stream->fd(), 0);
}

TEST(PlainStream, ShortReadMeansDrained) {
  Pair pair;
  ASSERT_EQ(::send(pair.peer, "hello", 5, 0), 5);
  char buffer[64];
  StreamResult r = pair.stream->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, StreamStatus::kOk);
  EXPECT_EQ(std::string(buffer, r.bytes), "hello");
  EXPECT_TRUE(r.drained);
  r = pair.stream->read(buffer, sizeof buffer);
  EXPECT_EQ(r.status, StreamStatus::kWouldBlock);
  EXPECT_EQ(r.wait, Readiness::kReadable);
}

TEST(PlainStream, FullBufferIsNotDrained) {
  Pair pair;
  ASSERT_EQ(::send(pair.peer, "0123456789", 10, 0), 10);
  char buffer[4];
  StreamResult r = pair.stream->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, StreamStatus::kOk);
  EXPECT_EQ(r.bytes, 4u);
  EXPECT_FALSE(r.drained);
}

TEST(PlainStream, WritesAndThePeerReads) {
  Pair pair;
  StreamResult r = pair.stream->write("GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.status, StreamStatus::kOk);
  EXPECT_EQ(r.bytes, 18u);
  char buffer[64];
  EXPECT_EQ(::recv(pair.peer, buffer, sizeof buffer, 0), 18);
}

TEST(PlainStream, PartialWriteWaitsForWritableAndResumesFromTheRest) {
  Pair pair;
  const std::string payload(8 << 20, 'x');  // far beyond the socket buffers
  std::string_view rest = payload;
  StreamResult r = pair.stream->write(rest);
  ASSERT_EQ(r.status, StreamStatus::kWouldBlock);
  EXPECT_EQ(r.wait, Readiness::kWritable);
  EXPECT_GT(r.bytes, 0u);
  EXPECT_LT(r.bytes, payload.size());
  rest.remove_prefix(r.bytes);
  size_t received = 0;
  char buffer[65536];
  for (int rounds = 0; rounds < 100000 && received < payload.size(); ++rounds) {
    ssize_t n = ::recv(pair.peer, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) received += static_cast<size_t>(n);
    if (!rest.empty()) {
      r = pair.stream->write(rest);
      ASSERT_NE(r.status, StreamStatus::kError);
      rest.remove_prefix(r.bytes);
    }
  }
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(received, payload.size());
}

TEST(PlainStream, PeerCloseIsTheEndOfTheStream) {
  Pair pair;
  ::close(pair.peer);
  pair.peer = -1;
  char buffer[16];
  EXPECT_EQ(pair.stream->read(buffer, sizeof buffer).status, StreamStatus::kClosed);
}

TEST(PlainStream, WriteToAClosedPeerIsAResetWithItsText) {
  Pair pair;
  ::close(pair.peer);
  pair.peer = -1;
  StreamResult r = pair.stream->write("ping");
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kReset);
  EXPECT_FALSE(pair.stream->error_text().empty());
}

TEST(PlainStream, CloseIsIdempotentAndForgetsTheDescriptor) {
  Pair pair;
  pair.stream->close(true);
  EXPECT_EQ(pair.stream->fd(), -1);
  pair.stream->close(false);
  char buffer[4];
  EXPECT_EQ(::recv(pair.peer, buffer, sizeof buffer, 0), 0);  // the peer sees the end
}

}  // namespace stream_test
}  // namespace millstone::net
