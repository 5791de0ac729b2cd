#pragma once
// The demultiplexer of amqp.expect steps (docs/amqp.md#correlation): one
// worker's AMQP connection consumes each queue once for all its virtual
// users, and each delivery goes to the VU waiting for its correlation id, by
// one hash lookup. A message may arrive before its VU waits for it (the
// service answered before the HTTP response that started it came back): it is
// held, up to a bound and for at most `hold_ns`, then counted as unmatched.
// Nothing is kept for a message nobody claims beyond that: no leak under
// load, whatever the broker sends.
//
// The table also remembers the last `max_held` values it matched (bounded
// memory), so a second delivery of one of them is told apart as a duplicate
// from a late or foreign message, and it keeps the latest origin matched so
// far, for the out-of-order count (docs/amqp.md#duplicates-and-order).
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace millstone::scenario {

class CorrelationTable {
 public:
  static constexpr uint32_t kNoWaiter = UINT32_MAX;

  // `max_held`: messages held for a VU that does not wait yet.
  CorrelationTable(size_t max_held, int64_t hold_ns) : max_held_(max_held), hold_ns_(hold_ns) {}

  // VU `waiter` waits for `key`. Returns the arrival time of a message held
  // for it (consumed: the wait is over; *tag is its delivery tag), else 0 and
  // the wait is registered. A second waiter for a key that is waited for
  // already is refused: returns -1.
  int64_t wait(std::string_view key, uint32_t waiter, uint64_t* tag = nullptr);
  // The waiter gave up (timeout, end of iteration or run).
  void cancel(std::string_view key, uint32_t waiter);

  struct Delivered {
    uint32_t waiter = kNoWaiter;  // the VU that waited, or kNoWaiter
    bool held = false;            // kept for a later wait()
    bool unmatched = false;       // dropped: the table is full, or a duplicate
    bool duplicate = false;       // (with unmatched) a copy is held, or the value was matched
  };
  // `tag`: the message's delivery tag, kept while it is held (manual acks).
  Delivered deliver(std::string_view key, int64_t now_ns, uint64_t tag = 0);
  // Drops held messages older than the hold time; returns how many
  // (unmatched), their delivery tags appended to *tags when given.
  uint64_t expire(int64_t now_ns, std::vector<uint64_t>* tags = nullptr);
  // Everything is forgotten (the connection was lost): returns the held count.
  uint64_t clear_held();

  // A message matched for an origin (when its flow's request was due):
  // true when an earlier origin than one already matched, i.e. the messages
  // came back in another order than their requests went out.
  bool out_of_order(int64_t origin_ns);

  size_t waiting() const { return waiting_; }
  size_t remembered() const { return matched_order_.size(); }
  size_t held() const { return held_order_.size(); }

 private:
  struct Entry {
    uint32_t waiter = kNoWaiter;  // kNoWaiter: a held message
    int64_t arrived_ns = 0;
    uint64_t tag = 0;  // a held message's delivery tag
  };
  size_t max_held_;
  int64_t hold_ns_;
  std::unordered_map<std::string, Entry> entries_;
  // Held messages in arrival order (the hold time is the same for all, so
  // the oldest is first). A key whose entry was consumed or replaced is
  // skipped by its arrival time.
  std::deque<std::pair<std::string, int64_t>> held_order_;
  size_t waiting_ = 0;
  // Values matched recently, oldest first in matched_order_ (at most max_held_).
  std::unordered_set<std::string> matched_;
  std::deque<std::string> matched_order_;
  int64_t latest_origin_ns_ = INT64_MIN;
  void remember(std::string_view key);
};

}  // namespace millstone::scenario
