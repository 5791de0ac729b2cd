#include "http/client_connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "http/http1_session.h"
#include "net/clock.h"

namespace millstone::http {

using metrics::ErrorCause;

namespace {

ErrorCause connect_error_cause(int err) {
  switch (err) {
    case ECONNREFUSED:
      return ErrorCause::kConnectRefused;
    case ETIMEDOUT:
      return ErrorCause::kConnectTimeout;
    case EADDRNOTAVAIL:
    case EADDRINUSE:
      return ErrorCause::kLocalPorts;
    case EMFILE:
    case ENFILE:
      return ErrorCause::kFdLimit;
    default:
      return ErrorCause::kConnectOther;
  }
}

}  // namespace

ClientConnection::ClientConnection(net::EventLoop& loop, ClientListener& listener,
                                   ClientContext& context, uint32_t index)
    : loop_(loop), listener_(listener), context_(context), index_(index) {}

ClientConnection::~ClientConnection() {
  close_socket(false);
}

void ClientConnection::close() {
  close_socket(false);
}

void ClientConnection::close_socket(bool reset) {
  if (fd_ < 0) return;
  if (!uring_) loop_.remove(registration_, fd_);
  stream_->close(reset);
  stream_ = nullptr;
  plain_.reset();
  uring_.reset();
  tls_.reset();
  fd_ = -1;
  read_waits_writable_ = false;
  write_waits_readable_ = false;
  state_ = State::kClosed;
  raw_ = false;
  if (!in_.empty() || in_.capacity() > 15) std::string().swap(in_);
  if (!out_.empty() || out_.capacity() > 15) std::string().swap(out_);
}

void ClientConnection::open(int64_t now_ns, const net::Endpoint& endpoint, bool bind_sources,
                            tls::TlsClientContext* tls, tls::TlsTarget* tls_target) {
  close_socket(false);
  connect_started_ns_ = now_ns;
  const int fd = net::tcp_socket(endpoint.family());
  if (fd < 0) {
    int err = errno;
    state_ = State::kClosed;
    listener_.on_failure(*this, connect_error_cause(err), false);
    return;
  }
  net::set_no_delay(fd);
  if (bind_sources && !context_.sources.empty() &&
      net::bind_source(fd, context_.sources[index_ % context_.sources.size()]) < 0) {
    int err = errno;
    ::close(fd);
    listener_.on_failure(*this, connect_error_cause(err), false);
    return;
  }
  // The stream owns the socket from here on; TLS sends nothing before the
  // TCP connect completes (handshake() starts it).
  if (tls != nullptr && tls_target != nullptr) {
    tls_ = tls::TlsStream::client(*tls, *tls_target, fd);
    if (!tls_) {
      listener_.on_failure(*this, ErrorCause::kConnectOther, false);  // out of memory
      return;
    }
    stream_ = tls_.get();
  } else {
    stream_ = &plain_.emplace(fd);
  }
  registration_ = loop_.add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, this);
  if (registration_ == 0) {
    int err = errno;
    stream_->close(false);
    stream_ = nullptr;
    plain_.reset();
    tls_.reset();
    listener_.on_failure(*this, connect_error_cause(err), false);
    return;
  }
  fd_ = fd;
  ++context_.stats->connections_opened;
  state_ = State::kConnecting;
  // Even an immediate success is reported through EPOLLOUT, so the listener
  // is never re-entered from inside connect().
  if (net::start_connect(fd_, endpoint) < 0) {
    int err = errno;
    close_socket(false);
    listener_.on_failure(*this, connect_error_cause(err), false);
  }
}

void ClientConnection::send(std::string_view request, bool head, int64_t intended_ns,
                            int64_t now_ns) {
  request_ = request;
  intended_ns_ = intended_ns;
  sent_ns_ = now_ns;
  written_ = 0;
  parser_.reset(head);
  state_ = State::kWriting;
  write_some();
}

void ClientConnection::fail_stream(const net::StreamResult& result) {
  error_text_.assign(stream_->error_text());
  fail(result.cause);
}

