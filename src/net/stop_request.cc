#include "net/stop_request.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace millstone::net {

StopRequest::StopRequest() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

StopRequest::~StopRequest() {
  if (fd_ >= 0) close(fd_);
}

bool StopRequest::request(std::string reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (requested_.load(std::memory_order_relaxed)) return false;
    reason_ = std::move(reason);
    requested_.store(true, std::memory_order_release);
  }
  if (fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = write(fd_, &one, sizeof one);
  }
  return true;
}

std::string StopRequest::reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reason_;
}

}  // namespace millstone::net
