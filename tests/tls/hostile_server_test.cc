// Servers that do not finish a TLS handshake properly: each failure is a
// classified error of the client's stream, never a hang or a crash.
#include <gtest/gtest.h>

#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/tls_stream.h"
#include "tls_harness.h"

namespace millstone::tls {
namespace hostile_server_test {

using metrics::ErrorCause;
using namespace testing;

// A TLS client towards a hand-written server: `server_fd` is the raw socket.
struct HostileSetup {
  HostileSetup() : context(TlsClientOptions{}) {
    auto [client_fd, raw] = loopback_pair();
    client = TlsStream::client(context, context.target("localhost", 443), client_fd);
    server_fd = raw;
  }
  ~HostileSetup() {
    if (server_fd >= 0) ::close(server_fd);
  }
  // Starts the handshake and reads the ClientHello on the server side.
  std::string client_hello() {
    EXPECT_EQ(client->handshake().status, StreamStatus::kWouldBlock);
    std::string hello;
    char buffer[4096];
    for (int i = 0; i < 50 && hello.size() < 5; ++i) {
      pollfd fd{server_fd, POLLIN, 0};
      poll(&fd, 1, 100);
      const ssize_t n = ::recv(server_fd, buffer, sizeof buffer, 0);
      if (n > 0) hello.append(buffer, static_cast<size_t>(n));
    }
    return hello;
  }
  void server_sends(std::string_view bytes) {
    EXPECT_EQ(::send(server_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  void server_closes(bool reset) {
    if (reset) {
      net::close_with_reset(server_fd);
    } else {
      ::close(server_fd);
    }
    server_fd = -1;
  }
  TlsClientContext context;
  std::unique_ptr<TlsStream> client;
  int server_fd = -1;
};

TEST(HostileServer, ClientHelloIsATlsHandshakeRecord) {
  HostileSetup setup;
  const std::string hello = setup.client_hello();
  ASSERT_GE(hello.size(), 5u);
  EXPECT_EQ(hello[0], 0x16);  // handshake record
}

TEST(HostileServer, ClosesBeforeTheClientHello) {
  HostileSetup setup;
  setup.server_closes(false);
  StreamResult r = handshake_alone(*setup.client);
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kTlsHandshake) << setup.client->error_text();
}

TEST(HostileServer, ClosesMidwayThroughTheHandshake) {
  HostileSetup setup;
  ASSERT_FALSE(setup.client_hello().empty());
  setup.server_closes(false);
  StreamResult r = handshake_alone(*setup.client);
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kTlsHandshake);
  EXPECT_NE(setup.client->error_text().find("closed the connection during the TLS handshake"),
            std::string::npos)
      << setup.client->error_text();
}

TEST(HostileServer, ResetsMidwayThroughTheHandshake) {
  HostileSetup setup;
  ASSERT_FALSE(setup.client_hello().empty());
  setup.server_closes(true);
  StreamResult r = handshake_alone(*setup.client);
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kTlsHandshake);
  EXPECT_NE(setup.client->error_text().find("reset"), std::string::npos)
      << setup.client->error_text();
}

TEST(HostileServer, PlaintextHttpServerOnTheTlsPort) {
  HostileSetup setup;
  ASSERT_FALSE(setup.client_hello().empty());
  setup.server_sends(
      "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request");
  setup.server_closes(false);
  StreamResult r = handshake_alone(*setup.client);
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kTlsHandshake);
  EXPECT_NE(setup.client->error_text().find("does not speak TLS"), std::string::npos)
      << setup.client->error_text();
}

TEST(HostileServer, GarbageBytes) {
  HostileSetup setup;
  ASSERT_FALSE(setup.client_hello().empty());
  std::string garbage(600, '\0');
  uint32_t x = 2463534242u;  // xorshift: the same bytes every run
  for (char& c : garbage) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  setup.server_sends(garbage);
  StreamResult r = handshake_alone(*setup.client);
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kTlsHandshake) << setup.client->error_text();
}

TEST(HostileServer, TruncatedServerHelloThenSilenceIsStillWaiting) {
  // Half a record is not an error yet: the stream waits for the rest (the
  // session's connect timeout bounds it), and does not spin.
  HostileSetup setup;
  ASSERT_FALSE(setup.client_hello().empty());
  setup.server_sends(std::string("\x16\x03\x03\x00\x40\x02\x00", 7));
  StreamResult r = handshake_alone(*setup.client, 300);
  EXPECT_EQ(r.status, StreamStatus::kWouldBlock);
  EXPECT_EQ(r.wait, Readiness::kReadable);
}

TEST(HostileServer, GarbageAfterTheHandshakeIsAProtocolError) {
  TempFolder folder;
  TlsServerContext server_context({});
  TlsClientOptions options;
  options.ca_file = folder.write("ca.pem", server_context.certificate_pem());
  TlsClientContext client_context(options);
  auto [client_fd, server_fd] = loopback_pair();
  auto client =
      TlsStream::client(client_context, client_context.target("localhost", 443), client_fd);
  auto server = TlsStream::server(server_context, server_fd);
  ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk);
  // An application-data record whose contents cannot decrypt.
  std::string record("\x17\x03\x03\x00\x20", 5);
  record.append(32, 'Z');
  ASSERT_EQ(::send(server->fd(), record.data(), record.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(record.size()));
  StreamResult r = read_until_end(*client);
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kProtocolError) << client->error_text();
}

}  // namespace hostile_server_test
}  // namespace millstone::tls
