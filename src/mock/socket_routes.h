// The mock's long-lived connections: WebSocket routes (a GET with Upgrade on
// a declared path is handed over here after the 101) and raw TCP listeners.
// One SocketRuntime per worker process: it owns the sessions, one push timer
// per route (and per then_push rule), the ping and close_after sweeps.
//
// Memory per idle connection is what matters (benchmarks hold 100k-200k
// connections against one mock): a session is a small fixed object with no
// heap buffer while idle; input and output buffers exist only while a frame
// is incomplete or the socket's send buffer is full. docs/mock.md#websockets.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mock/config.h"
#include "mock/template.h"
#include "net/event_loop.h"
#include "tls/server_context.h"

namespace millstone::tls {
class TlsStream;
}

namespace millstone::mock {

// Counts of one socket route in one worker. Only that worker writes them;
// readers sum the rows of all workers.
struct SocketCounters {
  std::atomic<uint64_t> open{0};   // connections open now
  std::atomic<uint64_t> total{0};  // connections accepted (upgraded) so far
  std::atomic<uint64_t> messages_in{0};
  std::atomic<uint64_t> messages_out{0};  // echoes, replies and pushed copies
  std::atomic<uint64_t> pushes{0};        // push ticks (one render each)
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> overflow_closes{0};  // send queue over the bound
  // TCP listeners with tls: (a wss route's handshakes count with the HTTP listener's).
  std::atomic<uint64_t> tls_handshakes{0};
  std::atomic<uint64_t> tls_failed{0};  // the handshake failed or the client left during it
};

// The TLS contexts of the tcp listeners with tls:, by index into config.tcp
// (null: plain). Built once in the parent before the workers fork, so every
// worker presents the same certificate: the listener's cert/key, else
// `shared` (the HTTP listener's, with --tls), else one self-signed
// certificate for all of them. Throws tls::TlsSetupError.
struct TcpTlsContexts {
  std::vector<const tls::TlsServerContext*> by_listener;
  std::vector<std::unique_ptr<tls::TlsServerContext>> owned;
};
TcpTlsContexts make_tcp_tls_contexts(const MockConfig& config, const tls::TlsServerContext* shared);

// Send queue bound per connection: past it the client is not reading, and
// the connection is closed (WebSocket 1008) rather than growing the mock.
inline constexpr size_t kMaxQueuedBytes = size_t{1} << 20;

class SocketSession;

class SocketRuntime {
 public:
  // counters: this worker's row, websockets first, then tcp listeners.
  // counter_slot_base: the template counter slot of the first socket route.
  // tcp_tls: per config.tcp entry, its TLS context or null (TcpTlsContexts).
  SocketRuntime(const MockConfig& config, net::EventLoop& loop, TemplateRenderer& renderer,
                SocketCounters* counters, size_t counter_slot_base,
                std::vector<const tls::TlsServerContext*> tcp_tls = {});
  ~SocketRuntime();
  SocketRuntime(const SocketRuntime&) = delete;
  SocketRuntime& operator=(const SocketRuntime&) = delete;

  // Index into config.websockets for a request path (query ignored), or -1.
  int websocket_route(std::string_view target) const;
  // Takes over an upgraded connection: fd is no longer registered anywhere.
  // `unsent` is what is left of the 101 response; `input` holds bytes the
  // client sent after the request.
  void adopt_websocket(int fd, size_t route, std::string_view unsent, std::string_view input);
  // The same for a wss connection: the TLS stream (handshake done) comes along.
  void adopt_websocket(std::unique_ptr<tls::TlsStream> stream, size_t route,
                       std::string_view unsent, std::string_view input);
  // Serves the TCP listeners, one per config.tcp entry in that order. The
  // sockets were opened by the parent and are shared by every worker (see
  // SharedListener). Returns false if the event loop refused one (errno set).
  bool serve_tcp(std::span<const int> listen_fds);

  // For the sessions.
  const MockConfig& config() const { return config_; }
  net::EventLoop& loop() { return loop_; }
  SocketCounters& counters(size_t row) { return counters_[row]; }
  void release(SocketSession* session);
  void start_closing(SocketSession* session);
  // A scratch read buffer shared by all sessions of the worker.
  char* read_buffer() { return read_buffer_.get(); }
  static constexpr size_t kReadBufferBytes = 64 * 1024;
  // The control API changed route `row`'s push interval (websockets, then
  // tcp): the next tick comes `every_us` from now, then every `every_us`.
  void set_push_every(size_t row, int64_t every_us);
  // Renders a socket message (push, reply) into *out.
  void render(const Template& message, size_t row, std::string* out);
  // Heap bytes the sessions' input and output buffers hold now (capacity, not
  // content): 0 when every connection is idle. For tests and diagnostics.
  size_t buffered_bytes() const;

 private:
  struct Route;
  struct Listener;
  void add_session(std::unique_ptr<SocketSession> session);
  void on_tcp_accept(size_t listener);
  void push_tick(size_t row, int rule);  // rule -1: the route's push
  void ping_tick(size_t row);
  void sweep();

  const MockConfig& config_;
  std::vector<const tls::TlsServerContext*> tcp_tls_;
  net::EventLoop& loop_;
  TemplateRenderer& renderer_;
  SocketCounters* counters_;
  size_t counter_slot_base_;
  std::unique_ptr<char[]> read_buffer_;
  std::vector<std::unique_ptr<Route>> routes_;  // websockets, then tcp
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<SocketSession>> sessions_;  // by fd
  std::string frame_;                                     // one push, framed
  std::string rendered_;
  SocketSession* closing_head_ = nullptr;  // closing sessions, oldest first
  SocketSession* closing_tail_ = nullptr;
  std::unique_ptr<net::Timer> sweep_timer_;
};

// One listening socket shared by all worker processes (opened exclusive by
// the parent, inherited at fork): no other program can bind the address, and
// the workers spread its connections. Each worker registers with
// EPOLLEXCLUSIVE, so one waiting worker is woken per connection, not all; and
// after accepting, it registers again, which puts it at the back of the
// socket's wait queue, so the next connection wakes the worker that waited
// longest (otherwise the first-registered idle worker would take them all).
class SharedListener {
 public:
  SharedListener(net::EventLoop& loop, int fd, net::IoHandler* handler)
      : loop_(loop), fd_(fd), handler_(handler) {}
  ~SharedListener();
  SharedListener(const SharedListener&) = delete;
  SharedListener& operator=(const SharedListener&) = delete;
  int fd() const { return fd_; }
  // Returns false if the loop refused it (errno set).
  bool start();
  // Call after accepting: to the back of the wait queue.
  void requeue();
  // No more accepting here (shutdown); the socket stays open for the others.
  void stop();

 private:
  net::EventLoop& loop_;
  int fd_;
  net::IoHandler* handler_;
  uint64_t registration_ = 0;
};

// accept4() until EAGAIN. EMFILE/ENFILE: says once on stderr which limit was
// hit and how to raise it, and returns true so the caller retries later (the
// edge-triggered listener gets no new event for connections already queued).
bool accept_all(int listen_fd, const std::function<void(int fd)>& on_accept);

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
uint64_t raise_fd_limit();

}  // namespace millstone::mock
