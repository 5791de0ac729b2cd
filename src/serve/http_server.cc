#include "serve/http_server.h"

#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "http/request_parser.h"
#include "http/status.h"
#include "net/clock.h"
#include "net/stream.h"
#include "tls/tls_stream.h"

namespace millstone::serve {

namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr int64_t kIdleTimeoutNs = 60 * net::kNsPerSec;
constexpr int64_t kKeepaliveNs = 15 * net::kNsPerSec;
// Answers (or events) waiting for a client that does not read them.
constexpr size_t kMaxPendingOutput = 4 * 1024 * 1024;

void append_response(std::string* out, const ApiResponse& r, bool head_only, bool close) {
  fmt::format_to(std::back_inserter(*out),
                 "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                 "Cache-Control: no-store\r\n",
                 r.status, http::reason_phrase(r.status), r.content_type, r.body.size());
  for (const auto& [name, value] : r.headers)
    fmt::format_to(std::back_inserter(*out), "{}: {}\r\n", name, value);
  if (close) out->append("Connection: close\r\n");
  out->append("\r\n");
  if (!head_only) out->append(r.body);
}

}  // namespace

// One client of the API; an events stream once it asks for one.
class ServeConnection final : public net::IoHandler, public EventSink {
 public:
  ServeConnection(ServeServer& server, std::unique_ptr<net::Stream> stream)
      : server_(server),
        stream_(std::move(stream)),
        parser_(kMaxHeaderBytes, ServeApi::kMaxBodyBytes),
        idle_(server.loop_, [this] { close(); }),
        keepalive_(server.loop_, [this] { keep_alive(); }) {}
  ~ServeConnection() override { close(); }

  bool start() {
    registration_ = server_.loop_.add(stream_->fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, this);
    if (registration_ == 0) return false;
    idle_.arm_after(kIdleTimeoutNs);
    return true;
  }

  void on_io(uint32_t events) override {
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closing_ = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_ = true;
    pump();
  }

  void on_event(std::string_view text) override {
    if (closed_) return;
    if (out_.size() - sent_ > kMaxPendingOutput) {
      close();  // it does not keep up; the run does not wait for it
      return;
    }
    out_.append(text);
    if (!in_pump_) pump();  // else the pump under way sends it
  }

  void on_end() override {
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
        // The client is gone or done: answer what it asked (not an endless stream), then close.
        if (streaming_) {
          close();
          return;
        }
        finishing_ = true;
        continue;
      }
      if (!streaming_) idle_.arm_after(kIdleTimeoutNs);
      // Bytes after an events request are not requests: the stream is the answer.
      if (!streaming_ && !feed(buffer.data(), read.bytes)) finishing_ = !streaming_;
      if (read.drained && !peer_closing_) readable_ = false;
    }
  }

  // Consumes request bytes; false once the connection must close after its answers.
  bool feed(const char* data, size_t size) {
    for (;;) {
      const http::RequestParser::Result result = parser_.feed(data, size);
      data += result.consumed;
      size -= result.consumed;
      if (result.state == http::RequestParser::State::kNeedMore) {
        if (parser_.headers_complete() && parser_.expects_continue() && !continue_sent_) {
          out_.append("HTTP/1.1 100 Continue\r\n\r\n");
          continue_sent_ = true;
        }
        return true;
      }
      if (result.state == http::RequestParser::State::kError) {
        const http::RequestError error = parser_.error();
        const int status = error == http::RequestError::kBodyTooLarge     ? 413
                           : error == http::RequestError::kHeaderTooLarge ? 431
                                                                          : 400;
        const std::string message =
            error == http::RequestError::kBodyTooLarge
                ? fmt::format("request body larger than {} bytes", ServeApi::kMaxBodyBytes)
            : error == http::RequestError::kHeaderTooLarge
                ? fmt::format("request headers larger than {} bytes", kMaxHeaderBytes)
                : fmt::format("malformed HTTP request ({})", http::request_error_name(error));
        append_response(&out_, error_response(status, message), false, true);
        return false;
      }
      ApiResponse response = server_.api_.handle(parser_);
      const bool keep_alive = parser_.keep_alive();
      const bool head_only = parser_.method() == "HEAD";
      if (!response.events_of.empty()) {
        out_.append(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
            "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n");
        streaming_ = true;
        idle_.cancel();
        keepalive_.arm_after(kKeepaliveNs);
        subscribed_ = true;
        server_.runs_.subscribe(response.events_of, this);
        return true;
      }
      append_response(&out_, response, head_only, !keep_alive);
      parser_.reset();
      continue_sent_ = false;
      if (!keep_alive) return false;
      if (size == 0) return true;
    }
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

  // A queued run is silent until it starts: a comment line now and then
  // keeps proxies from closing the stream, and finds clients that are gone.
  void keep_alive() {
    if (closed_) return;
    keepalive_.arm_after(kKeepaliveNs);
    on_event(": keep-alive\n\n");
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    idle_.cancel();
    keepalive_.cancel();
    if (subscribed_) server_.runs_.unsubscribe(this);
    if (registration_ != 0) server_.loop_.remove(registration_, stream_->fd());
    stream_->close(false);
    server_.retire(this);
  }

  ServeServer& server_;
  std::unique_ptr<net::Stream> stream_;
  http::RequestParser parser_;
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
  bool continue_sent_ = false;
  bool streaming_ = false;
  bool subscribed_ = false;
  bool in_pump_ = false;
  bool closed_ = false;
};

ServeServer::ServeServer(net::EventLoop& loop, ServeApi& api, RunQueue& runs,
                         const tls::TlsServerContext* tls)
    : loop_(loop),
      api_(api),
      runs_(runs),
      tls_(tls),
      read_buffer_(64 * 1024),
      reaper_(loop, [this] { graveyard_.clear(); }),
      accept_retry_(loop, [this] { on_io(EPOLLIN); }) {}

ServeServer::~ServeServer() {
  if (fd_ >= 0) {
    loop_.remove(registration_, fd_);
    ::close(fd_);
  }
  auto connections = std::move(connections_);
  connections_.clear();
  connections.clear();
  graveyard_.clear();
}

bool ServeServer::listen(const net::Endpoint& endpoint) {
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

void ServeServer::on_io(uint32_t) {
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
    auto connection = std::make_unique<ServeConnection>(*this, std::move(stream));
    ServeConnection* raw = connection.get();
    connections_.emplace(raw, std::move(connection));
    if (!raw->start()) retire(raw);
  }
}

void ServeServer::retire(ServeConnection* connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  graveyard_.push_back(std::move(it->second));
  connections_.erase(it);
  if (!reaper_.armed()) reaper_.arm_after(0);
}

}  // namespace millstone::serve
