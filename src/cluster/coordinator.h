#pragma once
// Starts the worker processes of a run, hands each its share of the plan,
// merges their per-second snapshots, reports progress, and stops them on
// time or on request. It notices a worker that dies and says so in the result.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/run_plan.h"
#include "metrics/snapshot.h"

namespace millstone::cluster {

struct RunResult {
  metrics::Snapshot total;
  std::map<uint64_t, metrics::Snapshot> seconds;  // merged across workers
  double duration_s = 0;
  uint32_t workers = 0;
  std::vector<std::string> worker_failures;  // one line per worker that failed
  bool interrupted = false;                  // stopped early by a signal
};

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // Called once per second of the run, when every live worker has reported it.
  virtual void on_second(uint64_t index, const metrics::Snapshot& second,
                         const metrics::Snapshot& total) = 0;
  virtual void on_finish() {}
};

// Splits `plan` (whole-run totals) into per-worker plans: connections and
// rate are shared out; workers that would get no connection are not started.
std::vector<engine::RunPlan> split_plan(const engine::RunPlan& plan, uint32_t workers);

// Runs the plan on `workers` local worker processes. SIGINT and SIGTERM stop
// the run early (the result says so); a second signal kills the workers.
RunResult run_local(const engine::RunPlan& plan, uint32_t workers, ProgressSink* progress);

}  // namespace millstone::cluster
