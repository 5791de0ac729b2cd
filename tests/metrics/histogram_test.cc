#include "metrics/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace millstone::metrics {
namespace histogram_test {

constexpr double kPercentiles[] = {0, 1, 10, 50, 90, 99, 99.9, 99.99, 100};

// Reference: the exact value of rank ceil(q * n) in the sorted data, with the
// same snapping of near-integer products that Histogram::value_at() applies.
uint64_t exact_value_at(const std::vector<uint64_t>& sorted, double q) {
  if (q <= 0) return sorted.front();
  if (q >= 1) return sorted.back();
  const double exact = q * static_cast<double>(sorted.size());
  const double nearest = std::round(exact);
  const double rank_f =
      std::fabs(exact - nearest) <= 1e-9 * std::max(1.0, nearest) ? nearest : std::ceil(exact);
  const size_t rank = std::clamp<size_t>(static_cast<size_t>(rank_f), 1, sorted.size());
  return sorted[rank - 1];
}

void expect_percentiles_within_one_percent(std::vector<uint64_t> values, const std::string& name) {
  Histogram h;
  for (uint64_t v : values)
    h.record(v);
  for (uint64_t& v : values)
    v = std::min(v, Histogram::kMaxValue);
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.count(), values.size());
  for (double p : kPercentiles) {
    const uint64_t exact = exact_value_at(values, p / 100);
    const uint64_t got = h.value_at(p / 100);
    const double error = std::fabs(static_cast<double>(got) - static_cast<double>(exact));
    EXPECT_LE(error, 0.01 * static_cast<double>(exact))
        << name << " p" << p << ": exact " << exact << ", histogram " << got;
    EXPECT_GE(got, h.min());
    EXPECT_LE(got, h.max());
  }
}

TEST(HistogramTest, BucketLayoutIsContiguousAndMonotonic) {
  EXPECT_EQ(Histogram::bucket_index(0), 0u);
  EXPECT_EQ(Histogram::bucket_index(Histogram::kMaxValue), Histogram::kBucketCount - 1);
  for (size_t i = 0; i < Histogram::kBucketCount; ++i) {
    const uint64_t lo = Histogram::bucket_lowest(i);
    const uint64_t hi = Histogram::bucket_highest(i);
    ASSERT_LE(lo, hi);
    ASSERT_EQ(Histogram::bucket_index(lo), i);
    ASSERT_EQ(Histogram::bucket_index(hi), i);
    if (i + 1 < Histogram::kBucketCount) {
      ASSERT_EQ(Histogram::bucket_lowest(i + 1), hi + 1);
    }
    // Wide buckets stay under 1% of their smallest value (narrow ones are exact).
    if (hi > lo) {
      ASSERT_LT(static_cast<double>(hi - lo + 1) / lo, 1.0 / 127);
    }
  }
  EXPECT_EQ(Histogram::bucket_highest(Histogram::kBucketCount - 1), Histogram::kMaxValue);
}

TEST(HistogramTest, SmallValuesAreExact) {
  for (uint64_t v = 0; v < 256; ++v) {
    EXPECT_EQ(Histogram::bucket_lowest(Histogram::bucket_index(v)), v);
    EXPECT_EQ(Histogram::bucket_highest(Histogram::bucket_index(v)), v);
  }
}

TEST(HistogramTest, EmptyHistogram) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.sum(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.value_at(0.5), 0u);
  EXPECT_TRUE(h.nonzero_buckets().empty());
}

TEST(HistogramTest, MeanMinMaxSum) {
  Histogram h;
  h.record(100);
  h.record(300);
  h.record_n(1000, 2);
  h.record_n(5, 0);  // no values: must not move min
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.min(), 100u);
  EXPECT_EQ(h.max(), 1000u);
  EXPECT_EQ(h.sum(), 2400u);
  EXPECT_DOUBLE_EQ(h.mean(), 600.0);
}

