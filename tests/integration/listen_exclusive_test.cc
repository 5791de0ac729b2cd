// An address millstone listens on is its own: a second `millstone mock` (or
// `run --metrics-listen`) on an address already held fails with "address
// already in use" and exit 7, instead of saying "listening" while the kernel
// splits the connections between the two (SO_REUSEPORT). The mock's own
// workers still share its sockets, and each gets connections.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace listen_exclusive_test {

constexpr int kExitCannotListen = 7;

TEST(ListenExclusive, SecondMockOnTheSamePortSaysAddressInUse) {
  MockServer first("routes:\n  - path: /health\n", 2);
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  ProcessResult second = run_millstone({"mock", "--listen", address, "--workers", "2"}, 10);
  EXPECT_FALSE(second.timed_out) << "the second mock kept running: " << second.out;
  EXPECT_EQ(second.exit_code, kExitCannotListen) << second.err;
  EXPECT_NE(second.err.find(address), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("address already in use"), std::string::npos) << second.err;
  EXPECT_EQ(second.out.find("listening"), std::string::npos) << second.out;
}

TEST(ListenExclusive, SecondMockOnTheSameTcpListenerSaysAddressInUse) {
  int tcp_port = 0;
  int probe = listen_loopback(&tcp_port);
  close(probe);
  const std::string config =
      "routes:\n  - path: /health\ntcp:\n  - name: line\n"
      "    listen: 127.0.0.1:" +
      std::to_string(tcp_port) + "\n    framing: line\n    echo: true\n";
  MockServer first(config, 2);
  const std::string path = write_temp_file(config, ".yaml");
  ProcessResult second = run_millstone({"mock", "--config", path, "--listen", "127.0.0.1:0"}, 10);
  unlink(path.c_str());
  EXPECT_FALSE(second.timed_out) << "the second mock kept running: " << second.out;
  EXPECT_EQ(second.exit_code, kExitCannotListen) << second.err;
  EXPECT_NE(second.err.find("127.0.0.1:" + std::to_string(tcp_port)), std::string::npos)
      << second.err;
  EXPECT_NE(second.err.find("address already in use"), std::string::npos) << second.err;
}

TEST(ListenExclusive, RunMetricsListenOnAHeldPortSaysAddressInUse) {
  MockServer mock("routes:\n  - path: /health\n");
  // The mock's own port is the held address.
  const std::string address = "127.0.0.1:" + std::to_string(mock.port());
  ProcessResult run = run_millstone(
      {"run", mock.url("/health"), "-d", "1s", "-c", "1", "--metrics-listen", address}, 30);
  EXPECT_EQ(run.exit_code, kExitCannotListen) << run.err;
  EXPECT_NE(run.err.find(address), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("address already in use"), std::string::npos) << run.err;
}

// Socket descriptors a process holds now.
int sockets_held(pid_t pid) {
  int count = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (!d) return -1;
  while (dirent* e = readdir(d)) {
    char target[256];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)).rfind("socket:", 0) == 0) ++count;
  }
  closedir(d);
  return count;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                   "/children");
  pid_t pid;
  while (in >> pid)
    out.push_back(pid);
  return out;
}

int connect_to(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// The workers share one socket; connections opened one after the other, each
// answered before the next, are spread over the workers rather than all taken
// by the first one to wait.
TEST(ListenExclusive, WorkersShareTheConnections) {
  const std::string config_path = write_temp_file("routes:\n  - path: /health\n", ".yaml");
  Process mock(
      {"mock", "--config", config_path, "--listen", "127.0.0.1:0", "--workers", "2", "--quiet"});
  int port = 0;
  for (int i = 0; i < 500 && port == 0; ++i) {
    const std::string out = mock.stdout_so_far();
    const size_t at = out.find("listening on 127.0.0.1:");
    if (at != std::string::npos) port = std::atoi(out.c_str() + at + 23);
    if (port == 0) usleep(10'000);
  }
  ASSERT_GT(port, 0);
  std::vector<pid_t> workers;
  for (int i = 0; i < 100 && workers.size() < 2; ++i) {
    workers = children_of(mock.pid());
    if (workers.size() < 2) usleep(10'000);
  }
  ASSERT_EQ(workers.size(), 2u);
  std::map<pid_t, int> before;
  for (pid_t w : workers)
    before[w] = sockets_held(w);

  // Rounds of 20 connections, each answered before the next, kept open.
  // Without the spreading one worker takes every one, round after round;
  // with it, which worker the kernel wakes still depends on which one the
  // scheduler has back in epoll_wait, and a loaded 2-core machine (or an
  // ASan build) has given one worker all 20 of a round. A worker process
  // that exists may also not have registered the listener yet (a sanitized
  // start on a loaded machine took longer than three rounds). Up to 20
  // rounds, 100 ms apart, until each worker holds some.
  constexpr int kConnections = 20;
  constexpr int kRounds = 20;
  std::vector<int> held;
  const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  std::map<pid_t, int> gained;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kConnections; ++i) {
      int fd = connect_to(port);
      ASSERT_GE(fd, 0);
      timeval tv{5, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
      char buffer[512];
      ASSERT_GT(recv(fd, buffer, sizeof buffer, 0), 0);  // accepted and answered: kept open
      held.push_back(fd);
    }
    bool every_worker = true;
    for (pid_t w : workers) {
      gained[w] = sockets_held(w) - before[w];
      every_worker = every_worker && gained[w] > 0;
    }
    if (every_worker) break;
    usleep(100'000);
  }
  int total = 0;
  std::ostringstream spread;
  for (pid_t w : workers) {
    spread << gained[w] << " ";
    total += gained[w];
  }
  for (pid_t w : workers)
    EXPECT_GE(gained[w], 1) << "connections per worker: " << spread.str();
  EXPECT_EQ(total, static_cast<int>(held.size())) << spread.str();
  for (int fd : held)
    close(fd);
  mock.signal(SIGTERM);
  mock.wait(10);
  unlink(config_path.c_str());
}

}  // namespace listen_exclusive_test
}  // namespace millstone::testing
