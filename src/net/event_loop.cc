#include "net/event_loop.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "net/clock.h"
#include "net/uring.h"

namespace millstone::net {

Timer::Timer(EventLoop& loop, std::function<void()> callback)
    : loop_(loop), callback_(std::move(callback)) {}

Timer::~Timer() {
  cancel();
}

void Timer::arm_at(int64_t when_ns) {
  loop_.timer_arm(this, when_ns);
}

void Timer::arm_after(int64_t delay_ns) {
  arm_at(now_ns() + delay_ns);
}

void Timer::cancel() {
  if (armed()) loop_.timer_cancel(this);
}

EventLoop::EventLoop(IoBackend backend) : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)), events_(1024) {
  if (epoll_fd_ < 0) {
    error_ = std::string("epoll_create1: ") + std::strerror(errno);
    return;
  }
  if (backend == IoBackend::kUring) {
    uring_ = Uring::create(&error_);
    if (uring_) uring_->watch_readable(epoll_fd_);
  }
}

EventLoop::~EventLoop() {
  for (Timer* timer : heap_)
    timer->heap_index_ = Timer::kNotArmed;
  uring_.reset();  // before the epoll descriptor it watches
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

uint64_t EventLoop::add(int fd, uint32_t events, IoHandler* handler) {
  uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[index];
  slot.handler = handler;
  ++slot.generation;
  uint64_t registration = (static_cast<uint64_t>(slot.generation) << 32) | index;
  epoll_event ev{};
  ev.events = events | EPOLLET;
  ev.data.u64 = registration;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int saved = errno;
    slot.handler = nullptr;
    free_slots_.push_back(index);
    errno = saved;
    return 0;
  }
  return registration;
}

void EventLoop::remove(uint64_t registration, int fd) {
  uint32_t index = static_cast<uint32_t>(registration);
  if (index >= slots_.size()) return;
  Slot& slot = slots_[index];
  if (slot.generation != static_cast<uint32_t>(registration >> 32) || !slot.handler) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  slot.handler = nullptr;
  ++slot.generation;  // events already fetched for this registration are now stale
  free_slots_.push_back(index);
}

bool EventLoop::run() {
  running_ = true;
  while (running_) {
    int64_t timeout_ns = 1 * kNsPerSec;
    if (!heap_.empty()) {
      timeout_ns = heap_.front()->when_ns_ - now_ns();
      if (timeout_ns < 0) timeout_ns = 0;
    }
    if (!run_once(timeout_ns)) return false;
  }
  return true;
}

bool EventLoop::run_once(int64_t timeout_ns) {
  if (uring_) return run_once_uring(timeout_ns);
  // epoll_pwait2 takes a nanosecond timeout, so open-model pacing is not
  // rounded to milliseconds.
  timespec ts{timeout_ns / kNsPerSec, timeout_ns % kNsPerSec};
  // Time spent waiting is what the loop had to spare: a loop that never
  // waits is the limit of its worker (docs/monitoring.md#the-generator).
  // A poll with no timeout does not wait, and costs no clock read.
  const int64_t wait_from = timeout_ns > 0 ? now_ns() : 0;
  int n = epoll_pwait2(epoll_fd_, events_.data(), static_cast<int>(events_.size()), &ts, nullptr);
  if (n < 0 && errno == ENOSYS) {
    int ms = static_cast<int>((timeout_ns + kNsPerMs - 1) / kNsPerMs);
    n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), ms);
  }
  if (timeout_ns > 0) waited_ns_ += now_ns() - wait_from;
  if (n < 0) {
    if (errno != EINTR) return false;
    n = 0;
  }
  dispatch_epoll(n);
  run_due_timers();
  return true;
}

bool EventLoop::dispatch_epoll(int n) {
  for (int i = 0; i < n; ++i) {
    uint64_t registration = events_[i].data.u64;
    uint32_t index = static_cast<uint32_t>(registration);
    if (index >= slots_.size()) continue;
    Slot& slot = slots_[index];
    if (slot.generation != static_cast<uint32_t>(registration >> 32) || !slot.handler) continue;
    slot.handler->on_io(events_[i].events);
  }
  const bool full = n == static_cast<int>(events_.size());
  if (full && events_.size() < 65536) events_.resize(events_.size() * 2);
  return full;
}

bool EventLoop::run_once_uring(int64_t timeout_ns) {
  // One io_uring_enter per turn submits the sends and re-arms queued since
  // the last one and waits, with a nanosecond timeout, for completions.
  const int64_t wait_from = timeout_ns > 0 ? now_ns() : 0;
  const bool submitted = uring_->submit_and_wait(timeout_ns);
  if (timeout_ns > 0) waited_ns_ += now_ns() - wait_from;
  if (!submitted) return false;
  if (uring_->dispatch()) {
    // The epoll descriptor (readiness registrations) has events: take them
    // without waiting, as many rounds as it takes to empty it.
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 0);
      if (n < 0 && errno != EINTR) return false;
      if (n <= 0 || !dispatch_epoll(n)) break;
    }
  }
  run_due_timers();
  return true;
}

void EventLoop::run_due_timers() {
  if (heap_.empty()) return;
  int64_t now = now_ns();
  // Timers armed by callbacks for "now" run in the next round, after I/O,
  // so a zero-delay re-arm cannot starve the sockets.
  uint64_t horizon = timer_sequence_;
  while (!heap_.empty() && heap_.front()->when_ns_ <= now && heap_.front()->sequence_ < horizon) {
    Timer* timer = heap_.front();
    max_timer_lag_ns_ = std::max(max_timer_lag_ns_, now - timer->when_ns_);
    timer_cancel(timer);
    timer->callback_();
  }
}

bool EventLoop::less(size_t a, size_t b) const {
  const Timer* x = heap_[a];
  const Timer* y = heap_[b];
  return x->when_ns_ < y->when_ns_ || (x->when_ns_ == y->when_ns_ && x->sequence_ < y->sequence_);
}

void EventLoop::heap_swap(size_t a, size_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->heap_index_ = a;
  heap_[b]->heap_index_ = b;
}

void EventLoop::sift_up(size_t i) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!less(i, parent)) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void EventLoop::sift_down(size_t i) {
  for (;;) {
    size_t left = 2 * i + 1;
    size_t right = left + 1;
    size_t smallest = i;
    if (left < heap_.size() && less(left, smallest)) smallest = left;
    if (right < heap_.size() && less(right, smallest)) smallest = right;
    if (smallest == i) return;
    heap_swap(i, smallest);
    i = smallest;
  }
}

void EventLoop::timer_arm(Timer* timer, int64_t when_ns) {
  if (timer->armed()) timer_cancel(timer);
  timer->when_ns_ = when_ns;
  timer->sequence_ = timer_sequence_++;
  timer->heap_index_ = heap_.size();
  heap_.push_back(timer);
  sift_up(timer->heap_index_);
}

void EventLoop::timer_cancel(Timer* timer) {
  size_t i = timer->heap_index_;
  size_t last = heap_.size() - 1;
  if (i != last) {
    heap_swap(i, last);
  }
  heap_.pop_back();
  timer->heap_index_ = Timer::kNotArmed;
  if (i < heap_.size()) {
    sift_down(i);
    sift_up(i);
  }
}

}  // namespace millstone::net