TEST(HistogramTest, ClampsAboveMaxValue) {
  Histogram h;
  h.record(UINT64_MAX);
  h.record(Histogram::kMaxValue + 1);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.max(), Histogram::kMaxValue);
  EXPECT_EQ(h.min(), Histogram::kMaxValue);
  EXPECT_EQ(h.sum(), 2 * Histogram::kMaxValue);
  EXPECT_EQ(h.value_at(0.5), Histogram::kMaxValue);
  EXPECT_EQ(Histogram::bucket_index(UINT64_MAX), Histogram::kBucketCount - 1);
}

TEST(HistogramTest, QuantileEdges) {
  Histogram h;
  for (uint64_t v = 1; v <= 10; ++v)
    h.record(v * 1000);
  EXPECT_EQ(h.value_at(0), 1000u);
  EXPECT_EQ(h.value_at(-1), 1000u);
  EXPECT_EQ(h.value_at(std::nan("")), 1000u);
  EXPECT_EQ(h.value_at(1), 10000u);
  EXPECT_EQ(h.value_at(2), 10000u);
  // Rank ceil(0.5 * 10) = 5, not 6, despite floating point.
  EXPECT_NEAR(static_cast<double>(h.value_at(0.5)), 5000, 50);
  EXPECT_NEAR(static_cast<double>(h.value_at(0.51)), 6000, 60);
}

TEST(HistogramTest, PercentilesWithinOnePercent) {
  std::mt19937_64 rng(42);
  const size_t n = 200'000;
  std::vector<uint64_t> v;

  std::uniform_int_distribution<uint64_t> uniform(1, 1'000'000);
  for (size_t i = 0; i < n; ++i)
    v.push_back(uniform(rng));
  expect_percentiles_within_one_percent(v, "uniform");

  v.clear();
  std::lognormal_distribution<double> lognormal(std::log(5000.0), 1.0);
  for (size_t i = 0; i < n; ++i)
    v.push_back(static_cast<uint64_t>(lognormal(rng)));
  expect_percentiles_within_one_percent(v, "lognormal");

  v.clear();
  std::exponential_distribution<double> exponential(1.0 / 2000);
  for (size_t i = 0; i < n; ++i)
    v.push_back(static_cast<uint64_t>(exponential(rng)));
  expect_percentiles_within_one_percent(v, "exponential");

  v.clear();
  // Log-uniform from 1 us to 1 hour: every octave the tool can plausibly see.
  std::uniform_real_distribution<double> log_range(0.0, std::log(3.6e9));
  for (size_t i = 0; i < n; ++i)
    v.push_back(static_cast<uint64_t>(std::exp(log_range(rng))));
  expect_percentiles_within_one_percent(v, "1us..1h");

  v.clear();
  std::uniform_int_distribution<uint64_t> tiny(0, 300);
  for (size_t i = 0; i < 1000; ++i)
    v.push_back(tiny(rng));
  expect_percentiles_within_one_percent(v, "small");

  // Bimodal: the percentiles near the gap must not blur the two modes.
  v.clear();
  for (size_t i = 0; i < 9900; ++i)
    v.push_back(1000 + i % 7);
  for (size_t i = 0; i < 100; ++i)
    v.push_back(2'000'000 + i);
  expect_percentiles_within_one_percent(v, "bimodal");
}

TEST(HistogramTest, ConstantsAndOctaveEdges) {
  for (uint64_t c : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{255},
                     uint64_t{256}, uint64_t{257}, uint64_t{1'000'003}, uint64_t{3'600'000'000},
                     Histogram::kMaxValue, UINT64_MAX}) {
    expect_percentiles_within_one_percent(std::vector<uint64_t>(37, c),
                                          "constant " + std::to_string(c));
  }
  std::vector<uint64_t> edges;
  for (int k = 1; k < Histogram::kOctaves; ++k) {
    const uint64_t p = uint64_t{1} << k;
    edges.insert(edges.end(), {p - 1, p, p + 1});
  }
  expect_percentiles_within_one_percent(edges, "octave edges");
  // Each edge alone, so its own bucket decides every percentile.
  for (uint64_t e : edges) {
    expect_percentiles_within_one_percent({e, e + e / 3, e * 2}, "edge " + std::to_string(e));
  }
}

