// A server that answers with garbage must produce classified errors and a
// finished run: never a crash, never a hang.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace garbage_server_test {

struct Garbage {
  const char* name;
  std::string response;        // sent after each request ("" = send nothing)
  bool close_after = false;    // close after sending
  bool reset_after = false;    // close with RST after sending
  const char* expected_cause;  // in the JSON errors object
};

// Loopback server thread: reads a request, answers with garbage, repeats.
class GarbageServer {
 public:
  explicit GarbageServer(Garbage g) : garbage_(std::move(g)) {
    listen_fd_ = listen_loopback(&port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~GarbageServer() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
    for (int fd : open_)
      close(fd);
  }
  int port() const { return port_; }

 private:
  void serve() {
    std::vector<pollfd> fds;
    while (!stop_) {
      fds.clear();
      fds.push_back({listen_fd_, POLLIN, 0});
      for (int fd : open_)
        fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) open_.push_back(accept(listen_fd_, nullptr, nullptr));
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        int fd = fds[i].fd;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
          drop(fd, false);
          continue;
        }
        if (!garbage_.response.empty()) {
          (void)!send(fd, garbage_.response.data(), garbage_.response.size(), MSG_NOSIGNAL);
        }
        if (garbage_.close_after || garbage_.reset_after) drop(fd, garbage_.reset_after);
      }
    }
  }
  void drop(int fd, bool reset) {
    if (reset) {
      linger l{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(fd);
    std::erase(open_, fd);
  }

  Garbage garbage_;
  int listen_fd_;
  int port_;
  std::vector<int> open_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void PrintTo(const Garbage& g, std::ostream* os) {
  *os << g.name;
}

class GarbageTest : public ::testing::TestWithParam<Garbage> {};

TEST_P(GarbageTest, ProducesAClassifiedErrorAndAFinishedRun) {
  GarbageServer server(GetParam());
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", "http://127.0.0.1:" + std::to_string(server.port()) + "/", "-c",
                          "4", "-d", "1500ms", "--timeout", "300ms", "-w", "1", "-q", "-o", out},
                         30);
  ASSERT_FALSE(r.timed_out);
  auto j = read_json(out);
  // Garbage is never a result: with no complete response at all the run
  // measured nothing, and says so with exit code 6.
  ASSERT_EQ(r.exit_code, j["requests"].get<uint64_t>() == 0 ? 6 : 0) << r.out << r.err;
  EXPECT_EQ(j["measured_nothing"].get<bool>(), r.exit_code == 6);
  EXPECT_TRUE(j["errors"].contains(GetParam().expected_cause)) << j["errors"].dump();
  EXPECT_GT(j["error_total"].get<uint64_t>(), 0u);
}

std::string huge_headers() {
  std::string r = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 5000; ++i)
    r += "X-Filler-" + std::to_string(i) + ": aaaaaaaaaaaaaaaa\r\n";
  return r + "Content-Length: 0\r\n\r\n";
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, GarbageTest,
    ::testing::Values(
        Garbage{"bad_status_line", "HTTQ/1.1 200 OK\r\n\r\n", true, false, "malformed_status"},
        Garbage{"not_http", "SSH-2.0-OpenSSH_9.2\r\n", false, false, "malformed_status"},
        Garbage{"huge_headers", huge_headers(), false, false, "header_too_large"},
        Garbage{"bad_chunk_size",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                false, false, "bad_chunk"},
        Garbage{"short_body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a few", true,
                false, "short_body"},
        Garbage{"bad_content_length", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", false, false,
                "malformed_header"},
        Garbage{"reset", "", false, true, "reset"},
        Garbage{"close_without_answer", "", true, false, "closed"},
        Garbage{"silence", "", false, false, "timeout"},
        Garbage{"extra_bytes_after_response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
                false, false, "unexpected_data"}),
    [](const auto& info) { return std::string(info.param.name); });

// The same servers with --io uring: the classification must not depend on
// the backend (a subset: garbage, a reset, a close, bytes after a response).
class UringGarbageTest : public ::testing::TestWithParam<Garbage> {};

TEST_P(UringGarbageTest, ClassifiesAsOnEpoll) {
  GarbageServer server(GetParam());
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone(
      {"run", "http://127.0.0.1:" + std::to_string(server.port()) + "/", "-c", "4", "-d", "800ms",
       "--timeout", "300ms", "-w", "1", "--io", "uring", "-q", "-o", out},
      30);
  ASSERT_FALSE(r.timed_out);
  if (r.exit_code == 3) GTEST_SKIP() << "io_uring unavailable: " << r.err;
  auto j = read_json(out);
  ASSERT_EQ(r.exit_code, j["requests"].get<uint64_t>() == 0 ? 6 : 0) << r.out << r.err;
  EXPECT_TRUE(j["errors"].contains(GetParam().expected_cause)) << j["errors"].dump();
  EXPECT_GT(j["error_total"].get<uint64_t>(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, UringGarbageTest,
    ::testing::Values(
        Garbage{"not_http", "SSH-2.0-OpenSSH_9.2\r\n", false, false, "malformed_status"},
        Garbage{"reset", "", false, true, "reset"},
        Garbage{"close_without_answer", "", true, false, "closed"},
        Garbage{"extra_bytes_after_response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
                false, false, "unexpected_data"}),
    [](const auto& info) { return std::string(info.param.name); });

// `millstone amqp` against a "broker" that answers the protocol header with
// garbage: a classified error per connection, no retry of what would only
// repeat, and a run that ends at once with exit 6 (never ready).
class AmqpGarbageTest : public ::testing::TestWithParam<Garbage> {};

TEST_P(AmqpGarbageTest, ProducesAClassifiedErrorAndAFinishedRun) {
  GarbageServer server(GetParam());
  auto r = run_millstone({"amqp", "amqp://127.0.0.1:" + std::to_string(server.port()) + "/",
                          "--publishers", "2", "--consumers", "1", "-d", "1s", "-o", "-"},
                         30);
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.exit_code, 6) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["errors"][GetParam().expected_cause], 3) << j["errors"].dump();
  EXPECT_EQ(j["connections_ready"], 0);
}

std::string amqp_frame(uint8_t type, const std::string& payload, char end = '\xce') {
  std::string f{static_cast<char>(type), 0, 0};
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f += std::string{static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                   static_cast<char>(n >> 8), static_cast<char>(n)};
  return f + payload + end;
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, AmqpGarbageTest,
    ::testing::Values(
        Garbage{"http_answer", "HTTP/1.1 400 Bad Request\r\n\r\n", false, false, "protocol_error"},
        Garbage{"other_version", std::string("AMQP\x00\x00\x08\x00", 8), true, false,
                "protocol_version"},
        Garbage{"bad_frame_end", amqp_frame(1, std::string("\x00\x0a\x00\x0a", 4), 'x'), false,
                false, "protocol_error"},
        Garbage{"truncated_start", amqp_frame(1, std::string("\x00\x0a\x00\x0a\x00", 5)), false,
                false, "protocol_error"},
        Garbage{"heartbeat_on_a_channel", amqp_frame(8, "").replace(2, 1, "\x01"), false, false,
                "protocol_error"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace garbage_server_test
}  // namespace millstone::testing
