#pragma once
// What a run keeps of its targets' metrics (docs/monitoring.md): for each
// monitored endpoint, the series it gave, on the run's per-second timeline.
//
// A point at second n is what the scrape at the end of second n saw: a
// gauge's value then, a counter's rate over the interval that ended there.
// node_exporter endpoints also give four derived series (CPU busy %, memory
// used, network receive and transmit bytes/s); other metrics are stored as
// selected, counters as rates per second.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "monitor/prom_text.h"

namespace millstone::monitor {

// One `monitor:` entry of a scenario file, or one --monitor URL.
struct Target {
  std::string name;  // shown in the report; unique within a run
  std::string url;   // http:// or https://
  // Regular expressions (RE2, whole-name match) selecting metrics by name;
  // empty: node_exporter's derived series when the endpoint has them, else
  // every series up to kMaxSeriesPerTarget.
  std::vector<std::string> metrics;
  int64_t interval_ms = 1000;
  std::string location;  // "file.yaml:12" or "--monitor"; for messages
};

inline constexpr size_t kMaxSeriesPerTarget = 100;

struct Point {
  uint64_t second = 0;
  double value = 0;
};

struct Series {
  std::string target;  // Target::name
  std::string name;    // "cpu_percent", or the selected sample's `name{labels}`
  std::string kind;    // "node" (derived from node_exporter) or the metric type
  std::string unit;    // "%", "bytes", "bytes/s", "/s" (a counter's rate), "" (as exposed)
  std::vector<Point> points;
};

struct TargetOutcome {
  Target target;
  uint64_t scrapes = 0;  // attempted
  uint64_t failed = 0;
  std::string first_error;       // the first failed scrape's reason
  uint64_t dropped_series = 0;   // selected beyond kMaxSeriesPerTarget
  uint64_t matched_samples = 0;  // samples the metrics patterns selected, over all scrapes
  // One line when the endpoint gave nothing usable (failed scrapes, or no
  // series matched): the run's one warning for it. Empty otherwise.
  std::string warning() const;
};

struct MonitorResult {
  std::vector<TargetOutcome> targets;
  std::vector<Series> series;
};
nlohmann::json to_json(const MonitorResult& result);

// Turns one target's scrapes into series. No I/O: the collector feeds it
// what each scrape returned, and tests feed it expositions directly.
class SeriesBuilder {
 public:
  // Throws std::invalid_argument for a metrics pattern RE2 does not accept
  // (the scenario loader checks them first).
  explicit SeriesBuilder(Target target);
  ~SeriesBuilder();
  SeriesBuilder(SeriesBuilder&&) noexcept;
  SeriesBuilder& operator=(SeriesBuilder&&) noexcept;

  // A successful scrape taken `at_s` seconds after the run's start.
  void add(double at_s, const Exposition& exposition);
  // A failed one (refused, timed out, not 200, not the format...).
  void add_failure(const std::string& reason);

  TargetOutcome outcome() const;
  std::vector<Series> series() const;

 private:
  struct Track;
  Track& track(const std::string& name, const std::string& kind, const std::string& unit);
  void put(Track& t, double at_s, double value);
  void rate(Track& t, double at_s, double counter);

  struct Selection;
  Target target_;
  std::vector<Selection> selections_;
  TargetOutcome outcome_;
  std::vector<Track> tracks_;
  std::map<std::string, size_t> track_index_;
  // node_exporter's CPU counters at the previous scrape: busy is 1 - d(idle) / d(all).
  std::optional<std::pair<double, double>> last_cpu_;  // (idle, all) seconds
};

// "cpu_percent" ... for a series name of the node kind: the report's titles.
const char* node_series_title(const std::string& name);

}  // namespace millstone::monitor
