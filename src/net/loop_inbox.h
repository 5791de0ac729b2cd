#pragma once
// Work handed to an event loop from other threads: post() queues a task and
// wakes the loop (an eventfd it watches), and the loop runs the tasks in the
// order posted, on its own thread. The one door into a loop that another
// thread owns (the run's fault proxies, driven by drill threads).
#include <deque>
#include <functional>
#include <mutex>

#include "net/event_loop.h"

namespace millstone::net {

class LoopInbox final : public IoHandler {
 public:
  // Registers with `loop`; construct and destroy it on the loop's thread.
  explicit LoopInbox(EventLoop& loop);
  ~LoopInbox() override;
  LoopInbox(const LoopInbox&) = delete;
  LoopInbox& operator=(const LoopInbox&) = delete;

  // False if no eventfd could be made (errno set); post() then fails too.
  bool ready() const { return registration_ != 0; }
  // From any thread. False if the inbox is not ready.
  bool post(std::function<void()> task);

  void on_io(uint32_t events) override;

 private:
  EventLoop& loop_;
  int fd_ = -1;
  uint64_t registration_ = 0;
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
};

}  // namespace millstone::net
