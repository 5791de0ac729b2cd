#pragma once
#include <cstdint>
#include <ctime>

namespace millstone::net {

// Monotonic nanoseconds. Same clock in every process of one machine, so
// timestamps taken by different workers on one host are comparable.
inline int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerUs = 1'000;
constexpr int64_t kNsPerSec = 1'000'000'000;

}  // namespace millstone::net
