#include "scenario/target_thresholds.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <re2/re2.h>

namespace millstone::scenario {

namespace {

using Kind = Threshold::TargetSeries::Kind;
using Aggregate = Threshold::TargetSeries::Aggregate;

// The node_exporter series' names (monitor/series.cc).
const char* node_series_name(Kind kind) {
  switch (kind) {
    case Kind::kCpu:
      return "cpu_percent";
    case Kind::kMemory:
      return "memory_used_bytes";
    case Kind::kNetworkRx:
      return "network_rx_bytes_per_s";
    case Kind::kNetworkTx:
      return "network_tx_bytes_per_s";
    case Kind::kSelected:
      break;
  }
  return "";
}

std::string bytes_text(double bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t unit = 0;
  while (std::fabs(bytes) >= 1024 && unit + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f}B", bytes) : fmt::format("{:.1f}{}", bytes, kUnits[unit]);
}

std::string value_text(Kind kind, double value) {
  switch (kind) {
    case Kind::kCpu:
      return fmt::format("{:.1f}%", value);
    case Kind::kMemory:
      return bytes_text(value);
    case Kind::kNetworkRx:
    case Kind::kNetworkTx:
      return bytes_text(value) + "/s";
    case Kind::kSelected:
      break;
  }
  return fmt::format("{:.6g}", value);
}

std::string aggregate_name(const Threshold::TargetSeries& target) {
  switch (target.aggregate) {
    case Aggregate::kMax:
      return "max";
    case Aggregate::kMin:
      return "min";
    case Aggregate::kAvg:
      return "avg";
    case Aggregate::kPercentile:
      return fmt::format("p{:g}", target.percentile);
  }
  return "max";
}

// The metric name of a series key `name{labels}`.
std::string_view metric_of(std::string_view key) {
  return key.substr(0, std::min(key.size(), key.find('{')));
}

}  // namespace

bool target_series_matches(const Threshold::TargetSeries& target, const monitor::Series& series) {
  if (!target.monitor.empty() && series.target != target.monitor) return false;
  if (target.kind != Kind::kSelected) {
    return series.kind == "node" && series.name == node_series_name(target.kind);
  }
  if (series.kind == "node") return false;
  if (target.series.find('{') != std::string::npos) return series.name == target.series;
  return metric_of(series.name) == target.series;
}

std::string target_series_label(const Threshold::TargetSeries& target) {
  std::string what;
  switch (target.kind) {
    case Kind::kCpu:
      what = "cpu";
      break;
    case Kind::kMemory:
      what = "memory";
      break;
    case Kind::kNetworkRx:
      what = "network.rx";
      break;
    case Kind::kNetworkTx:
      what = "network.tx";
      break;
    case Kind::kSelected:
      what = target.series;
      break;
  }
  return target.monitor.empty() ? what : target.monitor + "." + what;
}

ThresholdOutcome evaluate_target_threshold(const Threshold& threshold,
                                           const std::vector<monitor::Series>& series,
                                           int64_t first_s, int64_t end_s) {
  const Threshold::TargetSeries& target = threshold.target;
  ThresholdOutcome o;
  o.threshold = &threshold;
  std::vector<double> values;
  for (const monitor::Series& s : series) {
    if (!target_series_matches(target, s)) continue;
    for (const monitor::Point& p : s.points) {
      const auto second = static_cast<int64_t>(p.second);
      if (second < first_s || (end_s >= 0 && second >= end_s)) continue;
      if (std::isfinite(p.value)) values.push_back(p.value);
    }
  }
  if (values.empty()) {
    o.unevaluated = true;
    o.observed_text = "no data";
    return o;
  }
  o.has_data = true;
  switch (target.aggregate) {
    case Aggregate::kMax:
      o.observed = *std::max_element(values.begin(), values.end());
      break;
    case Aggregate::kMin:
      o.observed = *std::min_element(values.begin(), values.end());
      break;
    case Aggregate::kAvg: {
      double sum = 0;
      for (double v : values)
        sum += v;
      o.observed = sum / static_cast<double>(values.size());
      break;
    }
    case Aggregate::kPercentile: {
      // Nearest rank: the smallest point with at least p% of the points at or below it.
      std::sort(values.begin(), values.end());
      const double rank = std::ceil(target.percentile / 100.0 * static_cast<double>(values.size()));
      const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, 1.0 * values.size())) - 1;
      o.observed = values[index];
      break;
    }
  }
  o.passed = compare_to_limit(o.observed, threshold.op, threshold.value);
  o.observed_text =
      fmt::format("{} ({} of {} {})", value_text(target.kind, o.observed), aggregate_name(target),
                  values.size(), values.size() == 1 ? "point" : "points");
  return o;
}

std::string target_threshold_problem(const Threshold& threshold,
                                     const std::vector<monitor::Target>& endpoints) {
  const Threshold::TargetSeries& target = threshold.target;
  const std::string where = threshold.location.empty() ? "" : threshold.location + ": ";
  if (endpoints.empty()) {
    return fmt::format(
        "{}threshold \"{}\" is on the target's series, but nothing is monitored; "
        "expected monitor: in the scenario file or --monitor URL",
        where, threshold.text);
  }
  if (target.monitor.empty()) return "";
  const auto endpoint =
      std::find_if(endpoints.begin(), endpoints.end(),
                   [&](const monitor::Target& t) { return t.name == target.monitor; });
  if (endpoint == endpoints.end()) {
    std::string names;
    for (const monitor::Target& t : endpoints)
      names += (names.empty() ? "" : ", ") + t.name;
    return fmt::format(
        "{}threshold \"{}\": no monitored endpoint is named \"{}\"; expected one "
        "of: {}",
        where, threshold.text, target.monitor, names);
  }
  if (target.kind != Kind::kSelected || endpoint->metrics.empty()) return "";
  // A metric the endpoint's metrics: patterns leave out could never have data.
  const std::string metric(metric_of(target.series));
  for (const std::string& pattern : endpoint->metrics) {
    const RE2 re(pattern, RE2::Quiet);
    if (re.ok() && RE2::FullMatch(metric, re)) return "";
  }
  std::string patterns;
  for (const std::string& pattern : endpoint->metrics)
    patterns += (patterns.empty() ? "" : ", ") + pattern;
  return fmt::format(
      "{}threshold \"{}\": monitor {} keeps only metrics matching {}, not {}; "
      "expected a metric it keeps (or add it to its metrics:)",
      where, threshold.text, target.monitor, patterns, metric);
}

}  // namespace millstone::scenario
