#include "cluster/outbox.h"

#include <algorithm>

#include "cluster/link.h"
#include "cluster/wire.h"

namespace millstone::cluster {

bool Outbox::push(std::string_view frame) {
  if (frame.size() > limit_ - std::min(limit_, size())) {
    ++refused_;
    return false;
  }
  // Written bytes are dropped once they are the larger part of the buffer, so
  // a busy link neither grows the buffer nor moves bytes on every write.
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(frame);
  peak_ = std::max(peak_, size());
  return true;
}

void Outbox::consume(size_t n) {
  offset_ += std::min(n, size());
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
}

SnapshotOutbox::SnapshotOutbox(WorkerLink& link, size_t max_pending, size_t high_water)
    : link_(link), max_pending_(std::max<size_t>(2, max_pending)), high_water_(high_water) {}

bool SnapshotOutbox::push(const metrics::Snapshot& snapshot) {
  if (pending_.size() >= max_pending_) {
    // The oldest two become one under the later second: counts arrive late, never lost.
    metrics::Snapshot first = std::move(pending_.front());
    pending_.pop_front();
    metrics::Snapshot& second = pending_.front();
    const uint64_t vus = second.vus;
    const uint64_t peak = std::max(first.peak_vus, second.peak_vus);
    second.merge(first);
    second.vus = vus;  // a gauge: the later second's value
    second.peak_vus = peak;
    ++coalesced_;
  }
  pending_.push_back(snapshot);
  return pump();
}

bool SnapshotOutbox::pump() {
  if (!link_.flush()) return false;
  while (!pending_.empty() && link_.queued_bytes() < high_water_) {
    if (!link_.send(MessageType::kSnapshot, encode_snapshot(pending_.front()))) {
      // Refused by the link's own limit: it stays here and is tried again later.
      return link_.ok();
    }
    pending_.pop_front();
  }
  return link_.ok();
}

}  // namespace millstone::cluster
