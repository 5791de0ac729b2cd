#pragma once
// Local worker processes: forks them, gives the coordinator a link to each,
// and afterwards reaps them, killing any the coordinator did not see finish.
// The protocol is not here (coordinator.h, worker_process.h); only processes.
#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/coordinator.h"
#include "cluster/link.h"
#include "engine/run_plan.h"

namespace millstone::cluster {

// SIGINT and SIGTERM, for as long as a run lasts, arrive through a descriptor
// the coordinator's loop reads, so they interrupt nothing midway: blocked for
// the thread and read through signalfd; the mask from before is put back
// and the descriptor closed when this goes.
class InterruptSignals {
 public:
  InterruptSignals();
  ~InterruptSignals();
  InterruptSignals(const InterruptSignals&) = delete;
  InterruptSignals& operator=(const InterruptSignals&) = delete;

  int fd() const { return fd_; }  // -1 if signalfd failed (the run goes on uninterruptible)
  const sigset_t& previous_mask() const { return previous_mask_; }  // a child's mask

 private:
  sigset_t previous_mask_;
  int fd_ = -1;
};

struct LocalWorker {
  uint32_t index = 0;
  pid_t pid = -1;                    // -1: could not be started (see failure)
  std::unique_ptr<WorkerLink> link;  // handed to the coordinator
  std::string failure;
};

// Forks `count` workers, each running run_worker() on its end of a socketpair
// with `worker_mask` as its signal mask; `close_in_child` (the coordinator's
// signalfd, an agent's link to its coordinator; -1 entries are skipped) are
// closed in each child.
std::vector<LocalWorker> spawn_local_workers(uint32_t count, const sigset_t& worker_mask,
                                             const std::vector<int>& close_in_child);

// "killed by signal 9 (Killed)", "exited with status 1".
std::string describe_exit(int status);

// Waits for every started worker (SIGKILL first for those whose outcome is
// not kFinished: hung or abandoned) and turns outcomes and exit statuses into
// one line per worker that failed.
std::vector<std::string> reap_local_workers(const std::vector<LocalWorker>& workers,
                                            const std::vector<WorkerOutcome>& outcomes);

// Runs the plan on `workers` local worker processes. SIGINT and SIGTERM stop
// the run early (the result says so); a second signal gives up on the workers.
// `data_files` travel to every worker in Start. `stop` (may be nullptr) ends
// the run early with its reason (abort guards, drills).
RunResult run_local(const engine::RunPlan& plan, uint32_t workers, ProgressSink* progress,
                    std::vector<DataFile> data_files = {}, const net::StopRequest* stop = nullptr);

}  // namespace millstone::cluster
