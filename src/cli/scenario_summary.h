#pragma once
// The scenario parts of the summary: per-step latency, checks with sampled
// failures, flows, and thresholds with their verdicts.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/snapshot.h"
#include "scenario/plan.h"
#include "scenario/thresholds.h"

namespace millstone::cli {

// The step table shows `percentiles` (--percentiles) and the max.
std::string format_scenario_summary(const scenario::Plan& plan, const metrics::Snapshot& total,
                                    const std::vector<scenario::ThresholdOutcome>& thresholds,
                                    const std::vector<double>& percentiles);
void add_scenario_json(const scenario::Plan& plan, const metrics::Snapshot& total,
                       const std::vector<scenario::ThresholdOutcome>& thresholds,
                       nlohmann::json* summary);

}  // namespace millstone::cli
