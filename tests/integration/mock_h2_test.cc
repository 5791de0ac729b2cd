// `millstone mock` over HTTP/2: h2c by prior knowledge and h2 by ALPN, checked
// with real clients (curl, h2load) whose own results are the ground truth,
// against the mock's own counts in /__millstone/stats; hostile clients (bad
// preface, garbage, too many streams) get a GOAWAY and are counted; shutdown
// says GOAWAY.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support.h"

namespace millstone::testing {
namespace mock_h2_test {

const char* const kRoutes = R"(
routes:
  - path: /hello
    headers: {X-Mock: "yes"}
    body: "hello\n"
  - path: /slow
    latency: 150ms
    body: "slow\n"
  - method: POST
    path: /echo/:id
    headers: {Content-Type: application/json, X-Id: "{{ path.id }}"}
    body: '{"id":"{{ path.id }}","n":{{ request.json.n }},"ua":"{{ request.header.user-agent }}"}'
  - path: /reset
    errors: [{rate: 1.0, reset: true}]
  - path: /unavailable
    errors: [{rate: 1.0, status: 503, body: "try later\n"}]
  - path: /stall
    errors: [{rate: 1.0, stall: forever}]
  - path: /second
    latency: 1s
    body: "second\n"
)";

// Runs a shell command with its own time bound; returns stdout (and stderr
// when asked), and the exit status in *status.
std::string shell(const std::string& command, int* status = nullptr, bool with_stderr = false) {
  std::string out;
  FILE* pipe =
      popen(("timeout 30 " + command + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0)
    out.append(buffer, n);
  const int s = pclose(pipe);
  if (status) *status = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
  return out;
}

// A mock with the routes above and extra flags, on a free port.
class H2Mock {
 public:
  explicit H2Mock(std::vector<std::string> extra = {}, int workers = 1) {
    config_path_ = write_temp_file(kRoutes, ".yaml");
    std::vector<std::string> args{"mock",        "--config",  config_path_,           "--listen",
                                  "127.0.0.1:0", "--workers", std::to_string(workers)};
    args.insert(args.end(), extra.begin(), extra.end());
    tls_ = std::find(extra.begin(), extra.end(), "--tls") != extra.end();
    process_ = std::make_unique<Process>(args);
    const std::regex listening(R"(listening on (?:https://)?127\.0\.0\.1:(\d+))");
    for (int i = 0; i < 500 && port_ == 0; ++i) {
      std::smatch m;
      const std::string out = process_->stdout_so_far();
      if (std::regex_search(out, m, listening) && (!tls_ || out.find("SHA-256") != out.npos)) {
        port_ = std::stoi(m[1]);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  ~H2Mock() {
    if (process_) {
      process_->signal(SIGTERM);
      process_->wait(10);
    }
    unlink(config_path_.c_str());
  }
  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_) + path;
  }
  nlohmann::json stats() const {
    return nlohmann::json::parse(shell("curl -sS -k " + url("/__millstone/stats")), nullptr, false);
  }
  void signal(int sig) { process_->signal(sig); }
  ProcessResult wait() {
    ProcessResult result = process_->wait(10);
    process_.reset();
    return result;
  }
  ProcessResult stop() {
    process_->signal(SIGTERM);
    ProcessResult result = process_->wait(10);
    process_.reset();
    return result;
  }

 private:
  std::string config_path_;
  std::unique_ptr<Process> process_;
  bool tls_ = false;
  int port_ = 0;
};

uint64_t route_requests(const nlohmann::json& stats, const std::string& name,
                        const char* field = "requests") {
  for (const auto& r : stats["routes"])
    if (r["name"] == name) return r[field].get<uint64_t>();
  return UINT64_MAX;
}

// h2load's own "status codes: N 2xx" line.
long h2load_2xx(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(status codes: (\d+) 2xx)"))) return -1;
  return std::stol(m[1]);
}

// ---- raw HTTP/2 frames for the hostile clients

const std::string kPreface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  f += static_cast<char>(payload.size() >> 16);
  f += static_cast<char>(payload.size() >> 8);
  f += static_cast<char>(payload.size());
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  for (int shift = 24; shift >= 0; shift -= 8)
    f += static_cast<char>(stream >> shift);
  return f + payload;
}

// A GET for path with HPACK literals only: :method GET, :scheme http
// (static indexes), :authority and :path (literal values).
std::string get_headers(uint32_t stream, const std::string& path) {
  std::string block = "\x82\x86";
  block += "\x41";
  block += static_cast<char>(9);
  block += "localhost";
  block += "\x44";
  block += static_cast<char>(path.size());
  block += path;
  return frame(1, 0x5, stream, block);  // END_STREAM | END_HEADERS
}

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;
  std::string payload;
};

// Reads frames until the server closes (or the 5 s receive timeout).
std::vector<Frame> read_frames(int fd, size_t stop_after_type = 256) {
  std::string in;
  std::vector<Frame> frames;
  char buffer[16384];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    in.append(buffer, static_cast<size_t>(n));
    bool stop = false;
    while (in.size() >= 9) {
      const size_t size = (static_cast<uint8_t>(in[0]) << 16) | (static_cast<uint8_t>(in[1]) << 8) |
                          static_cast<uint8_t>(in[2]);
      if (in.size() < 9 + size) break;
      Frame f;
      f.type = static_cast<uint8_t>(in[3]);
      f.flags = static_cast<uint8_t>(in[4]);
      f.stream = (static_cast<uint32_t>(static_cast<uint8_t>(in[5]) & 0x7f) << 24) |
                 (static_cast<uint8_t>(in[6]) << 16) | (static_cast<uint8_t>(in[7]) << 8) |
                 static_cast<uint8_t>(in[8]);
      f.payload = in.substr(9, size);
      in.erase(0, 9 + size);
      if (f.type == stop_after_type) stop = true;
      frames.push_back(std::move(f));
    }
    if (stop) break;
  }
  return frames;
}

