#include "net/loop_inbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace millstone::net {

LoopInbox::LoopInbox(EventLoop& loop) : loop_(loop) {
  fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd_ >= 0) registration_ = loop_.add(fd_, EPOLLIN, this);
}

LoopInbox::~LoopInbox() {
  if (registration_ != 0) loop_.remove(registration_, fd_);
  if (fd_ >= 0) close(fd_);
}

bool LoopInbox::post(std::function<void()> task) {
  if (registration_ == 0) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = write(fd_, &one, sizeof one);
  return true;
}

void LoopInbox::on_io(uint32_t /*events*/) {
  uint64_t count = 0;
  while (read(fd_, &count, sizeof count) == sizeof count) {
  }
  // Edge-triggered: everything queued before the read above is run now; a
  // task posted meanwhile wrote the eventfd again and brings us back.
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(tasks_);
  }
  for (std::function<void()>& task : tasks)
    task();
}

}  // namespace millstone::net
