// io_backend_bench — epoll vs io_uring for millstone's client I/O pattern.
//
// A standalone closed-loop HTTP/1.1 keep-alive client: N connections, each
// sends `GET PATH`, waits for the complete response, sends the next one, for
// D seconds. Only the I/O backend differs between runs; connection setup,
// request bytes and response parsing are the same code. It depends on nothing
// in millstone so it stays small and can be rebuilt anywhere:
//
//   g++ -std=c++20 -O2 -Wall -Wextra -o io_backend_bench io_backend_bench.cc -luring
//
// (bench/io_backend/run.sh builds it, starts a private nginx and alternates
// the backends.)
//
// Backends (--backend):
//   epoll        millstone's pattern: each socket registered once with
//                EPOLLIN|EPOLLOUT|EPOLLET; after a complete response the next
//                request is send()-ed at once; recv() into one shared 64 KiB
//                buffer; a short read means "drained" (no extra EAGAIN recv);
//                epoll_pwait2.
//   uring        one recv SQE outstanding per connection into a per-connection
//                buffer (--rbuf bytes), IORING_RECVSEND_POLL_FIRST (the reply
//                is never there yet when we post the recv); next request is a
//                send SQE queued together with the re-armed recv; everything
//                goes out with one io_uring_submit_and_wait_timeout per loop.
//   uring-mshot  one IORING_RECV_MULTISHOT recv per connection (armed once)
//                selecting buffers from a provided buffer ring shared by all
//                connections (--ring-bufs x --rbuf bytes); buffers are
//                recycled right after parsing; send SQEs as above.
// io_uring setup tries SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN|
// TASKRUN_FLAG, then no flags; registers the ring fd and the sockets as fixed
// files when it can (--no-fixed disables the latter). What was used is printed.
//
// Output: one line of key=value pairs (see print_result) that run.sh parses.
// CPU = getrusage(RUSAGE_SELF) user+sys over the measured window (after
// --warmup seconds), so connection setup and ring setup are excluded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

// ---------------------------------------------------------------- options

struct Options {
  std::string backend = "epoll";
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/hello";
  int conns = 50;
  double duration_s = 5.0;
  double warmup_s = 0.5;
  size_t rbuf = 4096;          // io_uring: bytes per recv buffer
  unsigned ring_bufs = 256;    // uring-mshot: buffers in the provided ring
  bool fixed_files = true;     // io_uring: register sockets as fixed files
  bool poll_first = true;      // uring: IORING_RECVSEND_POLL_FIRST on recv
  std::string setup = "auto";  // io_uring: auto|defer|coop|none
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: io_backend_bench --port P [--backend epoll|uring|uring-mshot]\n"
               "         [--host 127.0.0.1] [--path /hello] [--conns 50] [--duration 5]\n"
               "         [--warmup 0.5] [--rbuf 4096] [--ring-bufs 256] [--no-fixed]\n"
               "         [--no-poll-first] [--setup auto|defer|coop|none]\n");
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--backend")
      o.backend = value();
    else if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = std::atoi(value());
    else if (a == "--path")
      o.path = value();
    else if (a == "--conns")
      o.conns = std::atoi(value());
    else if (a == "--duration")
      o.duration_s = std::atof(value());
    else if (a == "--warmup")
      o.warmup_s = std::atof(value());
    else if (a == "--rbuf")
      o.rbuf = static_cast<size_t>(std::atol(value()));
    else if (a == "--ring-bufs")
      o.ring_bufs = static_cast<unsigned>(std::atol(value()));
    else if (a == "--no-fixed")
      o.fixed_files = false;
    else if (a == "--no-poll-first")
      o.poll_first = false;
    else if (a == "--setup")
      o.setup = value();
    else
      usage();
  }
  if (o.port <= 0 || o.port > 65535 || o.conns <= 0 || o.duration_s <= 0 || o.warmup_s < 0 ||
      o.rbuf < 256 || o.ring_bufs == 0 || (o.ring_bufs & (o.ring_bufs - 1)) != 0 ||
      o.ring_bufs > 32768 ||
      (o.backend != "epoll" && o.backend != "uring" && o.backend != "uring-mshot")) {
    usage();
  }
  return o;
}

