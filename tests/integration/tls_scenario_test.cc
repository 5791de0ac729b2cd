// Scenario files over TLS (docs/scenarios.md#tls) against real servers on
// 127.0.0.1: `millstone mock --tls` (https, wss and a TLS tcp listener, every
// count checked against the mock's own), a WebSocket server behind TLS from
// the npm `ws` package on node's https module (messages counted by the
// server), and hostile peers: a certificate for another host, an expired one,
// and a plaintext server on a wss:// URL.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "socket_servers.h"
#include "support.h"
#include "tls/certificate.h"

namespace millstone::testing {
namespace tls_scenario_test {

bool have_node() {
  return system("node --version > /dev/null 2>&1") == 0;
}

struct RunOutcome {
  ProcessResult result;
  nlohmann::json json;
};

RunOutcome run_scenario(const std::string& yaml, double timeout_s = 60) {
  const std::string path = write_temp_file(yaml, ".yaml");
  const std::string out = write_temp_file("", ".json");
  RunOutcome run;
  run.result = run_millstone({"run", path, "-w", "1", "-o", out}, timeout_s);
  if (run.result.exit_code != 8) run.json = read_json(out);  // exit 8: no run, no summary
  return run;
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  return std::regex_replace(text, std::regex(from), to);
}

// `millstone mock --tls --config ...` on free ports; the certificate it
// serves (self-signed, names localhost and 127.0.0.1) is written to cert().
// `tls` false: the same mock in cleartext (HTTP/1.1 and h2c).
class TlsMock {
 public:
  explicit TlsMock(const std::string& config, bool tls = true) : tls_(tls) {
    cert_ = temp_dir() + "/scenario-mock.pem";
    std::vector<std::string> args{"mock",
                                  "--listen",
                                  "127.0.0.1:0",
                                  "--workers",
                                  "1",
                                  "--config",
                                  write_temp_file(config, ".yaml")};
    if (tls) args.insert(args.end(), {"--tls", "--tls-cert-out", cert_});
    process_ = std::make_unique<Process>(args);
    const std::regex listening(tls ? R"(listening on https://127\.0\.0\.1:(\d+))"
                                   : R"(listening on 127\.0\.0\.1:(\d+))");
    for (int i = 0; i < 500 && port_ == 0; ++i) {
      std::smatch m;
      const std::string out = process_->stdout_so_far();
      if (std::regex_search(out, m, listening) &&
          (!tls || out.find("SHA-256") != std::string::npos)) {
        port_ = std::stoi(m[1]);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  ~TlsMock() {
    process_->signal(SIGTERM);
    process_->wait(10);
  }
  int port() const { return port_; }
  const std::string& cert() const { return cert_; }
  nlohmann::json stats() const {
    const std::string url = (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") +
                            std::to_string(port_) + "/__millstone/stats";
    return nlohmann::json::parse(shell("curl -sS --cacert " + cert_ + " " + url), nullptr, false);
  }
  std::string stdout_so_far() const { return process_->stdout_so_far(); }

 private:
  bool tls_;
  std::unique_ptr<Process> process_;
  std::string cert_;
  int port_ = 0;
};

// node tests/interop/ws_server.js PORT CERT KEY: wss on node's https module.
class NodeWssServer {
 public:
  NodeWssServer(const std::string& cert, const std::string& key)
      : cert_(cert),
        process_({"node", MILLSTONE_SOURCE_DIR "/tests/interop/ws_server.js", "0", cert, key}) {
    const std::string line = process_.wait_for_line("listening ", 20);
    if (!line.empty()) port_ = std::stoi(line.substr(10));
  }
  int port() const { return port_; }
  // The server's own counts: {"connections":N,"received":M}.
  nlohmann::json counts() const {
    return nlohmann::json::parse(
        shell("curl -sS -k https://127.0.0.1:" + std::to_string(port_) + "/count"), nullptr, false);
  }

 private:
  std::string cert_;
  ChildProcess process_;
  int port_ = 0;
};

// A certificate and key made with the openssl command line, as a user would.
struct PemFiles {
  std::string cert;
  std::string key;
};

PemFiles openssl_certificate(const std::string& name, const std::string& san) {
  static int serial = 0;
  const std::string base =
      temp_dir() + "/openssl-" + std::to_string(getpid()) + "-" + std::to_string(++serial);
  PemFiles files{base + "-cert.pem", base + "-key.pem"};
  shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
        files.key + " -out " + files.cert + " -days 2 -subj /CN=" + name +
        " -addext subjectAltName=" + san);
  return files;
}

constexpr const char* kMockConfig = R"(routes:
  - path: /hello
    body: "hello\n"
websockets:
  - path: /echo
    echo: true
tcp:
  - listen: 127.0.0.1:TCP_PORT
    echo: true
    tls: true
)";

TEST(TlsScenario, HttpsWssAndTlsTcpCountedByTheMock) {
  const int tcp_port = free_port();
  TlsMock mock(replace(kMockConfig, "TCP_PORT", std::to_string(tcp_port)));
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  std::string yaml = R"(
target: https://127.0.0.1:PORT
defaults:
  tls:
    ca: CERT
flows:
  all:
    steps:
      - get: /hello
        check: {status: 200, body: {contains: hello}}
      - ws.connect: /echo
      - ws.send: "hi {{ vu }}"
      - ws.expect: {text: "hi {{ vu }}", unmatched: fail, timeout: 3s}
      - ws.close: {}
      - tcp.connect: 127.0.0.1:TCP_PORT
        tls: true
      - tcp.send: "ping {{ iteration }}\n"
      - tcp.expect: {delimiter: "\n", regex: "^ping [0-9]+$", unmatched: fail, timeout: 3s}
      - tcp.close: {}
scenarios:
  main: {executor: iterations, vus: 3, iterations: 24, max_duration: 30s}
thresholds:
  - error_rate == 0
)";
  yaml = replace(yaml, "TCP_PORT", std::to_string(tcp_port));
  yaml = replace(yaml, "PORT", std::to_string(mock.port()));
  yaml = replace(yaml, "CERT", mock.cert());
  const RunOutcome run = run_scenario(yaml);
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  const nlohmann::json& j = run.json;
  const nlohmann::json stats = mock.stats();
  ASSERT_TRUE(stats.is_object());

  // What the mock served, against what millstone says it did.
  EXPECT_EQ(stats["routes"][0]["requests"], 24);
  EXPECT_EQ(count(step(j, "all/GET /hello"), "requests"), 24u);
  const nlohmann::json& ws = stats["sockets"][0];
  EXPECT_EQ(ws["total"], 24) << ws.dump();
  EXPECT_EQ(ws["messages_in"], 24);
  EXPECT_EQ(count(step(j, "all/ws.send"), "requests"), 24u);
  EXPECT_EQ(count(step(j, "all/ws.expect"), "failed"), 0u);
  const nlohmann::json& tcp = stats["sockets"][1];
  EXPECT_EQ(tcp["total"], 24) << tcp.dump();
  EXPECT_EQ(tcp["messages_in"], 24);
  EXPECT_EQ(tcp["tls"]["handshakes"], 24);
  EXPECT_EQ(tcp["tls"]["failed_handshakes"], 0);
  EXPECT_EQ(count(step(j, "all/tcp.expect"), "failed"), 0u);

  // Handshakes: the mock's HTTPS listener counted millstone's pre-flight and
  // this stats request besides the run's (3 keep-alive connections, 24 wss).
  ASSERT_TRUE(j.contains("tls")) << j.dump();
  const uint64_t http_listener = stats["tls"]["handshakes"].get<uint64_t>();
  EXPECT_EQ(count(j["tls"], "handshakes"), http_listener - 2 + 24);
  EXPECT_EQ(stats["tls"]["failed_handshakes"], 0);
  EXPECT_GT(count(j["tls"], "resumed"), 0u);  // resumption is on by default
  EXPECT_GT(j["tls"]["handshake_ms"]["p50"].get<double>(), 0.0);
  // The text summary has quick mode's tls line.
  EXPECT_NE(run.result.out.find("  tls          "), std::string::npos) << run.result.out;
  EXPECT_NE(run.result.out.find("millstone run"), std::string::npos);
}

TEST(TlsScenario, NodeWsServerBehindTlsCountsEveryMessage) {
  if (!have_node()) GTEST_SKIP() << "node is not installed";
  const PemFiles pem = openssl_certificate("localhost", "DNS:localhost,IP:127.0.0.1");
  NodeWssServer server(pem.cert, pem.key);
  ASSERT_NE(server.port(), 0) << "node ws_server.js did not start";
  // A path on an https target is wss to the same host and port.
  std::string yaml = R"(
target: https://localhost:PORT
defaults:
  tls: {ca: CERT, min_version: "1.3"}
flows:
  feed:
    steps:
      - ws.connect: /feed
        subprotocol: chat.v1
      - ws.expect: {json: {"$.type": welcome}, timeout: 3s}
      - loop: 5
        steps:
          - ws.send: '{"type":"mine","n":{{ vu }}}'
          - ws.expect: {json: {"$.type": mine}, timeout: 3s}
      - ws.close: {}
scenarios:
  main: {executor: iterations, vus: 2, iterations: 6, max_duration: 30s}
)";
  yaml = replace(yaml, "PORT", std::to_string(server.port()));
  yaml = replace(yaml, "CERT", pem.cert);
  const RunOutcome run = run_scenario(yaml);
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  const nlohmann::json counts = server.counts();
  ASSERT_TRUE(counts.is_object());
  EXPECT_EQ(counts["connections"], 6);
  EXPECT_EQ(counts["received"], 30);
  EXPECT_EQ(count(step(run.json, "feed/ws.send"), "requests"), 30u);
  EXPECT_EQ(count(step(run.json, "feed/ws.expect #2"), "failed"), 0u);
  EXPECT_EQ(count(run.json["tls"], "handshakes"), 6u);
}

// Verification is on by default: a certificate for another name, or one
// past its validity, stops the run before it starts (exit 8) with the
// classified cause and how to fix it in the file.
TEST(TlsScenario, WrongHostAndExpiredCertificatesFailThePreflight) {
  if (!have_node()) GTEST_SKIP() << "node is not installed";
  const char* yaml = R"(
target: https://127.0.0.1:PORT
defaults:
  tls: {ca: CERT}
flows:
  a:
    steps:
      - get: /count
scenarios:
  main: {executor: iterations, vus: 1, iterations: 1}
)";
  {
    const PemFiles other = openssl_certificate("other.example", "DNS:other.example");
    NodeWssServer server(other.cert, other.key);
    ASSERT_NE(server.port(), 0);
    const RunOutcome run = run_scenario(
        replace(replace(yaml, "PORT", std::to_string(server.port())), "CERT", other.cert));
    EXPECT_EQ(run.result.exit_code, 8) << run.result.err;
    EXPECT_NE(run.result.err.find("tls_certificate_hostname"), std::string::npos) << run.result.err;
    EXPECT_NE(run.result.err.find("defaults: tls:"), std::string::npos) << run.result.err;
    EXPECT_EQ(server.counts()["connections"], 0);
  }
  {
    tls::CertificateSpec spec;
    spec.common_name = "localhost";
    spec.dns_names = {"localhost"};
    spec.ip_addresses = {"127.0.0.1"};
    spec.valid_from_s = -7200;
    spec.valid_until_s = -3600;
    const tls::Certificate expired = tls::issue_certificate(spec);
    const std::string cert = write_temp_file(expired.certificate_pem(), ".pem");
    const std::string key = write_temp_file(expired.key_pem(), ".pem");
    NodeWssServer server(cert, key);
    ASSERT_NE(server.port(), 0);
    const RunOutcome run =
        run_scenario(replace(replace(yaml, "PORT", std::to_string(server.port())), "CERT", cert));
    EXPECT_EQ(run.result.exit_code, 8) << run.result.err;
    EXPECT_NE(run.result.err.find("tls_certificate_expired"), std::string::npos) << run.result.err;
    // insecure: true skips verification: the same server is then usable.
    const RunOutcome insecure =
        run_scenario(replace(replace(yaml, "PORT", std::to_string(server.port())), "\\{ca: CERT\\}",
                             "{insecure: true}"));
    EXPECT_EQ(insecure.result.exit_code, 0) << insecure.result.err;
  }
}

// Not covered by the pre-flight (the target is plain): a wss step to a
// server whose certificate names another host, and a wss:// URL on a
// plaintext WebSocket server, are step failures counted by TLS cause, and the
// run ends on time.
TEST(TlsScenario, WssStepsToWrongHostAndPlaintextServersAreClassified) {
  if (!have_node()) GTEST_SKIP() << "node is not installed";
  const PemFiles other = openssl_certificate("other.example", "DNS:other.example");
  NodeWssServer wrong_host(other.cert, other.key);
  ASSERT_NE(wrong_host.port(), 0);
  MockServer plain("routes:\n  - path: /hello\nwebsockets:\n  - path: /echo\n    echo: true\n");
  std::string yaml = R"(
target: http://127.0.0.1:PLAIN
defaults:
  tls: {ca: CERT}
flows:
  wrong_host:
    steps:
      - ws.connect: wss://127.0.0.1:WRONG/feed
  plaintext:
    steps:
      - ws.connect: wss://127.0.0.1:PLAIN/echo
        timeout: 3s
scenarios:
  a: {executor: iterations, vus: 1, iterations: 3, max_duration: 20s, flows: [wrong_host]}
  b: {executor: iterations, vus: 1, iterations: 2, max_duration: 20s, flows: [plaintext]}
)";
  yaml = replace(yaml, "WRONG", std::to_string(wrong_host.port()));
  yaml = replace(yaml, "PLAIN", std::to_string(plain.port()));
  yaml = replace(yaml, "CERT", other.cert);
  const RunOutcome run = run_scenario(yaml);
  // Nothing succeeded: "measured nothing" (6), not a hang or a crash.
  EXPECT_EQ(run.result.exit_code, 6) << run.result.out << run.result.err;
  const nlohmann::json& errors = run.json["errors"];
  EXPECT_EQ(count(errors, "tls_certificate_hostname"), 3u) << errors.dump();
  EXPECT_EQ(count(errors, "tls_handshake"), 2u) << errors.dump();
  EXPECT_EQ(count(step(run.json, "wrong_host/ws.connect wss://127.0.0.1:" +
                                     std::to_string(wrong_host.port()) + "/feed"),
                  "failed"),
            3u);
  EXPECT_EQ(wrong_host.counts()["connections"], 0);
  // The plaintext server saw bytes that were not HTTP: its malformed count.
  const nlohmann::json stats = plain.stats();
  EXPECT_EQ(stats["sockets"][0]["total"], 0) << stats.dump();
  EXPECT_LT(run.json["duration_s"].get<double>(), 15.0);
}