constexpr uint8_t kSettings = 4;
constexpr uint8_t kGoaway = 7;
constexpr uint32_t kProtocolError = 1;

// The error code of the first GOAWAY, or -1 when there is none.
long goaway_error(const std::vector<Frame>& frames) {
  for (const Frame& f : frames) {
    if (f.type != kGoaway || f.payload.size() < 8) continue;
    uint32_t code = 0;
    for (int i = 4; i < 8; ++i)
      code = (code << 8) | static_cast<uint8_t>(f.payload[i]);
    return code;
  }
  return -1;
}

std::vector<Frame> exchange(int port, const std::string& bytes) {
  const int fd = connect_loopback(port);
  EXPECT_GE(fd, 0);
  if (fd < 0) return {};
  send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::vector<Frame> frames = read_frames(fd);
  close(fd);
  return frames;
}

// ---- real clients

TEST(MockH2, CurlWithPriorKnowledgeGetsTheSameAnswersAsHttp1) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  // -w: curl's own word on the protocol it spoke.
  EXPECT_EQ(shell("curl -sS --http2-prior-knowledge -w '%{http_version}' " + mock.url("/hello")),
            "hello\n2");
  const std::string head =
      shell("curl -sS -D - -o /dev/null --http2-prior-knowledge " + mock.url("/hello"));
  EXPECT_NE(head.find("HTTP/2 200"), std::string::npos) << head;
  EXPECT_NE(head.find("x-mock: yes"), std::string::npos) << head;
  EXPECT_NE(head.find("content-length: 6"), std::string::npos) << head;
  // Templates see the path, the JSON body and the headers of an HTTP/2 request.
  EXPECT_EQ(
      shell("curl -sS --http2-prior-knowledge -A h2-test -d '{\"n\":7}' " + mock.url("/echo/42")),
      R"({"id":"42","n":7,"ua":"h2-test"})");
  EXPECT_EQ(
      shell("curl -sS --http2-prior-knowledge -w ' %{http_code}' " + mock.url("/unavailable")),
      "try later\n 503");
  EXPECT_EQ(shell("curl -sS --http2-prior-knowledge -w '%{http_code}' " + mock.url("/nothing")),
            "no route matches\n404");
  // HTTP/1.1 still works on the same listener.
  EXPECT_EQ(shell("curl -sS --http1.1 -w '%{http_version}' " + mock.url("/hello")), "hello\n1.1");

  const nlohmann::json stats = mock.stats();
  ASSERT_TRUE(stats.is_object());
  EXPECT_EQ(route_requests(stats, "GET /hello"), 3u);
  EXPECT_EQ(route_requests(stats, "GET /hello", "http2_requests"), 2u);  // not the --http1.1 one
  EXPECT_EQ(route_requests(stats, "POST /echo/:id"), 1u);
  EXPECT_EQ(route_requests(stats, "POST /echo/:id", "http2_requests"), 1u);
  EXPECT_EQ(route_requests(stats, "GET /unavailable", "error_status"), 1u);
  EXPECT_EQ(route_requests(stats, "unmatched (404)"), 1u);
  EXPECT_EQ(stats["http2"]["requests"], 5);     // all but the HTTP/1.1 one
  EXPECT_EQ(stats["http2"]["connections"], 5);  // this stats request is HTTP/1.1
  EXPECT_EQ(stats["connections"], 7);
  EXPECT_EQ(stats["http2"]["protocol_errors"], 0);
}

