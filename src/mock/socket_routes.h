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

class FdLimit;

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
  // TCP listeners: connections reset at once while every worker was out of descriptors.
  std::atomic<uint64_t> refused_at_fd_limit{0};
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
  // `amqp_key`: for a route whose amqp_push has a key, the connection's
  // (from the upgrade request, amqp_push_key): it receives the messages
  // that carry this key.
  void adopt_websocket(int fd, size_t route, std::string_view unsent, std::string_view input,
                       std::string_view amqp_key = {});
  // The same for a wss connection: the TLS stream (handshake done) comes along.
  void adopt_websocket(std::unique_ptr<tls::TlsStream> stream, size_t route,
                       std::string_view unsent, std::string_view input,
                       std::string_view amqp_key = {});
  // A broker message for route `row`'s amqp_push: its body, as a text
  // message, to every open connection of the route whose key equals `key`
  // (keyed), or to every one. Returns the copies written.
  size_t push_amqp(size_t row, bool keyed, std::string_view key, std::string_view body);
  // Serves the TCP listeners, one per config.tcp entry in that order. The
  // sockets were opened by the parent and are shared by every worker (see
  // SharedListener); fd_limit is the worker's (it outlives this runtime).
  // Returns false if the event loop refused one (errno set).
  bool serve_tcp(std::span<const int> listen_fds, FdLimit& fd_limit);
  // Accepts what waits on the TCP listeners (another worker handed it over).
  void accept_waiting();

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
  void set_amqp_key(SocketSession* session, std::string_view key);
  void drop_amqp_key(SocketSession* session);
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
  FdLimit* fd_limit_ = nullptr;  // set by serve_tcp
  std::unique_ptr<char[]> read_buffer_;
  std::vector<std::unique_ptr<Route>> routes_;  // websockets, then tcp
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<SocketSession>> sessions_;  // by fd
  std::vector<std::string> amqp_keys_;  // by fd: the key of a keyed amqp_push connection
  std::string frame_;                   // one push, framed
  std::string rendered_;
  SocketSession* closing_head_ = nullptr;  // closing sessions, oldest first
  SocketSession* closing_tail_ = nullptr;
  std::unique_ptr<net::Timer> sweep_timer_;
};

// The key of a WebSocket upgrade on a route whose amqp_push has one: the
// query parameter (percent-decoded) or the request header it names. Empty
// when the request does not carry it. `header` looks a request header up by
// name (case-insensitive).
std::string amqp_push_key(const SocketAmqpPush& push, std::string_view target,
                          const std::function<std::string_view(std::string_view)>& header);

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

// Accepting in one worker process, and what it does when it is out of
// descriptors (EMFILE, or ENFILE system-wide) while connections wait in the
// backlog. Left there, they would wait until the client's connect timeout:
// the edge-triggered listener sends no new event for them. Instead:
// - when another worker still has room (the workers' shared flags say so),
//   this one steps aside for 100 ms: it stops watching the listener, so that
//   the kernel wakes the others for new connections, and wakes one of them
//   to accept those already waiting (an edge-triggered, exclusive listener
//   woke only this one for them);
// - when every worker is full, each waiting connection is refused at once:
//   the spare descriptor kept for this is closed, the connection accepted on
//   its slot and reset (RST), and the spare opened again. The client sees a
//   reset within a round trip, and the stats count it.
class FdLimit {
 public:
  // full: this worker's flag in shared memory, set while it is at its limit.
  // hand_over: wakes another worker whose flag is clear and returns true, or
  // returns false when every worker is full (null: a worker alone).
  FdLimit(std::atomic<uint64_t>& full, std::function<bool()> hand_over);
  ~FdLimit();
  FdLimit(const FdLimit&) = delete;
  FdLimit& operator=(const FdLimit&) = delete;

  enum class Outcome : uint8_t {
    kDrained,     // accepted (or refused) until EAGAIN
    kStepAside,   // at the limit, another worker has room: stop listening, retry in 100 ms
    kRetryLater,  // at the limit, and the spare descriptor is gone too: retry in 100 ms
  };
  // accept4() until EAGAIN, each connection to on_accept; refusals are
  // counted in `refused`. Says once per process on stderr which limit was hit.
  Outcome accept_all(int listen_fd, const std::function<void(int fd)>& on_accept,
                     std::atomic<uint64_t>& refused);

 private:
  Outcome refuse_all(int listen_fd, std::atomic<uint64_t>& refused);

  std::atomic<uint64_t>& full_;
  std::function<bool()> hand_over_;
  int spare_ = -1;
};

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
uint64_t raise_fd_limit();

}  // namespace millstone::mock
