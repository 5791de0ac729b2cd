#pragma once
// What a worker process runs: quick mode's LoadGenerator or a scenario's
// virtual users. Both report per-second snapshots through the same sink and
// stop the same way, so the worker process does not care which it runs.
#include <cstdint>
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
  // Starts the run with second 0 at `start_ns` (net::now_ns() clock: the
  // coordinator's start instant on this machine). A workload started after it
  // (a late worker) begins in the second under way, so its counts land in the
  // seconds they happened in and it ends with the others. False (with *error)
  // if it cannot run.
  virtual bool start(int64_t start_ns, std::string* error) = 0;
  // Ends the run now (deadline reached or stop requested): the final
  // snapshot goes to the sink.
  virtual void stop() = 0;
  // After stop(), once the final snapshot has left: closes the connections
  // still open. Closing tens of thousands of sockets per worker takes
  // seconds of CPU (dozens of workers on a few cores, both ends on one
  // machine: a minute), none of which is part of the measured run.
  virtual void release() {}
  virtual bool finished() const = 0;
};

// The interval under way at `now_ns` for a run whose second 0 began at `start_ns`.
inline uint64_t interval_at(int64_t start_ns, int64_t now_ns) {
  return now_ns <= start_ns ? 0 : static_cast<uint64_t>((now_ns - start_ns) / 1'000'000'000);
}

}  // namespace millstone::engine