TEST(MockH2, InjectedResetIsAStreamResetAndStallsAreCounted) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  int status = 0;
  const std::string out =
      shell("curl -sS --http2-prior-knowledge " + mock.url("/reset"), &status, true);
  // curl: "HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)"
  EXPECT_EQ(status, 92) << out;
  EXPECT_NE(out.find("INTERNAL_ERROR"), std::string::npos) << out;
  shell("curl -sS --http2-prior-knowledge --max-time 0.5 " + mock.url("/stall"), &status);
  EXPECT_EQ(status, 28);  // curl's timeout: nothing came
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(route_requests(stats, "GET /reset", "error_reset"), 1u);
  EXPECT_EQ(route_requests(stats, "GET /stall", "error_stall"), 1u);
  EXPECT_EQ(stats["http2"]["streams_reset"], 1);
}

TEST(MockH2, TlsNegotiatesH2ByAlpnAndHttp11WhenAskedFor) {
  H2Mock mock({"--tls"});
  ASSERT_NE(mock.port(), 0);
  EXPECT_EQ(shell("curl -sS -k --http2 -w '%{http_version}' " + mock.url("/hello")), "hello\n2");
  EXPECT_EQ(shell("curl -sS -k --http1.1 -w '%{http_version}' " + mock.url("/hello")),
            "hello\n1.1");
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(route_requests(stats, "GET /hello"), 2u);
  EXPECT_EQ(route_requests(stats, "GET /hello", "http2_requests"), 1u);
  EXPECT_EQ(stats["http2"]["requests"], 1);
  EXPECT_EQ(stats["tls"]["handshakes"], 3);
}

TEST(MockH2, NoHttp2FlagServesHttp11Only) {
  H2Mock tls({"--tls", "--no-http2"});
  ASSERT_NE(tls.port(), 0);
  EXPECT_EQ(shell("curl -sS -k --http2 -w '%{http_version}' " + tls.url("/hello")), "hello\n1.1");
  H2Mock plain({"--no-http2"});
  ASSERT_NE(plain.port(), 0);
  int status = 0;
  shell("curl -sS --http2-prior-knowledge " + plain.url("/hello"), &status);
  EXPECT_NE(status, 0);  // the preface is no HTTP/1.1 request
  EXPECT_EQ(plain.stats()["http2"]["connections"], 0);
}

TEST(MockH2, H2loadTwoHundredsMatchTheMocksCount) {
  H2Mock mock({}, 2);
  ASSERT_NE(mock.port(), 0);
  const std::string out = shell("h2load -n 600 -c 4 -m 10 " + mock.url("/hello"));
  EXPECT_EQ(h2load_2xx(out), 600) << out;
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(route_requests(stats, "GET /hello"), 600u);
  EXPECT_EQ(stats["http2"]["requests"], 600);
  EXPECT_EQ(stats["http2"]["connections"], 4);
}

TEST(MockH2, H2loadOverTlsMatchesTheMocksCount) {
  H2Mock mock({"--tls"});
  ASSERT_NE(mock.port(), 0);
  const std::string out = shell("h2load -n 300 -c 3 -m 5 " + mock.url("/hello"));
  EXPECT_NE(out.find("Application protocol: h2"), std::string::npos) << out;
  EXPECT_EQ(h2load_2xx(out), 300) << out;
  EXPECT_EQ(route_requests(mock.stats(), "GET /hello"), 300u);
}

// 40 requests of 150 ms on one connection, 10 at a time: each stream's answer
// waits for its own timer, so all 10 are in flight at once (the mock's
// high-water mark of open streams), and the run takes ~4 delays, not 40.
TEST(MockH2, DelayedStreamsDoNotHoldUpEachOther) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  const std::string out = shell("h2load -n 40 -c 1 -m 10 " + mock.url("/slow"));
  EXPECT_EQ(h2load_2xx(out), 40) << out;
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(route_requests(stats, "GET /slow"), 40u);
  EXPECT_EQ(stats["http2"]["max_concurrent_streams"], 10);
  EXPECT_EQ(stats["http2"]["connections"], 1);
}

// ---- hostile clients

