#pragma once
// Judges a run's totals against the scenario's thresholds (CI gate: exit 99).
#include <string>
#include <vector>

#include "metrics/snapshot.h"
#include "monitor/series.h"
#include "scenario/plan.h"

namespace millstone::scenario {

struct ThresholdOutcome {
  const Threshold* threshold = nullptr;
  bool passed = false;
  bool has_data = false;  // no samples (e.g. no requests) fails the threshold ...
  // ... except a target series with no points (docs/monitoring.md): left
  // unevaluated, warned about, and neither passed nor failed.
  bool unevaluated = false;
  double observed = 0;        // same unit as Threshold::value
  std::string observed_text;  // "212.4ms", "99.95%", "1,204"
};

// observed OP limit.
bool compare_to_limit(double observed, Threshold::Op op, double limit);

// One threshold over `total`, which may be the whole run or any merge of its
// seconds (an SLO's phase or window); rps divides by `duration_s`.
ThresholdOutcome evaluate_threshold(const Plan& plan, const Threshold& threshold,
                                    const metrics::Snapshot& total, double duration_s);
// `monitored`: the target's series for target.* thresholds (null: none were
// scraped, so those are unevaluated).
std::vector<ThresholdOutcome> evaluate_thresholds(
    const Plan& plan, const metrics::Snapshot& total, double duration_s,
    const monitor::MonitorResult* monitored = nullptr);
// Not failed: passed, or unevaluated for lack of data from the target.
inline bool threshold_ok(const ThresholdOutcome& o) {
  return o.passed || o.unevaluated;
}

}  // namespace millstone::scenario
