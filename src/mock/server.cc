#include "mock/server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "http/request_parser.h"
#include "mock/amqp_link.h"
#include "mock/control.h"
#include "mock/counter.h"
#include "mock/h2_connection.h"
#include "mock/response.h"
#include "mock/router.h"
#include "mock/socket_routes.h"
#include "net/clock.h"
#include "net/event_loop.h"
#include "net/stream.h"
#include "text/json_string.h"
#include "text/printable.h"
#include "tls/tls_stream.h"
#include "ws/frame.h"
#include "ws/handshake.h"

namespace millstone::mock {

namespace {

// Counters of one route in one worker. Only that worker writes them (relaxed
// stores, no contention); readers sum the rows of all workers.
struct RouteCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> error_status{0};
  std::atomic<uint64_t> error_reset{0};
  std::atomic<uint64_t> error_stall{0};
  std::atomic<uint64_t> http2_requests{0};  // of `requests`, those that came over HTTP/2
};

// Shared between the processes of one server: rows [worker][route], with two
// extra routes at the end: unmatched (404) and malformed requests (400).
class SharedCounters {
 public:
  SharedCounters(uint32_t workers, size_t routes) : workers_(workers), routes_(routes + 2) {
    bytes_ = sizeof(RouteCounters) * workers_ * routes_;
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<RouteCounters*>(p);
    if (base_) {
      for (size_t i = 0; i < workers_ * routes_; ++i)
        new (&base_[i]) RouteCounters();
    }
  }
  ~SharedCounters() {
    if (base_) munmap(base_, bytes_);
  }
  SharedCounters(const SharedCounters&) = delete;
  SharedCounters& operator=(const SharedCounters&) = delete;

