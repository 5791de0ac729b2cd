#include "socket_servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>

#include "ws/frame.h"
#include "ws/handshake.h"

namespace millstone::testing {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t unix_us() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

bool send_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

class Collect final : public ws::EventSink {
 public:
  bool on_event(const ws::Event& event) override {
    events.push_back({event.kind, std::string(event.payload)});
    return true;
  }
  std::vector<std::pair<ws::Event::Kind, std::string>> events;
};

}  // namespace

SocketTestServer::SocketTestServer(Mode mode, bool ipv6, std::string answer)
    : mode_(mode), answer_(std::move(answer)) {
  listen_fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ipv6) {
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::listen(listen_fd_, 128) == 0) {
      socklen_t len = sizeof addr;
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin6_port);
    }
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 128);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  thread_ = std::thread([this] { accept_loop(); });
}

SocketTestServer::~SocketTestServer() {
  stop_ = true;
  thread_.join();
  for (std::thread& t : connections_)
    t.join();
  ::close(listen_fd_);
}

void SocketTestServer::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    connections_.emplace_back([this, fd] {
      serve(fd);
      ::close(fd);
    });
  }
}

void SocketTestServer::serve(int fd) {
  std::string in;
  char buf[65536];
  auto read_some = [&](int timeout_ms) -> int {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return 0;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return -1;
    in.append(buf, static_cast<size_t>(n));
    return 1;
  };
  const bool websocket = mode_ == Mode::kWsEcho || mode_ == Mode::kWsCloseAfter ||
                         mode_ == Mode::kWsGarbage || mode_ == Mode::kWsRefuse ||
                         mode_ == Mode::kWsRefuseKeepAlive || mode_ == Mode::kWsScripted;
  if (websocket) {
    while (in.find("\r\n\r\n") == std::string::npos) {
      if (stop_ || read_some(50) < 0) return;
    }
    const size_t head_end = in.find("\r\n\r\n") + 4;
    std::string head = in.substr(0, head_end);
    in.erase(0, head_end);
    std::string key;
    size_t at = head.find("Sec-WebSocket-Key: ");
    if (at != std::string::npos) {
      at += 19;
      key = head.substr(at, head.find("\r\n", at) - at);
    }
    if (mode_ == Mode::kWsRefuseKeepAlive || mode_ == Mode::kWsScripted) {
      // A keep-alive HTTP answer: the connection still speaks HTTP, so the
      // client must send nothing more (no WebSocket close frame).
      std::string answer = "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno";
      if (mode_ == Mode::kWsScripted) {
        answer = answer_;
        const size_t at = answer.find("{accept}");
        if (at != std::string::npos) answer.replace(at, 8, ws::accept_for_key(key));
        // "{pause}": the rest 200 ms later (frames after the client's next step began).
        const size_t pause = answer.find("{pause}");
        if (pause != std::string::npos) {
          send_all(fd, answer.substr(0, pause));
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          answer.erase(0, pause + 7);
        }
      }
      send_all(fd, answer);
      bytes_after_answer_ += in.size();
      in.clear();
      const int64_t until = now_ms() + 1000;
      while (!stop_ && now_ms() < until) {
        const int r = read_some(20);
        bytes_after_answer_ += in.size();
        in.clear();
        if (r < 0) return;
      }
      return;
    }
    if (mode_ == Mode::kWsRefuse || key.empty()) {
      send_all(fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
      return;
    }
    send_all(fd,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\nSec-WebSocket-Accept: " +
                 ws::accept_for_key(key) + "\r\n\r\n");
    if (mode_ == Mode::kWsGarbage) {
      send_all(fd, std::string("\xf1\x02hi", 4));  // RSV1-3 set: a protocol error
      read_some(2000);
      return;
    }
    ws::FrameParser parser(ws::Role::kServer);
    const int64_t start = now_ms();
    int64_t next_push = start + 100;
    int64_t next_ping = start + 250;
    while (!stop_) {
      int r = read_some(20);
      if (r < 0) return;
      Collect sink;
      auto result = parser.parse(in.data(), in.size(), sink);
      if (result.error != ws::FrameError::kNone) return;
      in.erase(0, result.consumed);
      std::string out;
      for (auto& [kind, payload] : sink.events) {
        if (kind == ws::Event::Kind::kText)
          ws::append_frame(&out, ws::Opcode::kText, payload, true, std::nullopt);
        if (kind == ws::Event::Kind::kBinary)
          ws::append_frame(&out, ws::Opcode::kBinary, payload, true, std::nullopt);
        if (kind == ws::Event::Kind::kClose) {
          ws::append_close(&out, ws::kCloseNormal, "", std::nullopt);
          send_all(fd, out);
          return;
        }
      }
      const int64_t now = now_ms();
      if (mode_ == Mode::kWsCloseAfter && now - start >= 300) {
        ws::append_close(&out, 4001, "bye", std::nullopt);
        send_all(fd, out);
        read_some(1000);  // the client's echo
        return;
      }
      if (mode_ == Mode::kWsEcho && now >= next_push) {
        ws::append_frame(&out, ws::Opcode::kText,
                         "{\"type\":\"tick\",\"sent_us\":" + std::to_string(unix_us()) + "}", true,
                         std::nullopt);
        next_push += 100;
      }
      if (mode_ == Mode::kWsEcho && now >= next_ping) {
        ws::append_frame(&out, ws::Opcode::kPing, "p", true, std::nullopt);
        next_ping += 250;
      }
      if (!out.empty() && !send_all(fd, out)) return;
    }
    return;
  }
  if (mode_ == Mode::kTcpGarbageClose) {
    send_all(fd, "garbage");
    return;  // closed by the caller
  }
  if (mode_ == Mode::kTcpNoRead) {
    int small = 4096;  // fill up soon
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    while (!stop_)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return;
  }
  while (!stop_) {
    if (read_some(20) < 0) return;
    if (mode_ == Mode::kTcpLineEcho) {
      size_t nl;
      while ((nl = in.find('\n')) != std::string::npos) {
        if (!send_all(fd, in.substr(0, nl + 1))) return;
        in.erase(0, nl + 1);
      }
    } else {
      while (in.size() >= 4) {
        uint32_t n = (static_cast<uint8_t>(in[0]) << 24) | (static_cast<uint8_t>(in[1]) << 16) |
                     (static_cast<uint8_t>(in[2]) << 8) | static_cast<uint8_t>(in[3]);
        if (in.size() < 4 + n) break;
        if (!send_all(fd, in.substr(0, 4 + n))) return;
        in.erase(0, 4 + n);
      }
    }
  }
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  ::close(fds[1]);
  out_fd_ = fds[0];
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      usleep(20'000);
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::string ChildProcess::wait_for_line(const std::string& prefix, double timeout_s) {
  const int64_t deadline = now_ms() + static_cast<int64_t>(timeout_s * 1000);
  while (now_ms() < deadline) {
    size_t nl;
    while ((nl = buffered_.find('\n')) != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      if (line.rfind(prefix, 0) == 0) return line;
    }
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return "";
    buffered_.append(buf, static_cast<size_t>(n));
  }
  return "";
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool wait_for_port(int port, double timeout_s) {
  const int64_t deadline = now_ms() + static_cast<int64_t>(timeout_s * 1000);
  while (now_ms() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return true;
    usleep(50'000);
  }
  return false;
}

}  // namespace millstone::testing
