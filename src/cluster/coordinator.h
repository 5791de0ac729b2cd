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
#include "scenario/faults.h"

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
  // Its own load per second of the run (an agent's: its workers' merged),
  // for the generator's series (docs/monitoring.md#the-generator).
  std::map<uint64_t, metrics::GeneratorLoad> load;
};

// An agent whose link went silent, closed or broke before it finished: its
// share is missing from `at_second` on (every second before was whole: an
// agent forwards a second only once all its workers reported it).
struct AgentLoss {
  std::string agent;         // its link's name: "agent 10.0.0.7:40112"
  std::string host;          // from its Hello
  uint64_t at_second = 0;    // the first second it did not report
  double missing_share = 0;  // its workers / the fleet's, 0..1
  std::string cause;         // "sent nothing for 2 s", "its link closed", ...
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
  // Agents lost while the run went on (--on-agent-loss continue): the run
  // completed degraded. With --on-agent-loss fail the loss is also in
  // worker_failures, and the run stopped there.
  std::vector<AgentLoss> losses;
  // Scenario runs with drills: when each fault was on (set by the CLI from
  // the drill scheduler once the run is over), for the SLO phases.
  scenario::FaultWindows fault_windows;
};

// The share of the load missing in `second`: the sum of the lost agents'
// shares lost at or before it (0 when the second was whole).
double missing_share(const RunResult& result, uint64_t second);

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // Called once per second of the run, when every live worker has reported it.
  virtual void on_second(uint64_t index, const metrics::Snapshot& second,
                         const metrics::Snapshot& total) = 0;
  virtual void on_finish() {}
  // Once, when no worker waits to acknowledge Start any more; `latest_ready_ns`
  // is the latest Ack's ready time (0 if none came). An agent answers its own
  // coordinator's Start then.
  virtual void on_started(int64_t latest_ready_ns) { (void)latest_ready_ns; }
  // The run's second 0 on CLOCK_MONOTONIC, once, when Start goes out (the
  // drill scheduler runs its faults on this clock).
  virtual void on_start(int64_t /*start_ns*/) {}
};

class Coordinator;
// Something else the coordinator's wait loop watches, on the same thread:
// an agent's link to its own coordinator (cluster/agent.h).
class LoopWatch {
 public:
  virtual ~LoopWatch() = default;
  virtual int fd() const = 0;        // -1: nothing to watch any more
  virtual short events() const = 0;  // POLLIN, POLLOUT
  virtual void on_ready(Coordinator& coordinator, short revents) = 0;
};

// Why a peer whose Hello says `protocol` (and `build`, empty if its Hello
// predates the field) is refused: names both versions. `name` is the link's.
std::string protocol_mismatch(const std::string& name, uint32_t protocol, const std::string& build);

// Splits `plan` (whole-run totals) into per-worker plans: connections and
// rate are shared out; workers that would get no connection are not started.
std::vector<engine::RunPlan> split_plan(const engine::RunPlan& plan, uint32_t workers);
// Shares [first, first + count) of `total`, exactly as split_plan(plan,
// total) would make them: connections to the lowest indexes first, rate /
// total each, worker_index the global share and worker_count `total`. An
// agent splits its Start with it, so the fleet's shares sum to the plan
// whatever machine runs each one.
std::vector<engine::RunPlan> split_plan(const engine::RunPlan& plan, uint32_t first, uint32_t count,
                                        uint32_t total);

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
  // The start instant on this machine's clock; 0: now + start_lead_ns. An
  // agent starts its workers at its coordinator's instant.
  int64_t start_at_ns = 0;
  // Agent links (local_workers > 0): no frame, snapshot or heartbeat, for this
  // long after the start instant (or after its last frame) and the agent is
  // lost. 0: never (local workers: a dead process closes its link).
  int64_t silence_timeout_ns = 2 * net::kNsPerSec;
  // --on-agent-loss: continue without the lost agent's share (the run
  // completes degraded), or stop every other agent and end the run now.
  enum class OnAgentLoss { kContinue, kFail };
  OnAgentLoss on_agent_loss = OnAgentLoss::kContinue;
  LoopWatch* watch = nullptr;
  // Checked after every second's progress and polled beside the links: a
  // request sends Stop as a first interrupt does (nullptr for none).
  const net::StopRequest* stop = nullptr;
};

class Coordinator {
 public:
  // `shares[i]` is what `links[i]` runs; `data_files` go to every worker.
  // `local_workers[i]` > 0 makes link i an agent running that many workers
  // (Start::local_workers; shares[i] holds the whole run's totals and the
  // first of its shares): its silence is watched and its loss recorded.
  // Empty: every link is one worker.
  Coordinator(std::vector<std::unique_ptr<WorkerLink>> links, std::vector<engine::RunPlan> shares,
              std::vector<DataFile> data_files, CoordinatorOptions options, ProgressSink* progress,
              std::vector<uint32_t> local_workers = {});
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Runs to the end; every link is closed when it returns.
  RunResult run();
  // For a LoopWatch: Stop to every started worker (they end with their final
  // second and Done), as the first interrupt does ...
  void request_stop();
  // ... or give up on every worker at once, telling each why.
  void abandon(const std::string& why);

 private:
  struct Peer;
  void receive_hellos();
  void send_starts();
  void run_until_done();
  // Waits on every live link (and the interrupt descriptor) and handles what
  // arrives, until done() or `deadline_ns`.
  void pump(int64_t deadline_ns, const std::function<bool()>& done);
  // Handles every message the link has (until it would block) and writes what is queued.
  void read_from(Peer& peer);
  void handle(Peer& peer, MessageType type, const std::string& payload);
  // Ends a peer's part; `tell` sends it the reason as an Error first.
  void end(Peer& peer, WorkerOutcome::State state, std::string reason, bool tell);
  void fail(Peer& peer, std::string reason);
  void on_interrupt();
  // A StopRequest was made: Stop to every worker, once.
  void on_stop_request();
  void emit_progress(bool flush_all);
  bool any_live() const;
  // Agents silent past options_.silence_timeout_ns are lost.
  void check_silence(int64_t now);
  void note_started();

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
  bool started_noted_ = false;
  bool stopped_on_loss_ = false;
  int64_t latest_ready_ns_ = 0;
};

}  // namespace millstone::cluster