// ---------------------------------------------------------------- clock / cpu

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

struct Cpu {
  double user_s = 0, sys_s = 0;
  long minflt = 0, nvcsw = 0, nivcsw = 0;
};

Cpu cpu_now() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  Cpu c;
  c.user_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  c.sys_s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  c.minflt = ru.ru_minflt;
  c.nvcsw = ru.ru_nvcsw;
  c.nivcsw = ru.ru_nivcsw;
  return c;
}

[[noreturn]] void die(const char* what, int err) {
  std::fprintf(stderr, "io_backend_bench: %s: %s\n", what, std::strerror(err));
  std::exit(1);
}

// ---------------------------------------------------------------- parsing
// Minimal, shared by all backends: find "\r\n\r\n", read Content-Length,
// wait for that many body bytes. Headers split across reads are accumulated
// in a small per-connection string (rare: nginx's reply is ~150 bytes).

struct Parser {
  std::string partial;   // header bytes carried over from earlier reads
  size_t body_left = 0;  // body bytes still expected
  bool in_body = false;

  enum Result { kNeedMore, kComplete, kError };

  static bool parse_head(std::string_view head, size_t* content_length, bool* ok_status) {
    // head ends right before "\r\n\r\n"
    *ok_status = head.size() >= 12 && head.substr(0, 5) == "HTTP/" && head.substr(9, 3) == "200";
    *content_length = 0;
    size_t pos = 0;
    while (pos < head.size()) {
      size_t eol = head.find("\r\n", pos);
      if (eol == std::string_view::npos) eol = head.size();
      std::string_view line = head.substr(pos, eol - pos);
      constexpr std::string_view kName = "content-length:";
      if (line.size() > kName.size() && strncasecmp(line.data(), kName.data(), kName.size()) == 0) {
        size_t v = 0;
        for (size_t k = kName.size(); k < line.size(); ++k) {
          char ch = line[k];
          if (ch >= '0' && ch <= '9')
            v = v * 10 + static_cast<size_t>(ch - '0');
          else if (ch != ' ' && ch != '\t')
            return false;
        }
        *content_length = v;
        return true;
      }
      pos = eol + 2;
    }
    return false;  // we only speak to servers that send Content-Length
  }

  // Feeds `n` bytes. On kComplete `*bad_status` tells whether it was not a 200.
  // Bytes past the end of the response are an error (we never pipeline).
  Result feed(const char* data, size_t n, bool* bad_status) {
    if (in_body) {
      if (n > body_left) return kError;
      body_left -= n;
      if (body_left == 0) {
        in_body = false;
        return kComplete;
      }
      return kNeedMore;
    }
    std::string_view view(data, n);
    if (!partial.empty()) {
      partial.append(data, n);
      view = partial;
    }
    size_t end = view.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (partial.empty()) partial.assign(data, n);
      return partial.size() > 16384 ? kError : kNeedMore;
    }
    size_t content_length = 0;
    bool ok = false;
    if (!parse_head(view.substr(0, end), &content_length, &ok)) return kError;
    *bad_status = !ok;
    size_t have = view.size() - (end + 4);
    partial.clear();
    if (have > content_length) return kError;
    if (have == content_length) return kComplete;
    body_left = content_length - have;
    in_body = true;
    return kNeedMore;
  }
};

// ---------------------------------------------------------------- sockets

int connect_one(const sockaddr_in& addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", errno);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Blocking connect (setup is outside the measured window), then non-blocking.
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0)
    die("connect", errno);
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  return fd;
}

// ---------------------------------------------------------------- bookkeeping

struct Counters {
  uint64_t responses = 0;  // completed responses in the measured window
  uint64_t total = 0;      // including warm-up
  uint64_t bad_status = 0;
  uint64_t errors = 0;
  uint64_t syscalls_wait = 0;  // epoll_pwait2 / io_uring_enter calls (measured window)
  uint64_t events = 0;         // epoll events / CQEs processed (measured window)
  uint64_t recv_calls = 0;     // epoll: recv() calls; uring: recv CQEs
  uint64_t send_calls = 0;
};

