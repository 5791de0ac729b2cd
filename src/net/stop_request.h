#pragma once
// A request to end a run early, with its reason: made by an abort guard or a
// drill scheduler (any thread), acted on by the coordinator like a first
// Ctrl-C (workers get Stop and finish gracefully) but recorded as its own
// reason. The first request wins; later ones are ignored.
#include <atomic>
#include <mutex>
#include <string>

namespace millstone::net {

class StopRequest {
 public:
  StopRequest();
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;

  // Returns true for the request that took effect (the first).
  bool request(std::string reason);
  bool requested() const { return requested_.load(std::memory_order_acquire); }
  std::string reason() const;
  // Readable once requested: a poll loop waits on it beside its sockets.
  // -1 if no descriptor could be made (then poll requested() on a timeout).
  int fd() const { return fd_; }

 private:
  std::atomic<bool> requested_{false};
  mutable std::mutex mutex_;
  std::string reason_;
  int fd_ = -1;
};

}  // namespace millstone::net
