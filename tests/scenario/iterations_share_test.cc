// How the iterations executor shares VUs and iterations out across workers.
#include <algorithm>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "scenario/workload.h"

namespace millstone::scenario {
namespace iterations_share_test {

// Every iteration lands on a worker that has a VU to run it, and the shares
// add up to the total, whatever the counts.
TEST(IterationsShareTest, IterationsGoOnlyToWorkersWithVus) {
  for (uint32_t workers = 1; workers <= 9; ++workers) {
    for (uint64_t vus = 1; vus <= 12; ++vus) {
      for (uint64_t iterations : {uint64_t{0}, uint64_t{1}, uint64_t{5}, uint64_t{7},
                                  uint64_t{1000}, uint64_t{1} << 40}) {
        uint64_t total = 0;
        for (uint32_t i = 0; i < workers; ++i) {
          const uint64_t worker_vus = ScenarioWorkload::share_of(vus, i, workers);
          const uint64_t share = ScenarioWorkload::iterations_share(iterations, vus, i, workers);
          if (worker_vus == 0) {
            EXPECT_EQ(share, 0u) << vus << " VUs, " << iterations << " iterations, worker " << i
                                 << " of " << workers;
          }
          total += share;
        }
        EXPECT_EQ(total, iterations) << vus << " VUs on " << workers << " workers";
      }
    }
  }
}

TEST(IterationsShareTest, OneVuOnTwoWorkersRunsAllFive) {
  // The case that lost iterations: worker 0 had no VU but 2 of the 5 iterations.
  EXPECT_EQ(ScenarioWorkload::iterations_share(5, 1, 0, 2), 0u);
  EXPECT_EQ(ScenarioWorkload::iterations_share(5, 1, 1, 2), 5u);
  // Two VUs on three workers: the two workers with a VU share the iterations.
  EXPECT_EQ(ScenarioWorkload::iterations_share(7, 2, 0, 3), 0u);
  EXPECT_EQ(ScenarioWorkload::iterations_share(7, 2, 1, 3) +
                ScenarioWorkload::iterations_share(7, 2, 2, 3),
            7u);
}

// Arrival-rate executors over a fleet of W workers (on any number of
// agents): the merged arrivals are exactly those of one worker running the
// whole rate, so they are evenly spaced rather than W at a time.
TEST(ArrivalShareTest, MergedArrivalsAreOneWorkersSchedule) {
  Executor constant;
  constant.kind = Executor::Kind::kConstantArrivalRate;
  constant.rate = 300;
  Executor ramping;
  ramping.kind = Executor::Kind::kRampingArrivalRate;
  ramping.start_rate = 50;
  ramping.stages = {{1'000'000, 400}, {500'000, 100}};
  const int64_t end = 1'500'000'000;
  for (const Executor* ex : {&constant, &ramping}) {
    std::vector<int64_t> alone;
    for (uint64_t k = 0;; ++k) {
      const int64_t due = ScenarioWorkload::arrival_due_ns(*ex, 0, 0, 1, k);
      if (due >= end) break;
      alone.push_back(due);
    }
    ASSERT_GT(alone.size(), 100u);
    for (uint32_t workers : {2u, 7u}) {
      std::vector<int64_t> merged;
      for (uint32_t i = 0; i < workers; ++i) {
        for (uint64_t k = 0;; ++k) {
          const int64_t due = ScenarioWorkload::arrival_due_ns(*ex, 0, i, workers, k);
          if (due >= end) break;
          merged.push_back(due);
        }
      }
      std::sort(merged.begin(), merged.end());
      EXPECT_EQ(merged, alone) << workers << " workers";
    }
  }
  // Constant rate: one arrival every 1/rate, half an interval in.
  EXPECT_NEAR(ScenarioWorkload::arrival_due_ns(constant, 0, 0, 1, 0), 1'666'667, 1);
  EXPECT_NEAR(ScenarioWorkload::arrival_due_ns(constant, 0, 0, 1, 1), 5'000'000, 1);
}

}  // namespace iterations_share_test
}  // namespace millstone::scenario