struct Window {
  int64_t start_ns = 0, end_ns = 0, warm_ns = 0;
  bool measuring = false;
  Cpu cpu0, cpu1;
  Counters at_start;
  int64_t t0 = 0, t1 = 0;

  // Returns false when the run is over.
  bool tick(const Counters& c) {
    int64_t t = now_ns();
    if (!measuring && t >= warm_ns) {
      measuring = true;
      at_start = c;
      cpu0 = cpu_now();
      t0 = t;
    }
    if (t >= end_ns) {
      cpu1 = cpu_now();
      t1 = t;
      return false;
    }
    return true;
  }
};

struct Result {
  std::string backend_detail;
  double mem_per_conn_bytes = 0;  // userspace receive-buffer bytes per connection
  std::string mem_note;
};

void print_result(const Options& o, const Window& w, const Counters& c, const Result& r) {
  double wall = (w.t1 - w.t0) / 1e9;
  uint64_t req = c.responses - w.at_start.responses;
  double user = w.cpu1.user_s - w.cpu0.user_s;
  double sys = w.cpu1.sys_s - w.cpu0.sys_s;
  double cpu = user + sys;
  auto per = [&](uint64_t a, uint64_t b) { return req ? double(a - b) / double(req) : 0.0; };
  std::printf(
      "backend=%s conns=%d requests=%llu wall_s=%.3f rps=%.0f user_s=%.3f sys_s=%.3f "
      "cpu_us_per_req=%.3f cpu_pct=%.1f waits_per_req=%.3f events_per_req=%.3f "
      "recv_per_req=%.3f send_per_req=%.3f vcsw=%ld ivcsw=%ld errors=%llu bad_status=%llu "
      "rbuf_bytes_per_conn=%.0f detail=%s mem_note=%s\n",
      o.backend.c_str(), o.conns, static_cast<unsigned long long>(req), wall, req / wall, user, sys,
      req ? cpu * 1e6 / req : 0.0, 100.0 * cpu / wall,
      per(c.syscalls_wait, w.at_start.syscalls_wait), per(c.events, w.at_start.events),
      per(c.recv_calls, w.at_start.recv_calls), per(c.send_calls, w.at_start.send_calls),
      w.cpu1.nvcsw - w.cpu0.nvcsw, w.cpu1.nivcsw - w.cpu0.nivcsw,
      static_cast<unsigned long long>(c.errors), static_cast<unsigned long long>(c.bad_status),
      r.mem_per_conn_bytes, r.backend_detail.c_str(), r.mem_note.c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------- epoll

struct EpollConn {
  int fd = -1;
  size_t written = 0;  // bytes of the current request already sent
  bool writing = false;
  Parser parser;
};

void run_epoll(const Options& /*o*/, const std::vector<int>& fds, const std::string& request,
               Window& w, Counters& c, Result& r) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1", errno);
  std::vector<EpollConn> conns(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) {
    conns[i].fd = fds[i];
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) die("epoll_ctl", errno);
  }
  static char buffer[65536];  // shared by all connections, like millstone's read_buffer
  bool measuring = false;

  auto write_some = [&](EpollConn& k) {
    while (k.written < request.size()) {
      ssize_t n =
          ::send(k.fd, request.data() + k.written, request.size() - k.written, MSG_NOSIGNAL);
      if (measuring) ++c.send_calls;
      if (n > 0) {
        k.written += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;  // EPOLLOUT edge resumes us
      die("send", n < 0 ? errno : EPIPE);
    }
    k.writing = false;
  };
  auto start_request = [&](EpollConn& k) {
    k.written = 0;
    k.writing = true;
    write_some(k);
  };
  auto read_some = [&](EpollConn& k) {
    for (;;) {
      ssize_t n = ::recv(k.fd, buffer, sizeof buffer, 0);
      if (measuring) ++c.recv_calls;
      if (n > 0) {
        bool bad = false;
        Parser::Result pr = k.parser.feed(buffer, static_cast<size_t>(n), &bad);
        if (pr == Parser::kError) die("bad response", EPROTO);
        if (pr == Parser::kComplete) {
          ++c.responses;
          if (bad) ++c.bad_status;
          start_request(k);
          return;
        }
        if (static_cast<size_t>(n) < sizeof buffer) return;  // short read = drained
        continue;
      }
      if (n == 0) die("server closed the connection", ECONNRESET);
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      die("recv", errno);
    }
  };

  for (auto& k : conns)
    start_request(k);
  std::vector<epoll_event> events(256);
  while (w.tick(c)) {
    measuring = w.measuring;
    timespec ts{0, 100 * 1000 * 1000};
    int n = epoll_pwait2(ep, events.data(), static_cast<int>(events.size()), &ts, nullptr);
    if (n < 0 && errno == ENOSYS)
      n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    if (measuring) ++c.syscalls_wait;
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_pwait2", errno);
    }
    if (measuring) c.events += static_cast<uint64_t>(n);
    for (int i = 0; i < n; ++i) {
      EpollConn& k = conns[events[i].data.u64];
      uint32_t ev = events[i].events;
      if (k.writing && (ev & (EPOLLOUT | EPOLLERR))) write_some(k);
      if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_some(k);
    }
    if (n == static_cast<int>(events.size()) && events.size() < 65536)
      events.resize(events.size() * 2);
  }
  close(ep);
  r.backend_detail = "epoll_pwait2+ET";
  r.mem_per_conn_bytes = 65536.0 / static_cast<double>(fds.size());
  r.mem_note = "shared_64KiB";
}

