#include "random/randomness.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace millstone::random {
namespace {

// splitmix64 spreads a small seed (42, 43, ...) over the whole 256-bit state;
// xoshiro's authors recommend it for exactly this.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// z such that P(Z <= z) = 0.99 for a standard normal Z.
constexpr double kZ99 = 2.3263478740408408;

int64_t clamp_to_us(double us) {
  // NaN cannot arise from validated parameters, but a comparison-based clamp
  // would pass it through, so treat it as zero.
  if (!(us > 0)) {
    return 0;
  }
  if (us >= static_cast<double>(kMaxLatencyUs)) {
    return kMaxLatencyUs;
  }
  return std::llround(us);
}

}  // namespace

Prng::Prng(uint64_t seed) {
  for (uint64_t& word : s_) {
    word = splitmix64(seed);
  }
}

double Prng::standard_normal() {
  const double u1 = 1.0 - uniform();  // (0, 1], so the log is finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// Lemire, "Fast Random Integer Generation in an Interval" (2019): uniform in
// [0, span) from the high half of a 64x64 -> 128 multiply. Plain modulo would
// be biased by up to span / 2^64 and cost a division on every draw; here the
// division runs only when the low half lands below span, and the rejection
// loop makes the result exactly uniform.
namespace {
__extension__ using Uint128 = unsigned __int128;  // __extension__: quiet -Wpedantic
}  // namespace

uint64_t uniform_below(Prng& prng, uint64_t span) {
  Uint128 product = static_cast<Uint128>(prng()) * span;
  auto low = static_cast<uint64_t>(product);
  if (low < span) {
    const uint64_t threshold = (0 - span) % span;  // 2^64 mod span
    while (low < threshold) {
      product = static_cast<Uint128>(prng()) * span;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

LatencyModel LatencyModel::fixed(double value_us) {
  LatencyModel m;
  m.distribution = Distribution::kFixed;
  m.value_us = value_us;
  return m;
}

LatencyModel LatencyModel::uniform(double min_us, double max_us) {
  LatencyModel m;
  m.distribution = Distribution::kUniform;
  m.min_us = min_us;
  m.max_us = max_us;
  return m;
}

LatencyModel LatencyModel::normal(double mean_us, double stddev_us) {
  LatencyModel m;
  m.distribution = Distribution::kNormal;
  m.mean_us = mean_us;
  m.stddev_us = stddev_us;
  return m;
}

LatencyModel LatencyModel::lognormal(double median_us, double sigma) {
  LatencyModel m;
  m.distribution = Distribution::kLognormal;
  m.mu = std::log(median_us);
  m.sigma = sigma;
  return m;
}

LatencyModel LatencyModel::lognormal_from_p99(double median_us, double p99_us) {
  return lognormal(median_us, std::log(p99_us / median_us) / kZ99);
}

LatencyModel LatencyModel::exponential(double mean_us) {
  LatencyModel m;
  m.distribution = Distribution::kExponential;
  m.mean_us = mean_us;
  return m;
}

int64_t LatencyModel::sample_us(Prng& prng) const {
  switch (distribution) {
    case Distribution::kFixed:
      return clamp_to_us(value_us);
    case Distribution::kUniform:
      return clamp_to_us(min_us + (max_us - min_us) * prng.uniform());
    case Distribution::kNormal:
      return clamp_to_us(mean_us + stddev_us * prng.standard_normal());
    case Distribution::kLognormal:
      return clamp_to_us(std::exp(mu + sigma * prng.standard_normal()));
    case Distribution::kExponential:
      return clamp_to_us(-mean_us * std::log1p(-prng.uniform()));
  }
  return 0;
}

}  // namespace millstone::random
