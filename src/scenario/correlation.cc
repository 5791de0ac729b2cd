#include "scenario/correlation.h"

namespace millstone::scenario {

int64_t CorrelationTable::wait(std::string_view key, uint32_t waiter, uint64_t* tag) {
  auto [it, added] = entries_.try_emplace(std::string(key));
  if (added) {
    it->second.waiter = waiter;
    ++waiting_;
    return 0;
  }
  if (it->second.waiter != kNoWaiter) return -1;
  const int64_t arrived = it->second.arrived_ns;
  if (tag != nullptr) *tag = it->second.tag;
  entries_.erase(it);  // its held_order_ entry is skipped at expiry
  return arrived;
}

void CorrelationTable::cancel(std::string_view key, uint32_t waiter) {
  auto it = entries_.find(std::string(key));
  if (it == entries_.end() || it->second.waiter != waiter) return;
  entries_.erase(it);
  --waiting_;
}

CorrelationTable::Delivered CorrelationTable::deliver(std::string_view key, int64_t now_ns,
                                                      uint64_t tag) {
  Delivered out;
  auto it = entries_.find(std::string(key));
  if (it != entries_.end()) {
    if (it->second.waiter == kNoWaiter) {
      out.unmatched = true;  // a duplicate of a message held already
      return out;
    }
    out.waiter = it->second.waiter;
    entries_.erase(it);
    --waiting_;
    return out;
  }
  expire(now_ns);  // callers with manual acks expire first, for the tags
  if (held_order_.size() >= max_held_) {
    out.unmatched = true;
    return out;
  }
  entries_.emplace(std::string(key), Entry{kNoWaiter, now_ns, tag});
  held_order_.emplace_back(std::string(key), now_ns);
  out.held = true;
  return out;
}

uint64_t CorrelationTable::expire(int64_t now_ns, std::vector<uint64_t>* tags) {
  uint64_t dropped = 0;
  while (!held_order_.empty() && now_ns - held_order_.front().second >= hold_ns_) {
    auto& [key, arrived] = held_order_.front();
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.waiter == kNoWaiter &&
        it->second.arrived_ns == arrived) {
      if (tags != nullptr) tags->push_back(it->second.tag);
      entries_.erase(it);
      ++dropped;
    }
    held_order_.pop_front();
  }
  return dropped;
}

uint64_t CorrelationTable::clear_held() {
  uint64_t dropped = 0;
  for (auto& [key, arrived] : held_order_) {
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.waiter == kNoWaiter &&
        it->second.arrived_ns == arrived) {
      entries_.erase(it);
      ++dropped;
    }
  }
  held_order_.clear();
  return dropped;
}

}  // namespace millstone::scenario
