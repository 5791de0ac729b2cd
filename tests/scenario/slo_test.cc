// SLO judgment (scenario/slo.h, slo_guard.h, loader_slo.cc): phases cut by
// fault windows, exact percentiles from merged per-second histograms, sliding
// windows, time to recover, abort guard timing, and the loader's errors.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "scenario/loader.h"
#include "scenario/slo.h"
#include "scenario/slo_guard.h"
#include "scenario/threshold_parse.h"

namespace millstone::scenario {
namespace slo_test {

using Seconds = std::map<uint64_t, metrics::Snapshot>;

Objective objective(std::string_view text, int64_t window_s = 10, int64_t recovery_window_s = 2) {
  std::string error;
  size_t offset = 0;
  std::optional<Threshold> t = parse_threshold(text, &error, &offset);
  EXPECT_TRUE(t) << error;
  Objective o;
  o.threshold = t.value_or(Threshold{});
  o.window_s = window_s;
  o.recovery_window_s = recovery_window_s;
  return o;
}

// `count` responses of `latency_us` each in second `index`.
void add(Seconds& seconds, uint64_t index, uint64_t count, uint64_t latency_us) {
  metrics::Snapshot& s = seconds[index];
  s.interval_index = index;
  s.requests += count;
  s.latency.record_n(latency_us, count);
}

// A run of `n` seconds, each with 100 responses of 1 ms, except `slow`
// seconds whose responses take 300 ms.
Seconds run_of(uint64_t n, const std::vector<uint64_t>& slow = {}) {
  Seconds seconds;
  for (uint64_t i = 0; i < n; ++i) {
    const bool is_slow = std::find(slow.begin(), slow.end(), i) != slow.end();
    add(seconds, i, 100, is_slow ? 300'000 : 1'000);
  }
  return seconds;
}

TEST(SloPhases, NoFaultIsOneRunPhase) {
  const std::vector<Phase> phases = cut_phases({}, 10);
  ASSERT_EQ(phases.size(), 1u);
  EXPECT_EQ(phases[0].name, "run");
  EXPECT_EQ(phases[0].first_s, 0);
  EXPECT_EQ(phases[0].end_s, 10);
}

TEST(SloPhases, BeforeDuringAfterRoundedToWholeSeconds) {
  // The scheduler acts a few milliseconds after the planned instants.
  const std::vector<Phase> phases = cut_phases({{"kill-api", 3.004, 6.012}}, 10);
  ASSERT_EQ(phases.size(), 3u);
  EXPECT_EQ(phases[0].name, "before");
  EXPECT_EQ(phases[0].kind, Phase::Kind::kBefore);
  EXPECT_EQ(phases[0].end_s, 3);
  EXPECT_EQ(phases[1].name, "during kill-api");
  EXPECT_EQ(phases[1].fault, 0);
  EXPECT_EQ(phases[1].first_s, 3);
  EXPECT_EQ(phases[1].end_s, 6);
  EXPECT_EQ(phases[2].name, "after kill-api");
  EXPECT_EQ(phases[2].first_s, 6);
  EXPECT_EQ(phases[2].end_s, 10);
}

TEST(SloPhases, AfterEndsAtTheNextFaultAndStillOnHasNoAfter) {
  const FaultWindows faults = {{"b", 7, -1}, {"a", 2, 4}};  // out of order on purpose
  const std::vector<Phase> phases = cut_phases(faults, 10);
  ASSERT_EQ(phases.size(), 4u);
  EXPECT_EQ(phases[0].name, "before");
  EXPECT_EQ(phases[0].end_s, 2);
  EXPECT_EQ(phases[1].name, "during a");
  EXPECT_EQ(phases[2].name, "after a");
  EXPECT_EQ(phases[2].first_s, 4);
  EXPECT_EQ(phases[2].end_s, 7);
  EXPECT_EQ(phases[3].name, "during b");
  EXPECT_EQ(phases[3].first_s, 7);
  EXPECT_EQ(phases[3].end_s, 10);  // still on: to the end, and no "after b"
}

TEST(SloPhases, ShortFaultGetsOneSecondAndFaultAtZeroHasNoBefore) {
  std::vector<Phase> phases = cut_phases({{"blip", 4.2, 4.4}}, 10);
  ASSERT_EQ(phases.size(), 3u);
  EXPECT_EQ(phases[1].first_s, 4);
  EXPECT_EQ(phases[1].end_s, 5);
  phases = cut_phases({{"early", 0.1, 2}}, 5);
  ASSERT_EQ(phases.size(), 2u);
  EXPECT_EQ(phases[0].name, "during early");
}

TEST(SloJudge, PhasePercentileIsExactFromMergedHistogramsNotAnAverage) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p95 < 20ms"));
  Seconds seconds;
  // Second 0: 90 fast, 10 slow (its own p95 is 50 ms); seconds 1 and 2 all
  // fast. Averaging per-second p95s gives ~17.7 ms; over the 300 responses,
  // 10 slow ones are above the 95th percentile, so p95 is 1 ms.
  add(seconds, 0, 90, 1'000);
  add(seconds, 0, 10, 50'000);
  add(seconds, 1, 100, 1'000);
  add(seconds, 2, 100, 1'000);
  add(seconds, 3, 100, 50'000);  // during the fault
  const SloJudgment j = judge_objectives(plan, seconds, {{"slow-db", 3, 4}});
  ASSERT_EQ(j.phases.size(), 2u);
  const ThresholdOutcome& before = j.objectives[0].phases[0].outcome;
  metrics::Histogram merged;
  for (uint64_t i = 0; i < 3; ++i)
    merged.merge(seconds[i].latency);
  EXPECT_EQ(before.observed, static_cast<double>(merged.value_at(0.95)));
  EXPECT_LT(before.observed, 1'100);
  EXPECT_TRUE(before.passed);
  const ThresholdOutcome& during = j.objectives[0].phases[1].outcome;
  EXPECT_FALSE(during.passed);
  EXPECT_GE(during.observed, 50'000);
  EXPECT_FALSE(j.objectives[0].passed);
}

TEST(SloJudge, NoDataInAPhaseFails) {
  // The target is down during the fault: errors, no latency at all.
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 20ms"));
  Seconds seconds = run_of(3);
  seconds[3].errors = 50;
  seconds[3].interval_index = 3;
  add(seconds, 4, 100, 1'000);
  const SloJudgment j = judge_objectives(plan, seconds, {{"down", 3, 4}});
  ASSERT_EQ(j.objectives[0].phases.size(), 3u);
  EXPECT_FALSE(j.objectives[0].phases[1].outcome.has_data);
  EXPECT_FALSE(j.objectives[0].phases[1].outcome.passed);
  EXPECT_TRUE(j.objectives[0].phases[2].outcome.passed);
}

TEST(SloJudge, SlidingWindowsReportTheWorst) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 100ms", /*window_s=*/3));
  plan.objectives.push_back(objective("latency.p99 < 100ms", /*window_s=*/20));
  // 10 seconds, one slow second at 6: its windows are 4-7, 5-8, 6-9.
  const SloJudgment j = judge_objectives(plan, run_of(10, {6}), {});
  const ObjectiveJudgment& o = j.objectives[0];
  EXPECT_EQ(o.windows, 8u);  // starts 0..7
  EXPECT_EQ(o.windows_failed, 3u);
  ASSERT_TRUE(o.worst_window);
  EXPECT_GE(o.worst_window->outcome.observed, 300'000);
  EXPECT_GE(o.worst_window->first_s, 4);
  EXPECT_LE(o.worst_window->first_s, 6);
  EXPECT_EQ(o.worst_window->end_s - o.worst_window->first_s, 3);
  EXPECT_FALSE(o.passed);
  // A window longer than the run is the whole run, once.
  EXPECT_EQ(j.objectives[1].windows, 1u);
  EXPECT_EQ(j.objectives[1].worst_window->end_s, 10);
}

TEST(SloJudge, WorstWindowOfALowerBoundIsTheLowest) {
  Plan plan;
  plan.objectives.push_back(objective("requests > 250", /*window_s=*/3));
  Seconds seconds = run_of(6);
  seconds[4].requests = 10;
  const SloJudgment j = judge_objectives(plan, seconds, {});
  ASSERT_TRUE(j.objectives[0].worst_window);
  EXPECT_EQ(j.objectives[0].worst_window->outcome.observed, 210);
  EXPECT_EQ(j.objectives[0].windows_failed, 2u);  // the windows from 2 s and 3 s
}

TEST(SloJudge, AShortLastSecondCountsWithTheOneBefore) {
  Plan plan;
  plan.objectives.push_back(objective("requests >= 100", /*window_s=*/1));
  Seconds seconds = run_of(3);
  seconds[3].interval_index = 3;  // the stragglers after a 3 s run: nothing came
  SloJudgment j = judge_objectives(plan, seconds, {}, /*duration_s=*/3.0);
  ASSERT_EQ(j.phases.size(), 1u);
  EXPECT_EQ(j.phases[0].end_s, 3);
  EXPECT_EQ(j.objectives[0].windows, 3u);
  EXPECT_TRUE(j.objectives[0].passed);
  // A last second over half a second long (a stop 3.6 s in) is judged alone.
  j = judge_objectives(plan, seconds, {}, /*duration_s=*/3.6);
  EXPECT_EQ(j.phases[0].end_s, 4);
  EXPECT_EQ(j.objectives[0].windows_failed, 1u);
}

TEST(SloJudge, NoSecondsAtAllFails) {
  Plan plan;
  plan.objectives.push_back(objective("error_rate < 1%"));
  const SloJudgment j = judge_objectives(plan, {}, {});
  EXPECT_TRUE(j.phases.empty());
  EXPECT_FALSE(j.passed());
}

TEST(SloRecovery, RecoveredAfterHoldingAWholeRecoveryWindow) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 100ms", 10, /*recovery_window_s=*/3));
  // Fault 3 s to 6 s; still slow on 6 and 7; fine from 8 on.
  const SloJudgment j = judge_objectives(plan, run_of(14, {3, 4, 5, 6, 7}), {{"kill", 3.01, 6.02}});
  const Recovery& r = j.objectives[0].recovery[0];
  EXPECT_EQ(r.status, Recovery::Status::kRecovered);
  EXPECT_EQ(r.recovered_at_s, 8);
  EXPECT_NEAR(r.time_s, 8 - 6.02, 1e-9);
}

TEST(SloRecovery, HeldAllAlongIsZero) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 100ms", 10, 2));
  const SloJudgment j = judge_objectives(plan, run_of(10), {{"noop", 3, 5}});
  EXPECT_EQ(j.objectives[0].recovery[0].status, Recovery::Status::kRecovered);
  EXPECT_EQ(j.objectives[0].recovery[0].time_s, 0);
  EXPECT_TRUE(j.objectives[0].passed);
}

TEST(SloRecovery, ABadSecondRestartsTheRecoveryWindow) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 100ms", 10, 3));
  const SloJudgment j = judge_objectives(plan, run_of(14, {3, 4, 7}), {{"kill", 3, 5}});
  const Recovery& r = j.objectives[0].recovery[0];
  EXPECT_EQ(r.status, Recovery::Status::kRecovered);
  EXPECT_EQ(r.recovered_at_s, 8);  // 5, 6 held, 7 did not; 8, 9, 10 held
  EXPECT_EQ(r.time_s, 3);
}

TEST(SloRecovery, NeverRecoveredFailsTheObjective) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 100ms", 10, 2));
  const SloJudgment j = judge_objectives(plan, run_of(10, {3, 4, 5, 6, 7, 8, 9}), {{"kill", 3, 5}});
  const Recovery& r = j.objectives[0].recovery[0];
  EXPECT_EQ(r.status, Recovery::Status::kNotRecovered);
  EXPECT_EQ(r.time_s, 5);  // watched from 5 s to the end at 10 s
  EXPECT_EQ(r.until, "the end of the run");
  EXPECT_FALSE(j.objectives[0].passed);
  EXPECT_FALSE(j.passed());
}

TEST(SloRecovery, TooLittleTimeLeftIsNotRecovered) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 100ms", 10, 5));
  // Fine after the fault, but only 3 s of run remain for a 5 s recovery window.
  const SloJudgment j = judge_objectives(plan, run_of(10), {{"kill", 3, 7}});
  EXPECT_EQ(j.objectives[0].recovery[0].status, Recovery::Status::kNotRecovered);
}

TEST(SloRecovery, FaultStillOnAtTheEndHasNoRecovery) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 100ms", 10, 2));
  const SloJudgment j = judge_objectives(plan, run_of(10), {{"kill", 3, -1}});
  const Recovery& r = j.objectives[0].recovery[0];
  EXPECT_EQ(r.status, Recovery::Status::kStillOn);
  EXPECT_TRUE(j.objectives[0].passed);  // held in every phase; nothing to recover from
}

TEST(SloRecovery, TheNextFaultEndsTheWatch) {
  Plan plan;
  plan.objectives.push_back(objective("latency.p99 < 100ms", 10, 3));
  const SloJudgment j =
      judge_objectives(plan, run_of(20, {2, 3, 4, 5, 6}), {{"a", 2, 4}, {"b", 6, 8}});
  const Recovery& a = j.objectives[0].recovery[0];
  EXPECT_EQ(a.status, Recovery::Status::kNotRecovered);
  EXPECT_EQ(a.until, "the next fault (b)");
  EXPECT_EQ(j.objectives[0].recovery[1].status, Recovery::Status::kRecovered);
  EXPECT_EQ(j.objectives[0].recovery[1].recovered_at_s, 8);
}

TEST(SloGuard, TripsOnceFailingLongerThanFor) {
  Plan plan;
  Objective guard = objective("error_rate < 10%");
  guard.guard = true;
  guard.guard_for_s = 2;
  plan.objectives.push_back(guard);
  plan.objectives.push_back(objective("latency.p99 < 1ms"));  // not a guard: never trips
  GuardMonitor monitor(plan);
  auto second = [](uint64_t requests, uint64_t errors) {
    metrics::Snapshot s;
    s.requests = requests;
    s.errors = errors;
    s.latency.record_n(5'000, requests);
    return s;
  };
  EXPECT_FALSE(monitor.observe(0, second(100, 0)));
  EXPECT_FALSE(monitor.observe(1, second(50, 50)));  // 1 s failing
  EXPECT_FALSE(monitor.observe(2, second(50, 50)));  // 2 s: not longer than for: 2s
  EXPECT_FALSE(monitor.observe(3, second(100, 0)));  // passes: the count restarts
  EXPECT_FALSE(monitor.observe(4, second(50, 50)));  // 1
  EXPECT_FALSE(monitor.observe(5, second(0, 0)));    // no data: neither fails nor clears
  EXPECT_FALSE(monitor.observe(6, second(50, 50)));  // 2
  const std::optional<GuardTrip> trip = monitor.observe(7, second(50, 50));  // 3 > 2
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->second, 7u);
  EXPECT_EQ(trip->failing_s, 3);
  EXPECT_EQ(trip->observed_text, "50.000%");
  EXPECT_NE(trip->reason.find("error_rate < 10%"), std::string::npos);
  EXPECT_FALSE(monitor.observe(8, second(50, 50)));  // the first trip is the one
  EXPECT_TRUE(monitor.trip());
}

TEST(SloGuard, ForZeroTripsOnTheFirstFailingSecond) {
  Plan plan;
  Objective guard = objective("latency.p50 < 10ms");
  guard.guard = true;
  plan.objectives.push_back(guard);
  GuardMonitor monitor(plan);
  metrics::Snapshot s;
  s.requests = 10;
  s.latency.record_n(40'000, 10);
  const std::optional<GuardTrip> trip = monitor.observe(0, s);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->failing_s, 1);
}

std::unique_ptr<Plan> load(std::string_view slo) {
  const std::string text = std::string(R"(target: http://127.0.0.1:9
flows:
  shop:
    steps:
      - name: login
        get: /login
)") + std::string(slo);
  return parse_scenario(text, "s.yaml", ".");
}

std::string load_error(std::string_view slo) {
  try {
    load(slo);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(SloLoader, ListAndMapForms) {
  std::unique_ptr<Plan> plan = load("slo: [\"latency.p99 < 250ms\", \"error_rate < 1%\"]\n");
  ASSERT_EQ(plan->objectives.size(), 2u);
  EXPECT_EQ(plan->objectives[0].window_s, 10);
  EXPECT_EQ(plan->objectives[0].recovery_window_s, 5);
  EXPECT_EQ(plan->objectives[1].threshold.location, "s.yaml:7:30");

  plan = load(R"(slo:
  window: 20s
  recovery_window: 3s
  objectives:
    - latency.p99{step=login} < 250ms
    - objective: error_rate < 1%
      window: 5s
      guard: true
      for: 2s
  guards:
    - objective: error_rate < 50%
)");
  ASSERT_EQ(plan->objectives.size(), 3u);
  EXPECT_EQ(plan->objectives[0].threshold.step, "shop/login");
  EXPECT_EQ(plan->objectives[0].window_s, 20);
  EXPECT_EQ(plan->objectives[0].recovery_window_s, 3);
  EXPECT_FALSE(plan->objectives[0].guard);
  EXPECT_EQ(plan->objectives[1].window_s, 5);
  EXPECT_TRUE(plan->objectives[1].guard);
  EXPECT_EQ(plan->objectives[1].guard_for_s, 2);
  EXPECT_TRUE(plan->objectives[2].guard);
  EXPECT_EQ(plan->objectives[2].guard_for_s, 0);
}

TEST(SloLoader, ErrorsNameFileLineAndColumn) {
  EXPECT_EQ(
      load_error("slo: [\"latency.p99 < 250\"]\n"),
      "s.yaml:7:22: latency \"250\" has no unit; expected a number and a unit, such as 250ms");
  EXPECT_EQ(load_error("slo: [\"latency.p99{step=logn} < 2s\"]\n"),
            "s.yaml:7:25: no step is named \"logn\" (did you mean \"shop/login\"?); expected one "
            "of: shop/login");
  EXPECT_EQ(load_error("slo:\n  window: 1500ms\n  objectives: [\"error_rate < 1%\"]\n"),
            "s.yaml:8:11: window \"1500ms\" is not a whole number of seconds; expected e.g. 5s "
            "(SLOs are judged on the run's per-second data)");
  EXPECT_EQ(load_error("slo:\n  recovery_window: 0s\n  objectives: [\"error_rate < 1%\"]\n"),
            "s.yaml:8:20: recovery_window is 0s; expected at least 1s");
  EXPECT_EQ(load_error("slo:\n  objectives:\n    - objective: error_rate < 1%\n      for: 3s\n"),
            "s.yaml:10:7: for: applies to abort guards; expected guard: true beside it (or the "
            "objective under guards:)");
  EXPECT_EQ(load_error("slo:\n  windw: 3s\n"),
            "s.yaml:8:3: unknown key \"windw\" in slo (did you mean \"window\"?); expected one of: "
            "window, recovery_window, objectives, guards, tolerance");
  EXPECT_EQ(load_error("slo:\n  window: 3s\n"),
            "s.yaml:8:3: slo has no objectives: and no guards:; expected e.g. objectives: "
            "[\"latency.p99 < 250ms\"]");
  EXPECT_EQ(load_error("slo:\n  guards:\n    - objective: error_rate < 1%\n      guard: false\n"),
            "s.yaml:10:7: unknown key \"guard\" in guard; expected one of: objective, window, "
            "recovery_window, for");
  EXPECT_EQ(load_error("slo:\n  - checks{check=a: b} > 99%\n"),
            "s.yaml:8:5: objective is a map (YAML reads \": \" as a key); expected a threshold "
            "line, in quotes when it contains \": \"");
  EXPECT_EQ(load_error("slo: 5\n"),
            "s.yaml:7:6: slo is a single value; expected a list of objectives such as "
            "[\"latency.p99 < 250ms\"], or a map with window:, recovery_window:, objectives: and "
            "guards:");
}

}  // namespace slo_test
}  // namespace millstone::scenario
