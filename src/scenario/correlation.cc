#include "scenario/correlation.h"

namespace millstone::scenario {

int64_t CorrelationTable::wait(std::string_view key, uint32_t waiter, uint64_t* tag) {
  auto [it, added] = entries_.try_emplace(std::string(key));
  if (added) {
    // A value matched before and waited for again (not unique per
    // iteration): its next delivery is this wait's, not a duplicate.
    if (!matched_.empty()) matched_.erase(it->first);
    it->second.waiter = waiter;
    ++waiting_;
    return 0;
  }
  if (it->second.waiter != kNoWaiter) return -1;
  const int64_t arrived = it->second.arrived_ns;
  if (tag != nullptr) *tag = it->second.tag;
  entries_.erase(it);  // its held_order_ entry is skipped at expiry
  remember(key);
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
      out.duplicate = true;
      return out;
    }
    out.waiter = it->second.waiter;
    entries_.erase(it);
    --waiting_;
    remember(key);
    return out;
  }
  if (matched_.count(std::string(key)) > 0) {
    out.unmatched = true;  // its VU had it already
    out.duplicate = true;
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

void CorrelationTable::remember(std::string_view key) {
  if (max_held_ == 0) return;
  auto [it, added] = matched_.emplace(key);
  if (!added) return;
  matched_order_.emplace_back(key);
  while (matched_order_.size() > max_held_) {
    matched_.erase(matched_order_.front());
    matched_order_.pop_front();
  }
}

bool CorrelationTable::out_of_order(int64_t origin_ns) {
  if (origin_ns < latest_origin_ns_) return true;
  latest_origin_ns_ = origin_ns;
  return false;
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
