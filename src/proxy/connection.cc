#include "proxy/connection.h"

#include <algorithm>
#include <utility>

#include "net/clock.h"

namespace millstone::proxy {

Connection::Connection(net::EventLoop& loop, std::vector<char>& read_buffer, random::Prng& prng,
                       int client_fd, int upstream_family, OnClosed on_closed)
    : loop_(loop),
      read_buffer_(read_buffer),
      on_closed_(std::move(on_closed)),
      client_(this, client_fd),
      upstream_(this, net::tcp_socket(upstream_family)),
      up_(prng),
      down_(prng),
      timer_(loop, [this] { pump(); }) {}

Connection::~Connection() {
  on_closed_ = nullptr;
  close(false);
}

bool Connection::connect(const net::Endpoint& upstream) {
  if (upstream_.stream.fd() < 0) {
    close(false);
    return false;
  }
  // Like Go's net.Conn, which Toxiproxy uses: a slicer's slices and small
  // responses leave at once instead of waiting for Nagle.
  net::set_no_delay(client_.stream.fd());
  net::set_no_delay(upstream_.stream.fd());
  client_.registration = loop_.add(client_.stream.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, &client_);
  upstream_.registration =
      loop_.add(upstream_.stream.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, &upstream_);
  if (client_.registration == 0 || upstream_.registration == 0 ||
      net::start_connect(upstream_.stream.fd(), upstream) < 0) {
    close(false);
    return false;
  }
  connecting_ = true;
  client_.writable = true;
  return true;
}

void Connection::Side::on_io(uint32_t events) {
  connection->on_io(*this, events);
}

void Connection::on_io(Side& side, uint32_t events) {
  if (closed_) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) side.readable = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) side.peer_closing = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) side.writable = true;
  if (connecting_) {
    if (&side != &upstream_ || !(events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) return;
    if (net::connect_result(upstream_.stream.fd()) != 0) {
      // Toxiproxy closes the client when the upstream cannot be reached.
      close(false);
      return;
    }
    connecting_ = false;
    client_.readable = true;  // it may have sent while we connected
  }
  pump();
}

void Connection::pump() {
  if (closed_ || connecting_) return;
  const int64_t now = net::now_ns();
  do {
    again_ = false;
    if (!flow(up_, client_, upstream_, up_done_, down_, now)) return;
    if (!flow(down_, upstream_, client_, down_done_, up_, now)) return;
  } while (again_);
  if (up_done_ && down_done_) {
    close(false);
    return;
  }
  arm_timer();
}

bool Connection::flow(Link& link, Side& from, Side& to, bool& done, Link& other, int64_t now) {
  for (;;) {
    link.advance(now);
    if (!write_out(link, from, to, done, other, now)) return false;
    if (done || !from.readable || from.read_ended || link.buffered_bytes() >= kLinkBufferLimit) {
      return true;
    }
    const net::StreamResult read = from.stream.read(read_buffer_.data(), read_buffer_.size());
    switch (read.status) {
      case net::StreamStatus::kOk: {
        std::string_view bytes(read_buffer_.data(), read.bytes);
        if (link.direct() && to.writable) {
          // No toxic acts and nothing waits: straight to the other socket,
          // keeping only what it did not take.
          const net::StreamResult written = to.stream.write(bytes);
          if (written.status == net::StreamStatus::kError) {
            close(true);
            return false;
          }
          bytes.remove_prefix(written.bytes);
          if (written.status == net::StreamStatus::kWouldBlock) to.writable = false;
        }
        if (!bytes.empty()) link.push(Piece::data(std::string(bytes)), now);
        if (read.drained && !from.peer_closing) from.readable = false;
        break;
      }
      case net::StreamStatus::kClosed:
        from.read_ended = true;
        link.push(Piece::end(), now);
        break;
      case net::StreamStatus::kWouldBlock:
        from.readable = false;
        break;
      case net::StreamStatus::kError:
        // A reset (or other failure) on one side is passed on as a reset.
        close(true);
        return false;
    }
  }
}

bool Connection::write_out(Link& link, Side& from, Side& to, bool& done, Link& other, int64_t now) {
  while (link.has_output() && !done) {
    switch (link.front().kind) {
      case Piece::Kind::kData: {
        if (!to.writable) return true;
        const net::StreamResult written = to.stream.write(link.front_bytes());
        if (written.status == net::StreamStatus::kError) {
          close(true);
          return false;
        }
        link.wrote(written.bytes);
        if (written.status == net::StreamStatus::kWouldBlock) {
          to.writable = false;
          return true;
        }
        break;
      }
      case Piece::Kind::kEnd:
        // The sender's FIN, passed on as a half-close: the other direction
        // goes on until its sender finishes too.
        link.pop_front();
        net::shutdown_write(to.stream.fd());
        done = true;
        break;
      case Piece::Kind::kClose:
        // A toxic closes the connection: FIN to this receiver, nothing more
        // is read from this sender, and the other direction's input ends, so
        // it delivers what it holds and then closes its receiver too.
        link.pop_front();
        net::shutdown_write(to.stream.fd());
        done = true;
        from.read_ended = true;
        if (!to.read_ended) {
          to.read_ended = true;
          other.push(Piece::end(), now);
          again_ = true;
        }
        break;
      case Piece::Kind::kReset:
        close(true);
        return false;
    }
  }
  return true;
}

void Connection::arm_timer() {
  const int64_t next = std::min(up_.next_wakeup(), down_.next_wakeup());
  if (next == kNever) {
    timer_.cancel();
  } else if (!timer_.armed() || timer_.deadline() != next) {
    timer_.arm_at(next);
  }
}

void Connection::close(bool reset) {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  for (Side* side : {&client_, &upstream_}) {
    if (side->registration != 0) loop_.remove(side->registration, side->stream.fd());
    side->registration = 0;
    side->stream.close(reset);
  }
  if (on_closed_) on_closed_(this);
}

}  // namespace millstone::proxy
