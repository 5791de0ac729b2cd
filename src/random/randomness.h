// Randomness for the mock server and scenarios: a seedable generator per
// worker, uniform integers and delay distributions (mock latency, think
// time). Everything here runs on the data plane, so nothing allocates or throws.
#pragma once

#include <cstdint>
#include <limits>

namespace millstone::random {

// Samples are clamped to this so a wild lognormal tail cannot overflow a
// timer; anything longer is what "stall: forever" is for.
inline constexpr int64_t kMaxLatencyUs = int64_t{24} * 3600 * 1000 * 1000;

// xoshiro256** (Blackman & Vigna). Our own rather than std::mt19937 plus
// std::*_distribution so that a seed gives the same stream with libstdc++ and
// libc++, and because it is a few instructions per draw.
class Prng {
 public:
  using result_type = uint64_t;

  explicit Prng(uint64_t seed);
  // Each worker gets seed + worker_index, so a run is reproducible per worker
  // and workers do not share a stream.
  static Prng for_worker(uint64_t seed, uint32_t worker_index) { return Prng(seed + worker_index); }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  result_type operator()() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 bits of precision.
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  // Standard normal by Box-Muller; the second value is dropped to keep the
  // generator stateless beyond its 256 bits.
  double standard_normal();

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Uniform in [0, span) without modulo bias; span must not be 0.
uint64_t uniform_below(Prng& prng, uint64_t span);

// A delay: a mock route's latency or a scenario's think time. Only the fields
// of the chosen distribution are meaningful; the config reader validates them.
struct LatencyModel {
  enum class Distribution { kFixed, kUniform, kNormal, kLognormal, kExponential };

  Distribution distribution = Distribution::kFixed;
  double value_us = 0;   // fixed
  double min_us = 0;     // uniform
  double max_us = 0;     // uniform
  double mean_us = 0;    // normal, exponential
  double stddev_us = 0;  // normal (draws below zero become zero)
  double mu = 0;         // lognormal: ln(median in microseconds)
  double sigma = 0;      // lognormal: standard deviation of ln(latency)

  static LatencyModel fixed(double value_us);
  static LatencyModel uniform(double min_us, double max_us);
  static LatencyModel normal(double mean_us, double stddev_us);
  static LatencyModel lognormal(double median_us, double sigma);
  static LatencyModel lognormal_from_p99(double median_us, double p99_us);
  static LatencyModel exponential(double mean_us);

  // True for the default, so the server can skip arming a timer.
  bool always_zero() const { return distribution == Distribution::kFixed && value_us <= 0; }
  // A delay in microseconds, in [0, kMaxLatencyUs].
  int64_t sample_us(Prng& prng) const;
};

}  // namespace millstone::random
