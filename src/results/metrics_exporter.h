#pragma once
// `--metrics-listen HOST:PORT`: live metrics in the Prometheus text format
// (version 0.0.4) at GET /metrics while the run goes on. Served from a
// thread of the coordinator process, so the workers' hot paths never see a
// scrape. Updated once per second from the merged snapshots.
// Metric names and labels: docs/live-metrics.md.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/coordinator.h"
#include "metrics/snapshot.h"

namespace millstone::results {

struct ExporterLabels {
  std::string run_id;
  std::string name;                     // scenario file or URL
  std::vector<std::string> step_names;  // scenario runs: Plan::step_names; empty for URLs
  std::vector<std::string> check_names;
  // Scenario runs: Plan::flows[i].name. Flows without a name here are
  // labelled by their index ("#0").
  std::vector<std::string> flow_names;
  // Scenario runs with drills: their names, shown inactive until they start.
  std::vector<std::string> drill_names;
};

// How the exporter treats its clients; the defaults suit Prometheus.
struct ExporterLimits {
  int read_timeout_ms = 5000;       // a request must arrive whole within this
  int write_timeout_ms = 10000;     // and its answer must be taken within this
  size_t max_request_bytes = 8192;  // request line and headers
  size_t max_connections = 32;      // beyond that the oldest connection is dropped
};

// Upper bounds (seconds) of the `le` buckets of millstone_request_duration_seconds,
// without +Inf: 0.5 ms to 60 s.
const std::vector<double>& duration_bucket_bounds();

// A drill of the run as the live metrics show it (docs/live-metrics.md).
struct DrillGauge {
  std::string name;
  bool active = false;    // its fault is on now
  uint64_t failures = 0;  // its actions that failed so far
};

// The exposition text for one state of a run: the merged totals so far, the
// VUs alive in the latest second, and how many seconds have been reported.
// `sockets_open`: WebSocket/TCP connections open at the end of the latest second.
std::string render_exposition(const ExporterLabels& labels, const metrics::Snapshot& total,
                              uint64_t vus, double elapsed_s, uint64_t sockets_open = 0,
                              const std::vector<DrillGauge>& drills = {});

class MetricsExporter : public cluster::ProgressSink {
 public:
  // Binds and starts serving; nullptr with *error set when the address is bad or taken.
  static std::unique_ptr<MetricsExporter> start(const std::string& listen, ExporterLabels labels,
                                                std::string* error,
                                                const ExporterLimits& limits = {});
  ~MetricsExporter() override;
  virtual std::string bound_address() const = 0;  // "127.0.0.1:9464"
  // The exposition text for the totals so far (what GET /metrics returns).
  virtual std::string exposition() const = 0;
  // A drill's fault went on or off; `failed`: one of its actions failed.
  // Called from the drill threads.
  virtual void on_drill(const std::string& name, bool active, bool failed) = 0;
};

}  // namespace millstone::results
