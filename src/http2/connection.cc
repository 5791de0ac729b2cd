#include "http2/connection.h"

namespace millstone::http2 {

using metrics::ErrorCause;

Connection::Connection(net::EventLoop& loop, ConnectionListener& listener,
                       http::ClientContext& context, const Settings& settings, uint32_t index)
    : listener_(listener),
      context_(context),
      settings_(settings),
      connection_(loop, *this, context, index),
      index_(index) {}

Connection::~Connection() = default;

void Connection::connect(int64_t now_ns) {
  ++generation_;
  if (session_) retired_ = std::move(session_);
  connection_.connect(now_ns);
}

void Connection::close() {
  ++generation_;
  connection_.close();
  if (session_) retired_ = std::move(session_);
}

bool Connection::submit(const Request& request, http::RequestToken token, int64_t now_ns) {
  if (!session_ || !session_->submit(request, token, now_ns, *this)) return false;
  if (!batching_) {
    const uint64_t generation = generation_;
    const http::SessionStatus status = session_->on_writable(*this);
    if (generation_ == generation && !status.ok) {
      connection_.close();
      end(status.cause, false);
    }
  }
  return true;
}

void Connection::expire(int64_t now_ns, int64_t timeout_ns) {
  if (!session_ || session_->in_flight() == 0) return;
  const uint64_t generation = generation_;
  session_->expire(now_ns, timeout_ns, *this);
  if (generation_ != generation) return;
  after_session({});
}

void Connection::on_connected(http::ClientConnection& connection) {
  // Over TLS the server must have chosen h2: anything else would answer our
  // preface as HTTP/1.1 (the run's pre-flight says so in words).
  if (context_.tls != nullptr && connection.alpn() != "h2") {
    connection.close();
    listener_.on_closed(*this, ErrorCause::kProtocolError);
    return;
  }
  connection.set_raw();
  session_ = std::make_unique<Session>(settings_, static_cast<http::RequestListener&>(*this),
                                       *context_.stats);
  const uint64_t generation = generation_;
  const http::SessionStatus status = session_->on_open(*this);
  if (generation_ != generation) return;
  after_session(status);
}

void Connection::on_response(http::ClientConnection&, int, int64_t) {
  // Raw mode from the start: the transport parses no HTTP/1.1 responses.
}

void Connection::on_failure(http::ClientConnection&, ErrorCause cause, bool) {
  // A server closing an idle connection (or after its GOAWAY) ends it cleanly.
  const bool idle = session_ && session_->in_flight() == 0;
  const bool clean = idle && (cause == ErrorCause::kClosed || session_->draining());
  end(cause, clean);
}

void Connection::on_idle_close(http::ClientConnection&) {
  end(ErrorCause::kClosed, true);
}

size_t Connection::on_data(http::ClientConnection&, char* data, size_t size) {
  if (!session_) return size;
  const uint64_t generation = generation_;
  const http::SessionStatus status = session_->on_read(std::span<const char>(data, size), *this);
  if (generation_ == generation) after_session(status);
  return size;  // nghttp2 buffers what it needs itself
}

void Connection::on_writable(http::ClientConnection&) {
  if (!session_) return;
  const uint64_t generation = generation_;
  const http::SessionStatus status = session_->on_writable(*this);
  if (generation_ == generation) after_session(status);
}

void Connection::on_response(http::RequestToken token, const http::ResponseInfo& response,
                             int64_t done_ns) {
  listener_.on_response(*this, token, response, done_ns);
}

void Connection::on_request_failed(http::RequestToken token, ErrorCause cause) {
  listener_.on_request_failed(*this, token, cause);
}

bool Connection::write(std::string_view bytes) {
  // A failed write has reported on_failure (and ended the session) already.
  return connection_.send_raw(bytes) && connection_.unsent_bytes() == 0;
}

void Connection::after_session(const http::SessionStatus& status) {
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
  const http::SessionStatus sent = session_->on_writable(*this);
  if (generation_ == generation && !sent.ok) {
    connection_.close();
    end(sent.cause, false);
  }
}

void Connection::end(ErrorCause cause, bool clean) {
  ++generation_;
  bool charged = false;
  if (session_) {
    retired_ = std::move(session_);
    charged = retired_->in_flight() > 0;
    retired_->fail_all(cause);
  }
  listener_.on_closed(*this, clean || charged ? std::nullopt : std::optional<ErrorCause>(cause));
}

}  // namespace millstone::http2
