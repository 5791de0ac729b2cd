// Phase figures and recovery to the 'before' phase (scenario/phase_figures.h):
// exact per-phase percentiles from merged per-second histograms, the
// tolerance from slo: tolerance:, and "not recovered" as a result.
#include "scenario/phase_figures.h"

#include <map>

#include <gtest/gtest.h>

#include "scenario/loader.h"

namespace millstone::scenario {
namespace phase_figures_test {

using Seconds = std::map<uint64_t, metrics::Snapshot>;

// `count` responses of `latency_us` each, and `errors` transport errors, in second `index`.
void add(Seconds& seconds, uint64_t index, uint64_t count, uint64_t latency_us,
         uint64_t errors = 0) {
  metrics::Snapshot& s = seconds[index];
  s.interval_index = index;
  s.requests += count;
  s.latency.record_n(latency_us, count);
  if (errors > 0) s.add_error(metrics::ErrorCause::kReset, errors);
}

TEST(PhaseFigures, PerPhaseFiguresAndTheWayBackToBefore) {
  Plan plan;
  plan.recovery_tolerance.window_s = 2;
  Seconds seconds;
  // 0-2 before: 50 ms; 3-5 the fault: 250 ms and errors; 6 still slow;
  // 7 back; 8 one slow outlier second; 9-11 back for good.
  for (uint64_t s = 0; s < 12; ++s) {
    const bool slow = (s >= 3 && s <= 6) || s == 8;
    add(seconds, s, 100, slow ? 250'000 : 50'000, s >= 3 && s <= 5 ? 10 : 0);
  }
  const FaultWindows faults = {{"slow", 3.004, 6.002}};
  const PhaseReport r = report_phases(plan, seconds, faults, 12.0);
  ASSERT_EQ(r.phases.size(), 3u);
  EXPECT_EQ(r.phases[0].phase.name, "before");
  EXPECT_EQ(r.phases[1].phase.name, "during slow");
  EXPECT_EQ(r.phases[1].phase.first_s, 3);
  EXPECT_EQ(r.phases[1].phase.end_s, 6);
  EXPECT_EQ(r.phases[0].requests, 300u);
  EXPECT_DOUBLE_EQ(r.phases[0].rps, 100.0);
  EXPECT_NEAR(*r.phases[0].p50_ms, 50.0, 0.5);
  EXPECT_NEAR(*r.phases[1].p99_ms, 250.0, 2.5);
  EXPECT_EQ(r.phases[1].failed, 30u);
  EXPECT_NEAR(r.phases[1].error_rate(), 30.0 / 330.0, 1e-9);
  EXPECT_EQ(r.phases[0].failed, 0u);

  ASSERT_TRUE(r.baseline_p99_ms);
  EXPECT_NEAR(r.p99_limit_ms, *r.baseline_p99_ms * 1.2, 1e-9);  // default: 20% above
  EXPECT_DOUBLE_EQ(r.error_rate_limit, 0.01);
  ASSERT_EQ(r.recovery.size(), 1u);
  // Second 7 held alone, 8 broke the streak: two whole seconds from 9.
  EXPECT_EQ(r.recovery[0].status, BaselineRecovery::Status::kRecovered);
  EXPECT_EQ(r.recovery[0].recovered_at_s, 9);
  EXPECT_NEAR(r.recovery[0].time_s, 9 - 6.002, 1e-9);
}

TEST(PhaseFigures, NotRecoveredStillOnAndNoBaselineAreResults) {
  Plan plan;
  plan.recovery_tolerance.window_s = 1;
  plan.recovery_tolerance.p99_slack_us = 1000;  // tolerance: {p99: 1ms}
  Seconds seconds;
  for (uint64_t s = 0; s < 6; ++s)
    add(seconds, s, 10, s < 2 ? 10'000 : 12'000);  // never back within 1 ms
  const PhaseReport r = report_phases(plan, seconds, {{"a", 2.0, 3.0}, {"b", 4.0, -1}}, 6.0);
  ASSERT_EQ(r.recovery.size(), 2u);
  EXPECT_EQ(r.recovery[0].status, BaselineRecovery::Status::kNotRecovered);
  EXPECT_EQ(r.recovery[0].until, "the next fault (b)");
  EXPECT_DOUBLE_EQ(r.recovery[0].time_s, 1.0);
  EXPECT_EQ(r.recovery[1].status, BaselineRecovery::Status::kStillOn);

  // A fault from the first second leaves nothing to compare with.
  const PhaseReport none = report_phases(plan, seconds, {{"a", 0.0, 3.0}}, 6.0);
  EXPECT_FALSE(none.baseline_p99_ms);
  EXPECT_EQ(none.recovery[0].status, BaselineRecovery::Status::kNoBaseline);
}

TEST(PhaseFigures, ToleranceFromTheFile) {
  const auto plan = parse_scenario(R"(target: http://127.0.0.1:9
flows: {a: {steps: [{get: /}]}}
slo:
  recovery_window: 3s
  tolerance: {p99: 5ms, error_rate: 2%}
)",
                                   "t.yaml", "");
  EXPECT_EQ(plan->recovery_tolerance.p99_slack_us, 5000);
  EXPECT_DOUBLE_EQ(plan->recovery_tolerance.error_rate_points, 0.02);
  EXPECT_EQ(plan->recovery_tolerance.window_s, 3);
  try {
    parse_scenario(
        "target: http://127.0.0.1:9\nflows: {a: {steps: [{get: /}]}}\n"
        "slo: {tolerance: {error_rate: 0.5}}\n",
        "t.yaml", "");
    FAIL() << "loaded";
  } catch (const ScenarioError& e) {
    EXPECT_STREQ(e.what(),
                 "t.yaml:3:31: slo tolerance error_rate \"0.5\" is not a percentage from 0% to "
                 "100%; expected e.g. 1% (percentage points above the 'before' phase)");
  }
}

}  // namespace phase_figures_test
}  // namespace millstone::scenario
