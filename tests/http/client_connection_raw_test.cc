// ClientConnection in raw mode (WebSocket after an upgrade, raw TCP): bytes
// go to on_data, unconsumed tails are kept and passed again, a 101 switches
// protocols with the bytes that came with its head, send_raw writes in order
// even when the socket is full, and the end of the stream is a failure.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http/client_connection.h"
#include "net/clock.h"
#include "net/socket.h"

namespace millstone::http {
namespace client_connection_raw_test {

struct Recorder final : ClientListener {
  void on_connected(ClientConnection&) override { ++connected; }
  void on_response(ClientConnection& c, int s, int64_t) override {
    status = s;
    raw_at_response = c.raw();
  }
  void on_failure(ClientConnection&, metrics::ErrorCause cause, bool) override {
    failure = cause;
    ++failures;
  }
  void on_idle_close(ClientConnection&) override { ++idle_closes; }
  void on_writable(ClientConnection&) override { ++writable; }
  size_t on_data(ClientConnection&, char* data, size_t size) override {
    // Consume whole lines only: the rest must come back with the next bytes.
    std::string_view text(data, size);
    size_t end = text.rfind('\n');
    size_t consumed = end == std::string_view::npos ? 0 : end + 1;
    lines.append(text.substr(0, consumed));
    ++calls;
    return consumed;
  }
  int connected = 0;
  int status = 0;
  bool raw_at_response = false;
  int failures = 0;
  int idle_closes = 0;
  int calls = 0;
  int writable = 0;
  metrics::ErrorCause failure = metrics::ErrorCause::kCount;
  std::string lines;
};

class RawConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto any = net::make_endpoint("127.0.0.1", 0);
    listen_fd_ = net::listen_socket(*any, 16);
    ASSERT_GE(listen_fd_, 0);
    context_.endpoint = *net::local_endpoint(listen_fd_);
    context_.read_buffer.resize(64 * 1024);
    context_.stats = &stats_;
  }
  void TearDown() override {
    if (server_ >= 0) ::close(server_);
    ::close(listen_fd_);
  }
  // Runs the loop until `done` or 2 s pass.
  template <typename F>
  bool run_until(F done) {
    const int64_t deadline = net::now_ns() + 2 * net::kNsPerSec;
    while (!done() && net::now_ns() < deadline)
      loop_.run_once(10 * net::kNsPerMs);
    return done();
  }
  void accept_server() {
    for (int i = 0; i < 200 && server_ < 0; ++i) {
      server_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (server_ < 0) loop_.run_once(10 * net::kNsPerMs);
    }
    ASSERT_GE(server_, 0);
  }
  void server_send(const std::string& bytes) {
    ASSERT_EQ(::send(server_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  std::string server_read(size_t want) {
    std::string out;
    char buf[65536];
    const int64_t deadline = net::now_ns() + 2 * net::kNsPerSec;
    while (out.size() < want && net::now_ns() < deadline) {
      loop_.run_once(net::kNsPerMs);  // lets the client flush on EPOLLOUT
      ssize_t n = ::recv(server_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  net::EventLoop loop_;
  metrics::Snapshot stats_;
  ClientContext context_;
  Recorder listener_;
  int listen_fd_ = -1;
  int server_ = -1;
};

TEST_F(RawConnectionTest, RawBytesKeepTheUnconsumedTail) {
  ClientConnection c(loop_, listener_, context_, 0);
  c.connect(net::now_ns());
  accept_server();
  ASSERT_TRUE(run_until([&] { return listener_.connected == 1; }));
  c.set_raw();
  server_send("one\ntw");
  ASSERT_TRUE(run_until([&] { return listener_.lines == "one\n"; }));
  server_send("o\nthree");
  ASSERT_TRUE(run_until([&] { return listener_.lines == "one\ntwo\n"; }));
  // The end of the stream is a failure (kClosed), not an idle close.
  ::shutdown(server_, SHUT_WR);
  ASSERT_TRUE(run_until([&] { return listener_.failures == 1; }));
  EXPECT_EQ(listener_.failure, metrics::ErrorCause::kClosed);
  EXPECT_EQ(listener_.idle_closes, 0);
  EXPECT_EQ(c.state(), ClientConnection::State::kClosed);
  EXPECT_FALSE(c.raw());
}

// A connect the kernel completed while the loop did not run is seen as
// completed (a connect timeout must not count the loop's own delay); one
// still waiting for the server's answer, or refused, is not.
TEST_F(RawConnectionTest, ACompletedConnectIsSeenBeforeTheLoopHandlesIt) {
  ClientConnection c(loop_, listener_, context_, 0);
  EXPECT_FALSE(c.connect_completed_unseen());  // not connecting at all
  c.connect(net::now_ns());
  ASSERT_EQ(c.state(), ClientConnection::State::kConnecting);
  // Loopback completes the handshake in the kernel without the loop.
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    seen = c.connect_completed_unseen();
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(listener_.connected, 0);
  ASSERT_TRUE(run_until([&] { return listener_.connected == 1; }));
  EXPECT_FALSE(c.connect_completed_unseen());  // connected and handled

  // Refused: nobody listens on the port any more.
  ClientContext refused = context_;
  ::close(listen_fd_);
  listen_fd_ = net::listen_socket(*net::make_endpoint("127.0.0.1", 0), 16);
  Recorder other;
  ClientConnection d(loop_, other, refused, 1);
  d.connect(net::now_ns());
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(d.connect_completed_unseen());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

TEST_F(RawConnectionTest, UpgradeDeliversBytesAfterThe101Head) {
  ClientConnection c(loop_, listener_, context_, 0);
  c.set_capture(true, 0);
  c.connect(net::now_ns());
  accept_server();
  ASSERT_TRUE(run_until([&] { return listener_.connected == 1; }));
  const std::string request = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
  c.allow_upgrade(true);
  c.send(request, false, net::now_ns(), net::now_ns());
  EXPECT_EQ(server_read(request.size()), request);
  server_send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nhello\nwor");
  ASSERT_TRUE(run_until([&] { return listener_.lines == "hello\n"; }));
  EXPECT_EQ(listener_.status, 101);
  EXPECT_TRUE(listener_.raw_at_response);  // raw before on_response
  EXPECT_TRUE(c.connected());
  server_send("ld\n");
  ASSERT_TRUE(run_until([&] { return listener_.lines == "hello\nworld\n"; }));
}

// The 101 and more bytes than one read takes arrive in one edge: the rest is
// still in the kernel, and edge-triggered epoll will not report it again.
TEST_F(RawConnectionTest, UpgradeReadsEverythingThatCameWithThe101) {
  context_.read_buffer.resize(1024);
  ClientConnection c(loop_, listener_, context_, 0);
  c.set_capture(true, 0);
  c.connect(net::now_ns());
  accept_server();
  ASSERT_TRUE(run_until([&] { return listener_.connected == 1; }));
  const std::string request = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
  c.allow_upgrade(true);
  c.send(request, false, net::now_ns(), net::now_ns());
  EXPECT_EQ(server_read(request.size()), request);
  std::string lines;
  for (int i = 0; lines.size() < 40 * 1024; ++i)
    lines += "line " + std::to_string(i) + "\n";
  server_send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" + lines);
  ASSERT_TRUE(run_until([&] { return listener_.lines.size() == lines.size(); }))
      << listener_.lines.size() << " of " << lines.size();
  EXPECT_TRUE(listener_.lines == lines);
  EXPECT_EQ(listener_.failures, 0);
  EXPECT_TRUE(c.connected());
}

// The 101 and the server's FIN in one edge: the end of the stream is seen.
TEST_F(RawConnectionTest, UpgradeThenCloseIsTheEndOfTheStream) {
  for (const std::string tail : {"", "bye\n"}) {
    SCOPED_TRACE("tail: " + tail);
    listener_ = Recorder();
    ClientConnection c(loop_, listener_, context_, 0);
    c.set_capture(true, 0);
    c.connect(net::now_ns());
    accept_server();
    ASSERT_TRUE(run_until([&] { return listener_.connected == 1; }));
    const std::string request = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
    c.allow_upgrade(true);
    c.send(request, false, net::now_ns(), net::now_ns());
    EXPECT_EQ(server_read(request.size()), request);
    server_send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" + tail);
    ::close(server_);
    server_ = -1;
    ASSERT_TRUE(run_until([&] { return listener_.failures == 1; }));
    EXPECT_EQ(listener_.status, 101);
    EXPECT_EQ(listener_.failure, metrics::ErrorCause::kClosed);
    EXPECT_EQ(listener_.lines, tail);
    EXPECT_EQ(c.state(), ClientConnection::State::kClosed);
  }
}

TEST_F(RawConnectionTest, A101WithoutAllowUpgradeStillEndsTheConnection) {
  ClientConnection c(loop_, listener_, context_, 0);
  c.connect(net::now_ns());
  accept_server();
  ASSERT_TRUE(run_until([&] { return listener_.connected == 1; }));
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send(request, false, net::now_ns(), net::now_ns());
  server_read(request.size());
  server_send("HTTP/1.1 101 Switching Protocols\r\n\r\n");
  ASSERT_TRUE(run_until([&] { return listener_.status == 101; }));
  EXPECT_FALSE(listener_.raw_at_response);
  EXPECT_EQ(c.state(), ClientConnection::State::kClosed);  // HTTP cannot follow a 101
}

TEST_F(RawConnectionTest, SendRawKeepsOrderWhenTheSocketIsFull) {
  ClientConnection c(loop_, listener_, context_, 0);
  c.connect(net::now_ns());
  accept_server();
  ASSERT_TRUE(run_until([&] { return listener_.connected == 1; }));
  c.set_raw();
  // Far more than the socket buffers hold, so part waits for EPOLLOUT.
  std::string expected;
  for (int i = 0; i < 64; ++i) {
    std::string chunk(64 * 1024, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(c.send_raw(chunk));
    expected += chunk;
  }
  EXPECT_GT(c.unsent_bytes(), 0u);
  std::string got = server_read(expected.size());
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
  EXPECT_EQ(c.unsent_bytes(), 0u);
  EXPECT_EQ(stats_.bytes_sent, expected.size());
  EXPECT_EQ(listener_.writable, 1);  // once, when the kept bytes were all written
}

}  // namespace client_connection_raw_test
}  // namespace millstone::http
