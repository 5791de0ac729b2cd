// TlsStream client against TlsStream server in one process, over loopback TCP.
#include "tls/tls_stream.h"

#include <gtest/gtest.h>

#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls_harness.h"

namespace millstone::tls {
namespace tls_stream_test {

using metrics::ErrorCause;
using namespace testing;

// A server context with a localhost certificate from `pki`, and a client
// context trusting that CA.
struct Peers {
  explicit Peers(TlsClientOptions client_options = {}, TlsServerOptions server_options = {})
      : pki(folder) {
    if (server_options.cert_file.empty()) {
      std::tie(server_options.cert_file, server_options.key_file) = pki.localhost("server");
    }
    if (client_options.ca_file.empty()) client_options.ca_file = pki.ca_file;
    server = std::make_unique<TlsServerContext>(server_options);
    client = std::make_unique<TlsClientContext>(client_options);
  }
  // A connected, not yet handshaken pair towards `name`.
  std::pair<std::unique_ptr<TlsStream>, std::unique_ptr<TlsStream>> connect(
      const std::string& name = "localhost") {
    auto [client_fd, server_fd] = loopback_pair();
    return {TlsStream::client(*client, client->target(name, 443), client_fd),
            TlsStream::server(*server, server_fd)};
  }
  TempFolder folder;
  Pki pki;
  std::unique_ptr<TlsServerContext> server;
  std::unique_ptr<TlsClientContext> client;
};

TEST(TlsStream, HandshakesAndCarriesDataBothWays) {
  Peers peers;
  auto [client, server] = peers.connect();
  ASSERT_TRUE(client && server);
  HandshakeOutcome h = handshake(*client, *server);
  ASSERT_EQ(h.client.status, StreamStatus::kOk) << client->error_text();
  ASSERT_EQ(h.server.status, StreamStatus::kOk) << server->error_text();
  EXPECT_TRUE(client->handshake_done());
  EXPECT_GT(client->handshake_ns(), 0);
  EXPECT_EQ(client->version(), "TLSv1.3");
  EXPECT_FALSE(client->resumed());
  EXPECT_EQ(client->alpn(), "");

  EXPECT_EQ(transfer(*client, *server, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(transfer(*server, *client, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST(TlsStream, ShortReadAfterTheSocketDrainedSaysDrained) {
  Peers peers;
  auto [client, server] = peers.connect();
  ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk);
  ASSERT_EQ(server->write("pong").status, StreamStatus::kOk);
  char buffer[4096];
  StreamResult r{.status = StreamStatus::kWouldBlock};
  for (int i = 0; i < 50 && r.status == StreamStatus::kWouldBlock; ++i) {
    pollfd fd{client->fd(), POLLIN, 0};
    poll(&fd, 1, 100);
    r = client->read(buffer, sizeof buffer);
  }
  ASSERT_EQ(r.status, StreamStatus::kOk) << client->error_text();
  EXPECT_EQ(std::string(buffer, r.bytes), "pong");
  EXPECT_TRUE(r.drained);
  EXPECT_EQ(client->read(buffer, sizeof buffer).status, StreamStatus::kWouldBlock);
}

TEST(TlsStream, LargePayloadGoesThroughPartialWrites) {
  Peers peers;
  auto [client, server] = peers.connect();
  ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk);
  std::string payload(6 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>('a' + i % 26);
  size_t would_blocks = 0;
  const std::string received = transfer(*client, *server, payload, &would_blocks);
  EXPECT_GT(would_blocks, 0u);  // the socket buffers cannot take 6 MiB at once
  EXPECT_EQ(received.size(), payload.size());
  EXPECT_TRUE(received == payload);
}

TEST(TlsStream, CloseNotifyEndsTheStreamCleanly) {
  Peers peers;
  auto [client, server] = peers.connect();
  ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk);
  ASSERT_EQ(server->write("bye").status, StreamStatus::kOk);
  server->close(false);
  std::string data;
  EXPECT_EQ(read_until_end(*client, &data).status, StreamStatus::kClosed);
  EXPECT_EQ(data, "bye");
}

TEST(TlsStream, FinWithoutCloseNotifyAfterTheHandshakeIsAnEndNotAnError) {
  Peers peers;
  auto [client, server] = peers.connect();
  ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk);
  ::shutdown(server->fd(), SHUT_WR);
  EXPECT_EQ(read_until_end(*client).status, StreamStatus::kClosed);
  char buffer[16];
  EXPECT_EQ(client->read(buffer, sizeof buffer).status, StreamStatus::kClosed);  // and stays so
}

TEST(TlsStream, ResetAfterTheHandshakeIsAReset) {
  Peers peers;
  auto [client, server] = peers.connect();
  ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk);
  server->close(true);
  StreamResult r = read_until_end(*client);
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kReset) << client->error_text();
}

class TlsResumption : public ::testing::TestWithParam<TlsVersion> {};

TEST_P(TlsResumption, SecondConnectionResumesTheFirstSession) {
  TlsClientOptions options;
  options.min_version = options.max_version = GetParam();
  Peers peers(options);
  for (int connection = 0; connection < 3; ++connection) {
    auto [client, server] = peers.connect();
    ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk) << client->error_text();
    EXPECT_EQ(client->resumed(), connection > 0) << "connection " << connection;
    // TLS 1.3 tickets come after the handshake: the client's first read takes them.
    EXPECT_EQ(transfer(*server, *client, "hi"), "hi");
  }
  EXPECT_TRUE(peers.client->target("localhost", 443).last_session != nullptr);
}

TEST_P(TlsResumption, NoResumptionWhenSwitchedOff) {
  TlsClientOptions options;
  options.min_version = options.max_version = GetParam();
  options.resume_sessions = false;
  Peers peers(options);
  for (int connection = 0; connection < 2; ++connection) {
    auto [client, server] = peers.connect();
    ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk);
    EXPECT_EQ(transfer(*server, *client, "hi"), "hi");
    EXPECT_FALSE(client->resumed());
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsResumption,
                         ::testing::Values(TlsVersion::k1_2, TlsVersion::k1_3),
                         [](const auto& info) {
                           return info.param == TlsVersion::k1_2 ? "Tls12" : "Tls13";
                         });

TEST(TlsStream, VersionTwelveWhenTheServerGoesNoHigher) {
  TlsServerOptions server;
  server.max_version = TlsVersion::k1_2;
  Peers peers({}, server);
  auto [client, server_stream] = peers.connect();
  ASSERT_EQ(handshake(*client, *server_stream).client.status, StreamStatus::kOk);
  EXPECT_EQ(client->version(), "TLSv1.2");
}

struct AlpnCase {
  std::vector<std::string> client;
  std::vector<std::string> server;
  std::string expected;
};

class TlsAlpn : public ::testing::TestWithParam<AlpnCase> {};

TEST_P(TlsAlpn, NegotiatesTheServersFirstChoiceAmongTheOffered) {
  TlsClientOptions client;
  client.alpn = GetParam().client;
  TlsServerOptions server;
  server.alpn = GetParam().server;
  Peers peers(client, server);
  auto [c, s] = peers.connect();
  ASSERT_EQ(handshake(*c, *s).client.status, StreamStatus::kOk) << c->error_text();
  EXPECT_EQ(c->alpn(), GetParam().expected);
  EXPECT_EQ(s->alpn(), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(Cases, TlsAlpn,
                         ::testing::Values(AlpnCase{{"h2", "http/1.1"}, {"h2", "http/1.1"}, "h2"},
                                           AlpnCase{{"h2", "http/1.1"}, {"http/1.1"}, "http/1.1"},
                                           AlpnCase{{"http/1.1"}, {"h2", "http/1.1"}, "http/1.1"},
                                           AlpnCase{{"h2"}, {"http/1.1"}, ""},
                                           AlpnCase{{}, {"h2"}, ""}));

// --- verification failures ----------------------------------------------------

TEST(TlsVerify, ExpiredCertificate) {
  Peers peers;
  CertificateSpec spec;
  spec.dns_names = {"localhost"};
  spec.valid_from_s = -3 * 24 * 3600;
  spec.valid_until_s = -24 * 3600;
  TlsServerOptions server;
  std::tie(server.cert_file, server.key_file) = peers.pki.issue("expired", spec);
  peers.server = std::make_unique<TlsServerContext>(server);
  auto [client, s] = peers.connect();
  HandshakeOutcome h = handshake(*client, *s);
  ASSERT_EQ(h.client.status, StreamStatus::kError);
  EXPECT_EQ(h.client.cause, ErrorCause::kTlsCertificateExpired);
  EXPECT_NE(client->error_text().find("expired"), std::string::npos) << client->error_text();
  // The server hears about it as an alert.
  ASSERT_EQ(h.server.status, StreamStatus::kError);
  EXPECT_EQ(h.server.cause, ErrorCause::kTlsAlertReceived) << s->error_text();
}

TEST(TlsVerify, WrongHostName) {
  Peers peers;
  auto [client, server] = peers.connect("wrong.example");
  HandshakeOutcome h = handshake(*client, *server);
  ASSERT_EQ(h.client.status, StreamStatus::kError);
  EXPECT_EQ(h.client.cause, ErrorCause::kTlsCertificateHostname);
  EXPECT_NE(client->error_text().find("mismatch"), std::string::npos) << client->error_text();
}

TEST(TlsVerify, IpAddressTargetsAreCheckedAgainstIpNames) {
  Peers peers;
  auto [client, server] = peers.connect("127.0.0.1");
  EXPECT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk) << client->error_text();
  auto [other, other_server] = peers.connect("127.0.0.2");
  HandshakeOutcome h = handshake(*other, *other_server);
  ASSERT_EQ(h.client.status, StreamStatus::kError);
  EXPECT_EQ(h.client.cause, ErrorCause::kTlsCertificateHostname) << other->error_text();
}

TEST(TlsVerify, UnknownCaFailsUnlessInsecure) {
  TempFolder folder;
  Pki other(folder, "other-ca");
  TlsClientOptions trusting_other;
  trusting_other.ca_file = other.ca_file;
  Peers peers(trusting_other);
  {
    auto [client, server] = peers.connect();
    HandshakeOutcome h = handshake(*client, *server);
    ASSERT_EQ(h.client.status, StreamStatus::kError);
    EXPECT_EQ(h.client.cause, ErrorCause::kTlsCertificateUntrusted) << client->error_text();
  }
  TlsClientOptions insecure = trusting_other;
  insecure.insecure = true;
  peers.client = std::make_unique<TlsClientContext>(insecure);
  auto [client, server] = peers.connect("wrong.example");  // no name check either
  EXPECT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk) << client->error_text();
}

TEST(TlsVerify, SelfSignedServerIsUntrustedUnlessItsCertificateIsTheCa) {
  TempFolder folder;
  TlsServerContext server_context({});  // the self-signed localhost certificate
  for (bool trust_it : {false, true}) {
    TlsClientOptions options;
    options.ca_file =
        trust_it ? folder.write("self.pem", server_context.certificate_pem()) : Pki(folder).ca_file;
    TlsClientContext client_context(options);
    auto [client_fd, server_fd] = loopback_pair();
    auto client =
        TlsStream::client(client_context, client_context.target("localhost", 443), client_fd);
    auto server = TlsStream::server(server_context, server_fd);
    HandshakeOutcome h = handshake(*client, *server);
    if (trust_it) {
      EXPECT_EQ(h.client.status, StreamStatus::kOk) << client->error_text();
    } else {
      ASSERT_EQ(h.client.status, StreamStatus::kError);
      EXPECT_EQ(h.client.cause, ErrorCause::kTlsCertificateUntrusted) << client->error_text();
    }
  }
}

TEST(TlsVerify, NoCommonVersion) {
  TlsClientOptions client;
  client.min_version = TlsVersion::k1_3;
  TlsServerOptions server;
  server.max_version = TlsVersion::k1_2;
  Peers peers(client, server);
  auto [c, s] = peers.connect();
  HandshakeOutcome h = handshake(*c, *s);
  ASSERT_EQ(h.client.status, StreamStatus::kError);
  EXPECT_EQ(h.client.cause, ErrorCause::kTlsProtocolVersion) << c->error_text();
  ASSERT_EQ(h.server.status, StreamStatus::kError);
  EXPECT_EQ(h.server.cause, ErrorCause::kTlsProtocolVersion) << s->error_text();
}

TEST(TlsClientCertificate, RequiredAndMissingIsAnAlert) {
  TempFolder folder;
  Pki clients(folder, "client-ca");
  TlsServerOptions server;
  server.client_ca_file = clients.ca_file;
  Peers peers({}, server);
  auto [client, s] = peers.connect();
  HandshakeOutcome h = handshake(*client, *s);
  ASSERT_EQ(h.server.status, StreamStatus::kError);
  // TLS 1.3: the client finishes first and hears the server's alert on its first read.
  StreamResult r = h.client.status == StreamStatus::kOk ? read_until_end(*client) : h.client;
  ASSERT_EQ(r.status, StreamStatus::kError);
  EXPECT_EQ(r.cause, ErrorCause::kTlsAlertReceived);
  EXPECT_NE(client->error_text().find("certificate required"), std::string::npos)
      << client->error_text();
}

TEST(TlsClientCertificate, RequiredAndGiven) {
  TempFolder folder;
  Pki clients(folder, "client-ca");
  CertificateSpec spec;
  spec.common_name = "load generator";
  TlsClientOptions client;
  std::tie(client.cert_file, client.key_file) = clients.issue("client", spec);
  TlsServerOptions server;
  server.client_ca_file = clients.ca_file;
  Peers peers(client, server);
  auto [c, s] = peers.connect();
  HandshakeOutcome h = handshake(*c, *s);
  ASSERT_EQ(h.client.status, StreamStatus::kOk) << c->error_text();
  ASSERT_EQ(h.server.status, StreamStatus::kOk) << s->error_text();
  EXPECT_EQ(transfer(*c, *s, "hello"), "hello");
  EXPECT_EQ(transfer(*s, *c, "welcome"), "welcome");
}

}  // namespace tls_stream_test
}  // namespace millstone::tls
