#pragma once
// The mock's statistics counters: each is written by one worker thread (its
// event loop) and read by the stats snapshot from another, so a relaxed
// load-and-store is enough and cheaper than an atomic read-modify-write.
#include <atomic>
#include <cstdint>

namespace millstone::mock {

inline void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace millstone::mock
