#include "metrics/histogram.h"

#include <cmath>

namespace millstone::metrics {

static_assert(Histogram::kSubBucketBits + 1 < Histogram::kOctaves);

uint64_t Histogram::bucket_lowest(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const size_t shift = index / kSubBuckets - 1;
  return static_cast<uint64_t>(index - shift * kSubBuckets) << shift;
}

uint64_t Histogram::bucket_highest(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const size_t shift = index / kSubBuckets - 1;
  return bucket_lowest(index) + (uint64_t{1} << shift) - 1;
}

void Histogram::merge(const Histogram& other) {
  if (other.count_ == 0) return;
  // Only the range between the other's min and max can hold counts.
  const size_t last = bucket_index(other.max_);
  for (size_t i = bucket_index(other.min_); i <= last; ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::reset() {
  if (count_ != 0) {
    std::fill(counts_.begin() + bucket_index(min_), counts_.begin() + bucket_index(max_) + 1, 0);
  }
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

uint64_t Histogram::value_at(double q) const {
  if (count_ == 0) return 0;
  if (!(q > 0.0)) return min_;  // also catches NaN
  if (q >= 1.0) return max_;
  // q * count is often meant to be an integer (0.5 * 10) but lands a hair above
  // it in floating point; snap so ceil() does not skip to the next rank.
  const double exact = q * static_cast<double>(count_);
  const double nearest = std::round(exact);
  const double rank_f =
      std::fabs(exact - nearest) <= 1e-9 * std::max(1.0, nearest) ? nearest : std::ceil(exact);
  const uint64_t rank = rank_f < 1.0 ? 1 : static_cast<uint64_t>(rank_f);
  // The extreme ranks are known exactly; no need to approximate them.
  if (rank <= 1) return min_;
  if (rank >= count_) return max_;

  uint64_t seen = 0;
  const size_t last = bucket_index(max_);
  for (size_t i = bucket_index(min_); i <= last; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t lo = bucket_lowest(i);
      const uint64_t mid = lo + (bucket_highest(i) - lo) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;  // unreachable while count_ equals the sum of counts_
}

std::vector<Histogram::Bucket> Histogram::nonzero_buckets() const {
  std::vector<Bucket> out;
  if (count_ == 0) return out;
  const size_t last = bucket_index(max_);
  for (size_t i = bucket_index(min_); i <= last; ++i) {
    if (counts_[i] != 0) out.push_back({static_cast<uint32_t>(i), counts_[i]});
  }
  return out;
}

bool Histogram::restore(const std::vector<Bucket>& buckets, uint64_t min, uint64_t max,
                        uint64_t sum) {
  if (buckets.empty()) {
    if (min != 0 || max != 0 || sum != 0) return false;
    reset();
    return true;
  }
  if (min > max || max > kMaxValue) return false;
  if (buckets.front().index != bucket_index(min) || buckets.back().index != bucket_index(max)) {
    return false;
  }
  // Every value in a bucket lies in [max(lowest, min), min(highest, max)], so
  // the sum must too; a total that overflows cannot come from a real run.
  uint64_t total = 0;
  uint64_t sum_low = 0;
  uint64_t sum_high = 0;
  bool high_saturated = false;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const Bucket& b = buckets[i];
    if (b.index >= kBucketCount || b.count == 0) return false;
    if (i > 0 && b.index <= buckets[i - 1].index) return false;
    const uint64_t lo = std::max(bucket_lowest(b.index), min);
    const uint64_t hi = std::min(bucket_highest(b.index), max);
    uint64_t part = 0;
    if (__builtin_add_overflow(total, b.count, &total)) return false;
    if (__builtin_mul_overflow(lo, b.count, &part) ||
        __builtin_add_overflow(sum_low, part, &sum_low)) {
      return false;
    }
    if (__builtin_mul_overflow(hi, b.count, &part) ||
        __builtin_add_overflow(sum_high, part, &sum_high)) {
      high_saturated = true;
    }
  }
  if (sum < sum_low || (!high_saturated && sum > sum_high)) return false;

  reset();
  for (const Bucket& b : buckets)
    counts_[b.index] = b.count;
  count_ = total;
  sum_ = sum;
  min_ = min;
  max_ = max;
  return true;
}

}  // namespace millstone::metrics
