#pragma once
// One HTTP/1.1 keep-alive client connection of the load generator: connects,
// writes a pre-serialized request, parses the response incrementally, and
// reports each outcome to its listener. One request in flight at a time (no
// pipelining). The connection never decides what to do next; the load model
// that owns it does (see engine/load_generator.h).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/response_parser.h"
#include "metrics/snapshot.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "net/stream.h"
#include "net/uring_stream.h"
#include "tls/client_context.h"
#include "tls/tls_stream.h"

namespace millstone::http {

class ClientConnection;

class ClientListener {
 public:
  virtual ~ClientListener() = default;
  // Connected and ready for a request.
  virtual void on_connected(ClientConnection& connection) = 0;
  // A complete response. If !connection.connected() the server closed it.
  virtual void on_response(ClientConnection& connection, int status, int64_t done_ns) = 0;
  // The connection failed and is closed. `had_request`: a request was lost.
  virtual void on_failure(ClientConnection& connection, metrics::ErrorCause cause,
                          bool had_request) = 0;
  // The server closed an idle keep-alive connection; not an error.
  virtual void on_idle_close(ClientConnection& connection) = 0;
  // Raw mode (WebSocket after the upgrade, raw TCP): bytes arrived. Returns
  // how many were consumed; the connection keeps the rest and passes them
  // again, followed by new bytes, at the next arrival. `data` is writable and
  // only valid during the call. The end of the stream is an on_failure with
  // kClosed (or kReset) and had_request false.
  virtual size_t on_data(ClientConnection& connection, char* data, size_t size) {
    (void)connection;
    (void)data;
    return size;
  }
  // Raw mode: bytes that send_raw had to keep (unsent_bytes() > 0) have all
  // been written now. Lets the owner apply back-pressure.
  virtual void on_writable(ClientConnection& connection) { (void)connection; }
};

// Shared by all connections of one worker: what they send and where.
struct ClientContext {
  net::Endpoint endpoint;
  // Local addresses to connect from, one per connection index in turn; empty
  // = the kernel's choice. Each gives ~28,000 ports towards one destination.
  std::vector<net::Endpoint> sources;
  std::string request_bytes;
  bool head_request = false;
  std::string read_buffer;             // scratch space; the parser keeps what it needs
  metrics::Snapshot* stats = nullptr;  // bytes and connection counters go here
  // https: every connection to `endpoint` runs a TLS handshake between the
  // TCP connect and on_connected. Null: plain TCP. Both owned by the worker.
  tls::TlsClientContext* tls = nullptr;
  tls::TlsTarget* tls_target = nullptr;
};

class ClientConnection final : public net::IoHandler {
 public:
  // kHandshaking: TCP connected, TLS handshake running (https only).
  enum class State : uint8_t { kClosed, kConnecting, kHandshaking, kIdle, kWriting, kReading };

  ClientConnection(net::EventLoop& loop, ClientListener& listener, ClientContext& context,
                   uint32_t index);
  ~ClientConnection() override;
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Starts connecting (and, with a TLS context, the handshake); the outcome
  // arrives as on_connected or on_failure.
  void connect(int64_t now_ns) {
    open(now_ns, context_.endpoint, true, context_.tls, context_.tls_target);
  }
  // The same to another endpoint than the context's (WebSocket/TCP steps),
  // over plain TCP, or TLS when `tls` and `tls_target` are given (owned by
  // the worker, like the context's). The context's sources were chosen for
  // its endpoint; `bind_sources` says whether they suit this one too (same
  // family, loopback only to loopback).
  void connect(int64_t now_ns, const net::Endpoint& endpoint, bool bind_sources,
               tls::TlsClientContext* tls = nullptr, tls::TlsTarget* tls_target = nullptr) {
    open(now_ns, endpoint, bind_sources, tls, tls_target);
  }
  // Raw mode: from now on every byte read goes to ClientListener::on_data
  // (the connection must be idle). A 101 response to a request sent with
  // allow_upgrade(true) switches to raw mode by itself, before on_response,
  // and bytes after the 101 head arrive through on_data after it.
  void set_raw();
  void allow_upgrade(bool allow) { upgrade_ = allow; }
  bool raw() const { return raw_; }
  // Raw mode: queues bytes for sending; what the socket does not take now is
  // kept and written on EPOLLOUT. Returns false when the connection failed
  // (on_failure has been called).
  bool send_raw(std::string_view bytes);
  // Bytes send_raw could not write yet; on_writable says when they are gone.
  size_t unsent_bytes() const { return out_.size(); }
  // Sends a complete serialized request; only when idle. The bytes must stay
  // valid until the response (or failure) is reported. `intended_ns` is when
  // it should have been sent (open model); latency is measured from it.
  void send(std::string_view request, bool head, int64_t intended_ns, int64_t now_ns);
  // Keep headers and up to max_body_bytes of each response (scenario checks).
  void set_capture(bool capture, size_t max_body_bytes) {
    parser_.set_capture(capture, max_body_bytes);
  }
  // The last response, valid in on_response.
  const ResponseParser& response() const { return parser_; }
  // Closes silently (end of run): no callback.
  void close();
  // Fails the current attempt with `cause` (for timeouts found by the owner).
  void fail(metrics::ErrorCause cause);

