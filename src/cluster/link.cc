#include "cluster/link.h"

#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "net/clock.h"

namespace millstone::cluster {

StreamLink::StreamLink(std::unique_ptr<net::Stream> stream, std::string name, size_t outbox_limit)
    : stream_(std::move(stream)), name_(std::move(name)), outbox_(outbox_limit) {}

std::unique_ptr<StreamLink> StreamLink::over_socket(int fd, std::string name) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return std::make_unique<StreamLink>(std::make_unique<net::PlainStream>(fd), std::move(name));
}

void StreamLink::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
}

bool StreamLink::send(MessageType type, std::string_view payload) {
  if (!ok() || !stream_) return false;
  const std::string frame = encode_frame(type, payload);
  if (frame.empty()) {
    fail(fmt::format("a {} message of {} bytes is over the {} byte limit", message_type_name(type),
                     payload.size(), kMaxPayloadSize));
    return false;
  }
  if (!outbox_.push(frame)) return false;
  return flush();
}

bool StreamLink::flush() {
  if (!ok() || !stream_) return false;
  while (!outbox_.empty()) {
    const net::StreamResult r = stream_->write(outbox_.pending());
    outbox_.consume(r.bytes);
    if (r.status == net::StreamStatus::kWouldBlock) return true;
    if (r.status != net::StreamStatus::kOk) {
      // What the peer sent before it went away can still be read (a worker
      // that sent Done and exited while a Stop was queued for it).
      outbox_.consume(outbox_.size());
      readable_after_error_ = true;
      fail(fmt::format("cannot write to {}: {}", name_,
                       r.status == net::StreamStatus::kClosed ? std::string_view("closed")
                                                              : stream_->error_text()));
      return false;
    }
  }
  return true;
}

WorkerLink::Receive StreamLink::receive(MessageType* type, std::string* payload) {
  if (!ok() && !readable_after_error_) return Receive::kBroken;
  for (;;) {
    switch (reader_.next(type, payload)) {
      case FrameReader::Next::kFrame:
        return Receive::kMessage;
      case FrameReader::Next::kError:
        readable_after_error_ = false;
        fail(fmt::format("{} broke the protocol: {}", name_, reader_.error()));
        return Receive::kBroken;
      case FrameReader::Next::kNeedMore:
        break;
    }
    if (peer_closed_ || !stream_) {
      if (reader_.buffered() == 0) return Receive::kClosed;
      readable_after_error_ = false;
      fail(fmt::format("{} closed the link in the middle of a message", name_));
      return Receive::kBroken;
    }
    char buffer[65536];
    const net::StreamResult r = stream_->read(buffer, sizeof buffer);
    if (r.status == net::StreamStatus::kOk) {
      reader_.append(buffer, r.bytes);
      continue;
    }
    if (r.status == net::StreamStatus::kWouldBlock) return Receive::kNothing;
    if (r.status == net::StreamStatus::kClosed) {
      peer_closed_ = true;
      continue;
    }
    readable_after_error_ = false;
    fail(fmt::format("cannot read from {}: {}", name_, stream_->error_text()));
    return Receive::kBroken;
  }
}

void StreamLink::close() {
  if (stream_) stream_->close(false);
  stream_.reset();
}

std::string seconds_text(int64_t ns) {
  return fmt::format("{:g} s", static_cast<double>(ns / net::kNsPerMs) / 1e3);
}

WaitResult receive_until(WorkerLink& link, int64_t deadline_ns, MessageType* type,
                         std::string* payload) {
  for (;;) {
    if (!link.flush()) return WaitResult::kBroken;  // what is queued goes out meanwhile
    switch (link.receive(type, payload)) {
      case WorkerLink::Receive::kMessage:
        return WaitResult::kOk;
      case WorkerLink::Receive::kClosed:
        return WaitResult::kClosed;
      case WorkerLink::Receive::kBroken:
        return WaitResult::kBroken;
      case WorkerLink::Receive::kNothing:
        break;
    }
    const short events = link.queued_bytes() > 0 ? POLLIN | POLLOUT : POLLIN;
    if (!net::wait_until(link.fd(), events, deadline_ns)) return WaitResult::kTimedOut;
  }
}

WaitResult flush_until(WorkerLink& link, int64_t deadline_ns) {
  for (;;) {
    if (!link.flush()) return WaitResult::kBroken;
    if (link.queued_bytes() == 0) return WaitResult::kOk;
    if (!net::wait_until(link.fd(), POLLOUT, deadline_ns)) return WaitResult::kTimedOut;
  }
}

}  // namespace millstone::cluster
