#include "monitor/series.h"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>
#include <re2/re2.h>

namespace millstone::monitor {

struct SeriesBuilder::Selection {
  std::string pattern;
  std::unique_ptr<RE2> regex;
};

struct SeriesBuilder::Track {
  Series series;
  // Per second: the sum and count of the points that fell in it (several
  // when the interval is under a second), so a second holds their mean.
  std::map<uint64_t, std::pair<double, uint64_t>> seconds;
  std::optional<std::pair<double, double>> last_counter;  // (at_s, value)
};

namespace {

constexpr const char* kNodeCpu = "cpu_percent";
constexpr const char* kNodeMemory = "memory_used_bytes";
constexpr const char* kNodeRx = "network_rx_bytes_per_s";
constexpr const char* kNodeTx = "network_tx_bytes_per_s";

// The second a scrape at `at_s` closes: the scrape at the end of second n
// (n + 1 seconds after the start, give or take its own delay) closes n.
std::optional<uint64_t> second_closed_by(double at_s) {
  const double end = std::floor(at_s + 0.5);
  if (end < 1) return std::nullopt;  // the baseline scrape at the start
  return static_cast<uint64_t>(end) - 1;
}

}  // namespace

const char* node_series_title(const std::string& name) {
  if (name == kNodeCpu) return "target CPU busy";
  if (name == kNodeMemory) return "target memory used";
  if (name == kNodeRx) return "target network received";
  if (name == kNodeTx) return "target network sent";
  return "";
}

std::string TargetOutcome::warning() const {
  const std::string who = fmt::format("monitor {} ({})", target.name, target.url);
  if (failed > 0) {
    return fmt::format("{}: {} of {} scrapes failed, the first: {}", who, failed, scrapes,
                       first_error);
  }
  if (scrapes == 0) return fmt::format("{}: the run ended before the first scrape", who);
  if (!target.metrics.empty() && matched_samples == 0) {
    std::string patterns;
    for (const std::string& m : target.metrics)
      patterns += (patterns.empty() ? "" : ", ") + m;
    return fmt::format("{}: no metric matched metrics: [{}]", who, patterns);
  }
  return "";
}

SeriesBuilder::SeriesBuilder(Target target) : target_(std::move(target)) {
  outcome_.target = target_;
  for (const std::string& pattern : target_.metrics) {
    RE2::Options options;
    options.set_log_errors(false);
    auto regex = std::make_unique<RE2>(pattern, options);
    if (!regex->ok()) {
      throw std::invalid_argument(fmt::format("metrics pattern '{}': {}", pattern, regex->error()));
    }
    selections_.push_back({pattern, std::move(regex)});
  }
}

SeriesBuilder::~SeriesBuilder() = default;
SeriesBuilder::SeriesBuilder(SeriesBuilder&&) noexcept = default;
SeriesBuilder& SeriesBuilder::operator=(SeriesBuilder&&) noexcept = default;

SeriesBuilder::Track& SeriesBuilder::track(const std::string& name, const std::string& kind,
                                           const std::string& unit) {
  auto it = track_index_.find(name);
  if (it != track_index_.end()) return tracks_[it->second];
  track_index_.emplace(name, tracks_.size());
  Track& t = tracks_.emplace_back();
  t.series.target = target_.name;
  t.series.name = name;
  t.series.kind = kind;
  t.series.unit = unit;
  return t;
}

void SeriesBuilder::put(Track& t, double at_s, double value) {
  if (!std::isfinite(value)) return;  // JSON has no NaN; a gap says as much
  const std::optional<uint64_t> second = second_closed_by(at_s);
  if (!second) return;
  auto& [sum, count] = t.seconds[*second];
  sum += value;
  ++count;
}

void SeriesBuilder::rate(Track& t, double at_s, double counter) {
  const std::optional<std::pair<double, double>> last = t.last_counter;
  t.last_counter = std::make_pair(at_s, counter);
  if (!last || at_s <= last->first) return;
  // A counter that went down was reset (the process restarted): no rate
  // for that interval rather than a negative one.
  if (counter < last->second) return;
  put(t, at_s, (counter - last->second) / (at_s - last->first));
}

void SeriesBuilder::add(double at_s, const Exposition& exposition) {
  ++outcome_.scrapes;
  // node_exporter's figures, summed over CPUs and (non-loopback) devices.
  double cpu_all = 0;
  double cpu_idle = 0;
  bool has_cpu = false;
  std::optional<double> mem_total;
  std::optional<double> mem_available;
  double rx = 0;
  double tx = 0;
  bool has_net = false;
  for (const Sample& s : exposition.samples) {
    if (s.name == "node_cpu_seconds_total") {
      has_cpu = true;
      cpu_all += s.value;
      if (s.label("mode") == "idle") cpu_idle += s.value;
    } else if (s.name == "node_memory_MemTotal_bytes") {
      mem_total = s.value;
    } else if (s.name == "node_memory_MemAvailable_bytes") {
      mem_available = s.value;
    } else if (s.name == "node_network_receive_bytes_total" && s.label("device") != "lo") {
      has_net = true;
      rx += s.value;
    } else if (s.name == "node_network_transmit_bytes_total" && s.label("device") != "lo") {
      has_net = true;
      tx += s.value;
    }
  }
  const bool node = has_cpu || (mem_total && mem_available) || has_net;
  if (node) {
    if (has_cpu) {
      Track& t = track(kNodeCpu, "node", "%");
      if (last_cpu_ && cpu_all > last_cpu_->second && cpu_idle >= last_cpu_->first) {
        const double busy = 1 - (cpu_idle - last_cpu_->first) / (cpu_all - last_cpu_->second);
        put(t, at_s, 100 * std::clamp(busy, 0.0, 1.0));
      }
      last_cpu_ = std::make_pair(cpu_idle, cpu_all);
    }
    if (mem_total && mem_available) {
      put(track(kNodeMemory, "node", "bytes"), at_s, *mem_total - *mem_available);
    }
    if (has_net) {
      rate(track(kNodeRx, "node", "bytes/s"), at_s, rx);
      rate(track(kNodeTx, "node", "bytes/s"), at_s, tx);
    }
  }
  // Selected series: every sample whose name a pattern matches, or every
  // sample of an endpoint that is not a node_exporter when none was given.
  const bool take_all = selections_.empty() && !node;
  if (selections_.empty() && !take_all) return;
  for (const Sample& s : exposition.samples) {
    bool selected = take_all;
    for (const Selection& sel : selections_) {
      if (RE2::FullMatch(s.name, *sel.regex)) {
        selected = true;
        break;
      }
    }
    if (!selected) continue;
    ++outcome_.matched_samples;
    const std::string key = series_key(s);
    if (track_index_.find(key) == track_index_.end() &&
        tracks_.size() >= kMaxSeriesPerTarget + (node ? 4 : 0)) {
      ++outcome_.dropped_series;
      continue;
    }
    if (s.type == MetricType::kCounter) {
      rate(track(key, "counter", "/s"), at_s, s.value);
    } else {
      put(track(key, metric_type_name(s.type), ""), at_s, s.value);
    }
  }
}

void SeriesBuilder::add_failure(const std::string& reason) {
  ++outcome_.scrapes;
  if (outcome_.failed++ == 0) outcome_.first_error = reason;
}

TargetOutcome SeriesBuilder::outcome() const {
  return outcome_;
}

std::vector<Series> SeriesBuilder::series() const {
  std::vector<Series> out;
  out.reserve(tracks_.size());
  for (const Track& t : tracks_) {
    Series s = t.series;
    for (const auto& [second, sum_count] : t.seconds) {
      s.points.push_back({second, sum_count.first / static_cast<double>(sum_count.second)});
    }
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json to_json(const MonitorResult& result) {
  nlohmann::json targets = nlohmann::json::array();
  for (const TargetOutcome& t : result.targets) {
    nlohmann::json j = {{"name", t.target.name},
                        {"url", t.target.url},
                        {"interval_ms", t.target.interval_ms},
                        {"metrics", t.target.metrics},
                        {"scrapes", t.scrapes},
                        {"failed", t.failed}};
    if (!t.first_error.empty()) j["first_error"] = t.first_error;
    if (t.dropped_series > 0) j["dropped_series"] = t.dropped_series;
    if (const std::string w = t.warning(); !w.empty()) j["warning"] = w;
    targets.push_back(std::move(j));
  }
  nlohmann::json series = nlohmann::json::array();
  for (const Series& s : result.series) {
    nlohmann::json points = nlohmann::json::array();
    for (const Point& p : s.points)
      points.push_back({p.second, p.value});
    series.push_back({{"target", s.target},
                      {"name", s.name},
                      {"kind", s.kind},
                      {"unit", s.unit},
                      {"points", std::move(points)}});
  }
  return {{"targets", std::move(targets)}, {"series", std::move(series)}};
}

}  // namespace millstone::monitor
