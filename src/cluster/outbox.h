#pragma once
// Outgoing messages that never block the event loop.
//
// `Outbox` holds framed bytes the socket has not taken yet, up to a limit: a
// message that would pass it is refused whole (and counted), never cut.
//
// `SnapshotOutbox` is the worker's side: a second's snapshot is handed to the
// link only while the link's outbox is below its high-water mark; otherwise
// it waits here. At most `max_pending` wait: when one more arrives, the two
// oldest merge into one that keeps the later second's index (counted in
// `coalesced()`, sent to the coordinator in Done). Totals are never lost; only
// the per-second split of a backed-up link blurs, and the run says so.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "metrics/snapshot.h"

namespace millstone::cluster {

class WorkerLink;

class Outbox {
 public:
  explicit Outbox(size_t limit) : limit_(limit) {}

  // Queues a whole frame; false (nothing queued, refused() counts it) if the
  // bytes waiting would pass the limit.
  bool push(std::string_view frame);
  // The bytes not yet written, oldest first.
  std::string_view pending() const { return std::string_view(buffer_).substr(offset_); }
  // The socket took `n` bytes of pending().
  void consume(size_t n);
  size_t size() const { return buffer_.size() - offset_; }
  bool empty() const { return size() == 0; }
  size_t limit() const { return limit_; }
  size_t peak() const { return peak_; }
  uint64_t refused() const { return refused_; }

 private:
  size_t limit_;
  std::string buffer_;
  size_t offset_ = 0;  // prefix of buffer_ already written
  size_t peak_ = 0;
  uint64_t refused_ = 0;
};

class SnapshotOutbox {
 public:
  static constexpr size_t kDefaultMaxPending = 64;
  static constexpr size_t kDefaultHighWater = size_t{1} << 20;

  explicit SnapshotOutbox(WorkerLink& link, size_t max_pending = kDefaultMaxPending,
                          size_t high_water = kDefaultHighWater);

  // Never blocks. Returns false if the link has failed.
  bool push(const metrics::Snapshot& snapshot);
  // Moves waiting snapshots into the link while it is below the high-water
  // mark and writes what the socket takes; call on EPOLLOUT. False if the link failed.
  bool pump();
  size_t pending() const { return pending_.size(); }
  uint64_t coalesced() const { return coalesced_; }

 private:
  WorkerLink& link_;
  size_t max_pending_;
  size_t high_water_;
  std::deque<metrics::Snapshot> pending_;
  uint64_t coalesced_ = 0;
};

}  // namespace millstone::cluster
