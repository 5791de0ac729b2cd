// Connections are spread over the source addresses given with
// --source-address, so a run can hold more connections to one target than
// one address has ephemeral ports.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace source_address_test {

// Answers every request with a tiny 200 and remembers each peer's address.
class PeerRecordingServer {
 public:
  PeerRecordingServer() {
    listen_fd_ = listen_loopback(&port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~PeerRecordingServer() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
    for (int fd : open_)
      close(fd);
  }
  int port() const { return port_; }
  std::set<std::string> peers() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peers_;
  }

 private:
  void serve() {
    static const std::string kResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    std::vector<pollfd> fds;
    while (!stop_) {
      fds.clear();
      fds.push_back({listen_fd_, POLLIN, 0});
      for (int fd : open_)
        fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        int fd = accept(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len);
        if (fd >= 0) {
          open_.push_back(fd);
          char text[INET_ADDRSTRLEN];
          inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
          std::lock_guard<std::mutex> lock(mutex_);
          peers_.insert(text);
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
        if (n <= 0) {
          close(fds[i].fd);
          std::erase(open_, fds[i].fd);
          continue;
        }
        (void)!send(fds[i].fd, kResponse.data(), kResponse.size(), MSG_NOSIGNAL);
      }
    }
  }

  int listen_fd_;
  int port_;
  std::vector<int> open_;
  std::mutex mutex_;
  std::set<std::string> peers_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(SourceAddress, ConnectionsComeFromEveryGivenAddress) {
  PeerRecordingServer server;
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  auto result =
      run_millstone({"run", url, "-c", "6", "-d", "1s", "-w", "1", "-q", "--no-history",
                     "--source-address", "127.0.0.2-127.0.0.3", "--source-address", "127.0.0.4"},
                    30);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(server.peers(), (std::set<std::string>{"127.0.0.2", "127.0.0.3", "127.0.0.4"}));
}

TEST(SourceAddress, WithoutTheFlagALoopbackRunUsesTheKernelsChoice) {
  PeerRecordingServer server;
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  auto result =
      run_millstone({"run", url, "-c", "4", "-d", "1s", "-w", "1", "-q", "--no-history"}, 30);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(server.peers(), (std::set<std::string>{"127.0.0.1"}));
}

TEST(SourceAddress, AnAddressOfThisHostOnlyAndOfTheTargetsFamily) {
  PeerRecordingServer server;
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  auto result = run_millstone(
      {"run", url, "-d", "1s", "-q", "--no-history", "--source-address", "203.0.113.7"}, 30);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--source-address 203.0.113.7: cannot bind"), std::string::npos)
      << result.err;
  result =
      run_millstone({"run", url, "-d", "1s", "-q", "--no-history", "--source-address", "::1"}, 30);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("IPv4"), std::string::npos) << result.err;
}

}  // namespace source_address_test
}  // namespace millstone::testing