bool ClientConnection::connect_completed_unseen() const {
  if (state_ != State::kConnecting || fd_ < 0) return false;
  pollfd p{fd_, POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  return (p.revents & POLLOUT) != 0 && (p.revents & (POLLERR | POLLHUP)) == 0;
}

void ClientConnection::fail(ErrorCause cause) {
  bool had_request = busy();
  close_socket(cause == ErrorCause::kTimeout);
  listener_.on_failure(*this, cause, had_request);
}

void ClientConnection::on_io(uint32_t events) {
  if (state_ == State::kHandshaking) {
    continue_handshake();
    return;
  }
  if (state_ == State::kConnecting) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
      const uint64_t registration = registration_;
      on_connect_ready();
      // A server that speaks first (raw TCP) may have sent with the edge that
      // completed the connect; edge-triggered epoll will not report it again.
      if (raw_ && registration_ == registration && fd_ >= 0 &&
          (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        read_some((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
      }
    }
    return;
  }
  if (state_ == State::kWriting &&
      (events & (EPOLLOUT | EPOLLERR) || (write_waits_readable_ && (events & EPOLLIN)))) {
    write_some();
    if (state_ == State::kClosed) return;
  } else if (!out_.empty() && (events & EPOLLOUT)) {
    const uint64_t registration = registration_;
    flush_raw();
    if (registration_ != registration || fd_ < 0) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR) ||
      (read_waits_writable_ && (events & EPOLLOUT))) {
    read_some((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
  }
}

void ClientConnection::on_connect_ready() {
  int err = net::connect_result(fd_);
  if (err != 0) {
    close_socket(false);
    listener_.on_failure(*this, connect_error_cause(err), false);
    return;
  }
  ++context_.stats->connections_established;
  if (!tls_ && loop_.uring() != nullptr) {
    // From here the plain stream runs on completions: a multishot recv into
    // the loop's buffer ring, sends batched per loop turn.
    loop_.remove(registration_, fd_);
    stream_ = &uring_.emplace(*loop_.uring(), plain_->release(), *this);
    plain_.reset();
    // Top bit: never equal to an epoll registration kept for comparison.
    registration_ = uring_->registration() | (uint64_t{1} << 63);
  }
  if (tls_) {
    state_ = State::kHandshaking;
    continue_handshake();
    return;
  }
  state_ = State::kIdle;
  listener_.on_connected(*this);
}

void ClientConnection::continue_handshake() {
  // Any edge may be the one the handshake waits for; a call that cannot
  // progress costs one recv or send returning EAGAIN.
  const net::StreamResult result = tls_->handshake();
  if (result.status == net::StreamStatus::kWouldBlock) return;
  if (result.status != net::StreamStatus::kOk) {
    fail_stream(result);
    return;
  }
  metrics::Snapshot& stats = *context_.stats;
  ++stats.tls_handshakes;
  if (tls_->resumed()) ++stats.tls_resumed;
  stats.tls_handshake.record(static_cast<uint64_t>(tls_->handshake_ns() / 1000));
  state_ = State::kIdle;
  const uint64_t registration = registration_;
  listener_.on_connected(*this);
  // Raw mode (a TCP step whose server speaks first): records that came with
  // the handshake's last flight may already sit in OpenSSL's buffer, and the
  // edge-triggered loop would not report them again.
  if (raw_ && registration_ == registration && fd_ >= 0) read_some(false);
}

void ClientConnection::write_some() {
  const net::StreamResult result = stream_->write(request_.substr(written_));
  written_ += result.bytes;
  context_.stats->bytes_sent += result.bytes;
  if (result.status == net::StreamStatus::kOk) {
    write_waits_readable_ = false;
    state_ = State::kReading;
    return;
  }
  if (result.status == net::StreamStatus::kWouldBlock) {
    write_waits_readable_ = result.wait == net::Readiness::kReadable;
    return;  // the edge it waits for resumes us
  }
  fail_stream(result);
}

void ClientConnection::read_some(bool peer_closing) {
  std::string& buffer = context_.read_buffer;
  for (;;) {
    const net::StreamResult read = stream_->read(buffer.data(), buffer.size());
    if (read.status == net::StreamStatus::kOk) {
      read_waits_writable_ = false;
      const size_t n = read.bytes;
      context_.stats->bytes_received += static_cast<uint64_t>(n);
      if (!busy()) {
        if (raw_) {
          if (!deliver(buffer.data(), n)) return;
          if (read.drained && !peer_closing) return;
          continue;
        }
        fail(ErrorCause::kUnexpectedData);
        return;
      }
      ResponseParser::Result result = parser_.feed(buffer.data(), n);
      if (result.state == ResponseParser::State::kError) {
        fail(parse_error_cause(parser_.error()));
        return;
      }
      if (result.state == ResponseParser::State::kComplete) {
        if (result.consumed != n) {
          // We never pipeline, so bytes after the response are garbage,
          // unless the response switched protocols: then they are the first
          // bytes of the new one.
          if (!(upgrade_ && parser_.status() == 101)) {
            fail(ErrorCause::kUnexpectedData);
            return;
          }
        }
        const uint64_t registration = registration_;
        if (result.consumed != n) {
          complete_response(net::now_ns(), buffer.data() + result.consumed, n - result.consumed);
        } else {
          complete_response(net::now_ns(), nullptr, 0);
        }
        // After a 101 the same connection continues in raw mode: what is
        // still in the kernel (a full buffer) or the FIN that came with this
        // edge would otherwise never be read, as no new edge reports them.
        if (!raw_ || registration_ != registration || fd_ < 0) return;
        if (read.drained && !peer_closing) return;
        continue;
      }
      // A drained socket (a short read) has nothing more for now; edge-triggered
      // epoll reports the next arrival, so skip the extra EAGAIN syscall.
      // Not when the peer is closing: its FIN came with this edge, and no
      // other edge will tell us to read the end of the stream.
      if (read.drained && !peer_closing) return;
      continue;
    }
    if (read.status == net::StreamStatus::kClosed) {
      if (raw_) {
        close_socket(false);
        listener_.on_failure(*this, ErrorCause::kClosed, false);
        return;
      }
      if (!busy()) {
        close_socket(false);
        listener_.on_idle_close(*this);
        return;
      }
      if (state_ == State::kReading && parser_.finish_eof() == ResponseParser::State::kComplete) {
        complete_response(net::now_ns(), nullptr, 0);
        return;
      }
      fail(parser_.started() ? parse_error_cause(parser_.error()) : ErrorCause::kClosed);
      return;
    }
    if (read.status == net::StreamStatus::kWouldBlock) {
      read_waits_writable_ = read.wait == net::Readiness::kWritable;
      return;
    }
    if (!raw_ && !busy() && read.cause == ErrorCause::kReset) {
      close_socket(false);
      listener_.on_idle_close(*this);
      return;
    }
    fail_stream(read);
    return;
  }
}

void ClientConnection::complete_response(int64_t done_ns, const char* rest, size_t rest_size) {
  int status = parser_.status();
  if (status == 101 && upgrade_ && state_ == State::kReading) {
    // Switching protocols: the connection stays open in raw mode; bytes that
    // came with the head are delivered once the listener has seen the 101.
    state_ = State::kIdle;
    raw_ = true;
    upgrade_ = false;
    if (rest_size > 0) in_.assign(rest, rest_size);
    const uint64_t registration = registration_;
    listener_.on_response(*this, status, done_ns);
    if (registration_ != registration || fd_ < 0 || !raw_ || in_.empty()) return;
    deliver(nullptr, 0);
    return;
  }
  if (parser_.keep_alive() && state_ == State::kReading) {
    state_ = State::kIdle;
  } else {
    close_socket(false);
  }
  listener_.on_response(*this, status, done_ns);
}

void ClientConnection::set_raw() {
  raw_ = true;
  upgrade_ = false;
  state_ = State::kIdle;
}

bool ClientConnection::deliver(char* data, size_t size) {
  const uint64_t registration = registration_;
  if (in_.empty()) {
    // The common case: whole frames in the shared read buffer, nothing kept.
    const size_t consumed = listener_.on_data(*this, data, size);
    if (registration_ != registration || fd_ < 0) return false;
    if (consumed < size) in_.assign(data + consumed, size - consumed);
    return true;
  }
  in_.append(data, size);
  const size_t consumed = listener_.on_data(*this, in_.data(), in_.size());
  if (registration_ != registration || fd_ < 0) return false;
  if (consumed >= in_.size()) {
    std::string().swap(in_);  // release: an idle connection keeps no buffer
  } else {
    in_.erase(0, consumed);
  }
  return true;
}

bool ClientConnection::send_raw(std::string_view bytes) {
  if (fd_ < 0) return false;
  if (!out_.empty()) {
    out_.append(bytes);  // behind what is already waiting
    return true;
  }
  const net::StreamResult result = stream_->write(bytes);
  context_.stats->bytes_sent += result.bytes;
  if (result.status == net::StreamStatus::kOk) return true;
  if (result.status == net::StreamStatus::kWouldBlock) {
    out_.assign(bytes.substr(result.bytes));  // EPOLLOUT resumes in flush_raw
    return true;
  }
  fail_stream(result);
  return false;
}

void ClientConnection::flush_raw() {
  const net::StreamResult result = stream_->write(out_);
  context_.stats->bytes_sent += result.bytes;
  if (result.status == net::StreamStatus::kWouldBlock) {
    out_.erase(0, result.bytes);
    return;
  }
  if (result.status != net::StreamStatus::kOk) {
    fail_stream(result);
    return;
  }
  std::string().swap(out_);
  listener_.on_writable(*this);
}

}  // namespace millstone::http
