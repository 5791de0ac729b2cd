#include "results/knee.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace millstone::results {

std::vector<LoadWindow> load_windows(const std::map<uint64_t, metrics::Snapshot>& seconds,
                                     double duration_s, int64_t window_s) {
  std::vector<LoadWindow> windows;
  if (seconds.empty() || window_s <= 0) return windows;
  // Whole seconds only: the last one is usually cut short by the run's end.
  const auto whole = static_cast<int64_t>(std::floor(duration_s + 1e-6));
  for (int64_t first = 0; first + window_s <= whole; first += window_s) {
    LoadWindow w;
    w.first_s = first;
    w.end_s = first + window_s;
    metrics::Histogram latency;
    double vus = 0;
    for (int64_t s = first; s < w.end_s; ++s) {
      const auto it = seconds.find(static_cast<uint64_t>(s));
      if (it == seconds.end()) continue;  // a second with nothing at all
      w.requests += it->second.requests;
      latency.merge(it->second.latency);
      vus += static_cast<double>(it->second.vus);
    }
    w.rps = static_cast<double>(w.requests) / static_cast<double>(window_s);
    w.p99_ms = latency.count() ? static_cast<double>(latency.value_at(0.99)) / 1e3 : 0;
    w.vus = vus / static_cast<double>(window_s);
    windows.push_back(w);
  }
  return windows;
}

std::optional<Knee> find_knee(const std::vector<LoadWindow>& windows, const KneeRule& rule) {
  const size_t hold = static_cast<size_t>(std::max(1, rule.hold_windows));
  double lowest_rps = INFINITY;
  for (size_t i = 1; i + hold <= windows.size(); ++i) {
    const LoadWindow& base = windows[i - 1];
    lowest_rps = std::min(lowest_rps, base.rps);
    if (base.requests < rule.min_requests || base.p99_ms <= 0) continue;
    if (base.rps < (1 + rule.min_rps_rise) * lowest_rps) continue;
    bool holds = true;
    for (size_t j = i; j < i + hold && holds; ++j) {
      const LoadWindow& w = windows[j];
      holds = w.requests >= rule.min_requests && w.rps <= (1 + rule.max_rps_growth) * base.rps &&
              w.p99_ms >= (1 + rule.min_p99_rise) * base.p99_ms &&
              w.p99_ms - base.p99_ms >= rule.min_p99_rise_ms;
    }
    if (!holds) continue;
    const LoadWindow& last = windows[i + hold - 1];
    Knee k;
    k.second = windows[i].first_s;
    k.rps = base.rps;
    k.vus = windows[i].vus;
    k.p99_before_ms = base.p99_ms;
    k.p99_after_ms = last.p99_ms;
    k.rps_growth = base.rps > 0 ? last.rps / base.rps - 1 : 0;
    k.base_first_s = base.first_s;
    k.held_end_s = last.end_s;
    return k;
  }
  return std::nullopt;
}

std::string knee_text(const Knee& k) {
  return fmt::format(
      "saturation knee at ~{:.0f} rps / {:.0f} VUs, at t={}s: p99 rose from {:.1f} to {:.1f} ms "
      "while rps {} {:.1f}%",
      k.rps, k.vus, k.second, k.p99_before_ms, k.p99_after_ms,
      k.rps_growth >= 0 ? "grew only" : "fell", std::fabs(k.rps_growth) * 100);
}

nlohmann::json knee_json(const Knee& k, const KneeRule& rule) {
  return {{"second", k.second},
          {"rps", k.rps},
          {"vus", k.vus},
          {"p99_before_ms", k.p99_before_ms},
          {"p99_after_ms", k.p99_after_ms},
          {"rps_growth_percent", k.rps_growth * 100},
          {"from_s", k.base_first_s},
          {"to_s", k.held_end_s},
          {"window_s", rule.window_s},
          {"text", knee_text(k)}};
}

}  // namespace millstone::results
