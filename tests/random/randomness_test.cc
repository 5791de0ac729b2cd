#include "random/randomness.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace millstone::random {
namespace randomness_test {

constexpr int kSamples = 100'000;

std::vector<int64_t> draw(const LatencyModel& model, uint64_t seed = 7) {
  Prng prng(seed);
  std::vector<int64_t> samples(kSamples);
  for (int64_t& s : samples) {
    s = model.sample_us(prng);
  }
  return samples;
}

double mean_of(const std::vector<int64_t>& v) {
  double sum = 0;
  for (int64_t x : v) {
    sum += static_cast<double>(x);
  }
  return sum / static_cast<double>(v.size());
}

double stddev_of(const std::vector<int64_t>& v) {
  const double mean = mean_of(v);
  double sum = 0;
  for (int64_t x : v) {
    sum += (static_cast<double>(x) - mean) * (static_cast<double>(x) - mean);
  }
  return std::sqrt(sum / static_cast<double>(v.size() - 1));
}

double quantile_of(std::vector<int64_t> v, double q) {
  const auto k = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]);
}

TEST(PrngTest, SameSeedSameStream) {
  Prng a(42);
  Prng b(42);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(a(), b());
  }
}

TEST(PrngTest, StreamIsPinned) {
  // Reproducible runs across releases and standard libraries depend on this
  // exact stream; change it only on purpose.
  Prng prng(42);
  EXPECT_EQ(prng(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(prng(), 0x6104d9866d113a7eULL);
}

TEST(PrngTest, WorkersGetDifferentStreams) {
  Prng w0 = Prng::for_worker(42, 0);
  Prng w1 = Prng::for_worker(42, 1);
  int same = 0;
  for (int i = 0; i < 1000; ++i) {
    same += w0() == w1() ? 1 : 0;
  }
  EXPECT_EQ(same, 0);
  // Documented: worker i of seed s uses seed s + i.
  Prng w1_again = Prng::for_worker(42, 1);
  Prng plain(43);
  EXPECT_EQ(w1_again(), plain());
}

TEST(PrngTest, UniformIsInUnitInterval) {
  Prng prng(1);
  double sum = 0;
  for (int i = 0; i < kSamples; ++i) {
    const double u = prng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / kSamples, 0.5, 0.005);
}

TEST(LatencyModelTest, DefaultIsZero) {
  const LatencyModel model;
  EXPECT_TRUE(model.always_zero());
  Prng prng(1);
  EXPECT_EQ(model.sample_us(prng), 0);
}

TEST(LatencyModelTest, Fixed) {
  const std::vector<int64_t> samples = draw(LatencyModel::fixed(20'000));
  EXPECT_TRUE(std::all_of(samples.begin(), samples.end(), [](int64_t s) { return s == 20'000; }));
  EXPECT_FALSE(LatencyModel::fixed(20'000).always_zero());
}

TEST(LatencyModelTest, Uniform) {
  const std::vector<int64_t> samples = draw(LatencyModel::uniform(1'000, 3'000));
  EXPECT_GE(*std::min_element(samples.begin(), samples.end()), 1'000);
  EXPECT_LE(*std::max_element(samples.begin(), samples.end()), 3'000);
  EXPECT_NEAR(mean_of(samples), 2'000, 10);
  EXPECT_NEAR(quantile_of(samples, 0.25), 1'500, 20);
}

TEST(LatencyModelTest, Normal) {
  const std::vector<int64_t> samples = draw(LatencyModel::normal(10'000, 2'000));
  // Standard error of the mean is 2000/sqrt(1e5) = 6.3 us.
  EXPECT_NEAR(mean_of(samples), 10'000, 30);
  EXPECT_NEAR(stddev_of(samples), 2'000, 30);
  EXPECT_NEAR(quantile_of(samples, 0.5), 10'000, 40);
}

TEST(LatencyModelTest, NormalIsTruncatedAtZero) {
  const std::vector<int64_t> samples = draw(LatencyModel::normal(1'000, 2'000));
  EXPECT_GE(*std::min_element(samples.begin(), samples.end()), 0);
  // About 31% of N(1000, 2000) lies below zero; those draws become 0.
  const auto zeros = std::count(samples.begin(), samples.end(), 0);
  EXPECT_NEAR(static_cast<double>(zeros) / kSamples, 0.3085, 0.01);
}

TEST(LatencyModelTest, LognormalFromMedianAndP99) {
  const std::vector<int64_t> samples = draw(LatencyModel::lognormal_from_p99(5'000, 40'000));
  EXPECT_NEAR(quantile_of(samples, 0.5), 5'000, 5'000 * 0.02);
  EXPECT_NEAR(quantile_of(samples, 0.99), 40'000, 40'000 * 0.05);
  EXPECT_GE(*std::min_element(samples.begin(), samples.end()), 0);
}

TEST(LatencyModelTest, LognormalFromSigma) {
  const LatencyModel model = LatencyModel::lognormal(5'000, 0.5);
  const std::vector<int64_t> samples = draw(model);
  EXPECT_NEAR(quantile_of(samples, 0.5), 5'000, 100);
  // Mean of a lognormal is median * exp(sigma^2 / 2).
  EXPECT_NEAR(mean_of(samples), 5'000 * std::exp(0.125), 60);
}

TEST(LatencyModelTest, Exponential) {
  const std::vector<int64_t> samples = draw(LatencyModel::exponential(2'000));
  EXPECT_NEAR(mean_of(samples), 2'000, 40);
  EXPECT_NEAR(quantile_of(samples, 0.5), 2'000 * std::log(2.0), 30);
  EXPECT_GE(*std::min_element(samples.begin(), samples.end()), 0);
}

TEST(LatencyModelTest, WildTailsAreClamped) {
  const std::vector<int64_t> samples = draw(LatencyModel::lognormal(1e9, 10));
  EXPECT_LE(*std::max_element(samples.begin(), samples.end()), kMaxLatencyUs);
  EXPECT_GE(*std::min_element(samples.begin(), samples.end()), 0);
}

TEST(LatencyModelTest, SameSeedSameSamples) {
  const LatencyModel model = LatencyModel::lognormal_from_p99(5'000, 40'000);
  EXPECT_EQ(draw(model, 99), draw(model, 99));
  EXPECT_NE(draw(model, 99), draw(model, 100));
}

TEST(UniformBelowTest, StaysInRangeAndReachesBothEnds) {
  Prng prng(11);
  std::vector<int> seen(7);
  for (int i = 0; i < 10'000; ++i) {
    const uint64_t draw = uniform_below(prng, 7);
    ASSERT_LT(draw, 7u);
    ++seen[draw];
  }
  for (int count : seen) {
    EXPECT_GT(count, 1'000);  // about 1,430 each
  }
}

}  // namespace randomness_test
}  // namespace millstone::random
