#include "http/session_connection.h"

namespace millstone::http {

using metrics::ErrorCause;

SessionConnection::SessionConnection(net::EventLoop& loop, SessionConnectionListener& listener,
                                     ClientContext& context, SessionFactory& factory,
                                     uint32_t index)
    : listener_(listener),
      context_(context),
      factory_(factory),
      connection_(loop, *this, context, index),
      index_(index) {}

SessionConnection::~SessionConnection() = default;

void SessionConnection::connect(int64_t now_ns) {
  ++generation_;
  if (session_) retired_ = std::move(session_);
  connection_.connect(now_ns);
}

void SessionConnection::close() {
  ++generation_;
  connection_.close();
  if (session_) retired_ = std::move(session_);
}

bool SessionConnection::submit(const PreparedRequest& request, RequestToken token, int64_t now_ns) {
  if (!session_ || !session_->submit(request, token, now_ns, *this)) return false;
  // A write inside submit (HTTP/1.1 sends at once) may have failed and ended
  // the session; the request was reported failed then.
  if (!batching_ && session_) {
    const uint64_t generation = generation_;
    const SessionStatus status = session_->on_writable(*this);
    if (generation_ == generation && !status.ok) {
      connection_.close();
      end(status.cause, false);
    }
  }
  return true;
}

void SessionConnection::expire(int64_t now_ns, int64_t timeout_ns) {
  if (!session_ || session_->in_flight() == 0) return;
  const uint64_t generation = generation_;
  session_->expire(now_ns, timeout_ns, *this);
  if (generation_ != generation) return;
  after_session({});
}

void SessionConnection::on_connected(ClientConnection& connection) {
  // Over TLS the server must have chosen the session's protocol (h2):
  // anything else would answer in another (the run's pre-flight says so in words).
  const std::string_view alpn = factory_.required_alpn();
  if (context_.tls != nullptr && !alpn.empty() && connection.alpn() != alpn) {
    connection.close();
    listener_.on_closed(*this, ErrorCause::kProtocolError);
    return;
  }
  connection.set_raw();
  session_ = factory_.make(static_cast<RequestListener&>(*this));
  const uint64_t generation = generation_;
  const SessionStatus status = session_->on_open(*this);
  if (generation_ != generation) return;
  after_session(status);
}

void SessionConnection::on_response(ClientConnection&, int, int64_t) {
  // Raw mode from the start: the transport parses no HTTP/1.1 responses.
}

void SessionConnection::on_failure(ClientConnection&, ErrorCause cause, bool) {
  if (session_ && cause == ErrorCause::kClosed) {
    // The server's FIN: a response delimited by it completes (HTTP/1.1), a
    // request still in flight is lost.
    const uint64_t generation = generation_;
    const SessionStatus status = session_->on_end();
    if (generation_ != generation) return;
    end(status.ok ? cause : status.cause, status.ok);
    return;
  }
  // A server resetting an idle connection (or one it said GOAWAY on) ends it
  // cleanly; a reset with a request in flight fails that request.
  const bool idle = session_ && session_->in_flight() == 0;
  const bool clean = idle && (cause == ErrorCause::kReset || session_->draining());
  end(cause, clean);
}

void SessionConnection::on_idle_close(ClientConnection&) {
  end(ErrorCause::kClosed, true);
}

size_t SessionConnection::on_data(ClientConnection&, char* data, size_t size) {
  if (!session_) return size;
  const uint64_t generation = generation_;
  const SessionStatus status = session_->on_read(std::span<const char>(data, size), *this);
  if (generation_ == generation) after_session(status);
  return size;  // the session keeps what it needs (nghttp2 its buffers, HTTP/1.1 a split line)
}

void SessionConnection::on_writable(ClientConnection&) {
  if (!session_) return;
  const uint64_t generation = generation_;
  const SessionStatus status = session_->on_writable(*this);
  if (generation_ == generation) after_session(status);
}

void SessionConnection::on_response(RequestToken token, const ResponseInfo& response,
                                    int64_t done_ns) {
  listener_.on_response(*this, token, response, done_ns);
}

void SessionConnection::on_request_failed(RequestToken token, ErrorCause cause) {
  listener_.on_request_failed(*this, token, cause);
}

bool SessionConnection::write(std::string_view bytes) {
  // A failed write has reported on_failure (and ended the session) already.
  return connection_.send_raw(bytes) && connection_.unsent_bytes() == 0;
}

void SessionConnection::after_session(const SessionStatus& status) {
  if (!session_) return;
  if (!status.ok) {
    connection_.close();
    end(status.cause, false);
    return;
  }
  if (session_->draining() && session_->in_flight() == 0) {
    connection_.close();
    end(ErrorCause::kClosed, true);
    return;
  }
  if (session_->capacity() == 0) return;
  const uint64_t generation = generation_;
  batching_ = true;
  listener_.on_capacity(*this);
  batching_ = false;
  if (generation_ != generation || !session_) return;
  const SessionStatus sent = session_->on_writable(*this);
  if (generation_ == generation && !sent.ok) {
    connection_.close();
    end(sent.cause, false);
  }
}

void SessionConnection::end(ErrorCause cause, bool clean) {
  ++generation_;
  bool charged = false;
  if (session_) {
    retired_ = std::move(session_);
    charged = retired_->in_flight() > 0;
    retired_->fail_all(cause);
  }
  listener_.on_closed(*this, clean || charged ? std::nullopt : std::optional<ErrorCause>(cause));
}

}  // namespace millstone::http
