#pragma once
// `--metrics-listen HOST:PORT`: live metrics in the Prometheus text format
// (version 0.0.4) at GET /metrics while the run goes on. Served from a
// thread of the coordinator process, so the workers' hot paths never see a
// scrape. Updated once per second from the merged snapshots.
#include <memory>
#include <string>
#include <vector>

#include "cluster/coordinator.h"

namespace millstone::results {

struct ExporterLabels {
  std::string run_id;
  std::string name;                     // scenario file or URL
  std::vector<std::string> step_names;  // scenario runs: Plan::step_names; empty for URLs
  std::vector<std::string> check_names;
};

class MetricsExporter : public cluster::ProgressSink {
 public:
  // Binds and starts serving; nullptr with *error set when the address is bad or taken.
  static std::unique_ptr<MetricsExporter> start(const std::string& listen, ExporterLabels labels,
                                                std::string* error);
  ~MetricsExporter() override;
  virtual std::string bound_address() const = 0;  // "127.0.0.1:9464"
  // The exposition text for the totals so far (what GET /metrics returns).
  virtual std::string exposition() const = 0;
};

}  // namespace millstone::results
