// `millstone mock --tls` and `--cert/--key`: HTTPS answered to curl and
// openssl s_client, failed handshakes (plaintext, stalled) counted by cause in
// /__millstone/stats, and bad certificate files refused at start-up.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "socket_servers.h"
#include "support.h"
#include "tls/certificate.h"

namespace millstone::testing {
namespace mock_tls_test {

// `millstone mock --tls` (or with extra args) on a free port; the served
// certificate is written to cert_path() for curl's --cacert.
class TlsMock {
 public:
  explicit TlsMock(std::vector<std::string> tls_args = {"--tls"}) {
    cert_path_ = temp_dir() + "/served.pem";
    std::vector<std::string> args{
        "mock", "--listen",       "127.0.0.1:0", "--workers",
        "1",    "--tls-cert-out", cert_path_,    "--tls-handshake-timeout",
        "1s"};
    args.insert(args.end(), tls_args.begin(), tls_args.end());
    process_ = std::make_unique<Process>(args);
    const std::regex listening(R"(listening on https://127\.0\.0\.1:(\d+))");
    for (int i = 0; i < 500 && port_ == 0; ++i) {
      std::smatch m;
      const std::string out = process_->stdout_so_far();
      if (std::regex_search(out, m, listening) && out.find("SHA-256") != std::string::npos) {
        port_ = std::stoi(m[1]);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  ~TlsMock() {
    if (process_) {
      process_->signal(SIGTERM);
      process_->wait(10);
    }
  }
  int port() const { return port_; }
  const std::string& cert_path() const { return cert_path_; }
  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }
  // curl --cacert: the certificate must verify.
  std::string get(const std::string& path) const {
    return shell("curl -sS --cacert " + cert_path_ + " " + url(path));
  }
  nlohmann::json stats() const {
    return nlohmann::json::parse(get("/__millstone/stats"), nullptr, false);
  }
  ProcessResult stop() {
    process_->signal(SIGTERM);
    ProcessResult result = process_->wait(10);
    process_.reset();  // waited for: nothing left to stop
    return result;
  }
  std::string stdout_so_far() const { return process_->stdout_so_far(); }

 private:
  std::unique_ptr<Process> process_;
  std::string cert_path_;
  int port_ = 0;
};

uint64_t failed_by(const nlohmann::json& stats, const std::string& cause) {
  const auto& causes = stats["tls"]["failed_by_cause"];
  return causes.contains(cause) ? causes[cause].get<uint64_t>() : 0;
}

TEST(MockTls, CurlVerifiesTheServedCertificateAndRequestsAreCounted) {
  TlsMock mock;
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  EXPECT_EQ(mock.get("/hello"), "hello\n");
  // By name too: the self-signed certificate names localhost.
  EXPECT_EQ(shell("curl -sS --cacert " + mock.cert_path() +
                  " https://localhost:" + std::to_string(mock.port()) + "/hello"),
            "hello\n");
  const nlohmann::json stats = mock.stats();
  ASSERT_TRUE(stats.is_object());
  EXPECT_EQ(stats["tls"]["handshakes"], 3);  // two GETs and this one
  EXPECT_EQ(stats["tls"]["failed_handshakes"], 0);
  EXPECT_EQ(stats["routes"][0]["name"], "GET /hello");
  EXPECT_EQ(stats["routes"][0]["requests"], 2);

  // The fingerprint printed is the one of the certificate written out.
  const std::string fingerprint =
      shell("openssl x509 -in " + mock.cert_path() + " -noout -fingerprint -sha256");
  const size_t eq = fingerprint.find('=');
  ASSERT_NE(eq, std::string::npos);
  const std::string hex = fingerprint.substr(eq + 1, fingerprint.find('\n') - eq - 1);
  EXPECT_NE(mock.stdout_so_far().find("TLS certificate SHA-256 " + hex + ", PEM written to " +
                                      mock.cert_path()),
            std::string::npos)
      << mock.stdout_so_far();

  const ProcessResult end = mock.stop();
  EXPECT_NE(end.out.find("TLS handshakes: 3 completed, 0 failed"), std::string::npos) << end.out;
}

// ALPN: h2 when offered (HTTP/2, tests/integration/mock_h2_test.cc), else
// http/1.1; --no-http2 offers http/1.1 only.
TEST(MockTls, OpensslSClientNegotiatesH2OrHttp11) {
  TlsMock mock;
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  const std::string s_client =
      "openssl s_client -connect 127.0.0.1:" + std::to_string(mock.port()) + " -CAfile " +
      mock.cert_path();
  std::string out = shell(s_client + " -alpn h2,http/1.1 </dev/null");
  EXPECT_NE(out.find("ALPN protocol: h2"), std::string::npos) << out;
  EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
  out = shell(s_client + " -alpn http/1.1 </dev/null");
  EXPECT_NE(out.find("ALPN protocol: http/1.1"), std::string::npos) << out;
  EXPECT_GE(mock.stats()["tls"]["handshakes"], 2);

  TlsMock http11({"--tls", "--no-http2"});
  ASSERT_NE(http11.port(), 0) << http11.stdout_so_far();
  out = shell("openssl s_client -connect 127.0.0.1:" + std::to_string(http11.port()) +
              " -alpn h2,http/1.1 -CAfile " + http11.cert_path() + " </dev/null");
  EXPECT_NE(out.find("ALPN protocol: http/1.1"), std::string::npos) << out;
}

TEST(MockTls, PlaintextClientIsAFailedHandshakeAndTheServerCarriesOn) {
  TlsMock mock;
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  const HttpResponse plain = http_request(mock.port(), "GET", "/hello");
  EXPECT_EQ(plain.status, 0);  // no HTTP answer to plaintext
  EXPECT_EQ(mock.get("/hello"), "hello\n");
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(failed_by(stats, "tls_handshake"), 1) << stats.dump();
  EXPECT_EQ(stats["tls"]["failed_handshakes"], 1);
  EXPECT_EQ(stats["routes"][0]["requests"], 1);
}

TEST(MockTls, DistrustAndNoCommonVersionAreCountedByCause) {
  TlsMock mock;
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  // curl without --cacert rejects the self-signed certificate with an alert.
  EXPECT_EQ(shell("curl -sS " + mock.url("/hello")), "");
  // TLS 1.1 only: the mock accepts 1.2 and 1.3.
  shell("openssl s_client -connect 127.0.0.1:" + std::to_string(mock.port()) +
        " -tls1_1 </dev/null");
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(failed_by(stats, "tls_alert_received"), 1) << stats.dump();
  EXPECT_EQ(failed_by(stats, "tls_protocol_version"), 1) << stats.dump();
  EXPECT_EQ(stats["tls"]["failed_handshakes"], 2);
}

TEST(MockTls, ClientStalledMidHandshakeIsClosedAfterTheHandshakeTimeout) {
  TlsMock mock;  // --tls-handshake-timeout 1s
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  const int fd = connect_loopback(mock.port());
  ASSERT_GE(fd, 0);
  // The start of a ClientHello record header, then nothing.
  ASSERT_EQ(send(fd, "\x16\x03\x01", 3, MSG_NOSIGNAL), 3);
  char c;
  // The mock closes; the receive timeout (5 s) only bounds the test.
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  close(fd);
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(failed_by(stats, "timeout"), 1) << stats.dump();
  const ProcessResult end = mock.stop();
  EXPECT_NE(end.out.find("1 failed (timeout 1)"), std::string::npos) << end.out;
}

// wss: the npm `ws` client (a third-party RFC 6455 implementation over
// node's TLS) verifies the served certificate and runs its echo, 200 KiB
// message (partial TLS writes), ping and subprotocol checks.
TEST(MockTls, WssServesTheNodeWsClient) {
  if (system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  TlsMock mock({"--tls", "--config",
                write_temp_file(R"(websockets:
  - path: /ws/echo
    echo: true
  - path: /ws/ticker
    subprotocols: [ticker.v1]
    push: {every: 100ms, message: '{"type":"tick","seq":{{ counter }},"sent_us":{{ now_us }}}'}
)",
                                ".yaml")});
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  const std::string script = std::string(MILLSTONE_SOURCE_DIR) + "/tests/interop/ws_client.js";
  const std::string out = shell("env NODE_EXTRA_CA_CERTS=" + mock.cert_path() + " node " + script +
                                " wss://localhost:" + std::to_string(mock.port()) + " 2>&1");
  EXPECT_NE(out.find("PASS"), std::string::npos) << out;
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(stats["sockets"][0]["total"], 1) << stats.dump();
  EXPECT_EQ(stats["sockets"][0]["messages_in"], 3) << stats.dump();  // text, binary, 200 KiB
  EXPECT_EQ(stats["sockets"][0]["messages_out"], 3) << stats.dump();
  EXPECT_EQ(stats["sockets"][1]["total"], 1) << stats.dump();
  EXPECT_EQ(stats["tls"]["failed_handshakes"], 0) << stats.dump();
}

// tcp: listeners with tls: true present the --tls certificate; openssl
// s_client verifies it and gets its line echoed.
TEST(MockTls, TcpListenerWithTlsEchoesOverTls) {
  const int tcp_port = free_port();
  TlsMock mock({"--tls", "--config",
                write_temp_file("tcp:\n  - listen: 127.0.0.1:" + std::to_string(tcp_port) +
                                    "\n    echo: true\n    tls: true\n",
                                ".yaml")});
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  EXPECT_NE(mock.stdout_so_far().find("tcp 127.0.0.1:" + std::to_string(tcp_port) +
                                      " speaks TLS, certificate SHA-256"),
            std::string::npos)
      << mock.stdout_so_far();
  // s_client ends when its input does, a second after the line: the echo
  // has come back by then.
  const std::string out = shell(
      "sh -c \"(printf 'over tls\\n'; sleep 1) | openssl s_client -verify_return_error "
      "-CAfile " +
      mock.cert_path() + " -connect 127.0.0.1:" + std::to_string(tcp_port) + "\" 2>&1");
  EXPECT_NE(out.find("over tls"), std::string::npos) << out;
  // A plaintext client on the TLS listener: a failed handshake, counted.
  const int fd = connect_loopback(tcp_port);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "plain\n", 6, MSG_NOSIGNAL), 6);
  char buffer[256];
  while (recv(fd, buffer, sizeof buffer, 0) > 0) {
  }
  close(fd);
  nlohmann::json stats;
  for (int i = 0; i < 100; ++i) {
    stats = mock.stats();
    if (stats["sockets"][0]["tls"]["failed_handshakes"] == 1) break;
    usleep(50'000);
  }
  EXPECT_EQ(stats["sockets"][0]["tls"]["handshakes"], 1) << stats.dump();
  EXPECT_EQ(stats["sockets"][0]["tls"]["failed_handshakes"], 1) << stats.dump();
  EXPECT_EQ(stats["sockets"][0]["messages_in"], 1) << stats.dump();
  EXPECT_EQ(stats["sockets"][0]["messages_out"], 1) << stats.dump();
}

// Without --tls a tls: true listener makes its own self-signed certificate.
TEST(MockTls, TcpListenerWithTlsAloneIsSelfSigned) {
  const int tcp_port = free_port();
  const std::string config =
      write_temp_file("tcp:\n  - listen: 127.0.0.1:" + std::to_string(tcp_port) +
                          "\n    echo: true\n    tls: true\n",
                      ".yaml");
  Process mock({"mock", "--listen", "127.0.0.1:0", "--workers", "1", "--config", config});
  for (int i = 0; i < 500 && mock.stdout_so_far().find("speaks TLS") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const std::string out =
      shell("sh -c \"(printf 'self\\n'; sleep 1) | openssl s_client -connect 127.0.0.1:" +
            std::to_string(tcp_port) + "\" 2>&1");
  EXPECT_NE(out.find("self"), std::string::npos) << out;
  mock.signal(SIGTERM);
  mock.wait(10);
}

// A listener's cert/key files are checked when the config loads: exit 3
// with the config's file:line.
TEST(MockTls, TcpListenerWithBadTlsFilesIsAConfigError) {
  const tls::Certificate one = tls::self_signed_localhost();
  const tls::Certificate other = tls::self_signed_localhost();
  const std::string cert_file = write_temp_file(one.certificate_pem(), ".pem");
  const std::string key_file = write_temp_file(other.key_pem(), ".pem");
  const std::string config = write_temp_file(
      "tcp:\n  - listen: 127.0.0.1:1\n    tls: {cert: " + cert_file + ", key: " + key_file + "}\n",
      ".yaml");
  const ProcessResult r =
      run_millstone({"mock", "--listen", "127.0.0.1:0", "--config", config}, 20);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(config + ":3:10: tls: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("does not match"), std::string::npos) << r.err;

  const std::string half = write_temp_file(
      "tcp:\n  - listen: 127.0.0.1:1\n    tls: {cert: " + cert_file + "}\n", ".yaml");
  const ProcessResult h = run_millstone({"mock", "--listen", "127.0.0.1:0", "--config", half}, 20);
  EXPECT_EQ(h.exit_code, 3) << h.err;
  EXPECT_NE(h.err.find(half + ":3:10: tls has cert but no key"), std::string::npos) << h.err;
}

TEST(MockTls, CertAndKeyFilesAreServed) {
  const tls::Certificate cert = tls::self_signed_localhost();
  const std::string dir = temp_dir();
  const std::string cert_file = write_temp_file(cert.certificate_pem(), ".pem");
  const std::string key_file = write_temp_file(cert.key_pem(), ".pem");
  TlsMock mock({"--cert", cert_file, "--key", key_file});
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  EXPECT_EQ(shell("curl -sS --cacert " + cert_file + " " + mock.url("/hello")), "hello\n");
}

TEST(MockTls, MismatchedCertAndKeyExitWithTheConfigCode) {
  const tls::Certificate one = tls::self_signed_localhost();
  const tls::Certificate other = tls::self_signed_localhost();
  const std::string cert_file = write_temp_file(one.certificate_pem(), ".pem");
  const std::string key_file = write_temp_file(other.key_pem(), ".pem");
  const ProcessResult r = run_millstone(
      {"mock", "--listen", "127.0.0.1:0", "--cert", cert_file, "--key", key_file}, 20);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(key_file + " does not match the certificate " + cert_file),
            std::string::npos)
      << r.err;

  const ProcessResult missing = run_millstone(
      {"mock", "--listen", "127.0.0.1:0", "--cert", "/nonexistent/cert.pem", "--key", key_file},
      20);
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("/nonexistent/cert.pem"), std::string::npos) << missing.err;

  const ProcessResult half =
      run_millstone({"mock", "--listen", "127.0.0.1:0", "--cert", cert_file});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_NE(half.err.find("--cert needs --key"), std::string::npos) << half.err;
}

}  // namespace mock_tls_test
}  // namespace millstone::testing
