#pragma once
// A real `millstone proxy` process on loopback for the proxy's tests, plain
// blocking sockets for the client and upstream sides, and a small HTTP
// client for the API. Every wait is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace millstone::proxy::testing {

inline int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A listening socket on 127.0.0.1 with a free port.
inline int listen_any(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(fd, 64);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

inline int free_port() {
  int port = 0;
  close(listen_any(&port));
  return port;
}

// Blocking connect to 127.0.0.1:port with 10 s receive/send timeouts.
inline int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Accepts within 10 s; the socket gets 10 s timeouts. -1 on timeout.
inline int accept_within(int listen_fd, int timeout_ms = 10'000) {
  pollfd p{listen_fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return -1;
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct ReadResult {
  std::string bytes;
  int error = 0;       // errno of the failing recv (ECONNRESET...), 0 for EOF
  bool eof = false;    // recv returned 0
  int64_t end_ns = 0;  // when the read ended
};

// Reads until EOF, an error, or `limit` bytes.
inline ReadResult read_until_end(int fd, size_t limit = SIZE_MAX) {
  ReadResult result;
  char buffer[65536];
  while (result.bytes.size() < limit) {
    ssize_t n = recv(fd, buffer, std::min(sizeof buffer, limit - result.bytes.size()), 0);
    if (n > 0) {
      result.bytes.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      result.eof = true;
    } else {
      if (errno == EINTR) continue;
      result.error = errno;
    }
    break;
  }
  result.end_ns = monotonic_ns();
  return result;
}

// Deterministic bytes of every value.
inline std::string pattern_for_in_process(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i)
    out[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return out;
}

struct HttpReply {
  int status = 0;
  std::string body;
};

// One request on its own connection to 127.0.0.1:port.
inline HttpReply http(int port, const std::string& method, const std::string& path,
                      const std::string& body = "", const std::string& extra_headers = "") {
  HttpReply reply;
  int fd = connect_to(port);
  if (fd < 0) return reply;
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers +
                        "Content-Length: " + std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n" + body;
  send_all(fd, request);
  ReadResult answer = read_until_end(fd);
  close(fd);
  const std::string& text = answer.bytes;
  if (text.size() > 12 && text.compare(0, 9, "HTTP/1.1 ") == 0) {
    reply.status = std::atoi(text.c_str() + 9);
    size_t end = text.find("\r\n\r\n");
    if (end != std::string::npos) reply.body = text.substr(end + 4);
  }
  return reply;
}

// `millstone proxy --api 127.0.0.1:0` (plus args); learns the API port from
// its first line.
class ProxyProcess {
 public:
  explicit ProxyProcess(std::vector<std::string> args = {}) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      std::vector<std::string> all = {MILLSTONE_BINARY, "proxy", "--api", "127.0.0.1:0"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (std::string& a : all)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(MILLSTONE_BINARY, argv.data());
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
    // Read lines until the API line (or the process ends), within 10 s.
    const int64_t deadline = monotonic_ns() + 10'000'000'000;
    while (monotonic_ns() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buffer[4096];
      ssize_t n = read(out_, buffer, sizeof buffer);
      if (n <= 0) break;
      output_.append(buffer, static_cast<size_t>(n));
      size_t at = output_.find("API on http://127.0.0.1:");
      if (at != std::string::npos && output_.find('\n', at) != std::string::npos) {
        api_port_ = std::atoi(output_.c_str() + at + std::strlen("API on http://127.0.0.1:"));
        break;
      }
    }
  }
  ~ProxyProcess() { stop(); }
  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;

  int api_port() const { return api_port_; }
  const std::string& output() const { return output_; }
  pid_t pid() const { return pid_; }

  // SIGTERM, then the exit code (-1 if it had to be killed).
  int stop() {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    exit_code_ = wait_exit(10'000);
    return exit_code_;
  }
  // Waits for the process to end by itself.
  int wait_exit(int timeout_ms) {
    if (pid_ <= 0) return exit_code_;
    int status = 0;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (out_ >= 0) close(out_);
        out_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return exit_code_;
      }
      usleep(10'000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = -1;
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int api_port_ = 0;
  int exit_code_ = -1;
  std::string output_;
};

}  // namespace millstone::proxy::testing
