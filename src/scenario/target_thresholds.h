#pragma once
// Thresholds and SLOs on the monitored target's series
// (docs/monitoring.md#thresholds-and-slos): `target.cpu < 80%`,
// `target.api.db_pool_in_use.p95 < 40`. A series' per-second points over a
// span of the run are aggregated (max by default, min, avg or a percentile);
// no points at all (a dead endpoint, a metric never exposed) is "no data":
// the threshold is left unevaluated and warned about, never failed, because
// monitoring never changes a run's verdict by itself.
#include <cstdint>
#include <string>
#include <vector>

#include "monitor/series.h"
#include "scenario/plan.h"
#include "scenario/thresholds.h"

namespace millstone::scenario {

// The series of `series` that `target` selects: the node series of every
// endpoint (or of the one named), or a selected series by metric name (every
// label set) or by its full `name{labels}`.
bool target_series_matches(const Threshold::TargetSeries& target, const monitor::Series& series);

// `threshold` (a kTarget one) over the points of seconds [first_s, end_s);
// end_s < 0: to the end.
ThresholdOutcome evaluate_target_threshold(const Threshold& threshold,
                                           const std::vector<monitor::Series>& series,
                                           int64_t first_s = 0, int64_t end_s = -1);

// "" when a kTarget threshold can be judged with these endpoints, else why
// not ("target.cpu < 80% needs a monitored endpoint..."), for a config error.
std::string target_threshold_problem(const Threshold& threshold,
                                     const std::vector<monitor::Target>& endpoints);

// "target cpu", "target api.db_pool_in_use": what the summary calls the series.
std::string target_series_label(const Threshold::TargetSeries& target);

}  // namespace millstone::scenario
