#pragma once
// A one-thread HTTP server on 127.0.0.1 for tests: it records the first
// request and answers every request with a fixed status and body (a webhook
// receiver standing in for Slack). Header-only: shared by several test binaries.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace millstone::testing {

class HttpReceiver {
 public:
  struct Request {
    std::string method, path, head, body;
  };

  HttpReceiver(int status, std::string answer) : status_(status), answer_(std::move(answer)) {
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
  ~HttpReceiver() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  HttpReceiver(const HttpReceiver&) = delete;
  HttpReceiver& operator=(const HttpReceiver&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // The first request, waiting up to timeout_s for it.
  std::optional<Request> first(double timeout_s = 15) {
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
      size_t content_length = 0;
      for (;;) {
        if (head_end == std::string::npos) {
          head_end = in.find("\r\n\r\n");
          if (head_end != std::string::npos) {
            std::string lower = in.substr(0, head_end);
            for (char& ch : lower)
              ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            size_t at = lower.find("\r\ncontent-length:");
            if (at != std::string::npos) content_length = std::stoul(lower.substr(at + 17));
          }
        }
        if (head_end != std::string::npos && in.size() >= head_end + 4 + content_length) break;
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      std::string response = "HTTP/1.1 " + std::to_string(status_) +
                             " Whatever\r\nContent-Type: text/plain\r\nContent-Length: " +
                             std::to_string(answer_.size()) + "\r\nConnection: close\r\n\r\n" +
                             answer_;
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
  std::string answer_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Request> request_;
};

}  // namespace millstone::testing
