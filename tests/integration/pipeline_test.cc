// Asynchronous pipelines (docs/scenarios.md#end-to-end-latency) against the
// test's own service on 127.0.0.1: it accepts a POST, pushes a message over
// the VU's WebSocket exactly D ms after the POST arrived (its own timer) and
// answers the POST only later, so the push arrives while the VU still waits
// for the HTTP response; and it answers polls of an order with "pending"
// until the K-th. The ground truth is the service's own counts and timer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <queue>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"
#include "ws/frame.h"
#include "ws/handshake.h"

namespace millstone::testing {
namespace pipeline_test {

using Clock = std::chrono::steady_clock;

bool send_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

class OrderService {
 public:
  OrderService(int push_ms, int answer_ms, int done_after_polls)
      : push_ms_(push_ms), answer_ms_(answer_ms), done_after_(done_after_polls) {
    listen_fd_ = listen_loopback(&port_);
    accept_thread_ = std::thread([this] { accept_loop(); });
    push_thread_ = std::thread([this] { push_loop(); });
  }
  ~OrderService() {
    stop_ = true;
    pushes_cv_.notify_all();
    accept_thread_.join();
    push_thread_.join();
    for (std::thread& t : connections_)
      t.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }
  uint64_t pushed() const { return pushed_; }
  uint64_t push_failed() const { return push_failed_; }
  uint64_t posts() const { return posts_; }
  // Polls of orders (GET /orders/ID), and of those the ones answered "done".
  uint64_t polls() const { return polls_; }
  uint64_t done() const { return done_; }
  // Polls of the orders whose id starts with `prefix`.
  uint64_t polls_of(const std::string& prefix) {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t n = 0;
    for (const auto& [id, polls] : poll_counts_)
      n += id.rfind(prefix, 0) == 0 ? polls : 0;
    return n;
  }
  // How late the service's timer sent pushes, beyond push_ms (the largest).
  int64_t max_push_lateness_us() const { return max_lateness_us_; }

 private:
  struct Push {
    Clock::time_point due;
    std::string vu;
    std::string payload;
    bool operator>(const Push& other) const { return due > other.due; }
  };

  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      connections_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  }

