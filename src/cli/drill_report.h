#pragma once
// The CLI's side of failure drills (docs/scenarios.md#drills): the line
// printed as each fault starts and ends, the live gauge, the text summary's
// `drills` table and the JSON summary's `drills` array.
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/coordinator.h"
#include "drill/scheduler.h"
#include "results/metrics_exporter.h"
#include "scenario/phase_figures.h"

namespace millstone::cli {

// Prints each drill event on `out` (stderr) as it happens and passes it to
// the live metrics, if any.
class DrillLog final : public drill::DrillObserver {
 public:
  // `also` (may be null) is told every event too (the live events of `--live-events`).
  DrillLog(std::FILE* out, bool terminal, results::MetricsExporter* exporter,
           drill::DrillObserver* also = nullptr)
      : out_(out), terminal_(terminal), exporter_(exporter), also_(also) {}
  void on_drill_event(const drill::DrillEvent& event) override;

 private:
  std::mutex mu_;
  std::FILE* out_;
  bool terminal_;
  results::MetricsExporter* exporter_;
  drill::DrillObserver* also_;
};

// Starts the drill scheduler on the run's start instant.
class DrillStarter final : public cluster::ProgressSink {
 public:
  explicit DrillStarter(drill::DrillScheduler& scheduler) : scheduler_(scheduler) {}
  void on_second(uint64_t, const metrics::Snapshot&, const metrics::Snapshot&) override {}
  void on_start(int64_t start_ns) override { scheduler_.start(start_ns); }

 private:
  drill::DrillScheduler& scheduler_;
};

// "drill slow-db started at 3.0s: POST ...: HTTP 200"
std::string describe_drill_event(const drill::DrillEvent& event);
std::string format_drill_summary(const std::vector<drill::DrillRecord>& records);
nlohmann::json drills_json(const std::vector<drill::DrillRecord>& records);
// The text summary's table of phases (requests, rps, p50/p99, errors) and
// recovery to the 'before' phase per fault; the JSON summary's
// `drill_phases` (docs/summary-json.md#drill_phases).
std::string format_phase_summary(const scenario::PhaseReport& report);
nlohmann::json phases_json(const scenario::PhaseReport& report);

}  // namespace millstone::cli
