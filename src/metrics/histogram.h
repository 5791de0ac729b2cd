#pragma once
// Log-linear latency histogram (HdrHistogram style): values are microseconds,
// each power of two is split into kSubBuckets linear buckets, so any recorded
// value is reported with a relative error below 1/kSubBuckets (< 1%).
// Histograms merge exactly (bucket-wise sums), across seconds, workers and agents.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <vector>

namespace millstone::metrics {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;  // 128 linear buckets per octave
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  static constexpr int kOctaves = 36;  // 2^36 us ~= 19 hours
  static constexpr uint64_t kMaxValue = (uint64_t{1} << kOctaves) - 1;
  static constexpr size_t kBucketCount = kSubBuckets * (kOctaves - kSubBucketBits + 1);

  // Records one value in microseconds; values above kMaxValue are clamped.
  void record(uint64_t value_us) { record_n(value_us, 1); }
  // Inline because it runs once per response on every worker.
  void record_n(uint64_t value_us, uint64_t count) {
    if (count == 0) return;  // would otherwise move min/max without a value
    value_us = std::min(value_us, kMaxValue);
    counts_[bucket_index(value_us)] += count;
    count_ += count;
    sum_ += value_us * count;
    min_ = std::min(min_, value_us);
    max_ = std::max(max_, value_us);
  }
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  uint64_t sum() const { return sum_; }
  // Value at quantile q in [0, 1] (0.99 = p99): the value of rank ceil(q * count),
  // reported as the midpoint of its bucket, so within 1% of the exact value and
  // always within [min(), max()]. q <= 0 gives min(), q >= 1 gives max().
  uint64_t value_at(double q) const;

  // Sparse form for the wire: (bucket index, count) for non-empty buckets.
  struct Bucket {
    uint32_t index;
    uint64_t count;
    friend bool operator==(const Bucket&, const Bucket&) = default;
  };
  // Non-empty buckets in increasing index order.
  std::vector<Bucket> nonzero_buckets() const;
  // Rebuilds from the wire; returns false (and leaves *this unchanged) when an
  // index is out of range, indexes are not strictly increasing, a count is zero,
  // or min/max/sum cannot belong to these buckets.
  bool restore(const std::vector<Bucket>& buckets, uint64_t min, uint64_t max, uint64_t sum);

  // Bucket layout: values below 2 * kSubBuckets map to themselves (exact);
  // above, each octave [2^k, 2^(k+1)) holds kSubBuckets buckets 2^(k-7) wide.
  static size_t bucket_index(uint64_t value_us) {
    value_us = std::min(value_us, kMaxValue);
    // Shift is 0 for the exact range, otherwise the octave above the first two.
    const int shift = std::bit_width(value_us | (2 * kSubBuckets - 1)) - (kSubBucketBits + 1);
    return static_cast<size_t>(shift) * kSubBuckets + static_cast<size_t>(value_us >> shift);
  }
  static uint64_t bucket_lowest(size_t index);
  static uint64_t bucket_highest(size_t index);

  friend bool operator==(const Histogram&, const Histogram&) = default;

 private:
  // Eager: ~30 KiB per histogram, and one histogram per worker-second is cheap
  // next to the branch a lazy allocation would add to record_n().
  std::vector<uint64_t> counts_ = std::vector<uint64_t>(kBucketCount, 0);
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace millstone::metrics