  bool ok() const { return base_ != nullptr; }
  size_t routes() const { return routes_; }
  size_t unmatched() const { return routes_ - 2; }
  size_t malformed() const { return routes_ - 1; }
  RouteCounters& at(uint32_t worker, size_t route) { return base_[worker * routes_ + route]; }
  uint64_t sum(size_t route, std::atomic<uint64_t> RouteCounters::*field) {
    uint64_t total = 0;
    for (uint32_t w = 0; w < workers_; ++w) {
      total += (at(w, route).*field).load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  uint32_t workers_;
  size_t routes_;
  size_t bytes_ = 0;
  RouteCounters* base_ = nullptr;
};

// The values behind {{ counter }} (one per route, index = route) and
// {{ counter.NAME }} (after the routes), shared by all workers: unlike the
// statistics above, every worker increments the same slot, with fetch_add,
// so that no two requests get the same value.
class SharedSequences {
 public:
  explicit SharedSequences(size_t slots) : slots_(std::max<size_t>(slots, 1)) {
    bytes_ = sizeof(std::atomic<uint64_t>) * slots_;
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<std::atomic<uint64_t>*>(p);
    if (base_) {
      for (size_t i = 0; i < slots_; ++i)
        new (&base_[i]) std::atomic<uint64_t>(0);
    }
  }
  ~SharedSequences() {
    if (base_) munmap(base_, bytes_);
  }
  SharedSequences(const SharedSequences&) = delete;
  SharedSequences& operator=(const SharedSequences&) = delete;

  bool ok() const { return base_ != nullptr; }
  std::span<std::atomic<uint64_t>> slots() { return {base_, slots_}; }

 private:
  size_t slots_;
  size_t bytes_ = 0;
  std::atomic<uint64_t>* base_ = nullptr;
};

// Rows [worker][socket route] of SocketCounters: websockets, then tcp.
class SharedSocketCounters {
 public:
  SharedSocketCounters(uint32_t workers, size_t rows) : workers_(workers), rows_(rows) {
    bytes_ = sizeof(SocketCounters) * workers_ * std::max<size_t>(rows_, 1);
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<SocketCounters*>(p);
    if (base_) {
      for (size_t i = 0; i < workers_ * rows_; ++i)
        new (&base_[i]) SocketCounters();
    }
  }
  ~SharedSocketCounters() {
    if (base_) munmap(base_, bytes_);
  }
  SharedSocketCounters(const SharedSocketCounters&) = delete;
  SharedSocketCounters& operator=(const SharedSocketCounters&) = delete;

  bool ok() const { return base_ != nullptr; }
  size_t rows() const { return rows_; }
  SocketCounters* row_of(uint32_t worker) { return base_ + worker * rows_; }
  uint64_t sum(size_t row, std::atomic<uint64_t> SocketCounters::*field) {
    uint64_t total = 0;
    for (uint32_t w = 0; w < workers_; ++w)
      total += (base_[w * rows_ + row].*field).load(std::memory_order_relaxed);
    return total;
  }

 private:
  uint32_t workers_;
  size_t rows_;
  size_t bytes_ = 0;
  SocketCounters* base_ = nullptr;
};

// TLS handshakes of one worker: completed, and failed by cause (the TLS
// stream's classification; kTimeout for a client that stalled past the
// handshake timeout).
struct TlsCounters {
  std::atomic<uint64_t> handshakes{0};
  std::array<std::atomic<uint64_t>, metrics::kErrorCauseCount> failed{};
};

// One TlsCounters row per worker, shared like the others.
class SharedTlsCounters {
 public:
  explicit SharedTlsCounters(uint32_t workers) : workers_(workers) {
    bytes_ = sizeof(TlsCounters) * workers_;
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<TlsCounters*>(p);
    if (base_) {
      for (size_t i = 0; i < workers_; ++i)
        new (&base_[i]) TlsCounters();
    }
  }
  ~SharedTlsCounters() {
    if (base_) munmap(base_, bytes_);
  }
  SharedTlsCounters(const SharedTlsCounters&) = delete;
  SharedTlsCounters& operator=(const SharedTlsCounters&) = delete;

  bool ok() const { return base_ != nullptr; }
  TlsCounters& at(uint32_t worker) { return base_[worker]; }
  uint64_t handshakes() const {
    uint64_t total = 0;
    for (uint32_t w = 0; w < workers_; ++w)
      total += base_[w].handshakes.load(std::memory_order_relaxed);
    return total;
  }
  uint64_t failed(size_t cause) const {
    uint64_t total = 0;
    for (uint32_t w = 0; w < workers_; ++w)
      total += base_[w].failed[cause].load(std::memory_order_relaxed);
    return total;
  }
  uint64_t failed_total() const {
    uint64_t total = 0;
    for (size_t c = 0; c < metrics::kErrorCauseCount; ++c)
      total += failed(c);
    return total;
  }

 private:
  uint32_t workers_;
  size_t bytes_ = 0;
  TlsCounters* base_ = nullptr;
};

// "tls":{...} for the stats JSON; empty when the listener is plain.
std::string tls_json(const SharedTlsCounters* tls) {
  if (tls == nullptr) return {};
  std::string causes;
  for (size_t c = 0; c < metrics::kErrorCauseCount; ++c) {
    if (const uint64_t n = tls->failed(c)) {
      causes += fmt::format("{}\"{}\":{}", causes.empty() ? "" : ",",
                            metrics::error_cause_name(static_cast<metrics::ErrorCause>(c)), n);
    }
  }
  return fmt::format(
      ",\"tls\":{{\"handshakes\":{},\"failed_handshakes\":{},\"failed_by_cause\":{{{}}}}}",
      tls->handshakes(), tls->failed_total(), causes);
}

const SocketRoute& socket_route(const MockConfig& config, size_t row) {
  return row < config.websockets.size() ? config.websockets[row]
                                        : config.tcp[row - config.websockets.size()];
}

std::string sockets_json(const MockConfig& config, SharedSocketCounters& sockets) {
  std::string out = "\"sockets\":[";
  for (size_t row = 0; row < sockets.rows(); ++row) {
    const SocketRoute& r = socket_route(config, row);
    const bool ws = row < config.websockets.size();
    out += fmt::format(
        "{}{{\"name\":\"{}\",\"kind\":\"{}\",\"{}\":\"{}\",\"open\":{},\"total\":{},"
        "\"messages_in\":{},\"messages_out\":{},\"pushes\":{},\"protocol_errors\":{},"
        "\"overflow_closes\":{},\"refused_at_fd_limit\":{}}}",
        row ? "," : "", text::json_escaped(r.name), ws ? "websocket" : "tcp",
        ws ? "path" : "listen", text::json_escaped(ws ? r.path : r.listen_text),
        sockets.sum(row, &SocketCounters::open), sockets.sum(row, &SocketCounters::total),
        sockets.sum(row, &SocketCounters::messages_in),
        sockets.sum(row, &SocketCounters::messages_out), sockets.sum(row, &SocketCounters::pushes),
        sockets.sum(row, &SocketCounters::protocol_errors),
        sockets.sum(row, &SocketCounters::overflow_closes),
        sockets.sum(row, &SocketCounters::refused_at_fd_limit));
    if (!ws && r.tls) {
      out.pop_back();  // the route's closing brace
      out += fmt::format(",\"tls\":{{\"handshakes\":{},\"failed_handshakes\":{}}}}}",
                         sockets.sum(row, &SocketCounters::tls_handshakes),
                         sockets.sum(row, &SocketCounters::tls_failed));
    }
  }
  out += "]";
  return out;
}

std::string stats_json(const MockConfig& config, SharedCounters& counters,
                       SharedSocketCounters& sockets, const SharedTlsCounters* tls,
                       const SharedH2Counters& h2, const SharedAmqpCounters* amqp) {
  std::string out = "{\"routes\":[";
  uint64_t total = 0;
  for (size_t r = 0; r < counters.routes(); ++r) {
    std::string name = r < config.routes.size()    ? config.routes[r].name
                       : r == counters.unmatched() ? "unmatched (404)"
                                                   : "malformed (400)";
    uint64_t requests = counters.sum(r, &RouteCounters::requests);
    total += requests;
    out += fmt::format(
        "{}{{\"name\":\"{}\",\"requests\":{},\"error_status\":{},\"error_reset\":{},"
        "\"error_stall\":{},\"http2_requests\":{}}}",
        r ? "," : "", text::json_escaped(name), requests,
        counters.sum(r, &RouteCounters::error_status), counters.sum(r, &RouteCounters::error_reset),
        counters.sum(r, &RouteCounters::error_stall),
        counters.sum(r, &RouteCounters::http2_requests));
  }
  out += fmt::format("],\"requests\":{}{},{}{}{}}}\n", total, h2.json(),
                     sockets_json(config, sockets), tls_json(tls),
                     amqp != nullptr && config.amqp ? amqp->json(*config.amqp) : std::string());
  return out;
}

// A complete prebuilt response and where its header block ends (for HEAD).
struct Prebuilt {
  std::string bytes;
  size_t header_bytes = 0;
};

Prebuilt prebuild(int status, const Headers& headers, std::string_view body, bool keep_alive) {
  Prebuilt p;
  p.bytes = build_response(status, headers, body, keep_alive);
  size_t end = p.bytes.find("\r\n\r\n");
  p.header_bytes = end == std::string::npos ? p.bytes.size() : end + 4;
  return p;
}

// Everything a worker answers with, built once before the first request.
// Templated responses (Route::templated) are rendered per request instead.
struct Responses {
  struct PerRoute {
    Prebuilt normal[2];                           // [keep_alive]
    std::vector<std::array<Prebuilt, 2>> errors;  // per error rule (status kind only)
  };
  std::vector<PerRoute> routes;
  Prebuilt not_found[2];
  Prebuilt bad_request;          // always closes
  Prebuilt upgrade_required[2];  // a plain GET on a WebSocket path

  explicit Responses(const MockConfig& config) {
    for (const Route& route : config.routes) {
      PerRoute r;
      if (route.grpc) {
        // gRPC needs HTTP/2 (its status travels in trailers): say so, whatever the draw.
        Headers text{{"Content-Type", "text/plain"}};
        for (int ka = 0; ka < 2; ++ka)
          r.normal[ka] = prebuild(426, text, "this path speaks gRPC, over HTTP/2\n", ka);
        for (size_t i = 0; i < route.errors.size(); ++i)
          r.errors.push_back({r.normal[0], r.normal[1]});
        routes.push_back(std::move(r));
        continue;
      }
      if (!route.templated) {
        for (int ka = 0; ka < 2; ++ka)
          r.normal[ka] = prebuild(route.status, route.headers, route.body, ka);
      }
      for (const ErrorRule& rule : route.errors) {
        std::array<Prebuilt, 2> e;
        if (rule.kind == ErrorRule::kStatus && !rule.templated) {
          for (int ka = 0; ka < 2; ++ka)
            e[ka] = prebuild(rule.status, rule.headers, rule.body, ka);
        }
        r.errors.push_back(std::move(e));
      }
      routes.push_back(std::move(r));
    }
    Headers text{{"Content-Type", "text/plain"}};
    for (int ka = 0; ka < 2; ++ka)
      not_found[ka] = prebuild(404, text, "no route matches\n", ka);
    bad_request = prebuild(400, text, "malformed request\n", false);
    Headers upgrade{{"Content-Type", "text/plain"}, {"Upgrade", "websocket"}};
    for (int ka = 0; ka < 2; ++ka)
      upgrade_required[ka] = prebuild(426, upgrade, "this path speaks WebSocket\n", ka);
  }
};

// What a worker answers with for one generation of the control state
// (mock/control.h): the routes in force and their prebuilt answers.
// Immutable once built. When the control API changes a route the worker
// builds a new table and swaps it in between requests; the old one lives on
// while a delayed answer or an HTTP/2 stream still points into it (pins).
struct RouteTable {
  explicit RouteTable(MockConfig effective)
      : config(std::move(effective)), responses(config), h2(config) {}
  MockConfig config;
  Responses responses;
  H2Responses h2;
  size_t pins = 0;  // TablePin: a worker is one thread, no atomics
};

class Worker;

class Connection final : public net::IoHandler, public H2Owner {
 public:
  // `stream` is plain, or TLS before its handshake (then the handshake
  // timeout runs from now).
  Connection(Worker& worker, int slot, std::unique_ptr<net::Stream> stream, bool tls);
  ~Connection() override;
  void on_io(uint32_t events) override;
  bool closed() const { return stream_ == nullptr; }
  int slot() const { return slot_; }
  // Shutdown: an HTTP/2 connection says GOAWAY and answers its open
  // streams; an HTTP/1.1 one finishes the answer it owes, then closes (an
  // idle one closes now).
  void goodbye();
  void h2_wants_write() override;
  uint64_t registration = 0;

 private:
  // Drives the TLS handshake; true once the stream carries HTTP.
  bool handshake();
  // peer_closing: the event carried EPOLLRDHUP, EPOLLHUP or EPOLLERR.
  void read_input(bool peer_closing);
  void process_input();
  void handle_request();
  bool try_upgrade(int route, bool keep_alive);
  void respond(const Prebuilt& response, bool head, bool keep_alive);
  void flush();
  // Closes the socket; the worker releases (destroys) the connection from
  // its next loop turn, or at once from on_io.
  void close_now(bool reset);
  void close_socket(bool reset);
  // HTTP/2 (mock/h2_connection.h): chosen by ALPN after the TLS handshake,
  // or by the client preface on a cleartext connection.
  bool choose_protocol();
  void drive_h2();

  Worker& worker_;
  std::unique_ptr<net::Stream> stream_;  // null once closed
  int slot_;                             // index in the worker's table: the fd it was accepted as
  http::RequestParser parser_;
  std::string input_;   // received bytes not yet given to the parser
  std::string output_;  // response bytes not yet written
  size_t output_offset_ = 0;
  net::Timer delay_;
  // What to send when the delay ends.
  const Prebuilt* pending_ = nullptr;
  TablePin pending_pin_;  // pending_ may point into the route table
  Prebuilt rendered_;     // a templated response; one at a time, as requests are
  bool pending_head_ = false;
  bool pending_keep_alive_ = false;
  bool waiting_ = false;  // a response is delayed or stalled: do not parse more yet
  bool close_after_write_ = false;
  bool continue_sent_ = false;
  bool peer_closed_ = false;
  bool tls_;  // a read may wait for EPOLLOUT and a write for EPOLLIN: try both on any edge
  bool handshake_done_;
  bool protocol_known_ = false;       // HTTP/1.1 or HTTP/2 decided
  std::unique_ptr<H2Connection> h2_;  // set when the connection speaks HTTP/2
};

class Worker final : public net::IoHandler, public H2Host {
 public:
  Worker(const MockConfig& config, const ServerOptions& options, SharedControl& control_shared,
         SharedCounters& counters, SharedSocketCounters& socket_counters,
         SharedTlsCounters* tls_counters, SharedH2Counters& h2_counters,
         SharedAmqpCounters* amqp_counters, std::span<std::atomic<uint64_t>> sequences,
         uint32_t index, int listen_fd, std::vector<const tls::TlsServerContext*> tcp_tls)
      : config(config),
        table(std::make_unique<RouteTable>(config)),
        counters(counters),
        socket_counters(socket_counters),
        tls(options.tls),
        tls_counters(tls_counters),
        tls_handshake_timeout_us(options.tls_handshake_timeout_us),
        index(index),
        prng(Prng::for_worker(config.seed, index)),
        renderer(prng, sequences, config.routes.size()),
        router(config),
        sockets(config, loop, renderer, socket_counters.row_of(index),
                config.routes.size() + config.counter_names.size(), std::move(tcp_tls)),
        listener_(loop, listen_fd, this),
        accept_retry_(loop,
                      [this] {
                        if (stepped_aside_) {
                          stepped_aside_ = false;
                          if (!listener_.start()) return;  // the loop refused it
                        }
                        on_io(EPOLLIN);
                      }),
        h2_counters(h2_counters),
        h2_options(options.http2),
        h2(H2Context{&table->config, router, renderer, prng, loop, *this, h2_counters.at(index),
                     h2_options, &table->h2}),
        control_shared_(control_shared),
        control_api_(config, control_shared, options.control_token, [this] { apply_control(); }),
        wake_(*this),
        stop_(*this),
        amqp_counters(amqp_counters) {
    h2.table_pins = &table->pins;
    if (config.amqp && amqp_counters != nullptr) {
      amqp = std::make_unique<MockAmqpLink>(loop, config, index, amqp_counters->at(index), prng,
                                            sockets);
    }
  }

  int run(std::span<const int> tcp_fds) {
    apply_control();
    if (!sockets.serve_tcp(tcp_fds, fd_limit_) || !listener_.start() || !stop_.start() ||
        !wake_.start()) {
      std::fprintf(stderr, "millstone mock: worker %u cannot watch its listeners: %s\n", index,
                   strerror(errno));
      return 1;
    }
    if (amqp) amqp->start();
    return loop.run() ? 0 : 1;
  }

  void on_io(uint32_t) override {
    bool accepted = false;
    const FdLimit::Outcome outcome = fd_limit_.accept_all(
        listener_.fd(),
        [this, &accepted](int fd) {
          accepted = true;
          net::set_no_delay(fd);
          std::unique_ptr<net::Stream> stream;
          if (tls != nullptr) {
            stream = tls::TlsStream::server(*tls, fd);  // null (fd closed): out of memory
            if (!stream) return;
          } else {
            stream = std::make_unique<net::PlainStream>(fd);
          }
          if (static_cast<size_t>(fd) >= connections_.size()) connections_.resize(fd + 1024);
          drop(static_cast<size_t>(fd));  // a closed one whose release is still scheduled
          connections_[fd] =
              std::make_unique<Connection>(*this, fd, std::move(stream), tls != nullptr);
          bump(h2.counters.connections);
          bump(h2.counters.open_connections);
          Connection* c = connections_[fd].get();
          c->registration = loop.add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, c);
          if (c->registration == 0) drop(static_cast<size_t>(fd));
        },
        h2.counters.refused_at_fd_limit);
    // Out of descriptors (FdLimit): let another worker take the waiting
    // connections, or try again soon.
    switch (outcome) {
      case FdLimit::Outcome::kStepAside:
        listener_.stop();
        stepped_aside_ = true;
        accept_retry_.arm_after(100 * net::kNsPerMs);
        return;
      case FdLimit::Outcome::kRetryLater:
        accept_retry_.arm_after(100 * net::kNsPerMs);
        break;
      case FdLimit::Outcome::kDrained:
        break;
    }
    if (accepted) listener_.requeue();
  }

  // Another worker, out of descriptors, handed over the connections waiting
  // on the shared listeners (FdLimit); a wake-up for the control API lands
  // here too and finds nothing waiting (accept4 says EAGAIN).
  void accept_waiting() {
    if (stopping_) return;
    if (!stepped_aside_) on_io(EPOLLIN);
    sockets.accept_waiting();
  }

  // Called as the connection's last act: it is destroyed here.
  void release(Connection* c) { drop(static_cast<size_t>(c->slot())); }
  // For a connection closed outside its own on_io (a timer, the HTTP/2
  // session's wake-up): destroying it there would pull it from under the
  // code still running in it, so it is released from a zero-delay timer.
  void release_later(int slot) {
    to_release_.push_back(slot);
    release_timer_.arm_after(0);
  }

  // H2Host: HTTP/2 requests count in the same rows as HTTP/1.1 ones.
  void count(int route, Count what) override {
    const size_t row = route == kUnmatched   ? counters.unmatched()
                       : route == kMalformed ? counters.malformed()
                                             : static_cast<size_t>(route);
    RouteCounters& c = counters.at(index, row);
    switch (what) {
      case Count::kRequest:
        bump(c.requests);
        bump(c.http2_requests);  // only HTTP/2 requests are counted through here
        break;
      case Count::kErrorStatus:
        bump(c.error_status);
        break;
      case Count::kErrorReset:
        bump(c.error_reset);
        break;
      case Count::kErrorStall:
        bump(c.error_stall);
        break;
    }
  }
  std::string stats_json() override;
  // A route's publish (docs/mock.md#amqp), for the request the renderer was
  // begun with; due answer_delay_us plus the publish's own latency from now.
  void publish(const RoutePublish& publish, int64_t answer_delay_us) override {
    if (amqp) amqp->schedule(publish, renderer, answer_delay_us);
  }
  bool control(std::string_view method, std::string_view target, std::string_view authorization,
               std::string_view body, int* status, std::string* json) override {
    std::optional<ControlAnswer> answer;
    try {
      answer = control_api_.handle(method, target, authorization, body);
    } catch (const std::exception& e) {
      // A bug in the control plane must not take the worker down.
      answer = ControlAnswer{500, std::string("{\"error\":\"internal error\"}\n")};
    }
    if (!answer) return false;
    *status = answer->status;
    *json = std::move(answer->json);
    return true;
  }

  // Serves the newest generation of the control state, if this worker does
  // not yet: a new route table, swapped in between requests (requests never
  // look at the shared state themselves), and the socket routes' push
  // intervals.
  void apply_control() {
    if (control_shared_.generation() == applied_generation_) return;
    std::string state;
    const uint64_t generation = control_shared_.read(&state);
    if (generation == UINT64_MAX) return;  // locked for 1 s: the next wake-up tries again
    auto next = std::make_unique<RouteTable>(apply_state(config, state));
    const size_t socket_rows = config.websockets.size() + config.tcp.size();
    for (size_t row = 0; row < socket_rows; ++row) {
      const SocketRoute& r = row < config.websockets.size()
                                 ? next->config.websockets[row]
                                 : next->config.tcp[row - config.websockets.size()];
      if (r.push) sockets.set_push_every(row, r.push->every_us);
    }
    if (table->pins > 0) retired_.push_back(std::move(table));
    table = std::move(next);
    h2.config = &table->config;
    h2.responses = &table->h2;
    h2.table_pins = &table->pins;
    collect_retired();
    applied_generation_ = generation;
    control_shared_.set_applied(index, generation);
  }

  bool websocket_path(std::string_view target) override {
    return sockets.websocket_route(target) >= 0;
  }

  // SIGTERM or SIGINT: a bounded drain. No more accepting; every HTTP/2
  // connection gets its GOAWAY and its open streams are still answered, an
  // HTTP/1.1 connection finishes the answer it owes. The worker ends (by
  // SIGTERM, as the parent expects) once no connection is left, or when the
  // drain deadline passes.
  void shut_down() {
    if (stopping_) return;
    stopping_ = true;
    listener_.stop();
    accept_retry_.cancel();
    if (amqp) amqp->stop();
    for (size_t slot = 0; slot < connections_.size(); ++slot) {
      Connection* c = connections_[slot].get();
      if (c == nullptr) continue;
      if (!c->closed()) c->goodbye();
      if (c->closed()) drop(slot);
    }
    if (h2.counters.open_connections.load(std::memory_order_relaxed) == 0) finish();
    drain_deadline_.arm_after(kDrainNs);
  }

  static constexpr int64_t kDrainNs = 2 * net::kNsPerSec;

 private:
  // Destroys the connection in slot, if any, and ends a drain that it was
  // the last of.
  void drop(size_t slot) {
    if (slot >= connections_.size() || !connections_[slot]) return;
    connections_[slot].reset();
    std::atomic<uint64_t>& open = h2.counters.open_connections;
    open.store(open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    if (stopping_ && open.load(std::memory_order_relaxed) == 0) finish();
  }

  void release_scheduled() {
    std::vector<int> slots;
    slots.swap(to_release_);
    for (int slot : slots) {
      const size_t i = static_cast<size_t>(slot);
      // The slot may hold a newer connection on the same descriptor by now.
      if (i < connections_.size() && connections_[i] && connections_[i]->closed()) drop(i);
    }
  }

  // Frees the old route tables nothing points into any more; while some are
  // still pinned (answers delayed by seconds, say), looks again each second.
  void collect_retired() {
    std::erase_if(retired_, [](const std::unique_ptr<RouteTable>& t) { return t->pins == 0; });
    if (!retired_.empty()) collect_timer_.arm_after(net::kNsPerSec);
  }

  [[noreturn]] void finish() {
    signal(SIGTERM, SIG_DFL);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &term, nullptr);
    raise(SIGTERM);
    _exit(0);  // not reached: SIGTERM ends us
  }

 public:
  const MockConfig& config;  // the file's
  // The routes in force (the file's, or as the control API changed them).
  std::unique_ptr<RouteTable> table;
  SharedCounters& counters;
  SharedSocketCounters& socket_counters;
  const tls::TlsServerContext* tls;  // null: plain HTTP
  SharedTlsCounters* tls_counters;   // null when tls is
  int64_t tls_handshake_timeout_us;
  uint32_t index;
  Prng prng;
  net::EventLoop loop;
  TemplateRenderer renderer;  // draws from prng
  Router router;
  SocketRuntime sockets;  // WebSocket sessions and TCP listeners

 private:
  // The stop signals, blocked in the worker and read here between events.
  class StopSignals final : public net::IoHandler {
   public:
    explicit StopSignals(Worker& worker) : worker_(worker) {}
    ~StopSignals() override {
      if (fd_ >= 0) close(fd_);
    }
    bool start() {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
      return fd_ >= 0 && worker_.loop.add(fd_, EPOLLIN, this) != 0;
    }
    void on_io(uint32_t) override {
      // Read every pending signal: the descriptor is level-triggered.
      signalfd_siginfo info;
      while (read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      }
      worker_.shut_down();
    }

   private:
    Worker& worker_;
    int fd_ = -1;
  };

  // The control API's wake-up (an eventfd written by the worker that took a
  // change).
  class ControlWake final : public net::IoHandler {
   public:
    explicit ControlWake(Worker& worker) : worker_(worker) {}
    bool start() {
      const int fd = worker_.control_shared_.wake_fd(worker_.index);
      return worker_.loop.add(fd, EPOLLIN, this) != 0;
    }
    void on_io(uint32_t) override {
      uint64_t count;
      while (read(worker_.control_shared_.wake_fd(worker_.index), &count, sizeof count) ==
             static_cast<ssize_t>(sizeof count)) {
      }
      worker_.apply_control();
      worker_.accept_waiting();
    }

   private:
    Worker& worker_;
  };

  SharedListener listener_;
  bool stepped_aside_ = false;  // not watching the listener until accept_retry_ fires
  net::Timer accept_retry_;

 public:
  SharedH2Counters& h2_counters;
  const H2Options& h2_options;
  H2Context h2;

 private:
  SharedControl& control_shared_;
  // After h2_counters, whose rows hold every worker's at-the-limit flag.
  FdLimit fd_limit_{h2_counters.at(index).at_fd_limit, [this] {
                      const uint32_t n = h2_counters.workers();
                      for (uint32_t step = 1; step < n; ++step) {
                        const uint32_t w = (index + step) % n;
                        if (h2_counters.at(w).at_fd_limit.load(std::memory_order_relaxed) == 0) {
                          control_shared_.wake(w);
                          return true;
                        }
                      }
                      return false;
                    }};
  ControlApi control_api_;
  uint64_t applied_generation_ = 0;
  std::vector<std::unique_ptr<RouteTable>> retired_;
  net::Timer collect_timer_{loop, [this] { collect_retired(); }};
  ControlWake wake_;
  StopSignals stop_;
  bool stopping_ = false;
  net::Timer drain_deadline_{loop, [this] { finish(); }};
  std::vector<int> to_release_;
  net::Timer release_timer_{loop, [this] { release_scheduled(); }};

 public:
  SharedAmqpCounters* amqp_counters;   // null without amqp:
  std::unique_ptr<MockAmqpLink> amqp;  // null without amqp:

 private:
  // Last: destroyed first, while the HTTP/2 context and timers they use live.
  std::vector<std::unique_ptr<Connection>> connections_;
};

std::string Worker::stats_json() {
  return mock::stats_json(config, counters, socket_counters, tls_counters, h2_counters,
                          amqp_counters);
}

Connection::Connection(Worker& worker, int slot, std::unique_ptr<net::Stream> stream, bool tls)
    : worker_(worker),
      stream_(std::move(stream)),
      slot_(slot),
      delay_(worker.loop,
             [this] {
               if (!handshake_done_) {
                 // The handshake timeout: a client that stalled midway.
                 bump(worker_.tls_counters->at(worker_.index)
                          .failed[static_cast<size_t>(metrics::ErrorCause::kTimeout)]);
                 close_now(false);
                 return;
               }
               waiting_ = false;
               if (pending_) respond(*pending_, pending_head_, pending_keep_alive_);
               pending_ = nullptr;
               pending_pin_.release();
               if (!closed()) process_input();
             }),
      tls_(tls),
      handshake_done_(!tls) {
  if (tls) delay_.arm_after(worker.tls_handshake_timeout_us * net::kNsPerUs);
}

Connection::~Connection() {
  close_socket(false);
}

void Connection::close_now(bool reset) {
  if (!stream_) return;
  close_socket(reset);
  worker_.release_later(slot_);
}

void Connection::close_socket(bool reset) {
  if (!stream_) return;
  worker_.loop.remove(registration, stream_->fd());
  stream_->close(reset);
  stream_.reset();
  delay_.cancel();
}

bool Connection::handshake() {
  const net::StreamResult r = stream_->handshake();
  if (r.status == net::StreamStatus::kWouldBlock) return false;
  TlsCounters& counters = worker_.tls_counters->at(worker_.index);
  if (r.status == net::StreamStatus::kOk) {
    handshake_done_ = true;
    delay_.cancel();
    bump(counters.handshakes);
    return true;
  }
  // A plaintext client, one that closed or reset midway, no common version...
  bump(counters.failed[static_cast<size_t>(r.cause)]);
  close_now(false);
  return false;
}

void Connection::on_io(uint32_t events) {
  if (!handshake_done_ && !handshake()) {
    if (closed()) worker_.release(this);  // destroys *this: nothing may follow
    return;
  }
  if (tls_ || (events & EPOLLOUT)) {
    flush();
    // Pipelined HTTP/1.1 requests held back while answers were queued.
    if (!h2_ && protocol_known_ && !closed() && !input_.empty()) process_input();
  }
  if (h2_ && !closed()) drive_h2();  // frames held back while the socket was full
  if (!closed() && (tls_ || (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))) {
    read_input((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    if (!closed()) process_input();
    // A client that went away is done, even if a response was delayed for it.
    // So is one that closed before it said which protocol it speaks (a
    // strict prefix of the h2c preface, say): nothing more can come.
    if (!closed() && peer_closed_ && (waiting_ || input_.empty() || !protocol_known_) &&
        output_.empty()) {
      close_now(false);
    }
  }
  if (closed()) worker_.release(this);  // destroys *this: nothing may follow
}

void Connection::read_input(bool peer_closing) {
  char buffer[16384];
  for (;;) {
    const net::StreamResult r = stream_->read(buffer, sizeof buffer);
    if (r.status == net::StreamStatus::kOk) {
      input_.append(buffer, r.bytes);
      // The loop is edge-triggered: when the last bytes and the FIN came
      // before we woke there is one edge for both, and a short read must
      // not end the loop then, or the EOF is never seen.
      if (r.drained && !peer_closing) return;
      continue;
    }
    // The end (FIN, close_notify) or an error; a TLS read waiting for
    // EPOLLOUT is retried on the next edge of either kind.
    if (r.status != net::StreamStatus::kWouldBlock) peer_closed_ = true;
    return;
  }
}

void Connection::process_input() {
  if (!protocol_known_ && !choose_protocol()) return;
  if (h2_) {
    drive_h2();
    return;
  }
  // Pipelined requests are parsed only while less than kPipelineHigh of
  // answers waits to be written: a client that sends many requests and reads
  // slowly holds back the parsing, not the worker's memory.
  static constexpr size_t kPipelineHigh = 64 * 1024;
  while (!waiting_ && !closed() && !input_.empty() && !close_after_write_ &&
         output_.size() - output_offset_ < kPipelineHigh) {
    http::RequestParser::Result r = parser_.feed(input_.data(), input_.size());
    input_.erase(0, r.consumed);
    if (r.state == http::RequestParser::State::kError) {
      bump(worker_.counters.at(worker_.index, worker_.counters.malformed()).requests);
      respond(worker_.table->responses.bad_request, false, false);
      return;
    }
    if (r.state == http::RequestParser::State::kNeedMore) {
      if (parser_.headers_complete() && parser_.expects_continue() && !continue_sent_) {
        continue_sent_ = true;
        output_ += "HTTP/1.1 100 Continue\r\n\r\n";
        flush();
      }
      return;
    }
    handle_request();
    parser_.reset();
    continue_sent_ = false;
  }
}

void Connection::handle_request() {
  std::string_view method = parser_.method();
  std::string_view target = parser_.target();
  bool keep_alive = parser_.keep_alive();
  bool head = method == "HEAD";
  if (target.starts_with(kControlPrefix)) {
    static const Headers json{{"Content-Type", "application/json"}};
    if (method == "GET" && target == kStatsPath) {
      std::string body = worker_.stats_json();
      Prebuilt p = prebuild(200, json, body, keep_alive);
      respond(p, false, keep_alive);
      return;
    }
    int status = 0;
    std::string body;
    if (worker_.control(method, target, parser_.header("authorization"), parser_.body(), &status,
                        &body)) {
      Prebuilt p = prebuild(status, json, body, keep_alive);
      respond(p, head, keep_alive);
      return;
    }
  }
  if (const int ws_route = worker_.sockets.websocket_route(target); ws_route >= 0) {
    if (try_upgrade(ws_route, keep_alive)) return;
  }
  PathParams params;
  int index = worker_.router.match(head ? std::string_view("GET") : method, target, &params);
  if (index < 0 && head) index = worker_.router.match(method, target, &params);
  if (index < 0) {
    bump(worker_.counters.at(worker_.index, worker_.counters.unmatched()).requests);
    respond(worker_.table->responses.not_found[keep_alive], head, keep_alive);
    return;
  }
  const RouteTable& table = *worker_.table;
  const Route& route = table.config.routes[static_cast<size_t>(index)];
  const auto& prebuilt = table.responses.routes[static_cast<size_t>(index)];
  RouteCounters& counters = worker_.counters.at(worker_.index, static_cast<size_t>(index));
  bump(counters.requests);

  const Prebuilt* response = &prebuilt.normal[keep_alive];
  const ResponseTemplate* templated = route.templated ? &*route.templated : nullptr;
  int64_t delay_us = route.latency.sample_us(worker_.prng);
  bool status_error = false;
  if (const ErrorRule* rule = pick_error(route, worker_.prng)) {
    size_t rule_index = static_cast<size_t>(rule - route.errors.data());
    switch (rule->kind) {
      case ErrorRule::kStatus:
        status_error = true;
        bump(counters.error_status);
        response = &prebuilt.errors[rule_index][keep_alive];
        templated = rule->templated ? &*rule->templated : nullptr;
        break;
      case ErrorRule::kReset:
        bump(counters.error_reset);
        close_now(true);
        return;
      case ErrorRule::kStall:
        bump(counters.error_stall);
        if (rule->stall_us == kStallForever) {
          waiting_ = true;  // never answer; the client gives up and closes
          return;
        }
        delay_us += rule->stall_us;
        break;
    }
  }
  if (templated) {
    // Rendered now, while the request's bytes are still in the parser, even
    // if the answer is delayed.
    worker_.renderer.begin(RenderRequest{&parser_, params, static_cast<size_t>(index)});
    worker_.renderer.render_response(*templated, keep_alive, &rendered_.bytes,
                                     &rendered_.header_bytes);
    response = &rendered_;
  }
  // The route's publish, unless an error status answered instead. It sees
  // the same request values as the answer (the same counter, uuid...).
  if (route.publish && !status_error) {
    if (!templated) {
      worker_.renderer.begin(RenderRequest{&parser_, params, static_cast<size_t>(index)});
    }
    worker_.publish(*route.publish, delay_us);
  }
  if (delay_us <= 0) {
    respond(*response, head, keep_alive);
    return;
  }
  pending_ = response;
  pending_pin_ = TablePin(&worker_.table->pins);
  pending_head_ = head;
  pending_keep_alive_ = keep_alive;
  waiting_ = true;
  delay_.arm_after(delay_us * net::kNsPerUs);
}

// A request on a WebSocket path. Returns false to let the HTTP routes answer
// a request that asks for no upgrade (when none matches: 426).
bool Connection::try_upgrade(int route, bool keep_alive) {
  const std::string_view upgrade = parser_.header("upgrade");
  if (upgrade.empty()) {
    if (worker_.router.match(parser_.method(), parser_.target()) >= 0) return false;
    respond(worker_.table->responses.upgrade_required[keep_alive], parser_.method() == "HEAD",
            keep_alive);
    return true;
  }
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  headers.reserve(parser_.header_count());
  for (size_t i = 0; i < parser_.header_count(); ++i)
    headers.emplace_back(parser_.header_name(i), parser_.header_value(i));
  std::string response, error;
  const SocketRoute& r = worker_.config.websockets[static_cast<size_t>(route)];
  if (!ws::build_server_response(parser_.method(), headers, r.subprotocols, &response, &error)) {
    bump(worker_.counters.at(worker_.index, worker_.counters.malformed()).requests);
    static const Headers text{{"Content-Type", "text/plain"}, {"Sec-WebSocket-Version", "13"}};
    rendered_ = prebuild(400, text, "bad WebSocket upgrade: " + error + "\n", false);
    respond(rendered_, false, false);
    return true;
  }
  std::string amqp_key;
  if (r.amqp_push && r.amqp_push->key_from != SocketAmqpPush::KeyFrom::kNone) {
    amqp_key = amqp_push_key(*r.amqp_push, parser_.target(),
                             [this](std::string_view name) { return parser_.header(name); });
    if (amqp_key.empty()) {
      bump(worker_.counters.at(worker_.index, worker_.counters.malformed()).requests);
      const bool query = r.amqp_push->key_from == SocketAmqpPush::KeyFrom::kQuery;
      rendered_ = prebuild(
          400, {{"Content-Type", "text/plain"}},
          fmt::format("bad WebSocket upgrade: this path pushes the messages of one key, named "
                      "by the {} {}; the request has none\n",
                      query ? "query parameter" : "header", r.amqp_push->key_name),
          false);
      respond(rendered_, false, false);
      return true;
    }
  }
  if (!output_.empty() || parser_.body().size() != 0) {
    // Pipelined answers still queued, or a body on an upgrade: not a clean
    // hand-over point.
    rendered_ = prebuild(400, {{"Content-Type", "text/plain"}}, "bad WebSocket upgrade\n", false);
    respond(rendered_, false, false);
    return true;
  }
  // Hand the socket (wss: the TLS stream) to the WebSocket session: it sends
  // the 101 first, then frames; bytes the client sent after its request are
  // its first input.
  worker_.loop.remove(registration, stream_->fd());
  delay_.cancel();
  std::string leftover = std::move(input_);
  input_.clear();
  if (tls_) {
    std::unique_ptr<tls::TlsStream> stream(static_cast<tls::TlsStream*>(stream_.release()));
    worker_.sockets.adopt_websocket(std::move(stream), static_cast<size_t>(route), response,
                                    leftover, amqp_key);
    return true;
  }
  const int fd = static_cast<net::PlainStream&>(*stream_).release();
  stream_.reset();
  worker_.sockets.adopt_websocket(fd, static_cast<size_t>(route), response, leftover, amqp_key);
  return true;
}

void Connection::respond(const Prebuilt& response, bool head, bool keep_alive) {
  size_t size = head ? response.header_bytes : response.bytes.size();
  if (output_.empty()) {
    // Common case: write straight from the prebuilt bytes, copy only a remainder.
    const net::StreamResult r = stream_->write(std::string_view(response.bytes.data(), size));
    if (r.status == net::StreamStatus::kError) {
      close_now(false);
      return;
    }
    if (r.bytes < size) output_.assign(response.bytes.data() + r.bytes, size - r.bytes);
  } else {
    output_.append(response.bytes.data(), size);
  }
  if (!keep_alive) close_after_write_ = true;
  if (output_.empty() && close_after_write_) close_now(false);
}

bool Connection::choose_protocol() {
  if (worker_.h2_options.enabled) {
    if (tls_) {
      if (static_cast<tls::TlsStream&>(*stream_).alpn() == "h2") {
        h2_ = std::make_unique<H2Connection>(worker_.h2, *this);
      }
    } else {
      // h2c with prior knowledge: the preface's first line decides (a client
      // that garbles the rest of it gets a GOAWAY from the HTTP/2 session).
      const size_t n = std::min(input_.size(), kH2PrefaceStart.size());
      if (std::string_view(input_).substr(0, n) == kH2PrefaceStart.substr(0, n)) {
        if (n < kH2PrefaceStart.size()) return false;  // wait for the rest of the line
        h2_ = std::make_unique<H2Connection>(worker_.h2, *this);
      }
    }
  }
  protocol_known_ = true;
  return true;
}

// Reads, answers and writes one round of HTTP/2; the output buffer is kept
// short so that a client that does not read holds back nghttp2, not our memory.
void Connection::drive_h2() {
  static constexpr size_t kOutputHigh = 64 * 1024;
  if (closed()) return;
  if (!input_.empty()) {
    h2_->receive(input_);
    input_.clear();
  }
  while (!closed() && output_.size() - output_offset_ < kOutputHigh) {
    const size_t before = output_.size();
    h2_->send(&output_, output_offset_ + kOutputHigh);
    if (output_.size() == before) break;
    flush();
    if (!output_.empty()) break;  // the socket is full: EPOLLOUT brings us back
  }
  if (!closed() && h2_->finished()) {
    close_after_write_ = true;
    if (output_.empty()) close_now(false);
  }
}

void Connection::h2_wants_write() {
  drive_h2();
}

void Connection::goodbye() {
  if (h2_) {
    h2_->goaway();
    drive_h2();
    return;
  }
  // HTTP/1.1 (or undecided): no new request is read; an answer owed (delayed
  // or still being written) goes out first, then the connection closes.
  close_after_write_ = true;
  pending_keep_alive_ = false;
  if (!waiting_ && output_.empty()) close_now(false);
}

void Connection::flush() {
  // Written bytes are dropped from the front of output_ once there are this
  // many: a client that reads steadily but slower than we answer (HTTP/2, or
  // HTTP/1.1 pipelining) would otherwise grow output_ by all it ever read.
  static constexpr size_t kCompactAfter = 64 * 1024;
  while (output_offset_ < output_.size()) {
    // After a partial TLS write this passes the same unwritten rest again
    // (plus whatever was queued since), as net::Stream::write asks; the rest
    // may move in memory (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, tls/setup.cc).
    const net::StreamResult r = stream_->write(std::string_view(output_).substr(output_offset_));
    output_offset_ += r.bytes;
    if (r.status == net::StreamStatus::kOk) continue;
    if (r.status == net::StreamStatus::kWouldBlock) {
      if (output_offset_ >= kCompactAfter) {
        output_.erase(0, output_offset_);
        output_offset_ = 0;
      }
      return;
    }
    close_now(false);
    return;
  }
  output_.clear();
  output_offset_ = 0;
  if (close_after_write_) close_now(false);
}

int worker_main(const MockConfig& config, const ServerOptions& options,
                SharedControl& control_shared, SharedCounters& counters,
                SharedSocketCounters& socket_counters, SharedTlsCounters* tls_counters,
                SharedH2Counters& h2_counters, SharedAmqpCounters* amqp_counters,
                std::span<std::atomic<uint64_t>> sequences, uint32_t index, int listen_fd,
                std::span<const int> tcp_fds, const TcpTlsContexts& tcp_tls) {
  Worker worker(config, options, control_shared, counters, socket_counters, tls_counters,
                h2_counters, amqp_counters, sequences, index, listen_fd, tcp_tls.by_listener);
  return worker.run(tcp_fds);
}

// The listening sockets of one server, opened by the parent before it forks
// so that the workers share them (SharedListener) and nobody else can bind
// the same addresses.
struct ListeningSockets {
  int http = -1;
  std::vector<int> tcp;  // one per config.tcp entry
  ~ListeningSockets() { close_all(); }
  void close_all() {
    if (http >= 0) close(http);
    http = -1;
    for (int fd : tcp)
      close(fd);
    tcp.clear();
  }
};

// The accept queue each listener asks for; the kernel caps it at
// net.core.somaxconn (4096 by default). A million connections ramped at
// 10,000 a second into 51 workers sharing two busy cores overflowed a queue
// of 4,096 (46,000 ListenOverflows, 35,753 client connect timeouts): ask for
// the most, and a raised somaxconn takes effect without another flag.
constexpr int kListenBacklog = 65535;

// Opens every listener, or says which one failed on stderr.
bool open_listeners(const MockConfig& config, const net::Endpoint& listen, ListeningSockets* out) {
  out->http = net::listen_socket(listen, kListenBacklog);
  if (out->http < 0) {
    std::fprintf(stderr, "millstone mock: --listen %s: %s\n", listen.to_string().c_str(),
                 errno == EADDRINUSE ? "address already in use (another process listens there)"
                                     : strerror(errno));
    return false;
  }
  for (const SocketRoute& route : config.tcp) {
    const int fd = net::listen_socket(route.listen, kListenBacklog);
    if (fd < 0) {
      std::fprintf(stderr, "millstone mock: tcp route '%s', listen %s: %s\n",
                   text::printable(route.name).c_str(), text::printable(route.listen_text).c_str(),
                   errno == EADDRINUSE ? "address already in use (another process listens there)"
                                       : strerror(errno));
      return false;
    }
    out->tcp.push_back(fd);
  }
  return true;
}

void print_socket_stats(const MockConfig& config, SharedSocketCounters& sockets) {
  if (sockets.rows() == 0) return;
  std::printf("millstone mock: socket routes\n");
  for (size_t row = 0; row < sockets.rows(); ++row) {
    std::printf(
        "  %-32s %8llu connections (%llu open)  %llu in  %llu out  %llu pushes  %llu protocol "
        "errors  %llu overflow closes  %llu refused at the fd limit\n",
        text::printable(socket_route(config, row).name).c_str(),
        static_cast<unsigned long long>(sockets.sum(row, &SocketCounters::total)),
        static_cast<unsigned long long>(sockets.sum(row, &SocketCounters::open)),
        static_cast<unsigned long long>(sockets.sum(row, &SocketCounters::messages_in)),
        static_cast<unsigned long long>(sockets.sum(row, &SocketCounters::messages_out)),
        static_cast<unsigned long long>(sockets.sum(row, &SocketCounters::pushes)),
        static_cast<unsigned long long>(sockets.sum(row, &SocketCounters::protocol_errors)),
        static_cast<unsigned long long>(sockets.sum(row, &SocketCounters::overflow_closes)),
        static_cast<unsigned long long>(sockets.sum(row, &SocketCounters::refused_at_fd_limit)));
  }
  std::fflush(stdout);
}

void print_stats(const MockConfig& config, SharedCounters& counters) {
  std::printf("millstone mock: requests served per route\n");
  for (size_t r = 0; r < counters.routes(); ++r) {
    std::string name = r < config.routes.size()    ? config.routes[r].name
                       : r == counters.unmatched() ? "unmatched (404)"
                                                   : "malformed (400)";
    uint64_t requests = counters.sum(r, &RouteCounters::requests);
    if (r >= config.routes.size() && requests == 0) continue;
    std::printf("  %-32s %12llu requests  (injected: %llu status, %llu reset, %llu stall)\n",
                text::printable(name).c_str(), static_cast<unsigned long long>(requests),
                static_cast<unsigned long long>(counters.sum(r, &RouteCounters::error_status)),
                static_cast<unsigned long long>(counters.sum(r, &RouteCounters::error_reset)),
                static_cast<unsigned long long>(counters.sum(r, &RouteCounters::error_stall)));
  }
  std::fflush(stdout);
}

void print_tls_stats(const SharedTlsCounters& tls) {
  std::string causes;
  for (size_t c = 0; c < metrics::kErrorCauseCount; ++c) {
    if (const uint64_t n = tls.failed(c)) {
      causes += fmt::format("{}{} {}", causes.empty() ? " (" : ", ",
                            metrics::error_cause_name(static_cast<metrics::ErrorCause>(c)), n);
    }
  }
  if (!causes.empty()) causes += ")";
  std::printf("millstone mock: TLS handshakes: %llu completed, %llu failed%s\n",
              static_cast<unsigned long long>(tls.handshakes()),
              static_cast<unsigned long long>(tls.failed_total()), causes.c_str());
  std::fflush(stdout);
}

}  // namespace

ServerExit run_mock_server(const MockConfig& config, const ServerOptions& options) {
  uint32_t workers = std::max<uint32_t>(1, options.workers);
  // Benchmarks hold 100k+ connections: use all the descriptors allowed.
  raise_fd_limit();
  const size_t socket_rows = config.websockets.size() + config.tcp.size();
  SharedCounters counters(workers, config.routes.size());
  SharedSocketCounters socket_counters(workers, socket_rows);
  // Slots: each HTTP route's counter, the named counters, each socket route's counter.
  SharedSequences sequences(config.routes.size() + config.counter_names.size() + socket_rows);
  SharedTlsCounters tls_counters(options.tls ? workers : 1);
  SharedH2Counters h2_counters(workers);
  SharedControl control(workers);
  SharedAmqpCounters amqp_counters(workers);
  if (!counters.ok() || !sequences.ok() || !socket_counters.ok() || !tls_counters.ok() ||
      !h2_counters.ok() || !control.ok() || !amqp_counters.ok()) {
    std::fprintf(stderr, "millstone mock: cannot map shared counters: %s\n", strerror(errno));
    return ServerExit::kFailed;
  }
  // One socket per address, opened here and inherited by every worker: an
  // address another process holds fails now, and no other process can join
  // ours later (no SO_REUSEPORT). Port 0 is fixed here for all workers.
  // tcp listeners with tls: one context each, made before the fork (the
  // config loader checked their files).
  TcpTlsContexts tcp_tls;
  try {
    tcp_tls = make_tcp_tls_contexts(config, options.tls);
  } catch (const tls::TlsSetupError& e) {
    std::fprintf(stderr, "millstone mock: tcp listener: %s\n", text::printable(e.what()).c_str());
    return ServerExit::kFailed;
  }
  ListeningSockets listeners;
  if (!open_listeners(config, options.listen, &listeners)) return ServerExit::kCannotListen;
  net::Endpoint bound = net::local_endpoint(listeners.http).value_or(options.listen);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t previous;
  sigprocmask(SIG_BLOCK, &stop_signals, &previous);

  std::vector<pid_t> children;
  const pid_t parent = getpid();
  for (uint32_t i = 0; i < workers; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      // The stop signals stay blocked: the worker reads them from a
      // signalfd, says GOAWAY to its HTTP/2 clients, then ends by SIGTERM.
      sigset_t worker_mask = previous;
      sigaddset(&worker_mask, SIGINT);
      sigaddset(&worker_mask, SIGTERM);
      sigprocmask(SIG_SETMASK, &worker_mask, nullptr);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      // A parent killed outright (SIGKILL) takes its workers along, instead
      // of leaving them holding the port.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);
      _exit(worker_main(config, options, control, counters, socket_counters,
                        options.tls ? &tls_counters : nullptr, h2_counters,
                        config.amqp ? &amqp_counters : nullptr, sequences.slots(), i,
                        listeners.http, listeners.tcp, tcp_tls));
    }
    if (pid > 0) children.push_back(pid);
  }
  // The workers hold the sockets now.
  listeners.close_all();
  const uint32_t listening = static_cast<uint32_t>(children.size());
  if (listening < workers) {
    std::fprintf(stderr, "millstone mock: only %u of %u workers could start: %s\n", listening,
                 workers, strerror(errno));
  }
  if (options.announce) {
    std::printf(
        "millstone mock: listening on %s%s with %u workers and %zu routes (counts: GET %s)\n",
        options.tls ? "https://" : "", bound.to_string().c_str(), listening, config.routes.size(),
        kStatsPath);
    if (config.amqp) {
      std::printf(
          "millstone mock: amqp %s, one connection per worker (counts: \"amqp\" in "
          "GET %s)\n",
          text::printable(config.amqp->url_display).c_str(), kStatsPath);
    }
    if (options.tls) {
      std::printf("millstone mock: TLS certificate SHA-256 %s%s%s\n",
                  options.tls->fingerprint_sha256().c_str(),
                  options.tls_certificate_out.empty() ? "" : ", PEM written to ",
                  text::printable(options.tls_certificate_out).c_str());
    }
    for (size_t i = 0; i < config.tcp.size(); ++i) {
      if (const tls::TlsServerContext* context = tcp_tls.by_listener[i]) {
        std::printf("millstone mock: %s speaks TLS, certificate SHA-256 %s\n",
                    text::printable(config.tcp[i].name).c_str(),
                    context->fingerprint_sha256().c_str());
      }
    }
    std::fflush(stdout);
  }

  int signal_fd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
  size_t alive = children.size();
  ServerExit exit_code = listening == workers ? ServerExit::kStopped : ServerExit::kFailed;
  while (alive > 0) {
    pollfd p{signal_fd, POLLIN, 0};
    int n = poll(&p, 1, 200);
    if (n > 0) {
      // SIGINT or SIGTERM: shut down. Read it, or unblocking the signals at
      // the end would deliver it again and end us by it (exit 143, not 0).
      break;
    }
    int wstatus;
    pid_t pid;
    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
      --alive;
      if (!(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGTERM)) {
        std::fprintf(stderr, "millstone mock: worker pid %d ended unexpectedly (%s)\n", pid,
                     WIFSIGNALED(wstatus) ? strsignal(WTERMSIG(wstatus)) : "exited");
        exit_code = ServerExit::kFailed;
      }
    }
  }
  // Each worker drains its connections for up to Worker::kDrainNs; one
  // still alive a second after that is stuck and is killed.
  for (pid_t pid : children)
    kill(pid, SIGTERM);
  const int64_t give_up = net::now_ns() + Worker::kDrainNs + net::kNsPerSec;
  while (alive > 0 && net::now_ns() < give_up) {
    const pid_t pid = waitpid(-1, nullptr, WNOHANG);
    if (pid > 0) {
      --alive;
    } else if (pid < 0) {
      break;
    } else {
      usleep(10'000);
    }
  }
  if (alive > 0) {
    std::fprintf(stderr, "millstone mock: %zu workers still draining after %lld s: killed\n", alive,
                 static_cast<long long>((Worker::kDrainNs + net::kNsPerSec) / net::kNsPerSec));
    for (pid_t pid : children)
      kill(pid, SIGKILL);
    while (waitpid(-1, nullptr, 0) > 0) {
    }
  }
  if (options.print_stats_on_exit) {
    print_stats(config, counters);
    print_socket_stats(config, socket_counters);
    if (options.tls) print_tls_stats(tls_counters);
    if (config.amqp) {
      std::fputs(amqp_counters.summary_line().c_str(), stdout);
      std::fflush(stdout);
    }
    if (options.http2.enabled) {
      std::fputs(h2_counters.summary_line().c_str(), stdout);
      std::fflush(stdout);
    } else if (const uint64_t refused = h2_counters.sum(&H2Counters::refused_at_fd_limit)) {
      std::printf(
          "millstone mock: %llu connections refused at once while every worker was out of "
          "descriptors\n",
          static_cast<unsigned long long>(refused));
      std::fflush(stdout);
    }
  }
  // Every stop signal that came meanwhile (a second Ctrl-C, SIGTERM twice)
  // is read here: unblocking them would deliver it and end us by it (130 or
  // 143 instead of 0).
  if (signal_fd >= 0) {
    signalfd_siginfo info;
    while (read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    }
    close(signal_fd);
  }
  sigprocmask(SIG_SETMASK, &previous, nullptr);
  return exit_code;
}

pid_t start_mock_server(const MockConfig& config, ServerOptions options, net::Endpoint* bound,
                        std::string* error) {
  // Pick the port here so the caller knows it before the server starts.
  int probe = net::listen_socket(options.listen, 16);
  if (probe < 0) {
    *error = fmt::format("cannot listen on {}: {}", options.listen.to_string(), strerror(errno));
    return -1;
  }
  options.listen = net::local_endpoint(probe).value_or(options.listen);
  // Closed before the child binds: the listener is exclusive.
  close(probe);
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    *error = "pipe failed";
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(ready[0]);
    options.announce = false;
    // Tell the parent once the workers listen: run_mock_server returns only at
    // shutdown, so readiness is signalled by a connect probe instead.
    (void)write(ready[1], "y", 1);
    close(ready[1]);
    _exit(run_mock_server(config, options) == ServerExit::kStopped ? 0 : 1);
  }
  close(ready[1]);
  char c;
  (void)read(ready[0], &c, 1);
  close(ready[0]);
  if (pid < 0) {
    *error = fmt::format("fork failed: {}", strerror(errno));
    return -1;
  }
  // Wait until the port accepts connections (bounded).
  for (int attempt = 0; attempt < 200; ++attempt) {
    int fd = socket(options.listen.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, options.listen.addr(), options.listen.length) == 0;
    if (fd >= 0) close(fd);
    if (ok) break;
    usleep(10'000);
  }
  *bound = options.listen;
  return pid;
}

int stop_mock_server(pid_t pid) {
  int status = 0;
  if (pid <= 0) return -1;
  kill(pid, SIGTERM);
  waitpid(pid, &status, 0);
  return status;
}

}  // namespace millstone::mock
