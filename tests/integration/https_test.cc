// End-to-end https in quick mode: `millstone run https://...` against nginx
// with TLS and `openssl s_server`, with certificates made by the test. The
// server's own access log is the ground truth for requests, connections and
// resumed sessions; the hostile cases (expired or misnamed certificate, a
// plaintext server behind an https URL) must stop at the pre-flight
// handshake with one line and exit code 8.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "socket_servers.h"
#include "support.h"
#include "tls/certificate.h"

namespace millstone::testing {
namespace https_test {

struct Pki {
  std::string dir = temp_dir();
  tls::Certificate ca;
  std::string ca_file;
  Pki() {
    tls::CertificateSpec spec;
    spec.common_name = "millstone https test CA";
    spec.is_ca = true;
    ca = tls::issue_certificate(spec);
    ca_file = write("ca.pem", ca.certificate_pem());
  }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string path = dir + "/" + name;
    std::ofstream(path) << content;
    return path;
  }
  // NAME.crt and NAME.key signed by the CA.
  std::pair<std::string, std::string> issue(const std::string& name,
                                            tls::CertificateSpec spec) const {
    tls::Certificate leaf = tls::issue_certificate(spec, &ca);
    return {write(name + ".crt", leaf.certificate_pem()), write(name + ".key", leaf.key_pem())};
  }
  std::pair<std::string, std::string> loopback(const std::string& name) const {
    tls::CertificateSpec spec;
    spec.common_name = "localhost";
    spec.dns_names = {"localhost"};
    spec.ip_addresses = {"127.0.0.1"};
    return issue(name, spec);
  }
};

// nginx with TLS on a free port; its access log has one line per request:
// "<connection serial> <r if the TLS session was resumed, else .>".
class Nginx {
 public:
  // An empty `cert`: plain http.
  explicit Nginx(const std::pair<std::string, std::string>& cert) : dir_(temp_dir()) {
    const bool ssl = !cert.first.empty();
    port_ = free_port();
    const std::string conf = dir_ + "/nginx.conf";
    std::ofstream(conf) << "worker_processes 1;\ndaemon off;\nmaster_process off;\npid " << dir_
                        << "/nginx.pid;\nerror_log " << dir_
                        << "/error.log warn;\nevents { worker_connections 256; }\nhttp {\n"
                        << "  log_format t '$connection x$ssl_session_reused';\n"
                        << "  access_log " << dir_ << "/access.log t;\n"
                        << "  client_body_temp_path " << dir_ << "/body;\n"
                        << "  proxy_temp_path " << dir_ << "/proxy;\n"
                        << "  fastcgi_temp_path " << dir_ << "/fastcgi;\n"
                        << "  uwsgi_temp_path " << dir_ << "/uwsgi;\n"
                        << "  scgi_temp_path " << dir_ << "/scgi;\n"
                        << "  keepalive_requests 1000000;\n"
                        << "  server {\n    listen 127.0.0.1:" << port_ << (ssl ? " ssl" : "")
                        << ";\n";
    if (ssl) {
      std::ofstream(conf, std::ios::app) << "    ssl_certificate " << cert.first << ";\n"
                                         << "    ssl_certificate_key " << cert.second << ";\n"
                                         << "    ssl_protocols TLSv1.2 TLSv1.3;\n";
    }
    std::ofstream(conf, std::ios::app)
        << "    location = /hello { default_type text/plain; return 200 "
           "\"hello\\n\"; }\n  }\n}\n";
    server_ = std::make_unique<ExternalServer>(
        std::vector<std::string>{"/usr/sbin/nginx", "-c", conf, "-p", dir_, "-e",
                                 dir_ + "/error.log"},
        dir_ + "/stderr.log");
    EXPECT_TRUE(wait_listening(port_)) << "nginx did not start";
  }
  int port() const { return port_; }
  std::string url(const char* scheme = "https") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_) + "/hello";
  }
  // Access log lines as (connection, resumed). nginx writes each line when
  // the request ends, before the run's summary is printed.
  std::vector<std::pair<std::string, bool>> log() const {
    std::vector<std::pair<std::string, bool>> lines;
    std::ifstream in(dir_ + "/access.log");
    std::string connection, reused;
    while (in >> connection >> reused)
      lines.emplace_back(connection, reused == "xr");
    return lines;
  }

 private:
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ExternalServer> server_;
};

