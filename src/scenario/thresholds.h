#pragma once
// Judges a run's totals against the scenario's thresholds (CI gate: exit 99).
#include <string>
#include <vector>

#include "metrics/snapshot.h"
#include "scenario/plan.h"

namespace millstone::scenario {

struct ThresholdOutcome {
  const Threshold* threshold = nullptr;
  bool passed = false;
  bool has_data = false;      // no samples (e.g. no requests) fails the threshold
  double observed = 0;        // same unit as Threshold::value
  std::string observed_text;  // "212.4ms", "99.95%", "1,204"
};

// One threshold over `total`, which may be the whole run or any merge of its
// seconds (an SLO's phase or window); rps divides by `duration_s`.
ThresholdOutcome evaluate_threshold(const Plan& plan, const Threshold& threshold,
                                    const metrics::Snapshot& total, double duration_s);
std::vector<ThresholdOutcome> evaluate_thresholds(const Plan& plan, const metrics::Snapshot& total,
                                                  double duration_s);

}  // namespace millstone::scenario