// validate says how the file's TLS connections will verify; a bad file
// named in defaults: tls: is exit 3 with its line, before anything connects.
TEST(TlsScenario, ValidateShowsTlsAndBadFilesAreConfigErrors) {
  const std::string ok = write_temp_file(R"(target: https://127.0.0.1:1
defaults:
  tls: {insecure: true, min_version: "1.3", resumption: false}
flows: {a: {steps: [{get: /}]}}
)",
                                         ".yaml");
  const ProcessResult v = run_millstone({"validate", ok}, 20);
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("  target  https://127.0.0.1:1\n"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("  tls     no verification (insecure), TLS 1.3-1.3, resumption off\n"),
            std::string::npos)
      << v.out;

  const std::string bad = write_temp_file(R"(target: https://127.0.0.1:1
defaults:
  tls: {ca: /nonexistent/ca.pem}
flows: {a: {steps: [{get: /}]}}
)",
                                          ".yaml");
  const ProcessResult r = run_millstone({"run", bad}, 20);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(bad + ":3:13: tls ca file \"/nonexistent/ca.pem\" cannot be read: No "
                             "such file or directory"),
            std::string::npos)
      << r.err;
}

// defaults: {http: 2}: the steps go over HTTP/2 (h2 by ALPN over TLS, prior
// knowledge over cleartext), one connection per VU, with checks, extraction
// and cookies as over HTTP/1.1; a step's http: 1.1 goes over HTTP/1.1. The
// mock's own counts say which protocol carried how many requests.
void expect_h2_steps_counted_by_the_mock(bool tls) {
  TlsMock mock(R"(routes:
  - path: /login
    body: "token-{{ request.query.user }}"
    headers: {set-cookie: "sid=s{{ request.query.user }}; Path=/"}
  - path: /cart
    method: POST
    body: "{{ request.header.cookie }} {{ request.body }}"
)",
               tls);
  ASSERT_NE(mock.port(), 0) << mock.stdout_so_far();
  std::string yaml = R"yaml(
