#include "proxy/api_server.h"

#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "http/request_parser.h"
#include "http/status.h"
#include "net/clock.h"
#include "net/stream.h"

namespace millstone::proxy {

namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 1024 * 1024;
constexpr int64_t kIdleTimeoutNs = 60 * net::kNsPerSec;
// Answers waiting for a client that does not read them: stop reading its
// requests past this.
constexpr size_t kMaxPendingOutput = 4 * 1024 * 1024;

void append_response(std::string* out, int status, const std::string& body, bool close) {
  fmt::format_to(std::back_inserter(*out), "HTTP/1.1 {} {}\r\n", status,
                 http::reason_phrase(status));
  if (status != 204) {
    fmt::format_to(std::back_inserter(*out),
                   "Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  }
  if (close) out->append("Connection: close\r\n");
  out->append("\r\n");
  if (status != 204) out->append(body);
}

}  // namespace

struct ApiSession::State {
  explicit State(ControlApi& api) : api(api), parser(kMaxHeaderBytes, kMaxBodyBytes) {}
  ControlApi& api;
  http::RequestParser parser;
  bool continue_sent = false;
  bool closing = false;
};

ApiSession::ApiSession(ControlApi& api) : state_(std::make_unique<State>(api)) {}
ApiSession::~ApiSession() = default;

bool ApiSession::feed(const char* data, size_t size, std::string* out) {
  State& s = *state_;
  while (!s.closing) {
    const http::RequestParser::Result result = s.parser.feed(data, size);
    data += result.consumed;
    size -= result.consumed;
    if (result.state == http::RequestParser::State::kNeedMore) {
      if (s.parser.headers_complete() && s.parser.expects_continue() && !s.continue_sent) {
        out->append("HTTP/1.1 100 Continue\r\n\r\n");
        s.continue_sent = true;
      }
      return true;
    }
    if (result.state == http::RequestParser::State::kError) {
      const http::RequestError error = s.parser.error();
      const int status = error == http::RequestError::kBodyTooLarge     ? 413
                         : error == http::RequestError::kHeaderTooLarge ? 431
                                                                        : 400;
      const std::string message =
          error == http::RequestError::kBodyTooLarge
              ? fmt::format("request body larger than {} bytes", kMaxBodyBytes)
          : error == http::RequestError::kHeaderTooLarge
              ? fmt::format("request headers larger than {} bytes", kMaxHeaderBytes)
              : fmt::format("malformed HTTP request ({})", http::request_error_name(error));
      nlohmann::json body{{"error", message}, {"status", status}};
      append_response(out, status, body.dump(), true);
      s.closing = true;
      return false;
    }
    ApiRequest request{s.parser.method(), s.parser.path(), s.parser.header("User-Agent"),
                       s.parser.body(), s.parser.header("Authorization")};
    const ApiResponse response = s.api.handle(request);
    const bool keep_alive = s.parser.keep_alive();
    append_response(out, response.status, response.body, !keep_alive);
    s.parser.reset();
    s.continue_sent = false;
    if (!keep_alive) {
      s.closing = true;
      return false;
    }
    if (size == 0) return true;
  }
  return false;
}

// One client of the API.
class ApiConnection final : public net::IoHandler {
 public:
  ApiConnection(ApiServer& server, int fd)
      : server_(server),
        stream_(fd),
        session_(server.api_),
        idle_(server.loop_, [this] { close(); }) {}
  ~ApiConnection() override { close(); }

  bool start() {
    registration_ = server_.loop_.add(stream_.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, this);
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

 private:
  void pump() {
    while (!closed_) {
      if (!flush()) return;
      if (finishing_) {
        if (out_.size() == sent_) close();
        return;
      }
      if (!readable_ || out_.size() - sent_ > kMaxPendingOutput) return;
      std::vector<char>& buffer = server_.read_buffer_;
      const net::StreamResult read = stream_.read(buffer.data(), buffer.size());
      if (read.status == net::StreamStatus::kWouldBlock) {
        readable_ = false;
        return;
      }
      if (read.status != net::StreamStatus::kOk) {
        finishing_ = true;  // the client is done: answer what it asked, then close
        continue;
      }
      idle_.arm_after(kIdleTimeoutNs);
      if (!session_.feed(buffer.data(), read.bytes, &out_)) finishing_ = true;
      if (read.drained && !peer_closing_) readable_ = false;
    }
  }

  // False once closed.
  bool flush() {
    while (sent_ < out_.size() && writable_) {
      const net::StreamResult written = stream_.write(std::string_view(out_).substr(sent_));
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

  void close() {
    if (closed_) return;
    closed_ = true;
    idle_.cancel();
    if (registration_ != 0) server_.loop_.remove(registration_, stream_.fd());
    stream_.close(false);
    server_.retire(this);
  }

  ApiServer& server_;
  net::PlainStream stream_;
  ApiSession session_;
  net::Timer idle_;
  uint64_t registration_ = 0;
  std::string out_;
  size_t sent_ = 0;
  bool readable_ = true;
  bool writable_ = true;
  bool finishing_ = false;
  bool peer_closing_ = false;
  bool closed_ = false;
};

ApiServer::ApiServer(net::EventLoop& loop, ControlApi& api)
    : loop_(loop),
      api_(api),
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
    auto connection = std::make_unique<ApiConnection>(*this, fd);
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

}  // namespace millstone::proxy
