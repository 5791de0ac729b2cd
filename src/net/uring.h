#pragma once
// The io_uring half of an EventLoop built with IoBackend::kUring: one ring
// per loop (per worker thread), a provided-buffer ring shared by every
// connection's multishot recv (so an idle connection holds no receive
// buffer, as with epoll's shared read buffer), and sends that are queued as
// SQEs and leave with the loop's one io_uring_submit_and_wait per turn.
//
// Completions are routed like epoll events: a registration is a slot index
// plus a generation, so CQEs that arrive for a closed stream are dropped
// (their buffers go back to the ring) instead of reaching a destroyed one.
#include <liburing.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace millstone::net {

class CompletionHandler {
 public:
  virtual ~CompletionHandler() = default;
  // A multishot recv completed: `result` > 0 bytes at `data` (a ring buffer
  // the handler gives back with Uring::recycle(buffer_id)), 0 at the end of
  // the stream, < 0 a negated errno. `more`: the recv stays armed.
  virtual void on_recv(int result, char* data, uint16_t buffer_id, bool more) = 0;
  // A send completed: bytes sent, or a negated errno.
  virtual void on_send(int result) = 0;
};

class Uring {
 public:
  // Nullptr with *error set when the ring cannot be made here.
  static std::unique_ptr<Uring> create(std::string* error);
  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  static constexpr uint32_t kBufferSize = 4096;
  static constexpr uint32_t kBufferCount = 256;  // 1 MiB per loop, shared by all connections

  uint64_t add(CompletionHandler* handler);
  // Completions still in flight for `registration` are dropped from now on.
  void remove(uint64_t registration);
  // Queues a multishot recv into the buffer ring.
  void arm_recv(uint64_t registration, int fd);
  // Queues a send of [data, data + size); the bytes must stay valid until
  // on_send, or until adopt_send_buffer took them.
  void send(uint64_t registration, int fd, const char* data, size_t size);
  // Measurement knob (bench/README.md#batching-sends): submit every send and
  // re-arm at once, one io_uring_enter each, instead of with the turn's one
  // submit_and_wait. create() turns it on when the environment has
  // MILLSTONE_URING_SUBMIT=each.
  void set_submit_each(bool each) { submit_each_ = each; }
  bool submit_each() const { return submit_each_; }
  // A stream closing with a send in flight gives its buffer to the ring,
  // which frees it when that send's completion arrives.
  void adopt_send_buffer(uint64_t registration, std::string buffer);
  // Cancels the registration's armed recv and/or its send in flight and
  // submits at once, so the kernel lets go of the socket (and sends the FIN
  // or RST) now, not at the next turn. By user_data, which the kernel finds
  // in a hash table: cancelling by descriptor walks every armed request, and
  // closing N connections that way costs O(N^2) (seconds per worker at
  // 17,000 connections).
  void cancel(uint64_t registration, bool recv, bool send);
  void recycle(uint16_t buffer_id);

  // A multishot poll on `fd` (the loop's epoll descriptor): ready() reports it.
  void watch_readable(int fd);
  // Submits what is queued and waits up to timeout_ns (0: do not wait) for a
  // completion, in one io_uring_enter. False if the ring failed (errno set).
  bool submit_and_wait(int64_t timeout_ns);
  // Runs the handlers of the completions that arrived. Returns whether the
  // watched descriptor became readable.
  bool dispatch();

 private:
  Uring() = default;
  io_uring_sqe* next_sqe();
  char* buffer(uint16_t id) { return buffers_ + static_cast<size_t>(id) * kBufferSize; }

  struct Slot {
    CompletionHandler* handler = nullptr;
    uint32_t generation = 0;
  };
  struct Completion {
    uint64_t user_data;
    int32_t result;
    uint32_t flags;
  };

  io_uring ring_{};
  bool ring_ready_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;
  char* buffers_ = nullptr;
  size_t mapped_bytes_ = 0;
  int watched_fd_ = -1;
  bool submit_each_ = false;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<Completion> completions_;
  std::vector<std::pair<uint64_t, std::string>> orphan_sends_;
};

}  // namespace millstone::net