  void push_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      if (pushes_.empty()) {
        pushes_cv_.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
      const Clock::time_point due = pushes_.top().due;
      if (Clock::now() < due) {
        pushes_cv_.wait_until(lock, due);
        continue;
      }
      Push push = pushes_.top();
      pushes_.pop();
      auto it = sockets_.find(push.vu);
      std::string frame;
      ws::append_frame(&frame, ws::Opcode::kText, push.payload, true, std::nullopt);
      const int64_t late =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - push.due).count();
      max_lateness_us_ = std::max<int64_t>(max_lateness_us_, late);
      if (it != sockets_.end() && send_all(it->second, frame)) {
        ++pushed_;
      } else {
        ++push_failed_;
      }
    }
  }

  void serve(int fd) {
    std::string in;
    char buf[16384];
    auto read_more = [&]() -> bool {
      while (!stop_) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return false;
        in.append(buf, static_cast<size_t>(n));
        return true;
      }
      return false;
    };
    for (;;) {
      size_t head_end;
      while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
        if (!read_more()) return;
      }
      const Clock::time_point arrived = Clock::now();
      const std::string head = in.substr(0, head_end + 4);
      size_t length = 0;
      std::smatch m;
      if (std::regex_search(head, m, std::regex("Content-Length: *([0-9]+)", std::regex::icase))) {
        length = std::stoul(m[1].str());
      }
      while (in.size() < head_end + 4 + length) {
        if (!read_more()) return;
      }
      const std::string body = in.substr(head_end + 4, length);
      in.erase(0, head_end + 4 + length);

      if (std::regex_search(head, m, std::regex("^GET /events\\?vu=([0-9]+)"))) {
        std::smatch key;
        if (!std::regex_search(head, key, std::regex("Sec-WebSocket-Key: *([^\r]+)"))) return;
        const std::string vu = m[1].str();
        {
          // Registered before the 101: once the client is connected, a push
          // for its VU finds it.
          std::lock_guard<std::mutex> lock(mutex_);
          sockets_[vu] = fd;
        }
        send_all(fd,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                     ws::accept_for_key(key[1].str()) + "\r\n\r\n");
        while (read_more()) {
          // The client's frames (its close) are not needed: read to the end.
          if (in.size() > 1 && (static_cast<unsigned char>(in[0]) & 0x0f) == 0x8) {
            std::string close;
            ws::append_close(&close, 1000, "", std::nullopt);
            std::lock_guard<std::mutex> lock(mutex_);
            send_all(fd, close);
            break;
          }
          in.clear();
        }
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = sockets_.find(vu);
        if (it != sockets_.end() && it->second == fd) sockets_.erase(it);
        return;
      }
      std::string answer;
      if (head.rfind("POST /orders ", 0) == 0) {
        std::smatch vu, id;
        std::regex_search(body, vu, std::regex("\"vu\": *\"?([0-9]+)"));
        std::regex_search(body, id, std::regex("\"id\": *\"([^\"]+)\""));
        const std::string order = id.size() > 1 ? id[1].str() : "";
        {
          std::lock_guard<std::mutex> lock(mutex_);
          ++posts_;
          pushes_.push(Push{arrived + std::chrono::milliseconds(push_ms_),
                            vu.size() > 1 ? vu[1].str() : "", "{\"id\":\"" + order + "\"}"});
        }
        pushes_cv_.notify_all();
        std::this_thread::sleep_until(arrived + std::chrono::milliseconds(answer_ms_));
        answer = "{\"id\":\"" + order + "\",\"state\":\"accepted\"}";
      } else if (std::regex_search(head, m, std::regex("^GET /orders/([^ ]+) "))) {
        uint64_t n;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          n = ++poll_counts_[m[1].str()];
          ++polls_;
          // Orders named never-... never get done.
          if (m[1].str().rfind("never-", 0) == 0) n = 0;
          if (n >= static_cast<uint64_t>(done_after_)) ++done_;
        }
        answer = std::string("{\"state\":\"") +
                 (n >= static_cast<uint64_t>(done_after_) ? "done" : "pending") + "\"}";
      } else {
        send_all(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        continue;
      }
      if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(answer.size()) + "\r\n\r\n" + answer)) {
        return;
      }
    }
  }

  const int push_ms_;
  const int answer_ms_;
  const int done_after_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> pushed_{0};
  std::atomic<uint64_t> push_failed_{0};
  std::atomic<uint64_t> posts_{0};
  std::atomic<uint64_t> polls_{0};
  std::atomic<uint64_t> done_{0};
  std::atomic<int64_t> max_lateness_us_{0};
  std::mutex mutex_;
  std::condition_variable pushes_cv_;
  std::priority_queue<Push, std::vector<Push>, std::greater<Push>> pushes_;
  std::map<std::string, int> sockets_;  // VU -> its WebSocket
  std::map<std::string, uint64_t> poll_counts_;
  std::thread accept_thread_;
  std::thread push_thread_;
  std::vector<std::thread> connections_;
};

constexpr int kPushMs = 20;
constexpr int kAnswerMs = 30;
constexpr int kDoneAfter = 3;
constexpr int kIntervalMs = 15;
constexpr int kIterations = 30;
constexpr int kStuck = 2;

