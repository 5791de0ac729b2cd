#pragma once
// What the load looked like in each phase of a drill run (before the first
// fault, during each, after it: scenario::cut_phases), and how long the
// target took to come back to its 'before' figures after each fault
// (docs/scenarios.md#phases-and-recovery). Unlike the SLO judgment, it needs
// no objective: a run with drills always gets it. Every figure comes from
// the merged per-second histograms.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "metrics/snapshot.h"
#include "scenario/faults.h"
#include "scenario/plan.h"
#include "scenario/slo.h"

namespace millstone::scenario {

struct PhaseFigures {
  Phase phase;
  uint64_t requests = 0;         // complete responses
  uint64_t attempts = 0;         // complete responses plus transport errors
  uint64_t failed = 0;           // by the summary's one definition of errors
  double rps = 0;                // complete responses per second of the phase
  std::optional<double> p50_ms;  // none without a complete response
  std::optional<double> p99_ms;
  double error_rate() const {
    return attempts ? static_cast<double>(failed) / static_cast<double>(attempts) : 0;
  }
};

// Back to the 'before' phase's p99 and error rate, within the tolerance.
struct BaselineRecovery {
  enum class Status {
    kRecovered,     // every second of a whole window held, from recovered_at_s
    kNotRecovered,  // not before the next fault or the end of the run
    kStillOn,       // the fault was on when the run ended
    kNoBaseline,    // no 'before' phase with a complete response to compare with
  };
  std::string fault;
  Status status = Status::kNoBaseline;
  double time_s = 0;  // kRecovered: fault end to recovered_at_s; kNotRecovered: to `until`
  int64_t recovered_at_s = -1;
  std::string until;  // kNotRecovered: "the next fault (NAME)" or "the end of the run"
};
const char* baseline_recovery_name(BaselineRecovery::Status status);  // "recovered", ...

struct PhaseReport {
  std::vector<PhaseFigures> phases;
  RecoveryTolerance tolerance;
  // The 'before' phase's figures and the limits a second must keep to count
  // as recovered; absent without a baseline.
  std::optional<double> baseline_p99_ms;
  double baseline_error_rate = 0;
  double p99_limit_ms = 0;
  double error_rate_limit = 0;
  std::vector<BaselineRecovery> recovery;  // parallel to the FaultWindows
};

// `duration_s`: the run's length (RunResult::duration_s), or < 0 if unknown.
PhaseReport report_phases(const Plan& plan, const std::map<uint64_t, metrics::Snapshot>& seconds,
                          const FaultWindows& faults, double duration_s = -1);

}  // namespace millstone::scenario
