#pragma once
// One connection of quick mode's load generator, whatever its protocol: an
// ClientConnection carries the bytes (connect, TLS and ALPN, the
// worker's shared read buffer) in raw mode, and a Session (Http1Session,
// http2::Session) frames them; a SessionFactory makes one per connect.
// Requests are submitted with a token and their outcomes come back by token;
// the owner (engine::LoadGenerator) decides what to send and when to
// reconnect.
#include <cstdint>
#include <memory>
#include <optional>

#include "http/client_connection.h"
#include "http/session.h"

namespace millstone::http {

class SessionConnection;

// Makes the Session of each new connection.
class SessionFactory {
 public:
  virtual ~SessionFactory() = default;
  virtual std::unique_ptr<Session> make(RequestListener& listener) = 0;
  // Over TLS, the ALPN protocol the server must have selected ("h2"); empty: any.
  virtual std::string_view required_alpn() const { return {}; }
};

class SessionConnectionListener {
 public:
  virtual ~SessionConnectionListener() = default;
  // Ready for requests: after the connection preface, and whenever a stream
  // came free (capacity() > 0). Not called from inside submit().
  virtual void on_capacity(SessionConnection& connection) = 0;
  virtual void on_response(SessionConnection& connection, RequestToken token,
                           const ResponseInfo& response, int64_t done_ns) = 0;
  virtual void on_request_failed(SessionConnection& connection, RequestToken token,
                                 metrics::ErrorCause cause) = 0;
  // The connection closed. `cause` is set when it failed with no request in
  // flight to charge it to (connect refused, TLS, a broken idle session);
  // empty when it ended cleanly (the server's GOAWAY, an idle close).
  virtual void on_closed(SessionConnection& connection,
                         std::optional<metrics::ErrorCause> cause) = 0;
};

class SessionConnection final : private ClientListener, private RequestListener, private Output {
 public:
  SessionConnection(net::EventLoop& loop, SessionConnectionListener& listener,
                    ClientContext& context, SessionFactory& factory, uint32_t index);
  ~SessionConnection() override;
  SessionConnection(const SessionConnection&) = delete;
  SessionConnection& operator=(const SessionConnection&) = delete;

  void connect(int64_t now_ns);
  // Closes silently (end of run): no callback; requests in flight are dropped.
  void close();
  bool ready() const { return session_ != nullptr; }
  bool opening() const { return connection_.opening(); }
  bool handshaking() const { return connection_.state() == ClientConnection::State::kHandshaking; }
  int64_t connect_started_ns() const { return connection_.connect_started_ns(); }
  // Fails the connection attempt (connect timeout found by the owner).
  void fail(metrics::ErrorCause cause) { connection_.fail(cause); }
  uint32_t capacity() const { return session_ ? session_->capacity() : 0; }
  uint32_t in_flight() const { return session_ ? session_->in_flight() : 0; }
  // Only with capacity() > 0.
  bool submit(const PreparedRequest& request, RequestToken token, int64_t now_ns);
  void expire(int64_t now_ns, int64_t timeout_ns);
  uint32_t index() const { return index_; }

 private:
  // ClientListener (the transport).
  void on_connected(ClientConnection& connection) override;
  void on_response(ClientConnection& connection, int status, int64_t done_ns) override;
  void on_failure(ClientConnection& connection, metrics::ErrorCause cause,
                  bool had_request) override;
  void on_idle_close(ClientConnection& connection) override;
  size_t on_data(ClientConnection& connection, char* data, size_t size) override;
  void on_writable(ClientConnection& connection) override;
  // RequestListener (the session's outcomes).
  void on_response(RequestToken token, const ResponseInfo& response, int64_t done_ns) override;
  void on_request_failed(RequestToken token, metrics::ErrorCause cause) override;
  // Output (the session's bytes).
  bool write(std::string_view bytes) override;

  // Ends the session (the transport is closed already): requests in flight
  // fail with `cause`; the owner hears on_closed, with `cause` unless `clean`
  // or a request was charged with it.
  void end(metrics::ErrorCause cause, bool clean);
  // After the session ran: close if it is finished, announce capacity.
  void after_session(const SessionStatus& status);

  SessionConnectionListener& listener_;
  ClientContext& context_;
  SessionFactory& factory_;
  ClientConnection connection_;
  std::unique_ptr<Session> session_;
  // The session that ended last, kept alive until the next one ends: a
  // session can end while one of its own calls is on the stack (a write that
  // failed inside a flush).
  std::unique_ptr<Session> retired_;
  uint64_t generation_ = 0;  // bumped when the session ends: callbacks check it
  // Inside on_capacity: submits queue their frames and leave in one write after it.
  bool batching_ = false;
  uint32_t index_;
};

}  // namespace millstone::http
