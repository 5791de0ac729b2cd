#include "scenario/slo_guard.h"

#include <fmt/format.h>

#include "scenario/thresholds.h"

namespace millstone::scenario {

GuardMonitor::GuardMonitor(const Plan& plan) : plan_(plan) {
  for (const Objective& objective : plan.objectives) {
    if (objective.guard) guards_.push_back({&objective});
  }
}

std::optional<GuardTrip> GuardMonitor::observe(uint64_t index, const metrics::Snapshot& second) {
  if (trip_) return std::nullopt;
  for (Watch& watch : guards_) {
    const ThresholdOutcome o = evaluate_threshold(plan_, watch.objective->threshold, second, 1.0);
    // Guards act on evidence: a second without samples (think time, a step
    // not running yet) neither fails nor clears them.
    if (!o.has_data) continue;
    watch.failing = o.passed ? 0 : watch.failing + 1;
    if (o.passed || watch.failing <= watch.objective->guard_for_s) continue;
    GuardTrip trip;
    trip.objective = watch.objective;
    trip.second = index;
    trip.failing_s = watch.failing;
    trip.observed_text = o.observed_text;
    trip.reason = fmt::format(
        "abort guard \"{}\" ({}) failed for {}s in a row, longer than its for: {}s (second {}: "
        "observed {})",
        watch.objective->threshold.text, watch.objective->threshold.location, watch.failing,
        watch.objective->guard_for_s, index, o.observed_text);
    trip_ = trip;
    return trip;
  }
  return std::nullopt;
}

}  // namespace millstone::scenario
