#pragma once
// What a worker process runs: quick mode's LoadGenerator or a scenario's
// virtual users. Both report per-second snapshots through the same sink and
// stop the same way, so the worker process does not care which it runs.
#include <functional>
#include <string>

#include "metrics/snapshot.h"

namespace millstone::engine {

class Workload {
 public:
  // One snapshot per second of the run, then the last partial one with
  // `final` set; the workload is finished after the final one.
  using SnapshotSink = std::function<void(const metrics::Snapshot&, bool final)>;

  virtual ~Workload() = default;
  // False (with *error) if it cannot run.
  virtual bool start(std::string* error) = 0;
  // Ends the run now (deadline reached or stop requested).
  virtual void stop() = 0;
  virtual bool finished() const = 0;
};

}  // namespace millstone::engine