  State state() const { return state_; }
  bool connected() const { return state_ >= State::kIdle; }
  // Connecting or handshaking: the connect timeout applies.
  bool opening() const { return state_ == State::kConnecting || state_ == State::kHandshaking; }
  // Connecting, but the kernel has completed the connect and the loop has
  // not handled its event yet (a loop starved of CPU, or the event in a later
  // batch than the timeout's sweep): a connect timeout must not blame the
  // target for the generator's own delay. One poll(2) per call.
  bool connect_completed_unseen() const;
  // The ALPN protocol TLS negotiated ("h2"); empty over plain TCP or when none.
  std::string_view alpn() const { return tls_ ? tls_->alpn() : std::string_view(); }
  // What the last TLS or socket failure was, in words; empty when none.
  std::string_view error_text() const { return error_text_; }
  bool idle() const { return state_ == State::kIdle; }
  bool busy() const { return state_ == State::kWriting || state_ == State::kReading; }
  int64_t intended_ns() const { return intended_ns_; }
  int64_t sent_ns() const { return sent_ns_; }
  int64_t connect_started_ns() const { return connect_started_ns_; }
  uint32_t index() const { return index_; }

  void on_io(uint32_t events) override;

 private:
  // TLS when both tls and tls_target are given.
  void open(int64_t now_ns, const net::Endpoint& endpoint, bool bind_sources,
            tls::TlsClientContext* tls, tls::TlsTarget* tls_target);
  void on_connect_ready();
  void continue_handshake();
  // Fails with a Stream's error (kept for error_text()).
  void fail_stream(const net::StreamResult& result);
  void write_some();
  void read_some(bool peer_closing);
  void complete_response(int64_t done_ns, const char* rest, size_t rest_size);
  void close_socket(bool reset);
  // Raw mode: hands data (plus any kept tail) to the listener; false when the
  // listener closed or reopened the connection meanwhile.
  bool deliver(char* data, size_t size);
  void flush_raw();

  net::EventLoop& loop_;
  ClientListener& listener_;
  ClientContext& context_;
  ResponseParser parser_;
  // The fd's stream while open: plain_ (in place, no allocation) or tls_.
  // On an io_uring loop a plain connection moves to uring_ once connected
  // (the connect itself waits on readiness).
  std::optional<net::PlainStream> plain_;
  std::optional<net::UringStream> uring_;
  std::unique_ptr<tls::TlsStream> tls_;
  net::Stream* stream_ = nullptr;
  int fd_ = -1;  // stream_->fd(), kept for the loop registration
  uint64_t registration_ = 0;
  State state_ = State::kClosed;
  bool raw_ = false;
  bool upgrade_ = false;
  // A TLS call that waits on the other readiness than its own (a read that
  // must write, a write that must read): retried on that edge.
  bool read_waits_writable_ = false;
  bool write_waits_readable_ = false;
  uint32_t index_;
  // Raw mode only, and only while needed: an incomplete frame or message
  // (in_) and bytes the socket would not take yet (out_). Idle, both are
  // empty and own no heap memory.
  std::string in_;
  std::string out_;
  std::string_view request_;
  size_t written_ = 0;
  int64_t intended_ns_ = 0;
  int64_t sent_ns_ = 0;
  int64_t connect_started_ns_ = 0;
  std::string error_text_;  // empty (no heap) until a stream error
};

}  // namespace millstone::http