// ---------------------------------------------------------------- io_uring

// user_data: low 32 bits connection index, bits 32..39 op kind.
enum Op : uint64_t { kRecv = 1, kSend = 2 };
uint64_t tag(Op op, uint32_t idx) {
  return (uint64_t{op} << 32) | idx;
}

struct UringConn {
  int fd = -1;      // real fd
  int sqe_fd = -1;  // what goes into SQEs: fixed index or real fd
  size_t written = 0;
  Parser parser;
  char* buf = nullptr;  // uring (plain): per-connection buffer
};

unsigned round_pow2(unsigned v) {
  unsigned p = 1;
  while (p < v)
    p <<= 1;
  return p;
}

void run_uring(const Options& o, const std::vector<int>& fds, const std::string& request, Window& w,
               Counters& c, Result& r, bool multishot) {
  const unsigned nconn = static_cast<unsigned>(fds.size());
  // Per connection at most one recv and one send in flight.
  unsigned sq_entries = round_pow2(std::max(64u, std::min(2 * nconn, 32768u)));
  io_uring ring;
  io_uring_params p{};
  std::string setup_used;
  struct Try {
    const char* name;
    unsigned flags;
  };
  std::vector<Try> tries;
  const unsigned kDefer = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  const unsigned kCoop = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  if (o.setup == "auto" || o.setup == "defer")
    tries.push_back({"SINGLE_ISSUER|DEFER_TASKRUN", kDefer});
  if (o.setup == "auto" || o.setup == "coop") tries.push_back({"COOP_TASKRUN|TASKRUN_FLAG", kCoop});
  if (o.setup == "auto" || o.setup == "none") tries.push_back({"none", 0});
  int ret = -EINVAL;
  for (const Try& t : tries) {
    p = io_uring_params{};
    p.flags = t.flags | IORING_SETUP_CQSIZE;
    p.cq_entries = sq_entries * 2;
    ret = io_uring_queue_init_params(sq_entries, &ring, &p);
    if (ret == 0) {
      setup_used = t.name;
      break;
    }
  }
  if (ret < 0) die("io_uring_queue_init_params", -ret);
  std::string detail = "setup=" + setup_used;
  if (!(p.features & IORING_FEAT_EXT_ARG)) detail += ",no_EXT_ARG";
  if (!(p.features & IORING_FEAT_FAST_POLL)) detail += ",no_FAST_POLL";
  if (io_uring_register_ring_fd(&ring) == 1) detail += ",ring_fd_registered";

  std::vector<UringConn> conns(nconn);
  bool fixed = false;
  if (o.fixed_files) {
    int rr = io_uring_register_files(&ring, fds.data(), nconn);
    if (rr == 0) {
      fixed = true;
      detail += ",fixed_files";
    } else {
      detail += ",fixed_files_failed";
    }
  }
  for (unsigned i = 0; i < nconn; ++i) {
    conns[i].fd = fds[i];
    conns[i].sqe_fd = fixed ? static_cast<int>(i) : fds[i];
  }
  const unsigned sqe_flags = fixed ? IOSQE_FIXED_FILE : 0;

  // Buffers.
  std::vector<char> per_conn;  // plain recv
  char* ring_mem = nullptr;    // multishot: buffer ring + buffers
  size_t ring_mem_size = 0;
  io_uring_buf_ring* br = nullptr;
  const int kBgid = 0;
  unsigned br_mask = 0;
  char* ring_bufs = nullptr;
  if (!multishot) {
    per_conn.resize(o.rbuf * nconn);
    for (unsigned i = 0; i < nconn; ++i)
      conns[i].buf = per_conn.data() + o.rbuf * i;
    detail += o.poll_first ? ",recv_POLL_FIRST" : ",recv";
  } else {
    size_t ring_hdr = sizeof(io_uring_buf) * o.ring_bufs;
    ring_mem_size = ring_hdr + o.rbuf * o.ring_bufs;
    void* m =
        mmap(nullptr, ring_mem_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (m == MAP_FAILED) die("mmap", errno);
    ring_mem = static_cast<char*>(m);
    br = reinterpret_cast<io_uring_buf_ring*>(ring_mem);
    ring_bufs = ring_mem + ring_hdr;
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br);
    reg.ring_entries = o.ring_bufs;
    reg.bgid = kBgid;
    int rr = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rr < 0) die("io_uring_register_buf_ring (needs 5.19+)", -rr);
    io_uring_buf_ring_init(br);
    br_mask = io_uring_buf_ring_mask(o.ring_bufs);
    for (unsigned b = 0; b < o.ring_bufs; ++b) {
      io_uring_buf_ring_add(br, ring_bufs + o.rbuf * b, static_cast<unsigned>(o.rbuf),
                            static_cast<unsigned short>(b), br_mask, static_cast<int>(b));
    }
    io_uring_buf_ring_advance(br, static_cast<int>(o.ring_bufs));
    detail += ",recv_MULTISHOT+buf_ring";
  }

  auto get_sqe = [&]() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
      io_uring_submit(&ring);
      sqe = io_uring_get_sqe(&ring);
      if (!sqe) die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
  };
  auto queue_send = [&](uint32_t i) {
    UringConn& k = conns[i];
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, k.sqe_fd, request.data() + k.written, request.size() - k.written,
                       MSG_NOSIGNAL);
    sqe->flags |= sqe_flags;
    io_uring_sqe_set_data64(sqe, tag(kSend, i));
  };
  auto queue_recv = [&](uint32_t i) {
    UringConn& k = conns[i];
    io_uring_sqe* sqe = get_sqe();
    if (!multishot) {
      io_uring_prep_recv(sqe, k.sqe_fd, k.buf, o.rbuf, 0);
      if (o.poll_first) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    } else {
      io_uring_prep_recv_multishot(sqe, k.sqe_fd, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBgid;
    }
    sqe->flags |= sqe_flags;
    io_uring_sqe_set_data64(sqe, tag(kRecv, i));
  };
  auto start_request = [&](uint32_t i) {
    conns[i].written = 0;
    queue_send(i);
  };

  for (uint32_t i = 0; i < nconn; ++i) {
    start_request(i);
    queue_recv(i);
  }

  uint64_t enobufs = 0;
  while (w.tick(c)) {
    bool measuring = w.measuring;
    __kernel_timespec ts{0, 100 * 1000 * 1000};
    io_uring_cqe* cqe = nullptr;
    int rr = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
    if (measuring) ++c.syscalls_wait;
    if (rr < 0 && rr != -ETIME && rr != -EINTR && rr != -EAGAIN && rr != -EBUSY) {
      die("io_uring_submit_and_wait_timeout", -rr);
    }
    unsigned head;
    unsigned seen = 0;
    unsigned recycled = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      uint64_t ud = io_uring_cqe_get_data64(cqe);
      uint32_t i = static_cast<uint32_t>(ud);
      Op op = static_cast<Op>(ud >> 32);
      UringConn& k = conns[i];
      int res = cqe->res;
      if (op == kSend) {
        if (measuring) ++c.send_calls;
        if (res < 0) die("send", -res);
        k.written += static_cast<size_t>(res);
        if (k.written < request.size()) queue_send(i);  // short send: rest
        continue;
      }
      // recv
      if (measuring) ++c.recv_calls;
      if (res == -ENOBUFS && multishot) {  // ring ran dry: re-arm
        ++enobufs;
        queue_recv(i);
        continue;
      }
      if (res < 0) die("recv", -res);
      if (res == 0) die("server closed the connection", ECONNRESET);
      const char* data;
      int bid = -1;
      if (multishot) {
        if (!(cqe->flags & IORING_CQE_F_BUFFER)) die("multishot recv without buffer", EPROTO);
        bid = static_cast<int>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        data = ring_bufs + o.rbuf * static_cast<size_t>(bid);
      } else {
        data = k.buf;
      }
      bool bad = false;
      Parser::Result pr = k.parser.feed(data, static_cast<size_t>(res), &bad);
      if (multishot) {  // give the buffer back at once; it has been parsed
        io_uring_buf_ring_add(br, const_cast<char*>(data), static_cast<unsigned>(o.rbuf),
                              static_cast<unsigned short>(bid), br_mask,
                              static_cast<int>(recycled));
        ++recycled;
      }
      if (pr == Parser::kError) die("bad response", EPROTO);
      if (pr == Parser::kComplete) {
        ++c.responses;
        if (bad) ++c.bad_status;
        start_request(i);
      }
      if (!multishot) {
        queue_recv(i);  // one recv outstanding per connection, always
      } else if (!(cqe->flags & IORING_CQE_F_MORE)) {
        queue_recv(i);  // multishot terminated (e.g. CQ overflow): re-arm
      }
    }
    if (multishot && recycled) io_uring_buf_ring_advance(br, static_cast<int>(recycled));
    io_uring_cq_advance(&ring, seen);
    if (measuring) c.events += seen;
  }
  if (enobufs) detail += ",ENOBUFS=" + std::to_string(enobufs);
  io_uring_queue_exit(&ring);
  r.backend_detail = detail;
  if (!multishot) {
    r.mem_per_conn_bytes = static_cast<double>(o.rbuf);
    r.mem_note = "per_conn_" + std::to_string(o.rbuf) + "B_recv_buffer";
  } else {
    r.mem_per_conn_bytes = static_cast<double>(ring_mem_size) / nconn;
    r.mem_note = "shared_ring_" + std::to_string(o.ring_bufs) + "x" + std::to_string(o.rbuf) + "B";
    munmap(ring_mem, ring_mem_size);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) usage();
  if (o.host != "127.0.0.1") {
    std::fprintf(stderr, "io_backend_bench: refusing non-loopback host %s\n", o.host.c_str());
    return 2;
  }
  std::string request = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + ":" +
                        std::to_string(o.port) + "\r\nUser-Agent: io_backend_bench\r\n\r\n";
  std::vector<int> fds;
  fds.reserve(static_cast<size_t>(o.conns));
  for (int i = 0; i < o.conns; ++i)
    fds.push_back(connect_one(addr));

  Window w;
  w.start_ns = now_ns();
  w.warm_ns = w.start_ns + static_cast<int64_t>(o.warmup_s * 1e9);
  w.end_ns = w.warm_ns + static_cast<int64_t>(o.duration_s * 1e9);
  Counters c;
  Result r;
  if (o.backend == "epoll")
    run_epoll(o, fds, request, w, c, r);
  else
    run_uring(o, fds, request, w, c, r, o.backend == "uring-mshot");
  print_result(o, w, c, r);
  for (int fd : fds)
    close(fd);
  return c.responses - w.at_start.responses > 0 && c.errors == 0 ? 0 : 1;
}