bool has_nginx() {
  return access("/usr/sbin/nginx", X_OK) == 0;
}

TEST(HttpsIntegration, RequestsMatchNginxAccessLog) {
  if (!has_nginx()) GTEST_SKIP() << "no /usr/sbin/nginx";
  Pki pki;
  Nginx nginx(pki.loopback("server"));
  const std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", nginx.url(), "--cacert", pki.ca_file, "-c", "4", "-d", "1s", "-w",
                          "1", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  const auto log = nginx.log();
  EXPECT_GT(log.size(), 0u);
  EXPECT_EQ(j["requests"].get<uint64_t>() + j["in_flight"].get<uint64_t>(), log.size());
  EXPECT_EQ(j["status"]["200"].get<uint64_t>(), j["requests"].get<uint64_t>());
  ASSERT_TRUE(j.contains("tls")) << j.dump();
  EXPECT_EQ(j["tls"]["handshakes"], 4);
  EXPECT_GT(j["tls"]["handshake_ms"]["max"].get<double>(), 0);
  EXPECT_NE(r.out.find("tls          4 handshakes"), std::string::npos) << r.out;

  // The tls object is in docs/summary.schema.json, strictly (as in
  // ReportIntegration.SummariesValidateAgainstTheSchema).
  expect_valid_summary(out);
}

