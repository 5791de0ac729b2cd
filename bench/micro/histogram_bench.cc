// Histogram costs that bound the data plane (record, once per response) and
// the coordinator (value_at and merge, once per second per worker).
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "metrics/histogram.h"

namespace {

using millstone::metrics::Histogram;

// Realistic latencies: lognormal around 2 ms with a long tail.
std::vector<uint64_t> latencies(size_t n) {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> d(std::log(2000.0), 1.0);
  std::vector<uint64_t> v(n);
  for (auto& x : v)
    x = static_cast<uint64_t>(d(rng));
  return v;
}

void BM_Record(benchmark::State& state) {
  const std::vector<uint64_t> values = latencies(4096);
  Histogram h;
  size_t i = 0;
  for (auto _ : state) {
    h.record(values[i++ & 4095]);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record);

void BM_RecordConstant(benchmark::State& state) {
  Histogram h;
  uint64_t v = 1234;
  for (auto _ : state) {
    benchmark::DoNotOptimize(v);
    h.record(v);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordConstant);

void BM_ValueAt(benchmark::State& state) {
  Histogram h;
  for (uint64_t v : latencies(100'000))
    h.record(v);
  const double q = static_cast<double>(state.range(0)) / 10000;
  for (auto _ : state)
    benchmark::DoNotOptimize(h.value_at(q));
}
BENCHMARK(BM_ValueAt)->Arg(5000)->Arg(9900)->Arg(9999);

void BM_Merge(benchmark::State& state) {
  Histogram part;
  for (uint64_t v : latencies(10'000))
    part.record(v);
  Histogram total;
  for (auto _ : state) {
    total.merge(part);
    benchmark::DoNotOptimize(total.count());
  }
}
BENCHMARK(BM_Merge);

void BM_MergeFullRange(benchmark::State& state) {
  Histogram part;
  part.record(0);
  part.record(Histogram::kMaxValue);
  Histogram total;
  for (auto _ : state) {
    total.merge(part);
    benchmark::DoNotOptimize(total.count());
  }
}
BENCHMARK(BM_MergeFullRange);

}  // namespace

BENCHMARK_MAIN();
