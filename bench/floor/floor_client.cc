// bench/floor/floor_client.cc — the floor for bench/client_cpu.sh: the least a
// closed-loop HTTP/1.1 keep-alive client can cost per request with epoll.
//
// It holds N connections (spread over T threads, one epoll each, level-
// triggered, registered once) and per connection only send()s one fixed GET
// and recv()s the response, counting a response complete when the header end
// and Content-Length bytes of body have arrived; then it sends the next. No
// parser beyond that, no timers, no latency histogram, no allocation after
// start-up. What it costs per request is (nearly) the kernel's share: the
// send, the recv and an epoll_wait per batch.
//
// Build (bench/client_cpu.sh does this itself, into its temp dir):
//   g++ -std=c++20 -O2 -Wall -Wextra -pthread -o floor_client bench/floor/floor_client.cc
// Run:
//   floor_client HOST PORT PATH CONNS SECONDS [THREADS] [--nodelay 0|1] [--busy-poll USEC]
// Prints one line: `requests N errors E seconds S`; exit 0, or 1 on a
// setup error, 2 on bad arguments. Only for 127.0.0.1 benchmarks.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  sockaddr_in addr{};
  std::string request;
  int conns = 0;
  double seconds = 0;
  int threads = 1;
  int nodelay = 1;
  int busy_poll_us = 0;
};

struct Conn {
  int fd = -1;
  size_t have = 0;  // bytes of the current response received so far
  size_t want = 0;  // its total size once the header is complete, else 0
  size_t sent = 0;  // bytes of the request sent
  char head[1024];  // the header so far (only until want is known)
};

std::atomic<uint64_t> g_requests{0};
std::atomic<uint64_t> g_errors{0};

// Content-Length from a complete header [p, p + n) (n includes the blank line).
long content_length(const char* p, size_t n) {
  static const char kCanonical[] = "\r\nContent-Length:";
  static const char kName[] = "\r\ncontent-length:";
  const size_t name_len = sizeof kName - 1;
  // nginx spells it the canonical way; any other spelling takes the slow scan.
  if (const void* at = memmem(p, n, kCanonical, name_len)) {
    return std::strtol(static_cast<const char*>(at) + name_len, nullptr, 10);
  }
  for (size_t i = 0; i + name_len <= n; ++i) {
    if (strncasecmp(p + i, kName, name_len) == 0) return std::strtol(p + i + name_len, nullptr, 10);
  }
  return -1;
}

bool send_request(Conn& c, const std::string& req) {
  while (c.sent < req.size()) {
    const ssize_t n = ::send(c.fd, req.data() + c.sent, req.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) return true;  // a 40-byte request never gets here
    return false;
  }
  return true;
}

int open_conn(const Options& o) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (o.nodelay) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (o.busy_poll_us > 0 &&
      setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &o.busy_poll_us, sizeof o.busy_poll_us) != 0) {
    std::fprintf(stderr, "floor_client: SO_BUSY_POLL: %s\n", std::strerror(errno));
    ::close(fd);
    return -1;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&o.addr), sizeof o.addr) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void run_thread(const Options& o, int conns, std::chrono::steady_clock::time_point end) {
  const int ep = epoll_create1(0);
  std::vector<Conn> cs(static_cast<size_t>(conns));
  for (size_t i = 0; i < cs.size(); ++i) {
    cs[i].fd = open_conn(o);
    if (cs[i].fd < 0) {
      g_errors.fetch_add(1);
      continue;
    }
    // Level-triggered read interest; the first send waits for the connect.
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  std::vector<epoll_event> events(static_cast<size_t>(conns) + 1);
  static thread_local char buf[65536];
  uint64_t done = 0;
  uint64_t errors = 0;
  while (std::chrono::steady_clock::now() < end) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      Conn& c = cs[events[k].data.u64];
      if (c.fd < 0) continue;
      if (events[k].events & EPOLLOUT) {
        // Connected: from now on only readability matters.
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = events[k].data.u64;
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        c.sent = 0;
        if (!send_request(c, o.request)) {
          ++errors;
          ::close(c.fd);
          c.fd = -1;
        }
        continue;
      }
      const ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        ++errors;
        ::close(c.fd);
        c.fd = -1;
        continue;
      }
      size_t got = static_cast<size_t>(r);
      if (c.want == 0 && c.have == 0) {
        // The usual case: the whole header came in this recv; no copy.
        if (const void* end_of_head = memmem(buf, got, "\r\n\r\n", 4)) {
          const size_t head_len =
              static_cast<size_t>(static_cast<const char*>(end_of_head) - buf) + 4;
          const long body = content_length(buf, head_len);
          if (body < 0) {
            ++errors;
            ::close(c.fd);
            c.fd = -1;
            continue;
          }
          c.want = head_len + static_cast<size_t>(body);
        }
      }
      if (c.want == 0) {
        const size_t keep = std::min(got, sizeof c.head - c.have);
        std::memcpy(c.head + c.have, buf, keep);
        const size_t seen = c.have + keep;
        const void* end_of_head = memmem(c.head, seen, "\r\n\r\n", 4);
        if (end_of_head != nullptr) {
          const size_t head_len =
              static_cast<size_t>(static_cast<const char*>(end_of_head) - c.head) + 4;
          const long body = content_length(c.head, head_len);
          if (body < 0) {
            ++errors;
            ::close(c.fd);
            c.fd = -1;
            continue;
          }
          c.want = head_len + static_cast<size_t>(body);
        } else if (seen == sizeof c.head) {
          ++errors;  // a header this client does not expect
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
      }
      c.have += got;
      if (c.want != 0 && c.have >= c.want) {
        // One request in flight per connection: nothing can follow the body.
        ++done;
        c.have = 0;
        c.want = 0;
        c.sent = 0;
        if (!send_request(c, o.request)) {
          ++errors;
          ::close(c.fd);
          c.fd = -1;
        }
      }
    }
  }
  for (Conn& c : cs) {
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(ep);
  g_requests.fetch_add(done);
  g_errors.fetch_add(errors);
}

int usage() {
  std::fprintf(stderr,
               "usage: floor_client HOST PORT PATH CONNS SECONDS [THREADS] [--nodelay 0|1] "
               "[--busy-poll USEC]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) return usage();
  Options o;
  o.addr.sin_family = AF_INET;
  o.addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &o.addr.sin_addr) != 1) return usage();
  o.request =
      std::string("GET ") + argv[3] + " HTTP/1.1\r\nHost: " + argv[1] + ":" + argv[2] + "\r\n\r\n";
  o.conns = std::atoi(argv[4]);
  o.seconds = std::atof(argv[5]);
  int i = 6;
  if (i < argc && argv[i][0] != '-') o.threads = std::atoi(argv[i++]);
  for (; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--nodelay") == 0) {
      o.nodelay = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--busy-poll") == 0) {
      o.busy_poll_us = std::atoi(argv[i + 1]);
    } else {
      return usage();
    }
  }
  if (i != argc || o.conns < 1 || o.seconds <= 0 || o.seconds > 3600 || o.threads < 1 ||
      o.threads > o.conns) {
    return usage();
  }
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(o.seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    const int share = o.conns / o.threads + (t < o.conns % o.threads ? 1 : 0);
    threads.emplace_back(run_thread, std::cref(o), share, end);
  }
  for (std::thread& t : threads)
    t.join();
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("requests %llu errors %llu seconds %.3f\n",
              static_cast<unsigned long long>(g_requests.load()),
              static_cast<unsigned long long>(g_errors.load()), took);
  return 0;
}
