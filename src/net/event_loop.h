#pragma once
// One single-threaded event loop per process (epoll, edge-triggered) with a
// timer heap. Every socket of a worker is driven from here; there is no
// thread per connection and no locking.
//
// Built with IoBackend::kUring, the loop waits on an io_uring instead
// (net/uring.h): plain streams run on completions there (net/uring_stream.h)
// and the readiness registrations below stay on the epoll descriptor, which
// the ring watches, so connects, TLS and listeners work unchanged. Either
// way one turn is one wait (epoll_pwait2 or io_uring_enter), the handlers,
// then the due timers; the wait's timeout is in nanoseconds on both.
//
// Handlers register under a slot whose generation changes when they are
// removed, so events already fetched for a closed socket are dropped instead
// of reaching the wrong (or a destroyed) handler.
#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "net/io_backend.h"

namespace millstone::net {

class EventLoop;
class Uring;

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // `events` is an EPOLL* mask.
  virtual void on_io(uint32_t events) = 0;
};

// A timer that belongs to its owner: destroying it cancels it. Arming an
// armed timer moves it. The callback is set once; arming never allocates
// beyond the heap's own growth.
class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> callback);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void arm_at(int64_t when_ns);
  void arm_after(int64_t delay_ns);
  void cancel();
  bool armed() const { return heap_index_ != kNotArmed; }
  int64_t deadline() const { return when_ns_; }

 private:
  friend class EventLoop;
  static constexpr size_t kNotArmed = SIZE_MAX;
  EventLoop& loop_;
  std::function<void()> callback_;
  int64_t when_ns_ = 0;
  uint64_t sequence_ = 0;  // FIFO among timers with equal deadlines
  size_t heap_index_ = kNotArmed;
};

class EventLoop {
 public:
  explicit EventLoop(IoBackend backend = IoBackend::kEpoll);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers fd for `events` (EPOLLIN/EPOLLOUT/...; EPOLLET is added).
  // Returns a registration id for remove(), or 0 on failure (errno set).
  uint64_t add(int fd, uint32_t events, IoHandler* handler);
  // Unregisters; pending events for it are discarded. The caller closes fd.
  void remove(uint64_t registration, int fd);

  // Runs until stop() is called. Returns false if epoll itself failed.
  bool run();
  void stop() { running_ = false; }
  bool running() const { return running_; }
  // Runs ready handlers and due timers once, waiting at most timeout_ns.
  bool run_once(int64_t timeout_ns);

  // False when the backend could not be set up; error() says why.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  IoBackend backend() const { return uring_ ? IoBackend::kUring : IoBackend::kEpoll; }
  // The ring of a kUring loop, for UringStream; null on epoll.
  Uring* uring() { return uring_.get(); }

  size_t armed_timers() const { return heap_.size(); }
  // The loop watching itself: nanoseconds spent waiting for events, over its
  // life, and the most a timer has fired after its time since the last
  // take_max_timer_lag_ns() (how late the loop got round to it).
  int64_t waited_ns() const { return waited_ns_; }
  int64_t take_max_timer_lag_ns() { return std::exchange(max_timer_lag_ns_, 0); }

 private:
  friend class Timer;
  void timer_arm(Timer* timer, int64_t when_ns);
  void timer_cancel(Timer* timer);
  void heap_swap(size_t a, size_t b);
  void sift_up(size_t i);
  void sift_down(size_t i);
  bool less(size_t a, size_t b) const;
  void run_due_timers();
  // Runs the handlers of `ready` fetched events; true when the event array
  // was full, so more may be waiting.
  bool dispatch_epoll(int ready);
  bool run_once_uring(int64_t timeout_ns);

  struct Slot {
    IoHandler* handler = nullptr;
    uint32_t generation = 0;
  };

  int epoll_fd_ = -1;
  bool running_ = false;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<Timer*> heap_;
  uint64_t timer_sequence_ = 0;
  std::vector<epoll_event> events_;
  int64_t waited_ns_ = 0;
  int64_t max_timer_lag_ns_ = 0;
  std::unique_ptr<Uring> uring_;
  std::string error_;
};

}  // namespace millstone::net
