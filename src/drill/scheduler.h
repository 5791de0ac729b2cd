#pragma once
// The fault schedule of a run (`drills:` in the scenario file), run by the
// coordinator process on the run's clock: each fault starts at its time
// after the start instant and, with a duration, ends that much later. Each
// drill has a thread of its own, so an action that hangs (until its
// timeout) delays no other fault. When the run ends or is interrupted,
// finish() undoes every fault still on (toxics removed, mock routes reset,
// undo commands run) and says so; faults not yet started never start.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "drill/actions.h"
#include "scenario/drills.h"
#include "scenario/faults.h"

namespace millstone::drill {

// What happened to one drill, for the summaries and the report.
struct DrillRecord {
  enum class Status {
    kPending,     // not yet due
    kStarting,    // its start action is running
    kOn,          // started; its end is due
    kDone,        // started and ended (or a one-off action that succeeded)
    kFailed,      // its start action failed: the fault may not have happened
    kUndoFailed,  // started, but its end action failed: the fault may still be on
    kNotStarted,  // the run ended before its time
  };
  std::string name;
  std::string action;    // "exec", "signal", "proxy", "mock"
  std::string location;  // file:line:col
  double planned_start_s = 0;
  double planned_end_s = -1;  // -1: no duration
  double start_s = -1;        // when its start action began, from the run's start
  double end_s = -1;          // when the fault ended (its end action began); -1: never started
  bool ended_by_run = false;  // the run ended while it was on (end_s is then the run's end)
  Status status = Status::kPending;
  ActionResult start_result;
  std::optional<ActionResult> end_result;  // when an end action ran
};

const char* status_name(DrillRecord::Status status);  // "done", "failed", ...

// One moment of a drill, as it happens.
struct DrillEvent {
  enum class Kind { kStarted, kStartFailed, kEnded, kEndFailed, kNotStarted };
  Kind kind = Kind::kStarted;
  size_t index = 0;  // into the plan's drills
  std::string name;
  double at_s = 0;          // from the run's start
  bool at_run_end = false;  // kEnded/kEndFailed: undone because the run ended
  std::string detail;       // the action's one line
};

// Told of every event, from the drill threads (implementations lock).
class DrillObserver {
 public:
  virtual ~DrillObserver() = default;
  virtual void on_drill_event(const DrillEvent& event) = 0;
};

class DrillScheduler {
 public:
  // `actions` and `observer` (may be null) must outlive the scheduler.
  DrillScheduler(std::vector<scenario::Drill> drills, Actions& actions, DrillObserver* observer);
  ~DrillScheduler();  // finish()es
  DrillScheduler(const DrillScheduler&) = delete;
  DrillScheduler& operator=(const DrillScheduler&) = delete;

  // Second 0 of the run on CLOCK_MONOTONIC (net::now_ns()); starts the drill
  // threads. Called once; later calls are ignored.
  void start(int64_t start_ns);
  // The run has ended: undoes what is on, waits for every action (each
  // bounded by its drill's timeout) and stops the threads. Idempotent.
  void finish();

  std::vector<DrillRecord> records() const;
  // One window per fault that started (the SLO phases cut the run with
  // them); end_s < 0 for a fault still on when the run ended.
  scenario::FaultWindows windows() const;

 private:
  void run_drill(size_t index);
  // Waits until `at_ns` or finish(); true if the time came first.
  bool wait_until(int64_t at_ns);
  double since_start(int64_t ns) const;
  void emit(DrillEvent event);

  const std::vector<scenario::Drill> drills_;
  Actions& actions_;
  DrillObserver* observer_;
  int64_t start_ns_ = 0;
  int64_t finish_ns_ = 0;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool finishing_ = false;
  bool started_ = false;
  std::vector<DrillRecord> records_;
  std::vector<std::thread> threads_;
  std::mutex finish_mu_;  // one finish() at a time
};

}  // namespace millstone::drill
