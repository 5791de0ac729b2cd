#include "http/api_server.h"

#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "http/status.h"
#include "net/clock.h"
#include "net/stream.h"
#include "text/json_string.h"
#include "tls/tls_stream.h"

namespace millstone::http {

namespace {

constexpr int64_t kIdleTimeoutNs = 60 * net::kNsPerSec;
constexpr int64_t kStreamKeepaliveNs = 15 * net::kNsPerSec;
// Answers (or events) waiting for a client that does not read them.
constexpr size_t kMaxPendingOutput = 4 * 1024 * 1024;

}  // namespace

void append_reply(std::string* out, const ApiReply& reply, bool head_only, bool close) {
  fmt::format_to(std::back_inserter(*out), "HTTP/1.1 {} {}\r\n", reply.status,
                 reason_phrase(reply.status));
  const bool has_body = reply.status != 204 && reply.status != 304;
  if (has_body) {
    fmt::format_to(std::back_inserter(*out), "Content-Type: {}\r\nContent-Length: {}\r\n",
                   reply.content_type, reply.body.size());
  }
  out->append("Cache-Control: no-store\r\n");
  for (const auto& [name, value] : reply.headers)
    fmt::format_to(std::back_inserter(*out), "{}: {}\r\n", name, value);
  if (close) out->append("Connection: close\r\n");
  out->append("\r\n");
  if (has_body && !head_only) out->append(reply.body);
}

ApiExchange::ApiExchange(ApiHandler& handler, ApiLimits limits)
    : handler_(handler), limits_(limits), parser_(limits.max_header_bytes, limits.max_body_bytes) {}

ApiExchange::Next ApiExchange::feed(const char* data, size_t size, std::string* out) {
  if (!stream_name_.empty()) return Next::kStream;  // bytes after a stream request are not requests
  for (;;) {
    const RequestParser::Result result = parser_.feed(data, size);
    data += result.consumed;
    size -= result.consumed;
    if (result.state == RequestParser::State::kNeedMore) {
      if (parser_.headers_complete() && parser_.expects_continue() && !continue_sent_) {
        out->append("HTTP/1.1 100 Continue\r\n\r\n");
        continue_sent_ = true;
      }
      return Next::kMore;
    }
    if (result.state == RequestParser::State::kError) {
      const RequestError error = parser_.error();
      ApiReply reply;
      reply.status = error == RequestError::kBodyTooLarge     ? 413
                     : error == RequestError::kHeaderTooLarge ? 431
                                                              : 400;
      const std::string message =
          error == RequestError::kBodyTooLarge
              ? fmt::format("request body larger than {} bytes", limits_.max_body_bytes)
          : error == RequestError::kHeaderTooLarge
              ? fmt::format("request headers larger than {} bytes", limits_.max_header_bytes)
              : fmt::format("malformed HTTP request ({})", request_error_name(error));
      reply.body =
          fmt::format(R"({{"error":"{}","status":{}}})", text::json_escaped(message), reply.status);
      append_reply(out, reply, false, true);
      return Next::kClose;
    }
    ApiReply reply = handler_.handle(parser_);
    if (!reply.event_stream.empty()) {
      out->append(
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
          "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n");
      stream_name_ = std::move(reply.event_stream);
      return Next::kStream;
    }
    const bool keep_alive = parser_.keep_alive();
    append_reply(out, reply, parser_.method() == "HEAD", !keep_alive);
    parser_.reset();
    continue_sent_ = false;
    if (!keep_alive) return Next::kClose;
    if (size == 0) return Next::kMore;
  }
}

// One client of the API; an event stream once it asks for one.
class ApiConnection final : public net::IoHandler, public EventStream {
 public:
  ApiConnection(ApiServer& server, std::unique_ptr<net::Stream> stream)
      : server_(server),
        stream_(std::move(stream)),
        exchange_(server.handler_, server.limits_),
        idle_(server.loop_, [this] { close(); }),
        keepalive_(server.loop_, [this] { keep_alive(); }) {}
  ~ApiConnection() override { close(); }

  bool start() {
    registration_ = server_.loop_.add(stream_->fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, this);
    if (registration_ == 0) return false;
    idle_.arm_after(kIdleTimeoutNs);
    return true;
  }

  void on_io(uint32_t events) override {
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
    // The FIN may sit behind the data of this edge: read to the end.
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closing_ = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_ = true;
    pump();
  }

  void send(std::string_view text) override {
    if (closed_) return;
    if (out_.size() - sent_ > kMaxPendingOutput) {
      close();  // it does not keep up; the run does not wait for it
      return;
    }
    out_.append(text);
    if (!in_pump_) pump();  // else the pump under way sends it
  }

  void end() override {
    if (closed_) return;
    finishing_ = true;
    if (!in_pump_) pump();
  }

 private:
  void pump() {
    in_pump_ = true;
    pump_once();
    in_pump_ = false;
  }

