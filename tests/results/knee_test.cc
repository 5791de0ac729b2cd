// The saturation knee of a ramp (results/knee.h, docs/scenarios.md#saturation-knee)
// on synthetic timelines: a knee, a ramp the target kept up with, a noisy
// flat run, and windows made from per-second snapshots.
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "results/knee.h"

namespace millstone::results {
namespace knee_test {

// Windows of 3 s from (rps, p99 ms, VUs) triples.
std::vector<LoadWindow> windows(const std::vector<std::vector<double>>& rows) {
  std::vector<LoadWindow> out;
  int64_t at = 0;
  for (const std::vector<double>& r : rows) {
    LoadWindow w;
    w.first_s = at;
    w.end_s = at + 3;
    w.rps = r[0];
    w.requests = static_cast<uint64_t>(r[0] * 3);
    w.p99_ms = r[1];
    w.vus = r[2];
    out.push_back(w);
    at += 3;
  }
  return out;
}

TEST(KneeTest, FindsWhereP99TurnsUpWhileThroughputStopsGrowing) {
  // Closed-model ramp against a target that saturates at ~400 rps.
  const auto w = windows({{100, 5, 10},
                          {200, 5.2, 20},
                          {300, 5.5, 30},
                          {395, 6, 40},
                          {405, 9, 50},
                          {402, 14, 60},
                          {404, 19, 70}});
  const std::optional<Knee> k = find_knee(w);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->second, 12);  // the fifth window
  EXPECT_DOUBLE_EQ(k->rps, 395);
  EXPECT_DOUBLE_EQ(k->vus, 50);
  EXPECT_DOUBLE_EQ(k->p99_before_ms, 6);
  EXPECT_DOUBLE_EQ(k->p99_after_ms, 14);
  EXPECT_NEAR(k->rps_growth, 402.0 / 395 - 1, 1e-12);
  EXPECT_EQ(k->base_first_s, 9);
  EXPECT_EQ(k->held_end_s, 18);
  EXPECT_EQ(knee_text(*k),
            "saturation knee at ~395 rps / 50 VUs, at t=12s: p99 rose from 6.0 to 14.0 ms while "
            "rps grew only 1.8%");
  const nlohmann::json j = knee_json(*k);
  EXPECT_EQ(j["second"], 12);
  EXPECT_EQ(j["window_s"], 3);
  EXPECT_EQ(j["text"], knee_text(*k));
}

TEST(KneeTest, ARampTheTargetKeptUpWithHasNoKnee) {
  // Throughput grows with the VUs; p99 rises a little as it does.
  const auto w = windows(
      {{100, 5, 10}, {200, 5.5, 20}, {300, 6.5, 30}, {400, 8, 40}, {500, 10, 50}, {600, 12, 60}});
  EXPECT_FALSE(find_knee(w));
}

TEST(KneeTest, ANoisyFlatRunHasNoKnee) {
  // Constant load: throughput wobbles by a few percent and p99 jumps around,
  // but no throughput was ever gained, so none stopped growing.
  const auto w = windows({{500, 5, 50},
                          {520, 12, 50},
                          {490, 4, 50},
                          {515, 15, 50},
                          {505, 20, 50},
                          {498, 6, 50},
                          {510, 25, 50}});
  EXPECT_FALSE(find_knee(w));
}

TEST(KneeTest, OneSlowWindowIsNotAKnee) {
  // The rule must hold for two windows in a row: a single spike is noise.
  const auto w = windows(
      {{100, 5, 10}, {200, 5, 20}, {300, 5, 30}, {310, 30, 40}, {400, 5, 50}, {500, 5, 60}});
  EXPECT_FALSE(find_knee(w));
}

TEST(KneeTest, TinyLatencyJitterIsNotAKnee) {
  // p99 doubling from 0.2 ms to 0.4 ms is under the 1 ms floor.
  const auto w =
      windows({{100, 0.2, 10}, {200, 0.2, 20}, {300, 0.2, 30}, {305, 0.4, 40}, {302, 0.45, 50}});
  EXPECT_FALSE(find_knee(w));
}

TEST(KneeTest, WindowsMergeWholeSecondsAndLeaveOutThePartialLast) {
  std::map<uint64_t, metrics::Snapshot> seconds;
  for (uint64_t s = 0; s < 7; ++s) {
    seconds[s].requests = 10 * (s + 1);
    seconds[s].vus = s + 1;
    seconds[s].latency.record_n(s < 3 ? 1000 : 50'000, 10 * (s + 1));
  }
  // 6.4 s: seconds 0-5 are whole, second 6 is cut short.
  const std::vector<LoadWindow> w = load_windows(seconds, 6.4, 3);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].requests, 60u);
  EXPECT_DOUBLE_EQ(w[0].rps, 20);
  EXPECT_DOUBLE_EQ(w[0].vus, 2);
  EXPECT_NEAR(w[0].p99_ms, 1.0, 0.01);
  EXPECT_EQ(w[1].requests, 150u);
  EXPECT_NEAR(w[1].p99_ms, 50.0, 0.1);
  EXPECT_TRUE(load_windows(seconds, 2.9, 3).empty());
}

}  // namespace knee_test
}  // namespace millstone::results
