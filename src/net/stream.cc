#include "net/stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/socket.h"

namespace millstone::net {

metrics::ErrorCause io_error_cause(int err) {
  return err == ECONNRESET || err == EPIPE ? metrics::ErrorCause::kReset
                                           : metrics::ErrorCause::kIoOther;
}

PlainStream::~PlainStream() {
  close(false);
}

StreamResult PlainStream::read(char* buffer, size_t size) {
  for (;;) {
    const ssize_t n = ::recv(fd_, buffer, size, 0);
    if (n > 0) {
      // A short read means the socket is drained for now: edge-triggered
      // epoll reports the next arrival.
      return {.status = StreamStatus::kOk,
              .bytes = static_cast<size_t>(n),
              .drained = static_cast<size_t>(n) < size};
    }
    if (n == 0) return {.status = StreamStatus::kClosed};
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return {.status = StreamStatus::kWouldBlock, .wait = Readiness::kReadable};
    return fail(errno);
  }
}

StreamResult PlainStream::write(std::string_view data) {
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + written, data.size() - written, MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      return {.status = StreamStatus::kWouldBlock, .bytes = written, .wait = Readiness::kWritable};
    }
    StreamResult result = fail(n < 0 ? errno : EPIPE);
    result.bytes = written;
    return result;
  }
  return {.status = StreamStatus::kOk, .bytes = written};
}

void PlainStream::close(bool reset) {
  if (fd_ < 0) return;
  if (reset) {
    close_with_reset(fd_);
  } else {
    ::close(fd_);
  }
  fd_ = -1;
}

StreamResult PlainStream::fail(int err) {
  error_text_ = std::strerror(err);
  return {.status = StreamStatus::kError, .cause = io_error_cause(err)};
}

}  // namespace millstone::net