// --no-keepalive: one connection and one handshake per request, as nginx
// counts them; after the first, sessions are resumed unless turned off.
TEST(HttpsIntegration, NoKeepaliveHandshakesPerRequestAndResumes) {
  if (!has_nginx()) GTEST_SKIP() << "no /usr/sbin/nginx";
  Pki pki;
  Nginx nginx(pki.loopback("server"));
  for (const bool resumption : {true, false}) {
    const size_t before = nginx.log().size();
    const std::string out = write_temp_file("", ".json");
    std::vector<std::string> args = {"run", nginx.url(), "--cacert", pki.ca_file, "--no-keepalive",
                                     "-c",  "1",         "-d",       "1s",        "-w",
                                     "1",   "-q",        "-o",       out};
    if (!resumption) args.push_back("--no-tls-resumption");
    auto r = run_millstone(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = read_json(out);
    auto log = nginx.log();
    log.erase(log.begin(), log.begin() + static_cast<long>(before));
    std::set<std::string> connections;
    size_t resumed = 0;
    for (const auto& [connection, reused] : log) {
      connections.insert(connection);
      resumed += reused ? 1 : 0;
    }
    const uint64_t requests = j["requests"].get<uint64_t>() + j["in_flight"].get<uint64_t>();
    EXPECT_GT(requests, 2u);
    EXPECT_EQ(log.size(), requests);
    EXPECT_EQ(connections.size(), log.size()) << "a connection served two requests";
    EXPECT_GE(j["tls"]["handshakes"].get<uint64_t>(), requests);
    if (resumption) {
      EXPECT_GT(resumed, 0u);
      EXPECT_GT(j["tls"]["resumed"].get<uint64_t>(), 0u);
    } else {
      EXPECT_EQ(resumed, 0u);
      EXPECT_EQ(j["tls"]["resumed"].get<uint64_t>(), 0u);
    }
  }
}

// --no-keepalive works for http:// too: a new TCP connection per request.
TEST(HttpsIntegration, NoKeepaliveOverPlainHttp) {
  if (!has_nginx()) GTEST_SKIP() << "no /usr/sbin/nginx";
  Nginx nginx({"", ""});
  const std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", nginx.url("http"), "--no-keepalive", "-c", "2", "-d", "1s", "-w",
                          "1", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  const auto log = nginx.log();
  std::set<std::string> connections;
  for (const auto& line : log)
    connections.insert(line.first);
  EXPECT_GT(log.size(), 2u);
  EXPECT_EQ(log.size(), j["requests"].get<uint64_t>() + j["in_flight"].get<uint64_t>());
  EXPECT_EQ(connections.size(), log.size()) << "a connection served two requests";
  EXPECT_FALSE(j.contains("tls"));
}

// openssl s_server -www answers each request and closes (HTTP/1.0).
class SServer {
 public:
  SServer(const std::pair<std::string, std::string>& cert, const std::string& dir) {
    port_ = free_port();
    server_ = std::make_unique<ExternalServer>(
        std::vector<std::string>{"/usr/bin/openssl", "s_server", "-quiet", "-www", "-accept",
                                 std::to_string(port_), "-cert", cert.first, "-key", cert.second},
        dir + "/s_server.log");
    EXPECT_TRUE(wait_listening(port_)) << "openssl s_server did not start";
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  int port_ = 0;
  std::unique_ptr<ExternalServer> server_;
};

TEST(HttpsIntegration, OpensslServerWithTrustedCertificate) {
  Pki pki;
  SServer server(pki.loopback("server"), pki.dir);
  const std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", server.url(), "--cacert", pki.ca_file, "-c", "1", "-d", "1s", "-w",
                          "1", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  EXPECT_GT(j["status"]["200"].get<uint64_t>(), 0u);
  EXPECT_GT(j["tls"]["handshakes"].get<uint64_t>(), 0u);
}

TEST(HttpsIntegration, ExpiredCertificateStopsAtThePreflight) {
  Pki pki;
  tls::CertificateSpec spec;
  spec.ip_addresses = {"127.0.0.1"};
  spec.valid_from_s = -7200;
  spec.valid_until_s = -3600;
  SServer server(pki.issue("expired", spec), pki.dir);
  auto r = run_millstone({"run", server.url(), "--cacert", pki.ca_file, "-d", "1s", "-q"});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find(server.url() + ": TLS handshake failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("certificate has expired (tls_certificate_expired)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("-k"), std::string::npos) << r.err;
}

TEST(HttpsIntegration, WrongHostStopsAtThePreflight) {
  Pki pki;
  tls::CertificateSpec spec;
  spec.common_name = "other.example";
  spec.dns_names = {"other.example"};
  SServer server(pki.issue("other", spec), pki.dir);
  auto r = run_millstone({"run", server.url(), "--cacert", pki.ca_file, "-d", "1s", "-q"});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("(tls_certificate_hostname)"), std::string::npos) << r.err;
}

TEST(HttpsIntegration, InsecureAcceptsASelfSignedCertificate) {
  Pki pki;
  tls::Certificate self = tls::self_signed_localhost();
  const std::pair<std::string, std::string> files = {pki.write("self.crt", self.certificate_pem()),
                                                     pki.write("self.key", self.key_pem())};
  SServer server(files, pki.dir);
  auto refused = run_millstone({"run", server.url(), "-d", "1s", "-q"});
  EXPECT_EQ(refused.exit_code, 8) << refused.err;
  EXPECT_NE(refused.err.find("(tls_certificate_untrusted)"), std::string::npos) << refused.err;
  const std::string out = write_temp_file("", ".json");
  auto r =
      run_millstone({"run", server.url(), "-k", "-c", "1", "-d", "1s", "-w", "1", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(read_json(out)["status"]["200"].get<uint64_t>(), 0u);
}

TEST(HttpsIntegration, PlaintextServerIsATlsHandshakeError) {
  MockServer mock("routes:\n  - path: /\n    body: \"plain\\n\"\n");
  const std::string url = "https://127.0.0.1:" + std::to_string(mock.port()) + "/";
  auto r = run_millstone({"run", url, "-k", "-d", "1s", "-q"});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("(tls_handshake)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("does not speak TLS"), std::string::npos) << r.err;
}

TEST(HttpsIntegration, BadTlsFlagsAndFiles) {
  auto r = run_millstone({"run", "https://127.0.0.1:9/", "--tls-min", "1.1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--tls-min \"1.1\" is not a TLS version"), std::string::npos) << r.err;
  r = run_millstone({"run", "https://127.0.0.1:9/", "--alpn", "h2,,x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_millstone({"run", "http://127.0.0.1:9/", "-k"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("need an https:// URL"), std::string::npos) << r.err;
  r = run_millstone({"run", "https://127.0.0.1:9/", "--cacert", "/nonexistent/ca.pem"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("--cacert /nonexistent/ca.pem: cannot read"), std::string::npos) << r.err;
  const std::string garbage = write_temp_file("not a certificate\n", ".pem");
  r = run_millstone({"run", "https://127.0.0.1:9/", "--cacert", garbage});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(garbage), std::string::npos) << r.err;
  r = run_millstone({"run", "https://127.0.0.1:9/", "--cert", garbage});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--cert needs --key"), std::string::npos) << r.err;
}

}  // namespace https_test
}  // namespace millstone::testing