TEST(MockH2, BadPrefaceGetsGoawayProtocolError) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  const auto frames = exchange(mock.port(), "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
  EXPECT_EQ(goaway_error(frames), kProtocolError);
  EXPECT_EQ(mock.stats()["http2"]["protocol_errors"], 1);
}

TEST(MockH2, GarbageAfterThePrefaceGetsGoawayProtocolError) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  // The first frame must be SETTINGS; this is a HEADERS on stream 7 of junk.
  const auto frames = exchange(mock.port(), kPreface + frame(1, 0x4, 7, "garbage garbage"));
  EXPECT_EQ(goaway_error(frames), kProtocolError);
  // Valid SETTINGS, then bytes that are no frame header at all.
  const auto frames2 =
      exchange(mock.port(), kPreface + frame(kSettings, 0, 0, "") + std::string(64, '\xff'));
  EXPECT_EQ(goaway_error(frames2), 6);  // FRAME_SIZE_ERROR: a 16 MiB length
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(stats["http2"]["protocol_errors"], 2);
  // The mock still serves.
  EXPECT_EQ(shell("curl -sS --http2-prior-knowledge " + mock.url("/hello")), "hello\n");
}

TEST(MockH2, ClientOpeningMoreStreamsThanAllowedLosesTheConnection) {
  H2Mock mock({"--max-concurrent-streams", "3"});
  ASSERT_NE(mock.port(), 0);
  const int fd = connect_loopback(mock.port());
  ASSERT_GE(fd, 0);
  const std::string hello = kPreface + frame(kSettings, 0, 0, "");
  send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
  // The server's SETTINGS carries the limit (id 3 = MAX_CONCURRENT_STREAMS).
  const auto settings = read_frames(fd, kSettings);
  ASSERT_FALSE(settings.empty());
  ASSERT_EQ(settings[0].type, kSettings);
  EXPECT_NE(settings[0].payload.find(std::string("\x00\x03\x00\x00\x00\x03", 6)),
            std::string::npos);
  // Acknowledge it, then open five slow streams at once.
  std::string burst = frame(kSettings, 0x1, 0, "");
  for (uint32_t i = 0; i < 5; ++i)
    burst += get_headers(1 + 2 * i, "/slow");
  send(fd, burst.data(), burst.size(), MSG_NOSIGNAL);
  const auto frames = read_frames(fd);
  close(fd);
  EXPECT_EQ(goaway_error(frames), kProtocolError);
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(stats["http2"]["protocol_errors"], 1);
  EXPECT_EQ(stats["http2"]["max_concurrent_streams"], 3);
}

TEST(MockH2, MaxConcurrentStreamsAboveTenThousandIsAUsageError) {
  // Each stream may keep request bytes: an unbounded limit is unbounded memory.
  const ProcessResult r =
      run_millstone({"mock", "--listen", "127.0.0.1:0", "--max-concurrent-streams", "20000"}, 10);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--max-concurrent-streams"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("10000"), std::string::npos) << r.err;
}

TEST(MockH2, ShutdownSaysGoaway) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  const int fd = connect_loopback(mock.port());
  ASSERT_GE(fd, 0);
  const std::string hello = kPreface + frame(kSettings, 0, 0, "") + get_headers(1, "/hello");
  send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
  // Wait for the answer to stream 1 (its DATA frame), then stop the mock.
  bool answered = false;
  for (const Frame& f : read_frames(fd, 0))
    answered |= f.type == 0 && f.stream == 1;
  EXPECT_TRUE(answered);
  const ProcessResult result = mock.stop();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const auto frames = read_frames(fd);
  close(fd);
  EXPECT_EQ(goaway_error(frames), 0);  // NO_ERROR
  EXPECT_NE(result.out.find("1 over HTTP/2 (1 requests"), std::string::npos) << result.out;
}

// A stream open on a 1 s route when SIGTERM arrives: the mock says GOAWAY
// (NO_ERROR, last stream 1), still answers it, then exits 0 (the worker's
// drain ends as soon as its last connection is done, well within its 2 s).
TEST(MockH2, ShutdownDrainsAStreamStillOpen) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  const int fd = connect_loopback(mock.port());
  ASSERT_GE(fd, 0);
  const std::string get = kPreface + frame(kSettings, 0, 0, "") + get_headers(1, "/second");
  send(fd, get.data(), get.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // routed, waiting for its timer
  ProcessResult result;
  std::thread stopper([&] { result = mock.stop(); });
  const std::vector<Frame> frames = read_frames(fd);  // until the mock closes
  stopper.join();
  close(fd);
  std::string body;
  bool ended = false;
  for (const Frame& f : frames) {
    if (f.type == 0 && f.stream == 1) {
      body += f.payload;
      ended |= (f.flags & 0x1) != 0;
    }
  }
  EXPECT_EQ(body, "second\n");
  EXPECT_TRUE(ended);
  EXPECT_EQ(goaway_error(frames), 0);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("1 over HTTP/2 (1 requests"), std::string::npos) << result.out;
}

