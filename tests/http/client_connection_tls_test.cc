// ClientConnection over TLS (https): the handshake runs between the TCP
// connect and on_connected and is counted apart from it, requests and
// responses go through the TLS stream, a second connection resumes the
// session, and handshake failures (an untrusted certificate, a plaintext
// server) are classified failures without a lost request. The server is a
// TlsServerContext-based one in this thread, stepped between loop turns.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "http/client_connection.h"
#include "net/clock.h"
#include "net/socket.h"
#include "tls/certificate.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/tls_stream.h"

namespace millstone::http {
namespace client_connection_tls_test {

using metrics::ErrorCause;

struct Recorder final : ClientListener {
  void on_connected(ClientConnection&) override { ++connected; }
  void on_response(ClientConnection&, int s, int64_t) override {
    status = s;
    ++responses;
  }
  void on_failure(ClientConnection&, ErrorCause cause, bool request) override {
    failure = cause;
    had_request = request;
    ++failures;
  }
  void on_idle_close(ClientConnection&) override { ++idle_closes; }
  int connected = 0;
  int responses = 0;
  int status = 0;
  int failures = 0;
  int idle_closes = 0;
  bool had_request = false;
  ErrorCause failure = ErrorCause::kCount;
};

// One accepted connection: TLS (or plaintext) server that answers each
// complete request head with a fixed response.
struct Peer {
  int fd = -1;
  std::unique_ptr<tls::TlsStream> stream;
  std::string in;
  int answered = 0;
  ~Peer() {
    if (!stream && fd >= 0) ::close(fd);
  }
};

class TlsConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto any = net::make_endpoint("127.0.0.1", 0);
    listen_fd_ = net::listen_socket(*any, 16);
    ASSERT_GE(listen_fd_, 0);
    context_.endpoint = *net::local_endpoint(listen_fd_);
    context_.read_buffer.resize(64 * 1024);
    context_.stats = &stats_;
  }
  void TearDown() override { ::close(listen_fd_); }

  void use_tls(tls::TlsClientOptions options) {
    client_tls_ = std::make_unique<tls::TlsClientContext>(options);
    context_.tls = client_tls_.get();
    context_.tls_target = &client_tls_->target("127.0.0.1", context_.endpoint.port());
  }
  tls::TlsClientOptions trusting_server() const {
    tls::TlsClientOptions options;
    options.ca_pem = server_.certificate_pem();
    options.ca_file = "server.pem";
    return options;
  }