TEST(HistogramTest, MergeOfHalvesEqualsWhole) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> lognormal(std::log(20000.0), 1.5);
  Histogram whole, first, second;
  for (int i = 0; i < 100'000; ++i) {
    const auto v = static_cast<uint64_t>(lognormal(rng));
    whole.record(v);
    (i % 3 == 0 ? first : second).record(v);
  }
  Histogram merged = first;
  merged.merge(second);
  EXPECT_EQ(merged, whole);
  EXPECT_EQ(merged.nonzero_buckets(), whole.nonzero_buckets());
  for (double p : kPercentiles)
    EXPECT_EQ(merged.value_at(p / 100), whole.value_at(p / 100));

  Histogram empty;
  merged.merge(empty);
  EXPECT_EQ(merged, whole);
  empty.merge(whole);
  EXPECT_EQ(empty, whole);
}

TEST(HistogramTest, ResetClearsEverything) {
  Histogram h;
  h.record(5);
  h.record(1'000'000);
  h.reset();
  EXPECT_EQ(h, Histogram());
}

TEST(HistogramTest, RestoreRoundTrips) {
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> exponential(1.0 / 50000);
  Histogram h;
  for (int i = 0; i < 50'000; ++i)
    h.record(static_cast<uint64_t>(exponential(rng)));
  h.record(Histogram::kMaxValue);
  Histogram copy;
  copy.record(17);  // restore replaces, not adds
  ASSERT_TRUE(copy.restore(h.nonzero_buckets(), h.min(), h.max(), h.sum()));
  EXPECT_EQ(copy, h);

  Histogram empty;
  Histogram restored_empty;
  restored_empty.record(3);
  ASSERT_TRUE(restored_empty.restore({}, 0, 0, 0));
  EXPECT_EQ(restored_empty, empty);
}

TEST(HistogramTest, RestoreRejectsBadInput) {
  Histogram h;
  h.record(100);
  h.record(200);
  h.record(10'000);
  const auto good = h.nonzero_buckets();
  const Histogram before = h;
  using B = Histogram::Bucket;
  auto rejects = [&](const std::vector<B>& b, uint64_t min, uint64_t max, uint64_t sum) {
    Histogram target = before;
    EXPECT_FALSE(target.restore(b, min, max, sum));
    EXPECT_EQ(target, before);  // unchanged
  };
  const uint32_t last = good.back().index;
  rejects({{static_cast<uint32_t>(Histogram::kBucketCount), 1}}, 0, 0, 0);  // index out of range
  rejects({{100, 1}, {100, 1}}, 100, 100, 200);                             // duplicate
  rejects({{200, 1}, {100, 1}}, 100, 200, 300);                             // out of order
  rejects({{100, 0}}, 100, 100, 0);                                         // zero count
  rejects(good, 101, 10'000, 10'300);                         // min outside the first bucket
  rejects(good, 100, 20'000, 10'300);                         // max outside the last bucket
  rejects(good, 10'000, 100, 10'300);                         // min > max
  rejects(good, 100, 10'000, 5);                              // sum too small
  rejects(good, 100, 10'000, 1'000'000);                      // sum too large
  rejects({}, 0, 0, 1);                                       // empty with a sum
  rejects({}, 5, 5, 0);                                       // empty with a min
  rejects({{0, UINT64_MAX}, {last, 2}}, 0, 10'000, 20'000);   // total count overflows
  rejects({{last, UINT64_MAX}}, 10'000, 10'000, UINT64_MAX);  // sum cannot fit
  rejects({{static_cast<uint32_t>(Histogram::kBucketCount - 1), 1}}, Histogram::kMaxValue + 1,
          Histogram::kMaxValue + 1, Histogram::kMaxValue + 1);
}

}  // namespace histogram_test
}  // namespace millstone::metrics
