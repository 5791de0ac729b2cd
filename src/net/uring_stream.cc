#include "net/uring_stream.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/socket.h"

namespace millstone::net {

namespace {

// A send buffer bigger than this is not kept for the next request.
constexpr size_t kKeptSendCapacity = 4096;

void release_if_large(std::string& buffer) {
  if (buffer.capacity() > kKeptSendCapacity) {
    std::string().swap(buffer);
  } else {
    buffer.clear();
  }
}

}  // namespace

UringStream::UringStream(Uring& uring, int fd, IoHandler& handler)
    : uring_(uring), handler_(handler), fd_(fd), registration_(uring.add(this)) {
  uring_.arm_recv(registration_, fd_);
  recv_armed_ = true;
}

UringStream::~UringStream() {
  close(false);
}

StreamResult UringStream::read(char* buffer, size_t size) {
  if (!chunks_.empty()) {
    Chunk& chunk = chunks_.front();
    const size_t n = std::min(size, chunk.size - chunk_offset_);
    std::memcpy(buffer, chunk.data + chunk_offset_, n);
    chunk_offset_ += n;
    if (chunk_offset_ == chunk.size) {
      uring_.recycle(chunk.buffer_id);
      chunks_.erase(chunks_.begin());
      chunk_offset_ = 0;
    }
    // Drained: nothing more has arrived; the next arrival is reported anew.
    return {.status = StreamStatus::kOk, .bytes = n, .drained = chunks_.empty()};
  }
  if (error_ != 0) return fail(error_);
  if (eof_) return {.status = StreamStatus::kClosed};
  return {.status = StreamStatus::kWouldBlock, .wait = Readiness::kReadable};
}

StreamResult UringStream::write(std::string_view data) {
  if (fd_ < 0) return fail(EBADF);
  if (error_ != 0) return fail(error_);
  const size_t waiting = sending_.size() - sent_ + queued_.size();
  const size_t n = std::min(data.size(), kMaxQueued > waiting ? kMaxQueued - waiting : 0);
  if (send_in_flight_) {
    queued_.append(data.substr(0, n));
  } else {
    sending_.assign(data.substr(0, n));
    sent_ = 0;
    if (n > 0) start_send();
  }
  if (n == data.size()) return {.status = StreamStatus::kOk, .bytes = n};
  writable_wanted_ = true;
  return {.status = StreamStatus::kWouldBlock, .bytes = n, .wait = Readiness::kWritable};
}

void UringStream::start_send() {
  send_in_flight_ = true;
  uring_.send(registration_, fd_, sending_.data() + sent_, sending_.size() - sent_);
}

void UringStream::on_send(int result) {
  send_in_flight_ = false;
  if (result <= 0) {
    // 0 bytes for a non-empty send cannot progress: the peer is gone.
    error_ = result < 0 ? -result : EPIPE;
    release_if_large(sending_);
    release_if_large(queued_);
    handler_.on_io(EPOLLIN | EPOLLERR);  // may destroy this stream
    return;
  }
  sent_ += static_cast<size_t>(result);
  if (sent_ < sending_.size()) {
    start_send();  // a short send: the rest
    return;
  }
  sent_ = 0;
  release_if_large(sending_);
  if (!queued_.empty()) {
    sending_.swap(queued_);
    start_send();
    return;
  }
  if (writable_wanted_) {
    writable_wanted_ = false;
    handler_.on_io(EPOLLOUT);  // may destroy this stream
  }
}

void UringStream::on_recv(int result, char* data, uint16_t buffer_id, bool more) {
  if (!more) recv_armed_ = false;
  uint32_t events = EPOLLIN;
  if (result > 0 && data != nullptr) {
    chunks_.push_back({data, static_cast<uint32_t>(result), buffer_id});
  } else if (result == 0) {
    eof_ = true;
    events |= EPOLLRDHUP;
  } else if (result == -ENOBUFS) {
    // The buffer ring ran dry this turn (more arrivals than buffers):
    // the bytes wait in the socket; ask again once buffers are back.
    if (!recv_armed_) {
      uring_.arm_recv(registration_, fd_);
      recv_armed_ = true;
    }
    return;
  } else if (result < 0) {
    error_ = -result;
    events |= EPOLLERR;
  }
  if (!recv_armed_ && result > 0) {
    // The kernel ended the multishot (e.g. CQ overflow); keep receiving.
    uring_.arm_recv(registration_, fd_);
    recv_armed_ = true;
  }
  handler_.on_io(events);  // may destroy this stream
}

void UringStream::close(bool reset) {
  if (fd_ < 0) return;
  uring_.remove(registration_);
  for (const Chunk& chunk : chunks_)
    uring_.recycle(chunk.buffer_id);
  chunks_.clear();
  if (send_in_flight_) uring_.adopt_send_buffer(registration_, std::move(sending_));
  // The ring holds a reference to the socket while a request is armed; the
  // FIN (or RST) leaves once the cancel lets go of it.
  if (recv_armed_ || send_in_flight_) uring_.cancel(registration_, recv_armed_, send_in_flight_);
  recv_armed_ = false;
  send_in_flight_ = false;
  if (reset) {
    close_with_reset(fd_);
  } else {
    ::close(fd_);
  }
  fd_ = -1;
}

StreamResult UringStream::fail(int err) {
  error_text_ = std::strerror(err);
  return {.status = StreamStatus::kError, .cause = io_error_cause(err)};
}

}  // namespace millstone::net
