#pragma once
// Abort guards (docs/scenarios.md#abort-guards): `slo:` objectives with
// `guard: true`, judged live on each whole second of the run. One that has
// failed for longer than its `for:` trips, and the run stops (exit 97), as an
// AWS FIS stop condition or a Gremlin health check halts an experiment.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metrics/snapshot.h"
#include "scenario/plan.h"

namespace millstone::scenario {

struct GuardTrip {
  const Objective* objective = nullptr;
  uint64_t second = 0;        // the second that tripped it (seconds since the start)
  int64_t failing_s = 0;      // seconds it had failed in a row
  std::string observed_text;  // in that second
  std::string reason;         // one line for people: what failed, where, for how long
};

class GuardMonitor {
 public:
  // Watches the guards among plan.objectives; `plan` must outlive it.
  explicit GuardMonitor(const Plan& plan);
  bool empty() const { return guards_.empty(); }
  // One whole second, in order (a skipped index counts as a second without
  // data). Returns the trip the first time a guard trips, then nothing: the
  // first trip is the run's reason to stop.
  std::optional<GuardTrip> observe(uint64_t index, const metrics::Snapshot& second);
  const std::optional<GuardTrip>& trip() const { return trip_; }

 private:
  struct Watch {
    const Objective* objective;
    int64_t failing = 0;  // seconds in a row; a second without data leaves it as it is
  };
  const Plan& plan_;
  std::vector<Watch> guards_;
  std::optional<GuardTrip> trip_;
};

}  // namespace millstone::scenario
