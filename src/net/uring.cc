#include "net/uring.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "net/io_backend.h"

namespace millstone::net {

namespace {

// user_data: operation (8 bits) | generation (24 bits) | slot index (32 bits).
enum Op : uint64_t { kRecv = 1, kSend = 2, kWatch = 3, kCancel = 4 };
constexpr uint64_t kRegistrationMask = (uint64_t{1} << 56) - 1;
constexpr uint32_t kGenerationMask = (1u << 24) - 1;
constexpr unsigned kQueueEntries = 1024;
constexpr unsigned kCompletionEntries = 8192;
constexpr uint16_t kBufferGroup = 0;

uint64_t tag(Op op, uint64_t registration) {
  return (static_cast<uint64_t>(op) << 56) | (registration & kRegistrationMask);
}

// Linux release "6.1.0-18-amd64" -> {6, 1}.
bool kernel_at_least(int major, int minor) {
  utsname name{};
  if (uname(&name) != 0) return false;
  int have_major = 0;
  int have_minor = 0;
  if (std::sscanf(name.release, "%d.%d", &have_major, &have_minor) != 2) return false;
  return have_major > major || (have_major == major && have_minor >= minor);
}

std::string init_error_text(int err) {
  int disabled = 0;
  std::ifstream sysctl("/proc/sys/kernel/io_uring_disabled");
  if (sysctl >> disabled && disabled != 0 && (err == EPERM || err == EACCES)) {
    return "io_uring is disabled by sysctl kernel.io_uring_disabled=" + std::to_string(disabled);
  }
  if (err == ENOSYS) return "this kernel has no io_uring (ENOSYS)";
  return std::string("io_uring_queue_init failed: ") + std::strerror(err);
}

}  // namespace

std::optional<IoBackend> parse_io_backend(std::string_view text) {
  if (text == "epoll") return IoBackend::kEpoll;
  if (text == "uring") return IoBackend::kUring;
  return std::nullopt;
}

std::string_view io_backend_name(IoBackend backend) {
  return backend == IoBackend::kUring ? "uring" : "epoll";
}

std::string uring_unavailable_reason() {
  std::string error;
  return Uring::create(&error) ? std::string() : error;
}

std::unique_ptr<Uring> Uring::create(std::string* error) {
  // Multishot recv (IORING_RECV_MULTISHOT) came in 6.0; older kernels reject
  // it per request, which the loop could only find out mid-run.
  if (!kernel_at_least(6, 0)) {
    *error = "io_uring multishot recv needs Linux 6.0 or later";
    return nullptr;
  }
  std::unique_ptr<Uring> uring(new Uring());
  // A loop is one thread: SINGLE_ISSUER|DEFER_TASKRUN runs completions only
  // when the loop asks for them (6.1+); older setups fall back.
  const unsigned tries[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                            IORING_SETUP_COOP_TASKRUN, 0};
  int ret = -EINVAL;
  for (unsigned flags : tries) {
    io_uring_params params{};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = kCompletionEntries;
    ret = io_uring_queue_init_params(kQueueEntries, &uring->ring_, &params);
    if (ret == 0) break;
    if (ret == -ENOSYS || ret == -EPERM || ret == -EACCES || ret == -ENOMEM) break;
  }
  if (ret < 0) {
    *error = init_error_text(-ret);
    return nullptr;
  }
  uring->ring_ready_ = true;

  // The provided-buffer ring: the ring header, then the buffers, one mapping.
  const size_t ring_bytes = sizeof(io_uring_buf) * kBufferCount;
  uring->mapped_bytes_ = ring_bytes + size_t{kBufferSize} * kBufferCount;
  void* memory = mmap(nullptr, uring->mapped_bytes_, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (memory == MAP_FAILED) {
    *error = std::string("cannot map the io_uring buffer ring: ") + std::strerror(errno);
    uring->mapped_bytes_ = 0;
    return nullptr;
  }
  uring->buf_ring_ = static_cast<io_uring_buf_ring*>(memory);
  uring->buffers_ = static_cast<char*>(memory) + ring_bytes;
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<uint64_t>(memory);
  registration.ring_entries = kBufferCount;
  registration.bgid = kBufferGroup;
  ret = io_uring_register_buf_ring(&uring->ring_, &registration, 0);
  if (ret < 0) {
    *error = std::string("io_uring provided buffer rings (Linux 5.19+) are not available: ") +
             std::strerror(-ret);
    return nullptr;
  }
  io_uring_buf_ring_init(uring->buf_ring_);
  const int mask = io_uring_buf_ring_mask(kBufferCount);
  for (uint32_t i = 0; i < kBufferCount; ++i) {
    io_uring_buf_ring_add(uring->buf_ring_, uring->buffer(static_cast<uint16_t>(i)), kBufferSize,
                          static_cast<uint16_t>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(uring->buf_ring_, kBufferCount);
  uring->completions_.reserve(kCompletionEntries);
  const char* submit = std::getenv("MILLSTONE_URING_SUBMIT");
  uring->submit_each_ = submit != nullptr && std::strcmp(submit, "each") == 0;
  return uring;
}

Uring::~Uring() {
  if (ring_ready_) io_uring_queue_exit(&ring_);
  if (mapped_bytes_ != 0) munmap(buf_ring_, mapped_bytes_);
}

uint64_t Uring::add(CompletionHandler* handler) {
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
  slot.generation = (slot.generation + 1) & kGenerationMask;
  if (slot.generation == 0) slot.generation = 1;  // 0 is never a registration
  return (static_cast<uint64_t>(slot.generation) << 32) | index;
}

void Uring::remove(uint64_t registration) {
  const uint32_t index = static_cast<uint32_t>(registration);
  if (index >= slots_.size()) return;
  Slot& slot = slots_[index];
  if (slot.generation != ((registration >> 32) & kGenerationMask) || !slot.handler) return;
  slot.handler = nullptr;
  slot.generation = (slot.generation + 1) & kGenerationMask;
  free_slots_.push_back(index);
}

io_uring_sqe* Uring::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    // The submission queue is full within one turn: send what is there.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void Uring::arm_recv(uint64_t registration, int fd) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, tag(kRecv, registration));
  if (submit_each_) io_uring_submit(&ring_);
}

void Uring::send(uint64_t registration, int fd, const char* data, size_t size) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_send(sqe, fd, data, size, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, tag(kSend, registration));
  if (submit_each_) io_uring_submit(&ring_);
}

void Uring::adopt_send_buffer(uint64_t registration, std::string buffer) {
  orphan_sends_.emplace_back(tag(kSend, registration), std::move(buffer));
}

void Uring::cancel(uint64_t registration, bool recv, bool send) {
  for (const auto& [wanted, op] : {std::pair{recv, kRecv}, std::pair{send, kSend}}) {
    if (!wanted) continue;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel64(sqe, tag(op, registration), 0);
    io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(kCancel) << 56);
  }
  io_uring_submit(&ring_);
}

void Uring::recycle(uint16_t buffer_id) {
  io_uring_buf_ring_add(buf_ring_, buffer(buffer_id), kBufferSize, buffer_id,
                        io_uring_buf_ring_mask(kBufferCount), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

void Uring::watch_readable(int fd) {
  watched_fd_ = fd;
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_poll_multishot(sqe, fd, POLLIN);
  io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(kWatch) << 56);
}

bool Uring::submit_and_wait(int64_t timeout_ns) {
  __kernel_timespec ts{.tv_sec = timeout_ns / 1'000'000'000, .tv_nsec = timeout_ns % 1'000'000'000};
  io_uring_cqe* cqe = nullptr;
  const int ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  if (ret >= 0 || ret == -ETIME || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY) return true;
  errno = -ret;
  return false;
}

bool Uring::dispatch() {
  // Copied out first: handlers queue new requests (and a closing stream
  // submits its cancel) while these are being handled.
  completions_.clear();
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    completions_.push_back({cqe->user_data, cqe->res, cqe->flags});
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);

  bool watched_ready = false;
  for (const Completion& c : completions_) {
    const uint64_t op = c.user_data >> 56;
    const bool has_buffer = (c.flags & IORING_CQE_F_BUFFER) != 0;
    const uint16_t buffer_id = static_cast<uint16_t>(c.flags >> IORING_CQE_BUFFER_SHIFT);
    if (op == kWatch) {
      watched_ready = true;
      if (!(c.flags & IORING_CQE_F_MORE) && watched_fd_ >= 0) watch_readable(watched_fd_);
      continue;
    }
    if (op == kCancel) continue;
    const uint32_t index = static_cast<uint32_t>(c.user_data);
    CompletionHandler* handler = nullptr;
    if (index < slots_.size() &&
        slots_[index].generation == ((c.user_data >> 32) & kGenerationMask)) {
      handler = slots_[index].handler;
    }
    if (handler == nullptr) {
      // Stale: the stream closed. Give back what the kernel handed out.
      if (has_buffer) recycle(buffer_id);
      if (op == kSend && !(c.flags & IORING_CQE_F_MORE)) {
        for (size_t i = 0; i < orphan_sends_.size(); ++i) {
          if (orphan_sends_[i].first == c.user_data) {
            orphan_sends_.erase(orphan_sends_.begin() + static_cast<std::ptrdiff_t>(i));
            break;
          }
        }
      }
      continue;
    }
    if (op == kRecv) {
      const bool more = (c.flags & IORING_CQE_F_MORE) != 0;
      handler->on_recv(c.result, has_buffer ? buffer(buffer_id) : nullptr, buffer_id, more);
    } else if (op == kSend) {
      handler->on_send(c.result);
    }
  }
  return watched_ready;
}

}  // namespace millstone::net
