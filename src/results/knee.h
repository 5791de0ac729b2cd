#pragma once
// The saturation knee of a ramp (docs/scenarios.md#saturation-knee): the
// point where the target stopped turning more load into more throughput and
// turned it into latency instead, found on the run's per-second timeline.
//
// The rule, on consecutive windows of `window_s` whole seconds (requests per
// second over the window, p99 of the window's merged latency histogram, mean
// VUs): the knee is the first window i whose base (window i-1)
//   - carried at least `min_requests`, and had at least (1 + min_rps_rise)
//     times the throughput of the lowest window before it (the ramp was still
//     buying throughput up to there),
// and in which, and in each of the `hold_windows` - 1 windows after it,
//   - throughput stayed within (1 + max_rps_growth) times the base's, and
//   - p99 was at least (1 + min_p99_rise) times the base's and at least
//     `min_p99_rise_ms` above it.
// A flat or noisy run has no rising throughput to stop, so it has no knee.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/snapshot.h"

namespace millstone::results {

struct LoadWindow {
  int64_t first_s = 0;
  int64_t end_s = 0;
  uint64_t requests = 0;
  double rps = 0;
  double p99_ms = 0;
  double vus = 0;  // mean over the window's seconds
};

struct KneeRule {
  int64_t window_s = 3;
  uint64_t min_requests = 30;
  double min_rps_rise = 0.20;
  double max_rps_growth = 0.10;
  double min_p99_rise = 0.25;
  double min_p99_rise_ms = 1.0;
  int hold_windows = 2;
};

struct Knee {
  int64_t second = 0;  // where the knee window starts
  double rps = 0;      // the base window's throughput: the most the ramp got
  double vus = 0;      // at the knee window
  double p99_before_ms = 0;
  double p99_after_ms = 0;  // at the last window that held the rule
  double rps_growth = 0;    // from the base to that window, a fraction
  int64_t base_first_s = 0;
  int64_t held_end_s = 0;
};

// The whole seconds of the run (the partial last one left out) in windows
// of `window_s`; a window missing seconds (the run ended) is left out.
std::vector<LoadWindow> load_windows(const std::map<uint64_t, metrics::Snapshot>& seconds,
                                     double duration_s, int64_t window_s);

std::optional<Knee> find_knee(const std::vector<LoadWindow>& windows, const KneeRule& rule = {});

// "saturation knee at ~412 rps / 40 VUs, at t=12s: p99 rose from 6.1 to 48.0 ms
// while rps grew only 1.2%"
std::string knee_text(const Knee& knee);
nlohmann::json knee_json(const Knee& knee, const KneeRule& rule = {});

}  // namespace millstone::results
