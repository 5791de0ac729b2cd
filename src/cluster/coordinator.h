#pragma once
// The coordinator of a run: it talks to workers through `WorkerLink`s only
// (local processes and remote agents alike; starting and stopping processes is
// local_workers.h's job). It checks each worker's Hello, sends every worker
// its share with one start instant on its own clock, merges their per-second
// snapshots (aligned on that instant), reports progress, stops them on time
// or on request, and says which worker failed and why.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/link.h"
#include "cluster/wire.h"
#include "engine/run_plan.h"
#include "metrics/snapshot.h"
#include "net/clock.h"
#include "net/stop_request.h"

namespace millstone::cluster {

// How one worker's part of the run ended.
struct WorkerOutcome {
  enum class State {
    kFinished,  // sent its final snapshot and Done
    kLinkLost,  // its link closed before Done (a dead process, a cut network)
    kFailed,    // refused or given up on; `reason` says why
  };
  State state = State::kLinkLost;
  std::string reason;   // "worker 3 did not answer Hello within 5 s", ...
  Hello hello;          // as received (empty before Hello)
  int64_t late_ns = 0;  // how long after the start instant it was ready (0: on time)
  Done done;
};

struct RunResult {
  metrics::Snapshot total;
  std::map<uint64_t, metrics::Snapshot> seconds;  // merged across workers
  double duration_s = 0;
  uint32_t workers = 0;
  std::vector<std::string> worker_failures;  // one line per worker that failed
  std::vector<std::string> worker_notes;     // late starts, backed-up links: not failures
  bool interrupted = false;                  // stopped early by a signal
  std::string stop_reason;                   // stopped early by a StopRequest (an abort guard)
  std::vector<WorkerOutcome> outcomes;       // one per link, in link order
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

struct CoordinatorOptions {
  int64_t hello_timeout_ns = 5 * net::kNsPerSec;
  // From Start to Ack: compiling a scenario and indexing its data files.
  int64_t ack_timeout_ns = 30 * net::kNsPerSec;
  // From sending Start to the start instant: long enough for a local worker
  // to build its workload, so the seconds line up from the first.
  int64_t start_lead_ns = 250 * net::kNsPerMs;
  // After the planned end: Stop goes out (a late worker ends with the rest) ...
  int64_t stop_after_end_ns = 250 * net::kNsPerMs;
  // ... and past this (on top of the request timeouts) a worker is given up on.
  int64_t finish_grace_ns = 5 * net::kNsPerSec;
  // Readable once per interrupt (a signalfd for SIGINT/SIGTERM); -1 for none.
  // The first interrupt sends Stop; the second gives up on every worker.
  int interrupt_fd = -1;
  // Checked after every second's progress and polled beside the links: a
  // request sends Stop as a first interrupt does (nullptr for none).
  const net::StopRequest* stop = nullptr;
};

class Coordinator {
 public:
  // `shares[i]` is what `links[i]` runs; `data_files` go to every worker.
  Coordinator(std::vector<std::unique_ptr<WorkerLink>> links, std::vector<engine::RunPlan> shares,
              std::vector<DataFile> data_files, CoordinatorOptions options, ProgressSink* progress);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Runs to the end; every link is closed when it returns.
  RunResult run();

 private:
  struct Peer;
  void receive_hellos();
  void send_starts();
  void run_until_done();
  // Waits on every live link (and the interrupt descriptor) and handles what
  // arrives, until done() or `deadline_ns`.
  void pump(int64_t deadline_ns, const std::function<bool()>& done);
  void handle(Peer& peer, MessageType type, const std::string& payload);
  // Ends a peer's part; `tell` sends it the reason as an Error first.
  void end(Peer& peer, WorkerOutcome::State state, std::string reason, bool tell);
  void fail(Peer& peer, std::string reason);
  void on_interrupt();
  // A StopRequest was made: Stop to every worker, once.
  void on_stop_request();
  void emit_progress(bool flush_all);
  bool any_live() const;

  std::vector<Peer> peers_;
  std::vector<DataFile> data_files_;
  CoordinatorOptions options_;
  ProgressSink* progress_;
  RunResult result_;
  uint64_t duration_ms_ = 0;
  uint64_t slowest_timeout_ms_ = 0;
  int64_t start_ns_ = 0;
  bool stop_sent_ = false;
  int interrupts_ = 0;
  uint64_t next_progress_ = 0;
};

}  // namespace millstone::cluster