target: SCHEME://127.0.0.1:PORT
defaults:
  http: 2
  tls: {ca: CERT}
flows:
  shop:
    steps:
      - get: /login?user={{ vu }}
        check: {status: 200, header: {set-cookie: {contains: sid}}}
        extract: {token: {regex: "token-([0-9]+)"}}
      - post: /cart
        body: "t={{ token }}"
        check: {body: {matches: "^sid=s[0-9]+ t=[0-9]+$"}}
      - get: /login?user=old
        name: over HTTP 1.1
        http: 1.1
        check: {status: 200}
scenarios:
  main: {executor: iterations, vus: 2, iterations: 12, max_duration: 20s}
thresholds:
  - error_rate == 0
  - checks == 1
)yaml";
  yaml = replace(yaml, "SCHEME", tls ? "https" : "http");
  yaml = replace(yaml, "PORT", std::to_string(mock.port()));
  if (tls) {
    yaml = replace(yaml, "CERT", mock.cert());
  } else {
    yaml.erase(yaml.find("  tls: {ca: CERT}\n"), 18);
  }
  const RunOutcome run = run_scenario(yaml);
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  const nlohmann::json stats = mock.stats();
  ASSERT_TRUE(stats.is_object());
  // 12 iterations: 12 logins and 12 carts over HTTP/2, 12 logins over HTTP/1.1.
  EXPECT_EQ(stats["routes"][0]["requests"], 24) << stats.dump();
  EXPECT_EQ(stats["routes"][0]["http2_requests"], 12);
  EXPECT_EQ(stats["routes"][1]["http2_requests"], 12);
  EXPECT_EQ(stats["http2"]["requests"], 24);
  // One per VU, kept across iterations; over TLS curl's stats request is h2 too.
  EXPECT_EQ(stats["http2"]["connections"], tls ? 3 : 2);
  EXPECT_EQ(stats["http2"]["protocol_errors"], 0);
  const nlohmann::json& j = run.json;
  EXPECT_EQ(count(step(j, "shop/GET /login?user={{ vu }}"), "requests"), 12u);
  EXPECT_EQ(count(step(j, "shop/POST /cart"), "requests"), 12u);
  EXPECT_EQ(count(step(j, "shop/over HTTP 1.1"), "requests"), 12u);
  EXPECT_EQ(count(j, "requests"), 36u);
}

TEST(TlsScenario, Http2StepsOverTlsByAlpnCountedByTheMock) {
  expect_h2_steps_counted_by_the_mock(true);
}

TEST(TlsScenario, Http2StepsOverCleartextPriorKnowledgeCountedByTheMock) {
  expect_h2_steps_counted_by_the_mock(false);
}

}  // namespace tls_scenario_test
}  // namespace millstone::testing