  // One server step: accept, then handshake / read / answer as far as it goes.
  void step_server(Peer& peer, bool plaintext) {
    if (peer.fd < 0) {
      peer.fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (peer.fd < 0) return;
      if (!plaintext) peer.stream = tls::TlsStream::server(server_, peer.fd);
    }
    char buf[4096];
    if (plaintext) {
      const ssize_t n = ::recv(peer.fd, buf, sizeof buf, 0);
      if (n > 0 && peer.answered == 0) {
        const std::string answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        (void)::send(peer.fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        ++peer.answered;
        ::shutdown(peer.fd, SHUT_WR);
      }
      return;
    }
    if (!peer.stream || peer.stream->handshake().status != net::StreamStatus::kOk) return;
    for (;;) {
      const net::StreamResult r = peer.stream->read(buf, sizeof buf);
      if (r.status != net::StreamStatus::kOk) break;
      peer.in.append(buf, r.bytes);
    }
    size_t end;
    while ((end = peer.in.find("\r\n\r\n")) != std::string::npos) {
      peer.in.erase(0, end + 4);
      const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
      EXPECT_EQ(peer.stream->write(answer).status, net::StreamStatus::kOk);
      ++peer.answered;
    }
  }
  template <typename F>
  bool run_until(Peer& peer, F done, bool plaintext = false) {
    const int64_t deadline = net::now_ns() + 3 * net::kNsPerSec;
    while (!done() && net::now_ns() < deadline) {
      loop_.run_once(2 * net::kNsPerMs);
      step_server(peer, plaintext);
    }
    return done();
  }

  net::EventLoop loop_;
  tls::TlsServerContext server_{tls::TlsServerOptions{}};  // self-signed for 127.0.0.1
  std::unique_ptr<tls::TlsClientContext> client_tls_;
  metrics::Snapshot stats_;
  ClientContext context_;
  int listen_fd_ = -1;
  Recorder recorder_;
};

const std::string kRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

TEST_F(TlsConnectionTest, RequestsGoThroughTheHandshakenStream) {
  use_tls(trusting_server());
  ClientConnection connection(loop_, recorder_, context_, 0);
  connection.connect(net::now_ns());
  Peer peer;
  ASSERT_TRUE(run_until(peer, [&] { return recorder_.connected == 1 || recorder_.failures; }));
  ASSERT_EQ(recorder_.failures, 0) << connection.error_text();
  EXPECT_EQ(stats_.connections_established, 1u);
  EXPECT_EQ(stats_.tls_handshakes, 1u);
  EXPECT_EQ(stats_.tls_resumed, 0u);
  EXPECT_EQ(stats_.tls_handshake.count(), 1u);
  for (int i = 1; i <= 3; ++i) {  // keep-alive: the same connection, no new handshake
    connection.send(kRequest, false, net::now_ns(), net::now_ns());
    ASSERT_TRUE(run_until(peer, [&] { return recorder_.responses == i || recorder_.failures; }));
    EXPECT_EQ(recorder_.status, 200);
    EXPECT_TRUE(connection.idle());
  }
  EXPECT_EQ(peer.answered, 3);
  EXPECT_EQ(stats_.tls_handshakes, 1u);
  // Counted as the application's bytes, not the records'.
  EXPECT_EQ(stats_.bytes_sent, 3 * kRequest.size());
}

TEST_F(TlsConnectionTest, ASecondConnectionResumesTheSession) {
  use_tls(trusting_server());
  for (int round = 0; round < 2; ++round) {
    ClientConnection connection(loop_, recorder_, context_, 0);
    connection.connect(net::now_ns());
    Peer peer;
    // One exchange: the TLS 1.3 tickets arrive after the handshake.
    ASSERT_TRUE(run_until(peer, [&] { return recorder_.connected == round + 1; }));
    connection.send(kRequest, false, net::now_ns(), net::now_ns());
    ASSERT_TRUE(run_until(peer, [&] { return recorder_.responses == round + 1; }));
  }
  EXPECT_EQ(stats_.tls_handshakes, 2u);
  EXPECT_EQ(stats_.tls_resumed, 1u);
}

TEST_F(TlsConnectionTest, NoResumptionWhenTurnedOff) {
  tls::TlsClientOptions options = trusting_server();
  options.resume_sessions = false;
  use_tls(options);
  for (int round = 0; round < 2; ++round) {
    ClientConnection connection(loop_, recorder_, context_, 0);
    connection.connect(net::now_ns());
    Peer peer;
    ASSERT_TRUE(run_until(peer, [&] { return recorder_.connected == round + 1; }));
    connection.send(kRequest, false, net::now_ns(), net::now_ns());
    ASSERT_TRUE(run_until(peer, [&] { return recorder_.responses == round + 1; }));
  }
  EXPECT_EQ(stats_.tls_handshakes, 2u);
  EXPECT_EQ(stats_.tls_resumed, 0u);
}

TEST_F(TlsConnectionTest, UntrustedCertificateFailsTheConnect) {
  tls::TlsClientOptions options;
  options.ca_pem = tls::self_signed_localhost().certificate_pem();  // another CA
  options.ca_file = "other.pem";
  use_tls(options);
  ClientConnection connection(loop_, recorder_, context_, 0);
  connection.connect(net::now_ns());
  Peer peer;
  ASSERT_TRUE(run_until(peer, [&] { return recorder_.failures > 0; }));
  EXPECT_EQ(recorder_.connected, 0);
  EXPECT_EQ(recorder_.failure, ErrorCause::kTlsCertificateUntrusted);
  EXPECT_FALSE(recorder_.had_request);
  EXPECT_NE(connection.error_text().find("certificate verify failed"), std::string::npos);
  EXPECT_EQ(stats_.tls_handshakes, 0u);
  EXPECT_EQ(stats_.connections_established, 1u);  // TCP connected; TLS did not
}

TEST_F(TlsConnectionTest, InsecureAcceptsAnyCertificate) {
  tls::TlsClientOptions options;
  options.insecure = true;
  use_tls(options);
  ClientConnection connection(loop_, recorder_, context_, 0);
  connection.connect(net::now_ns());
  Peer peer;
  ASSERT_TRUE(run_until(peer, [&] { return recorder_.connected == 1 || recorder_.failures; }));
  EXPECT_EQ(recorder_.failures, 0);
}

TEST_F(TlsConnectionTest, PlaintextServerIsAHandshakeFailure) {
  use_tls(trusting_server());
  ClientConnection connection(loop_, recorder_, context_, 0);
  connection.connect(net::now_ns());
  Peer peer;
  ASSERT_TRUE(run_until(
      peer, [&] { return recorder_.failures > 0; }, true));
  EXPECT_EQ(recorder_.failure, ErrorCause::kTlsHandshake);
  EXPECT_EQ(recorder_.connected, 0);
}

TEST_F(TlsConnectionTest, PlainConnectionsStayPlain) {
  ClientConnection connection(loop_, recorder_, context_, 0);
  connection.connect(net::now_ns());
  Peer peer;
  ASSERT_TRUE(run_until(
      peer, [&] { return recorder_.connected == 1 || recorder_.failures; }, true));
  EXPECT_EQ(stats_.tls_handshakes, 0u);
  connection.send(kRequest, false, net::now_ns(), net::now_ns());
  ASSERT_TRUE(run_until(
      peer, [&] { return recorder_.responses == 1 || recorder_.failures; }, true));
  EXPECT_EQ(recorder_.status, 400);
}

}  // namespace client_connection_tls_test
}  // namespace millstone::http
