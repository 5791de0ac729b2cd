// `millstone run --webhook URL` against `millstone mock`, with a receiver
// thread in the test standing in for Slack.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace {

// One thread on 127.0.0.1 that records the first request and answers every
// request with a fixed status.
class Receiver {
 public:
  struct Request {
    std::string method, path, head, body;
  };

  explicit Receiver(int status) : status_(status) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot listen";
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Receiver() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::optional<Request> first(double timeout_s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                 [&] { return request_.has_value(); });
    return request_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{5, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string in;
      char buf[4096];
      size_t head_end = std::string::npos;
      size_t length = 0;
      for (;;) {
        if (head_end == std::string::npos &&
            (head_end = in.find("\r\n\r\n")) != std::string::npos) {
          std::string lower = in.substr(0, head_end);
          for (char& ch : lower)
            ch = static_cast<char>(std::tolower(ch));
          size_t at = lower.find("\r\ncontent-length:");
          if (at != std::string::npos) length = std::stoul(lower.substr(at + 17));
        }
        if (head_end != std::string::npos && in.size() >= head_end + 4 + length) break;
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      std::string answer = status_ == 200 ? "ok" : "invalid_token";
      std::string response = "HTTP/1.1 " + std::to_string(status_) +
                             " X\r\nContent-Length: " + std::to_string(answer.size()) +
                             "\r\nConnection: close\r\n\r\n" + answer;
      send(c, response.data(), response.size(), MSG_NOSIGNAL);
      close(c);
      if (head_end == std::string::npos) continue;
      Request r;
      r.head = in.substr(0, head_end);
      r.body = in.substr(head_end + 4);
      size_t sp = r.head.find(' ');
      r.method = r.head.substr(0, sp);
      r.path = r.head.substr(sp + 1, r.head.find(' ', sp + 1) - sp - 1);
      std::lock_guard lock(mu_);
      if (!request_) request_ = std::move(r);
      cv_.notify_all();
    }
  }

  int status_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Request> request_;
};

const char* kRoutes = "routes:\n  - path: /hello\n    body: \"hello\\n\"\n";

TEST(WebhookIntegration, PostsTheRunSummaryWhenTheRunEnds) {
  MockServer mock(kRoutes);
  Receiver receiver(200);
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", mock.url("/hello"), "-c", "2", "-d", "2s", "-w", "1", "-q", "-o",
                          out, "--webhook", receiver.url("/hook")},
                         40);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("--webhook"), std::string::npos) << r.err;
  auto request = receiver.first(5);
  ASSERT_TRUE(request) << "no POST arrived";
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->path, "/hook");
  EXPECT_NE(request->head.find("\r\nContent-Type: application/json"), std::string::npos)
      << request->head;
  nlohmann::json body = nlohmann::json::parse(request->body);
  nlohmann::json summary = read_json(out);
  const std::string run_id = summary["run_id"];
  std::string text = body["text"];
  EXPECT_EQ(text.rfind("✅ PASSED", 0), 0u) << text;
  EXPECT_NE(text.find(mock.url("/hello")), std::string::npos) << text;
  EXPECT_NE(text.find(run_id), std::string::npos) << text;
  ASSERT_TRUE(body["blocks"].is_array());
  EXPECT_LE(body["blocks"].size(), 50u);
  EXPECT_EQ(body["blocks"][0]["type"], "header");
  std::string fields = body["blocks"][1]["fields"].dump();
  EXPECT_NE(fields.find("*Requests*\\n" + std::to_string(summary["requests"].get<uint64_t>())),
            std::string::npos)
      << fields;
}

TEST(WebhookIntegration, AFailingReceiverIsAWarningNotAFailure) {
  MockServer mock(kRoutes);
  Receiver receiver(500);
  auto r = run_millstone({"run", mock.url("/hello"), "-c", "2", "-d", "2s", "-w", "1", "-q",
                          "--webhook", receiver.url("/hook")},
                         40);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(receiver.first(5));
  EXPECT_NE(r.err.find("--webhook " + receiver.url("/hook") + ": HTTP 500 from " +
                       receiver.url("/hook") + ": invalid_token"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace millstone::testing