  void pump_once() {
    while (!closed_) {
      if (!handshaken_) {
        const net::StreamResult r = stream_->handshake();
        if (r.status == net::StreamStatus::kWouldBlock) return;
        if (r.status != net::StreamStatus::kOk) {
          close();
          return;
        }
        handshaken_ = true;
      }
      if (!flush()) return;
      if (finishing_) {
        if (out_.size() == sent_) close();
        return;
      }
      if (!readable_ || out_.size() - sent_ > kMaxPendingOutput) return;
      std::vector<char>& buffer = server_.read_buffer_;
      const net::StreamResult read = stream_->read(buffer.data(), buffer.size());
      if (read.status == net::StreamStatus::kWouldBlock) {
        readable_ = false;
        return;
      }
      if (read.status != net::StreamStatus::kOk) {
        // The client is gone or done: answer what it asked (not an endless
        // stream), then close.
        if (streaming_) {
          close();
          return;
        }
        finishing_ = true;
        continue;
      }
      if (!streaming_) {
        idle_.arm_after(kIdleTimeoutNs);
        const ApiExchange::Next next = exchange_.feed(buffer.data(), read.bytes, &out_);
        if (next == ApiExchange::Next::kClose) {
          finishing_ = true;
        } else if (next == ApiExchange::Next::kStream) {
          open_stream();
          if (closed_) return;
        }
      }
      if (read.drained && !peer_closing_) readable_ = false;
    }
  }

  void open_stream() {
    streaming_ = true;
    idle_.cancel();
    keepalive_.arm_after(kStreamKeepaliveNs);
    subscribed_ = true;
    server_.handler_.open_stream(exchange_.stream_name(), this);
  }

  // False once closed.
  bool flush() {
    while (sent_ < out_.size() && writable_) {
      const net::StreamResult written = stream_->write(std::string_view(out_).substr(sent_));
      if (written.status == net::StreamStatus::kError) {
        close();
        return false;
      }
      sent_ += written.bytes;
      if (written.status == net::StreamStatus::kWouldBlock) writable_ = false;
    }
    if (sent_ == out_.size()) {
      out_.clear();
      sent_ = 0;
    }
    return true;
  }

  // A stream may be silent for long (a queued run): a comment line now and
  // then keeps proxies from closing it, and finds clients that are gone.
  void keep_alive() {
    if (closed_) return;
    keepalive_.arm_after(kStreamKeepaliveNs);
    send(": keep-alive\n\n");
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    idle_.cancel();
    keepalive_.cancel();
    if (subscribed_) server_.handler_.close_stream(this);
    if (registration_ != 0) server_.loop_.remove(registration_, stream_->fd());
    stream_->close(false);
    server_.retire(this);
  }

  ApiServer& server_;
  std::unique_ptr<net::Stream> stream_;
  ApiExchange exchange_;
  net::Timer idle_;
  net::Timer keepalive_;
  uint64_t registration_ = 0;
  std::string out_;
  size_t sent_ = 0;
  bool handshaken_ = false;
  bool readable_ = true;
  bool writable_ = true;
  bool finishing_ = false;
  bool peer_closing_ = false;
  bool streaming_ = false;
  bool subscribed_ = false;
  bool in_pump_ = false;
  bool closed_ = false;
};

ApiServer::ApiServer(net::EventLoop& loop, ApiHandler& handler, ApiLimits limits,
                     const tls::TlsServerContext* tls)
    : loop_(loop),
      handler_(handler),
      limits_(limits),
      tls_(tls),
      read_buffer_(64 * 1024),
      reaper_(loop, [this] { graveyard_.clear(); }),
      accept_retry_(loop, [this] { on_io(EPOLLIN); }) {}

ApiServer::~ApiServer() {
  if (fd_ >= 0) {
    loop_.remove(registration_, fd_);
    ::close(fd_);
  }
  // Connections call retire() as they close; keep them out of the maps first.
  auto connections = std::move(connections_);
  connections_.clear();
  connections.clear();
  graveyard_.clear();
}

bool ApiServer::listen(const net::Endpoint& endpoint) {
  fd_ = net::listen_socket(endpoint, 128);
  if (fd_ < 0) return false;
  registration_ = loop_.add(fd_, EPOLLIN, this);
  if (registration_ == 0) {
    const int saved = errno;
    ::close(fd_);
    fd_ = -1;
    errno = saved;
    return false;
  }
  auto bound = net::local_endpoint(fd_);
  endpoint_ = bound ? *bound : endpoint;
  return true;
}

void ApiServer::on_io(uint32_t) {
  while (fd_ >= 0) {
    const int fd = net::accept_connection(fd_);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_retry_.arm_after(100 * net::kNsPerMs);
      }
      return;
    }
    std::unique_ptr<net::Stream> stream;
    if (tls_ != nullptr) {
      stream = tls::TlsStream::server(*tls_, fd);
      if (!stream) continue;  // the socket is closed
    } else {
      stream = std::make_unique<net::PlainStream>(fd);
    }
    auto connection = std::make_unique<ApiConnection>(*this, std::move(stream));
    ApiConnection* raw = connection.get();
    connections_.emplace(raw, std::move(connection));
    if (!raw->start()) retire(raw);
  }
}

void ApiServer::retire(ApiConnection* connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  graveyard_.push_back(std::move(it->second));
  connections_.erase(it);
  if (!reaper_.armed()) reaper_.arm_after(0);
}

}  // namespace millstone::http