// A SIGINT after the SIGTERM, while the workers drain, is read too: the exit
// status stays 0, not 130.
TEST(MockH2, SecondSignalDuringTheDrainStillExitsZero) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  const int fd = connect_loopback(mock.port());
  ASSERT_GE(fd, 0);
  const std::string get = kPreface + frame(kSettings, 0, 0, "") + get_headers(1, "/second");
  send(fd, get.data(), get.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  mock.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  mock.signal(SIGINT);  // a Ctrl-C on top: a different signal, both pending at once
  const ProcessResult result = mock.wait();
  close(fd);
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

// The open connections the mock's stats count, read over an HTTP/1.1
// connection already open (a new one could take the descriptor of a
// connection not yet released and hide it).
uint64_t open_connections_via(int fd) {
  const std::string request =
      "GET /__millstone/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string in;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0)
    in.append(buffer, static_cast<size_t>(n));
  const size_t body = in.find("\r\n\r\n");
  if (body == std::string::npos) return UINT64_MAX;
  const nlohmann::json stats = nlohmann::json::parse(in.substr(body + 4), nullptr, false);
  if (!stats.contains("open_connections")) return UINT64_MAX;
  return stats["open_connections"].get<uint64_t>();
}

// "PRI" (a strict prefix of the h2c preface), then FIN: the mock cannot wait
// for the rest, it closes the connection and forgets it.
TEST(MockH2, PrefacePrefixThenCloseIsClosed) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  const int stats_fd = connect_loopback(mock.port());
  ASSERT_GE(stats_fd, 0);
  const int fd = connect_loopback(mock.port());
  ASSERT_GE(fd, 0);
  send(fd, "PRI", 3, MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);  // EOF from the mock, not the 5 s receive timeout
  close(fd);
  EXPECT_EQ(open_connections_via(stats_fd), 1u);  // the stats connection only
  close(stats_fd);
}

// An HTTP/1.1 answer delayed by a timer, on a connection that asked to
// close: the timer closes it, and it is released too (not left in the table).
TEST(MockH2, ConnectionClosedFromATimerIsReleased) {
  H2Mock mock;
  ASSERT_NE(mock.port(), 0);
  const int stats_fd = connect_loopback(mock.port());
  ASSERT_GE(stats_fd, 0);
  int status = -1;
  const std::string out =
      shell("curl -sS --http1.1 -H 'Connection: close' " + mock.url("/slow"), &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(out, "slow\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(open_connections_via(stats_fd), 1u);
  close(stats_fd);
}

// 500 pipelined HTTP/1.1 requests for 64 KiB answers, and a client that
// reads nothing: the mock parses them only as its answers get written, so its
// own count stays far below 500 (without the hold-back it answered them all
// into memory at once: 32 MB for this one connection).
TEST(MockH2, PipelinedRequestsWaitForTheirAnswersToBeWritten) {
  const std::string config = write_temp_file(
      "routes:\n  - path: /big\n    body: \"" + std::string(65536, 'x') + "\"\n", ".yaml");
  Process mock({"mock", "--config", config, "--listen", "127.0.0.1:0", "--workers", "1"});
  int port = 0;
  for (int i = 0; i < 500 && port == 0; ++i) {
    std::smatch m;
    const std::string out = mock.stdout_so_far();
    if (std::regex_search(out, m, std::regex(R"(listening on 127\.0\.0\.1:(\d+))"))) {
      port = std::stoi(m[1]);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_NE(port, 0);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string requests;
  for (int i = 0; i < 500; ++i)
    requests += "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, requests.data(), requests.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(requests.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const nlohmann::json stats = nlohmann::json::parse(
      shell("curl -sS http://127.0.0.1:" + std::to_string(port) + "/__millstone/stats"), nullptr,
      false);
  const uint64_t served = route_requests(stats, "GET /big");
  EXPECT_LT(served, 250u) << stats.dump();
  close(fd);
  mock.signal(SIGTERM);
  mock.wait(10);
  unlink(config.c_str());
}

}  // namespace mock_h2_test
}  // namespace millstone::testing
