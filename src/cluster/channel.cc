#include "cluster/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace millstone::cluster {

bool Channel::send(MessageType type, std::string_view payload) {
  std::string frame = encode_frame(type, payload);
  if (frame.empty()) return false;
  size_t offset = 0;
  while (offset < frame.size()) {
    ssize_t n = ::send(fd_, frame.data() + offset, frame.size() - offset, MSG_NOSIGNAL);
    if (n > 0) {
      offset += static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      pollfd p{fd_, POLLOUT, 0};
      poll(&p, 1, 1000);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

bool Channel::receive_available() {
  char buffer[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      reader_.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN;
  }
}

bool Channel::receive_blocking(MessageType* type, std::string* payload) {
  for (;;) {
    switch (reader_.next(type, payload)) {
      case FrameReader::Next::kFrame:
        return true;
      case FrameReader::Next::kError:
        return false;
      case FrameReader::Next::kNeedMore:
        break;
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return false;
    if (!receive_available()) {
      // EOF: frames already buffered are still delivered above on the next turn.
      return reader_.next(type, payload) == FrameReader::Next::kFrame;
    }
  }
}

}  // namespace millstone::cluster
