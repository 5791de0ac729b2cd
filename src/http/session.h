#pragma once
// The client-side protocol seam (docs/design/protocol-sessions.md): a Session
// owns one protocol's framing over a connection's bytes and nothing else. The
// connection under it (fd, connect, TLS, reads into the worker's shared
// buffer) feeds it what arrives and sends what it produces; the owner above
// submits requests with a token and hears each outcome by that token, so one
// connection can carry many requests at once (HTTP/2 streams).
//
// Sessions never call the listener from inside submit(): outcomes are
// reported from on_read(), expire() and fail_all() only, after the
// session's own state is consistent, so a listener may submit again from
// its callback.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/snapshot.h"

namespace millstone::http {

// Chosen by the owner; for quick mode, the request's due time.
using RequestToken = uint64_t;

// Where a session's bytes go. write() takes all of `bytes` (the connection
// keeps what the socket refuses) and returns false when the session should
// stop producing until on_writable().
class Output {
 public:
  virtual ~Output() = default;
  virtual bool write(std::string_view bytes) = 0;
};

// A whole response, for an owner that looks into it (scenario checks and
// extraction); only a session asked to capture fills one.
struct ResponseContent {
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as received
  std::string body;  // the first bytes, up to the session's capture limit
};

struct ResponseInfo {
  int status = 0;
  uint64_t body_bytes = 0;
  // Capturing sessions: the response's fields and body, valid during
  // on_response until the listener submits again; null otherwise.
  const ResponseContent* content = nullptr;
  int32_t grpc_status = -1;    // gRPC calls: the grpc-status the call ended with; -1 otherwise
  uint64_t grpc_messages = 0;  // gRPC calls: response messages received
};

class RequestListener {
 public:
  virtual ~RequestListener() = default;
  virtual void on_response(RequestToken token, const ResponseInfo& response, int64_t done_ns) = 0;
  virtual void on_request_failed(RequestToken token, metrics::ErrorCause cause) = 0;
};

// A request encoded for one Session kind; only a session of that kind takes it.
class PreparedRequest {
 public:
  virtual ~PreparedRequest() = default;
};

struct SessionStatus {
  bool ok = true;  // false: the session is broken and the connection must close
  metrics::ErrorCause cause = metrics::ErrorCause::kProtocolError;  // when !ok
};

class Session {
 public:
  virtual ~Session() = default;
  // The connection is open (after TLS): the connection preface, SETTINGS.
  virtual SessionStatus on_open(Output& out) = 0;
  // Bytes from the peer; only valid during the call.
  virtual SessionStatus on_read(std::span<const char> bytes, Output& out) = 0;
  // The peer ended the stream cleanly (FIN): a response delimited by it
  // completes; !ok when a request in flight is lost with `cause`.
  virtual SessionStatus on_end() {
    return in_flight() > 0 ? SessionStatus{false, metrics::ErrorCause::kClosed} : SessionStatus{};
  }
  // How many more requests submit() accepts now.
  virtual uint32_t capacity() const = 0;
  virtual uint32_t in_flight() const = 0;
  // False when the session cannot take it (capacity() was 0). A session may
  // queue the request's bytes until on_writable(), so that several submits
  // in a row leave in one write; the owner calls on_writable() after them.
  virtual bool submit(const PreparedRequest& request, RequestToken token, int64_t now_ns,
                      Output& out) = 0;
  // The output took everything it held: produce more.
  virtual SessionStatus on_writable(Output& out) = 0;
  // Fails (kTimeout) every request submitted at or before now_ns - timeout_ns.
  virtual void expire(int64_t now_ns, int64_t timeout_ns, Output& out) = 0;
  // The connection is gone: every request in flight fails with `cause`.
  virtual void fail_all(metrics::ErrorCause cause) = 0;
  // The peer will take no more requests on this connection (GOAWAY), or the
  // session is broken; the owner opens another once in_flight() is 0.
  virtual bool draining() const = 0;
};

}  // namespace millstone::http
