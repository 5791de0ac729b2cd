// End-to-end HTTP/2 in quick mode (`millstone run URL --http2`) against real
// peers on 127.0.0.1: nginx with `http2` (TLS with a certificate made here,
// and cleartext prior knowledge) and nghttpd. The servers' own records are
// the ground truth: nginx's access log counts requests and the connections
// they came on, so --streams is seen to multiplex. Hostile peers (an early
// GOAWAY, RST_STREAM on every request, an HTTP/1.1 server) end in counted,
// classified errors and a bounded run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "socket_servers.h"
#include "support.h"
#include "tls/certificate.h"

namespace millstone::testing {
namespace http2_test {

// A self-signed loopback certificate and key, as files.
std::pair<std::string, std::string> loopback_certificate(const std::string& dir) {
  tls::CertificateSpec spec;
  spec.common_name = "localhost";
  spec.dns_names = {"localhost"};
  spec.ip_addresses = {"127.0.0.1"};
  const tls::Certificate cert = tls::issue_certificate(spec);
  std::ofstream(dir + "/server.crt") << cert.certificate_pem();
  std::ofstream(dir + "/server.key") << cert.key_pem();
  return {dir + "/server.crt", dir + "/server.key"};
}

// nginx with `http2` on a free port; access log: "<connection> <protocol>".
class Nginx {
 public:
  Nginx(bool ssl, bool http2) : dir_(temp_dir()), port_(free_port()) {
    const std::string conf = dir_ + "/nginx.conf";
    std::ofstream c(conf);
    c << "worker_processes 1;\ndaemon off;\nmaster_process off;\npid " << dir_
      << "/nginx.pid;\nerror_log " << dir_ << "/error.log warn;\n"
      << "events { worker_connections 256; }\nhttp {\n"
      << "  log_format t '$connection $server_protocol';\n"
      << "  access_log " << dir_ << "/access.log t;\n";
    for (const char* temp : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
      c << "  " << temp << "_temp_path " << dir_ << "/" << temp << ";\n";
    c << "  keepalive_requests 1000000;\n  http2_max_requests 1000000;\n"
      << "  server {\n    listen 127.0.0.1:" << port_ << (ssl ? " ssl" : "")
      << (http2 ? " http2" : "") << ";\n";
    if (ssl) {
      const auto [cert, key] = loopback_certificate(dir_);
      c << "    ssl_certificate " << cert << ";\n    ssl_certificate_key " << key << ";\n";
    }
    c << "    location = /hello { default_type text/plain; return 200 \"hello\\n\"; }\n"
      << "    location = /missing { return 404; }\n  }\n}\n";
    c.close();
    server_ = std::make_unique<ExternalServer>(
        std::vector<std::string>{"/usr/sbin/nginx", "-c", conf, "-p", dir_, "-e",
                                 dir_ + "/error.log"},
        dir_ + "/stderr.log");
    EXPECT_TRUE(wait_for_port(port_, 2.0)) << "nginx did not start";
  }
  std::string url(const char* scheme, const char* path = "/hello") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  // (connection serial, protocol) per request.
  std::vector<std::pair<std::string, std::string>> log() const {
    std::vector<std::pair<std::string, std::string>> lines;
    std::ifstream in(dir_ + "/access.log");
    std::string connection, protocol;
    while (in >> connection >> protocol)
      lines.emplace_back(connection, protocol);
    return lines;
  }

 private:
  std::string dir_;
  int port_;
  std::unique_ptr<ExternalServer> server_;
};

bool has(const char* path) {
  return access(path, X_OK) == 0;
}

TEST(Http2Integration, NginxOverTlsCountsRequestsAndMultiplexes) {
  if (!has("/usr/sbin/nginx")) GTEST_SKIP() << "no /usr/sbin/nginx";
  Nginx nginx(true, true);
  const std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", nginx.url("https"), "--http2", "-k", "-c", "2", "--streams", "10",
                          "-d", "1s", "-w", "1", "-q", "--no-history", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  const auto log = nginx.log();
  const uint64_t requests = j["requests"].get<uint64_t>();
  ASSERT_GT(requests, 0u);
  // Requests still in flight at the end may or may not have reached the log.
  EXPECT_GE(log.size(), requests);
  EXPECT_LE(log.size(), requests + j["in_flight"].get<uint64_t>());
  std::set<std::string> connections;
  for (const auto& [connection, protocol] : log) {
    connections.insert(connection);
    EXPECT_EQ(protocol, "HTTP/2.0");
  }
  EXPECT_LE(connections.size(), 2u);  // 10 streams each, on 2 connections
  EXPECT_EQ(j["status"]["200"].get<uint64_t>(), requests);
  EXPECT_EQ(j["http2"]["streams"], 10);
  EXPECT_NE(r.out.find("http/2       10 streams per connection"), std::string::npos) << r.out;
  expect_valid_summary(out);
}

TEST(Http2Integration, NginxCleartextPriorKnowledgeOpenModel) {
  if (!has("/usr/sbin/nginx")) GTEST_SKIP() << "no /usr/sbin/nginx";
  Nginx nginx(false, true);
  const std::string out = write_temp_file("", ".json");
  // 400 requests due over 1 s on one connection with 4 streams.
  auto r =
      run_millstone({"run", nginx.url("http", "/missing"), "--http2", "-c", "1", "--streams", "4",
                     "--rate", "400", "-d", "1s", "-w", "1", "-q", "--no-history", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  const auto log = nginx.log();
  const uint64_t requests = j["requests"].get<uint64_t>();
  EXPECT_GE(log.size(), requests);
  EXPECT_LE(log.size(), requests + j["in_flight"].get<uint64_t>());
  EXPECT_EQ(j["status"]["404"].get<uint64_t>(), requests);
  EXPECT_EQ(j["http_failures"].get<uint64_t>(), requests);  // classified as for HTTP/1.1
  EXPECT_EQ(j["schedule"]["scheduled"].get<uint64_t>(),
            requests + j["in_flight"].get<uint64_t>() +
                j["schedule"]["not_started"].get<uint64_t>() +
                j["transport_errors"].get<uint64_t>());
}

TEST(Http2Integration, TlsServerWithoutH2StopsAtThePreflight) {
  if (!has("/usr/sbin/nginx")) GTEST_SKIP() << "no /usr/sbin/nginx";
  Nginx nginx(true, false);
  auto r = run_millstone({"run", nginx.url("https"), "--http2", "-k", "-d", "1s", "-q"});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("h2"), std::string::npos) << r.err;
}

TEST(Http2Integration, NghttpdServesEveryRequestItLogs) {
  if (!has("/usr/sbin/nghttpd")) GTEST_SKIP() << "no /usr/sbin/nghttpd (nghttp2-server)";
  const std::string dir = temp_dir();
  std::ofstream(dir + "/index.html") << "hello from nghttpd\n";
  const int port = free_port();
  const std::string log = dir + "/nghttpd.log";
  {
    ExternalServer nghttpd({"/usr/sbin/nghttpd", "--no-tls", "-v", "-d", dir, std::to_string(port)},
                           log);
    ASSERT_TRUE(wait_for_port(port, 2.0)) << "nghttpd did not start";
    const std::string out = write_temp_file("", ".json");
    auto r =
        run_millstone({"run", "http://127.0.0.1:" + std::to_string(port) + "/index.html", "--http2",
                       "-c", "2", "--streams", "8", "-d", "1s", "-w", "1", "-q", "--no-history",
                       "-o", out, "--h2-window", "1048576", "--h2-header-table", "8192"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = read_json(out);
    const uint64_t requests = j["requests"].get<uint64_t>();
    ASSERT_GT(requests, 0u);
    EXPECT_EQ(j["status"]["200"].get<uint64_t>(), requests);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let nghttpd flush its log
    std::ifstream in(log);
    std::string line;
    uint64_t served = 0;
    bool window = false;
    bool table = false;
    std::set<std::string> sessions;
    while (std::getline(in, line)) {
      // -v prints each frame it sends: one HEADERS with :status per response.
      if (line.find("send HEADERS frame") != std::string::npos) ++served;
      if (line.find("SETTINGS_INITIAL_WINDOW_SIZE(0x04):1048576") != std::string::npos) {
        window = true;
      }
      if (line.find("SETTINGS_HEADER_TABLE_SIZE(0x01):8192") != std::string::npos) table = true;
    }
    EXPECT_GE(served, requests);
    EXPECT_LE(served, requests + j["in_flight"].get<uint64_t>());
    EXPECT_TRUE(window) << "nghttpd did not see --h2-window";
    EXPECT_TRUE(table) << "nghttpd did not see --h2-header-table";
  }
}

// A scenario with defaults: {http: 2} against nghttpd (h2c, prior
// knowledge): every step sent is a response nghttpd says it sent, and the
// steps' checks see its headers and body.
TEST(Http2Integration, ScenarioStepsOverH2cAgainstNghttpd) {
  if (!has("/usr/sbin/nghttpd")) GTEST_SKIP() << "no /usr/sbin/nghttpd (nghttp2-server)";
  const std::string dir = temp_dir();
  std::ofstream(dir + "/index.html") << "hello from nghttpd\n";
  const int port = free_port();
  const std::string log = dir + "/nghttpd-scenario.log";
  ExternalServer nghttpd({"/usr/sbin/nghttpd", "--no-tls", "-v", "-d", dir, std::to_string(port)},
                         log);
  ASSERT_TRUE(wait_for_port(port, 2.0)) << "nghttpd did not start";
  const std::string yaml = "target: http://127.0.0.1:" + std::to_string(port) + R"(
defaults: {http: 2}
flows:
  page:
    steps:
      - get: /index.html
        check: {status: 200, body: {contains: nghttpd}, header: {server: {contains: nghttpd}}}
      - get: /missing.html
        check: {status: 404}
scenarios:
  main: {executor: iterations, vus: 2, iterations: 10, max_duration: 20s}
thresholds:
  - checks == 1
)";
  const std::string out = write_temp_file("", ".json");
  auto r = run_millstone(
      {"run", write_temp_file(yaml, ".yaml"), "-w", "1", "-q", "--no-history", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json j = read_json(out);
  EXPECT_EQ(j["requests"].get<uint64_t>(), 20u);
  // -v prints each frame it sends: one HEADERS with :status per response.
  uint64_t served = 0;
  for (int i = 0; i < 200 && served < 20; ++i) {
    std::ifstream in(log);
    std::string line;
    served = 0;
    while (std::getline(in, line)) {
      if (line.find("send HEADERS frame") != std::string::npos) ++served;
    }
    if (served < 20) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(served, 20u);
}

// A hand-written HTTP/2 server for the hostile cases: answers each
// connection's first bytes with an empty SETTINGS and then either a GOAWAY
// (last stream 0, ENHANCE_YOUR_CALM) or an RST_STREAM (INTERNAL_ERROR) for
// every HEADERS frame the client sends. Counts what it sent.
class HostileServer {
 public:
  enum class Mode { kGoaway, kReset };
  explicit HostileServer(Mode mode) : mode_(mode) {
    listen_fd_ = listen_loopback(&port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~HostileServer() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
    for (const Client& c : clients_)
      close(c.fd);
  }
  int port() const { return port_; }
  uint64_t goaways() const { return goaways_; }
  uint64_t resets() const { return resets_; }

 private:
  struct Client {
    int fd;
    std::string in;
    size_t offset = 0;  // past the 24-byte preface once seen
  };
  static std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& body) {
    std::string f;
    const uint32_t n = static_cast<uint32_t>(body.size());
    f += static_cast<char>(n >> 16);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n);
    f += static_cast<char>(type);
    f += static_cast<char>(flags);
    for (int shift = 24; shift >= 0; shift -= 8)
      f += static_cast<char>((stream >> shift) & 0xff);
    return f + body;
  }
  static std::string u32(uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
            static_cast<char>(v)};
  }
  void send_all(int fd, const std::string& bytes) {
    (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  void serve() {
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (const Client& c : clients_)
        fds.push_back({c.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        const int fd = accept(listen_fd_, nullptr, nullptr);
        if (fd >= 0) {
          std::string hello = frame(0x4, 0, 0, "");  // SETTINGS
          if (mode_ == Mode::kGoaway) {
            hello += frame(0x7, 0, 0, u32(0) + u32(0xb));  // GOAWAY last 0, ENHANCE_YOUR_CALM
            ++goaways_;
          }
          send_all(fd, hello);
          clients_.push_back({fd, ""});
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Client& c = clients_[i - 1];
        char buf[16384];
        const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n <= 0) {
          close(c.fd);
          c.fd = -1;
          continue;
        }
        c.in.append(buf, static_cast<size_t>(n));
        if (c.offset == 0 && c.in.size() >= 24) c.offset = 24;
        while (c.offset > 0 && c.in.size() >= c.offset + 9) {
          const auto* h = reinterpret_cast<const uint8_t*>(c.in.data() + c.offset);
          const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
          if (c.in.size() < c.offset + 9 + length) break;
          const uint32_t stream = ((uint32_t{h[5]} & 0x7f) << 24) | (uint32_t{h[6]} << 16) |
                                  (uint32_t{h[7]} << 8) | h[8];
          if (h[3] == 0x1 && mode_ == Mode::kReset) {  // HEADERS
            send_all(c.fd, frame(0x3, 0, stream, u32(0x2)));
            ++resets_;
          }
          if (h[3] == 0x4 && !(h[4] & 0x1)) send_all(c.fd, frame(0x4, 0x1, 0, ""));  // ACK
          c.offset += 9 + length;
        }
      }
      std::erase_if(clients_, [](const Client& c) { return c.fd < 0; });
    }
  }

  Mode mode_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> goaways_{0};
  std::atomic<uint64_t> resets_{0};
  std::vector<Client> clients_;
  std::thread thread_;
};

TEST(Http2Integration, EarlyGoawayIsCountedAndBacksOff) {
  HostileServer server(HostileServer::Mode::kGoaway);
  const std::string out = write_temp_file("", ".json");
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  auto r = run_millstone({"run", url, "--http2", "-c", "2", "--streams", "4", "-d", "1s", "-w", "1",
                          "-q", "--no-history", "-o", out},
                         20);
  EXPECT_EQ(r.exit_code, 6) << r.err;  // measured nothing
  const nlohmann::json j = read_json(out);
  const uint64_t seen = j["http2"]["goaway"]["enhance_your_calm"].get<uint64_t>();
  EXPECT_GE(seen, 1u);
  EXPECT_LE(seen, server.goaways());
  // Reconnects back off instead of hammering: far fewer than a busy loop.
  EXPECT_LT(server.goaways(), 400u);
  EXPECT_NE(r.out.find("GOAWAY received: enhance_your_calm"), std::string::npos) << r.out;
}

TEST(Http2Integration, RstStreamFailsEachRequestByCode) {
  HostileServer server(HostileServer::Mode::kReset);
  const std::string out = write_temp_file("", ".json");
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  auto r = run_millstone({"run", url, "--http2", "-c", "1", "--streams", "4", "--rate", "200", "-d",
                          "1s", "-w", "1", "-q", "--no-history", "-o", out},
                         20);
  EXPECT_EQ(r.exit_code, 6) << r.err;
  const nlohmann::json j = read_json(out);
  const uint64_t reset = j["errors"]["stream_reset"].get<uint64_t>();
  EXPECT_GT(reset, 0u);
  EXPECT_EQ(j["http2"]["rst_stream"]["internal_error"].get<uint64_t>(), reset);
  EXPECT_LE(reset, server.resets());
  EXPECT_GE(reset + 4, server.resets());  // at most the last streams' resets arrive too late
  expect_valid_summary(out);
}

TEST(Http2Integration, Http11ServerIsAClassifiedProtocolError) {
  // The mock speaks h2c by prior knowledge unless told not to.
  MockServer mock("routes:\n  - path: /\n    body: \"plain\\n\"\n", 1, {"--no-http2"});
  const std::string out = write_temp_file("", ".json");
  const std::string url = "http://127.0.0.1:" + std::to_string(mock.port()) + "/";
  auto r = run_millstone(
      {"run", url, "--http2", "-c", "2", "-d", "1s", "-w", "1", "-q", "--no-history", "-o", out},
      20);
  EXPECT_EQ(r.exit_code, 6) << r.err;
  const nlohmann::json j = read_json(out);
  // Its "400 Bad Request" to our preface is a protocol error; when its close
  // overtakes the answer (an RST discards unread bytes) the request fails as
  // reset or closed instead. Either way: classified, counted, no response.
  const nlohmann::json& errors = j["errors"];
  EXPECT_GT(
      errors.value("protocol_error", 0) + errors.value("reset", 0) + errors.value("closed", 0), 0)
      << j.dump();
  EXPECT_EQ(j["requests"], 0);
  uint64_t counted = 0;
  for (const auto& [name, count] : errors.items())
    counted += count.get<uint64_t>();
  EXPECT_EQ(j["transport_errors"].get<uint64_t>(), counted);
}

// millstone's HTTP/2 client against millstone's HTTP/2 mock, the count taken
// from the mock's own statistics: every request it counts came over h2.
TEST(Http2Integration, TheMockCountsEveryStreamOverH2) {
  MockServer mock("routes:\n  - path: /item\n    latency: 5ms\n    body: \"x\"\n", 1);
  const std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", mock.url("/item"), "--http2", "-c", "2", "--streams", "8", "-d",
                          "1s", "-w", "1", "-q", "--no-history", "-o", out},
                         20);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  const nlohmann::json stats = mock.stats();
  const uint64_t served = stats["http2"]["requests"].get<uint64_t>();
  const uint64_t completed = j["requests"].get<uint64_t>();
  EXPECT_GT(completed, 100u) << j.dump();
  // The stats request itself is HTTP/1.1; streams still open at the end
  // (at most c x streams) were served but not completed.
  EXPECT_GE(served, completed) << stats.dump();
  EXPECT_LE(served, completed + 2 * 8) << stats.dump();
  EXPECT_LE(stats["http2"]["max_concurrent_streams"].get<uint64_t>(), 8u) << stats.dump();
  EXPECT_GE(stats["http2"]["max_concurrent_streams"].get<uint64_t>(), 2u) << stats.dump();
  EXPECT_EQ(stats["http2"]["connections"].get<uint64_t>(), 2u) << stats.dump();
}

TEST(Http2Integration, FlagsNeedHttp2AndAUrl) {
  auto r = run_millstone({"run", "http://127.0.0.1:9/", "--streams", "4"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("need --http2"), std::string::npos) << r.err;
  r = run_millstone({"run", "http://127.0.0.1:9/", "--http2", "--streams", "0"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_millstone({"run", "http://127.0.0.1:9/", "--http2", "--no-keepalive"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--no-keepalive with --http2"), std::string::npos) << r.err;
}

}  // namespace http2_test
}  // namespace millstone::testing
