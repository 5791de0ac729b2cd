#pragma once
// The judgment of a run's `slo:` objectives (docs/scenarios.md#slos-and-phases):
// the run cut into phases by its faults, each objective judged per phase, over
// sliding windows, and for recovery after each fault. Every figure comes from
// merging the run's per-second snapshots (exact percentiles over any span,
// never an average of percentiles).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "metrics/snapshot.h"
#include "scenario/faults.h"
#include "scenario/plan.h"
#include "scenario/thresholds.h"

namespace millstone::scenario {

// Seconds [first_s, end_s) of the run. Fault boundaries are rounded to the
// nearest whole second (a fault of under a second still gets one).
struct Phase {
  enum class Kind { kRun, kBefore, kDuring, kAfter };  // kRun: no fault at all
  Kind kind = Kind::kRun;
  int fault = -1;  // kDuring, kAfter: index into the FaultWindows
  int64_t first_s = 0;
  int64_t end_s = 0;
  std::string name;  // "before", "during kill-api", "after kill-api", "run"
  int64_t seconds() const { return end_s - first_s; }
};

// Phases in time order: before the first fault, during each fault, after it
// up to the next fault that starts once it has ended (or the end of the run).
// Overlapping faults give overlapping phases. Empty phases are left out.
std::vector<Phase> cut_phases(const FaultWindows& faults, int64_t run_seconds);

// The run's per-second snapshots, merged over any span of seconds. The run's
// last second is usually partial (the responses that came in after the planned
// end); under half a second long, it counts with the second before it, so a
// window or recovery second of a few stragglers is not judged alone.
class SecondSeries {
 public:
  // `duration_s` < 0: unknown, every second is whole.
  SecondSeries(const std::map<uint64_t, metrics::Snapshot>& seconds, double duration_s);
  // One past the last second judged.
  int64_t run_seconds() const { return run_seconds_; }
  metrics::Snapshot merged(int64_t first_s, int64_t end_s) const;

 private:
  const std::map<uint64_t, metrics::Snapshot>& seconds_;
  int64_t run_seconds_ = 0;
  bool fold_last_ = false;
};

// An objective over one span of seconds.
struct SpanJudgment {
  int64_t first_s = 0;
  int64_t end_s = 0;
  ThresholdOutcome outcome;  // no data (e.g. no latency while a target is down) fails
};

struct Recovery {
  enum class Status {
    kRecovered,     // held for a whole recovery_window, starting recovered_at_s
    kNotRecovered,  // not before the next fault or the end of the run
    kStillOn,       // the fault had not ended when the run did: nothing to judge
  };
  Status status = Status::kStillOn;
  // kRecovered: fault end to recovered_at_s (0 if it held all along);
  // kNotRecovered: fault end to the end of what was watched.
  double time_s = 0;
  int64_t recovered_at_s = -1;
  std::string until;  // kNotRecovered: "the next fault" or "the end of the run"
};
const char* recovery_status_name(Recovery::Status status);  // "recovered", ...

struct ObjectiveJudgment {
  const Objective* objective = nullptr;
  std::vector<SpanJudgment> phases;  // parallel to SloJudgment::phases
  size_t windows = 0;
  size_t windows_failed = 0;
  std::optional<SpanJudgment> worst_window;  // failing with no data, else furthest from the limit
  std::vector<Recovery> recovery;            // parallel to the FaultWindows
  bool passed = false;  // every phase, every window, every ended fault recovered
  // A target.* objective whose series had no point at all (a dead endpoint):
  // not failed (passed is true), but judged on nothing; warned about.
  bool unevaluated = false;
};

struct SloJudgment {
  std::vector<Phase> phases;
  FaultWindows faults;
  std::vector<ObjectiveJudgment> objectives;
  bool passed() const;
};

// `duration_s`: the run's length (RunResult::duration_s), or < 0 if unknown.
// `monitored`: the target's series, for target.* objectives (null: none, so
// those are unevaluated).
SloJudgment judge_objectives(const Plan& plan, const std::map<uint64_t, metrics::Snapshot>& seconds,
                             const FaultWindows& faults, double duration_s = -1,
                             const monitor::MonitorResult* monitored = nullptr);

// "3s-6s": seconds [3, 6) of the run, for the text summary.
std::string span_text(int64_t first_s, int64_t end_s);

}  // namespace millstone::scenario