TEST(Pipeline, PushTimedFromThePostAndPollUntilDone) {
  OrderService service(kPushMs, kAnswerMs, kDoneAfter);
  std::string yaml = R"(
target: http://127.0.0.1:PORT
flows:
  order:
    steps:
      - ws.connect: /events?vu={{ vu }}
      - think: 30ms  # the push is timed from the POST, not from the connect
      - name: place
        post: /orders
        json: {vu: "{{ vu }}", id: "{{ corr }}"}
      - name: pushed
        ws.expect: {contains: '"id":"{{ corr }}"', from: place, timeout: 2s}
      - name: done
        get: /orders/{{ corr }}
        until: {json: {"$.state": done}, interval: INTERVALms, timeout: 2s, from: place}
      - ws.close: {}
  stuck:
    steps:
      - name: never
        get: /orders/never-{{ vu }}-{{ iteration }}
        until: {json: {"$.state": done}, interval: 20ms, timeout: 150ms}
scenarios:
  main: {executor: iterations, vus: 2, iterations: ITERATIONS, flows: [order]}
  stuck: {executor: iterations, vus: 1, iterations: STUCK, flows: [stuck]}
)";
  yaml = std::regex_replace(yaml, std::regex("PORT"), std::to_string(service.port()));
  yaml = std::regex_replace(yaml, std::regex("INTERVAL"), std::to_string(kIntervalMs));
  yaml = std::regex_replace(yaml, std::regex("ITERATIONS"), std::to_string(kIterations));
  yaml = std::regex_replace(yaml, std::regex("STUCK"), std::to_string(kStuck));
  const std::string path = write_temp_file(yaml, ".yaml");
  const std::string out = write_temp_file("", ".json");
  const ProcessResult result = run_millstone({"run", path, "-w", "1", "-q", "-o", out}, 60);
  ASSERT_NE(result.exit_code, -1) << result.err;
  const nlohmann::json j = read_json(out);
  expect_valid_summary(out);

  // Every POST was pushed for once, and every push was matched by its
  // ws.expect, though it came before the POST's response.
  EXPECT_EQ(service.posts(), static_cast<uint64_t>(kIterations));
  EXPECT_EQ(service.push_failed(), 0u);
  const nlohmann::json& pushed = step(j, "order/pushed");
  EXPECT_EQ(count(pushed, "requests"), service.pushed()) << pushed.dump();
  EXPECT_EQ(count(pushed, "failed"), 0u) << pushed.dump();
  // The POST's own latency includes the wait for its late answer ...
  EXPECT_GE(step(j, "order/place")["latency_ms"]["p50"].get<double>(), kAnswerMs);
  // ... the push's is from the POST's due time to its arrival, held while
  // the VU waited for the answer: D plus loopback, not the answer's time.
  const double p50 = pushed["latency_ms"]["p50"].get<double>();
  EXPECT_GE(p50, kPushMs) << pushed.dump();
  EXPECT_LE(p50, kPushMs + 3) << pushed.dump() << " service lateness "
                              << service.max_push_lateness_us() << "us";
  std::printf(
      "pipeline: push p50 %.2f ms (D = %d ms, service lateness up to %lld us); "
      "poll p50 %.2f ms\n",
      p50, kPushMs, static_cast<long long>(service.max_push_lateness_us()),
      step(j, "order/done")["latency_ms"]["p50"].get<double>());
  if (j.contains("sockets")) {
    EXPECT_EQ(count(j["sockets"], "unsolicited"), 0u);
  }

  // Polls: the service said "done" at the K-th poll of each order; the
  // step counts the satisfying one, "<step> poll" the others.
  const nlohmann::json& done = step(j, "order/done");
  EXPECT_EQ(count(done, "requests"), service.done()) << done.dump();
  EXPECT_EQ(service.done(), static_cast<uint64_t>(kIterations));
  EXPECT_EQ(count(done, "failed"), 0u);
  const nlohmann::json& polls = step(j, "order/done poll");
  const nlohmann::json& never = step(j, "stuck/never poll");
  EXPECT_EQ(count(polls, "requests") + count(never, "requests") + count(done, "requests"),
            service.polls());
  EXPECT_EQ(count(polls, "requests"), static_cast<uint64_t>(kIterations * (kDoneAfter - 1)));
  // From the POST: its answer, then K-1 intervals at least before the K-th poll.
  EXPECT_GE(done["latency_ms"]["p50"].get<double>(), kAnswerMs + (kDoneAfter - 1) * kIntervalMs);
  // An order that never becomes done is lost: poll_timeout, once per iteration.
  EXPECT_EQ(j["errors"].value("poll_timeout", 0), kStuck) << j["errors"].dump();
  EXPECT_EQ(count(step(j, "stuck/never"), "failed"), static_cast<uint64_t>(kStuck));
  EXPECT_EQ(count(step(j, "stuck/never"), "requests"), 0u);
  const uint64_t never_polls = service.polls_of("never-");
  EXPECT_EQ(count(never, "requests"), never_polls);
  EXPECT_GE(never_polls, static_cast<uint64_t>(kStuck * 2));
}

}  // namespace pipeline_test
}  // namespace millstone::testing
