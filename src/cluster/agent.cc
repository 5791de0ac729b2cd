#include "cluster/agent.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "cluster/local_workers.h"
#include "text/printable.h"

namespace millstone::cluster {

std::vector<AgentShare> split_over_agents(const engine::RunPlan& plan,
                                          const std::vector<uint32_t>& workers_per_agent) {
  std::vector<uint32_t> workers = workers_per_agent;
  for (uint32_t& w : workers)
    w = std::max<uint32_t>(1, w);
  uint64_t total = std::accumulate(workers.begin(), workers.end(), uint64_t{0});
  if (plan.scenario_source.empty()) {
    // Scenario runs share VUs per executor; a URL run's worker needs a connection.
    const uint64_t limit = std::max<uint32_t>(1, plan.connections);
    while (total > limit) {
      auto most = std::max_element(workers.begin(), workers.end());
      --*most;
      --total;
    }
  }
  std::vector<AgentShare> shares(workers.size());
  uint32_t first = 0;
  for (size_t k = 0; k < workers.size(); ++k) {
    shares[k].plan = plan;
    shares[k].plan.worker_index = std::min<uint32_t>(first, static_cast<uint32_t>(total - 1));
    shares[k].plan.worker_count = static_cast<uint32_t>(total);
    shares[k].local_workers = workers[k];
    first += workers[k];
  }
  return shares;
}

namespace {

// The agent's side of its coordinator's link, inside its own coordinator's
// wait loop: merged seconds go up, Stop and a lost coordinator come down.
class Upstream final : public ProgressSink, public LoopWatch {
 public:
  Upstream(WorkerLink& link, int64_t clock_offset_ns) : link_(link), offset_ns_(clock_offset_ns) {}

  void attach(Coordinator* coordinator) { coordinator_ = coordinator; }
  bool lost() const { return lost_; }
  bool acked() const { return acked_; }
  const std::string& why_lost() const { return why_lost_; }
  const std::set<uint64_t>& forwarded() const { return forwarded_; }

  void on_second(uint64_t index, const metrics::Snapshot& second,
                 const metrics::Snapshot&) override {
    if (lost_) return;
    metrics::Snapshot copy = second;
    copy.interval_index = index;
    if (!link_.send(MessageType::kSnapshot, encode_snapshot(copy))) {
      lose("cannot send to the coordinator: " +
           (link_.error().empty() ? std::string("its link is backed up") : link_.error()));
      return;
    }
    forwarded_.insert(index);
  }

  void on_started(int64_t latest_ready_ns) override {
    if (lost_ || acked_) return;
    acked_ = true;
    const int64_t ready = latest_ready_ns > 0 ? latest_ready_ns : net::now_ns();
    if (!link_.send(MessageType::kAck, encode_ack(Ack{ready - offset_ns_}))) {
      lose("cannot send Ack to the coordinator");
    }
  }

  int fd() const override { return lost_ ? -1 : link_.fd(); }
  short events() const override {
    return static_cast<short>(POLLIN | (link_.queued_bytes() > 0 ? POLLOUT : 0));
  }
  void on_ready(Coordinator&, short) override {
    MessageType type;
    std::string payload;
    while (!lost_) {
      switch (link_.receive(&type, &payload)) {
        case WorkerLink::Receive::kMessage:
          if (type == MessageType::kStop) {
            coordinator_->request_stop();
          } else if (type == MessageType::kError) {
            std::string text;
            if (!decode_error(payload, &text)) text = "(an error that does not decode)";
            lose("the coordinator gave up on this agent: " + text::printable(text));
          } else {
            lose(fmt::format("the coordinator broke the protocol: an unexpected {} message",
                             message_type_name(type)));
          }
          continue;
        case WorkerLink::Receive::kNothing:
          break;
        case WorkerLink::Receive::kClosed:
          lose("the link to the coordinator closed");
          continue;
        case WorkerLink::Receive::kBroken:
          lose("the link to the coordinator broke: " + link_.error());
          continue;
      }
      break;
    }
    if (!lost_ && !link_.flush()) lose("the link to the coordinator broke: " + link_.error());
  }

 private:
  // Its workers stop at once: nobody would receive their results.
  void lose(std::string why) {
    if (lost_) return;
    lost_ = true;
    why_lost_ = std::move(why);
    if (coordinator_) coordinator_->abandon(why_lost_);
  }

  WorkerLink& link_;
  int64_t offset_ns_;
  Coordinator* coordinator_ = nullptr;
  bool lost_ = false;
  bool acked_ = false;
  std::string why_lost_;
  std::set<uint64_t> forwarded_;
};

int refuse(WorkerLink& link, const std::string& why, const AgentOptions& options) {
  if (options.log) options.log(why);
  link.send(MessageType::kError, encode_error(why));
  flush_until(link, net::now_ns() + net::kNsPerSec);
  return 1;
}

int give_up(const std::string& why, const AgentOptions& options) {
  if (options.log) options.log(why);
  return 1;
}

}  // namespace

int serve_agent(WorkerLink& upstream, const Hello& hello, const AgentOptions& options) {
  upstream.send(MessageType::kHello, encode_hello(hello));
  MessageType type;
  std::string payload;
  switch (receive_until(upstream, net::now_ns() + options.start_timeout_ns, &type, &payload)) {
    case WaitResult::kOk:
      break;
    case WaitResult::kTimedOut:
      return refuse(upstream,
                    fmt::format("the coordinator did not answer Hello within {} s",
                                options.start_timeout_ns / net::kNsPerSec),
                    options);
    case WaitResult::kClosed:
      return give_up("the coordinator closed the link before the run started", options);
    case WaitResult::kBroken:
      return give_up(
          "the link to the coordinator broke before the run started: " + upstream.error(), options);
  }
  if (type == MessageType::kStop) {
    if (options.log) options.log("the coordinator needs no share from this agent this run");
    return 0;
  }
  if (type == MessageType::kError) {
    std::string text;
    if (!decode_error(payload, &text)) text = "(an error that does not decode)";
    return give_up("the coordinator refused this agent: " + text::printable(text), options);
  }
  Start start;
  if (type != MessageType::kStart || !decode_start(payload, &start)) {
    return refuse(upstream,
                  fmt::format("the agent expected a valid Start, got a {} message of {} bytes",
                              message_type_name(type), payload.size()),
                  options);
  }
  payload = std::string();
  if (start.local_workers == 0) {
    return refuse(upstream,
                  "the agent got a worker's Start (no local workers): run "
                  "'millstone agent' only against 'millstone run --agents'",
                  options);
  }
  if (options.log) {
    options.log(
        fmt::format("running shares {}-{} of {} on {} local worker{}", start.plan.worker_index,
                    start.plan.worker_index + start.local_workers - 1, start.plan.worker_count,
                    start.local_workers, start.local_workers == 1 ? "" : "s"));
  }
  std::vector<engine::RunPlan> plans =
      split_plan(start.plan, start.plan.worker_index, start.local_workers, start.plan.worker_count);

  // Signals arrive through a descriptor, as in run_local; the mask from
  // before is back once the run and its workers are over.
  std::optional<InterruptSignals> signals(std::in_place);
  std::vector<LocalWorker> local =
      spawn_local_workers(static_cast<uint32_t>(plans.size()), signals->previous_mask(),
                          {signals->fd(), upstream.fd()});
  std::vector<std::unique_ptr<WorkerLink>> links;
  std::vector<engine::RunPlan> shares;
  for (LocalWorker& w : local) {
    if (!w.link) continue;
    links.push_back(std::move(w.link));
    shares.push_back(plans[w.index]);
  }
  Upstream up(upstream, options.clock_offset_ns);
  CoordinatorOptions workers = options.workers;
  workers.interrupt_fd = signals->fd();
  workers.start_at_ns = start.start_ns + options.clock_offset_ns;
  workers.watch = &up;
  Coordinator coordinator(std::move(links), std::move(shares), std::move(start.data_files), workers,
                          &up);
  up.attach(&coordinator);
  RunResult result = coordinator.run();
  std::vector<std::string> failures = reap_local_workers(local, result.outcomes);
  signals.reset();
  if (up.lost()) return give_up(up.why_lost(), options);

  // No local worker ever acknowledged (none could be started, an interrupt
  // before the start): the coordinator still gets Ack before Done.
  if (!up.acked()) up.on_started(0);
  if (up.lost()) return give_up(up.why_lost(), options);
  // The seconds not forwarded yet (the partial last one, which comes with
  // Done), then Done.
  for (const auto& [index, second] : result.seconds) {
    if (up.forwarded().count(index)) continue;
    metrics::Snapshot copy = second;
    copy.interval_index = index;
    if (!upstream.send(MessageType::kSnapshot, encode_snapshot(copy))) {
      return give_up("cannot send the last seconds to the coordinator", options);
    }
  }
  Done done;
  for (const WorkerOutcome& o : result.outcomes)
    done.snapshots_coalesced += o.done.snapshots_coalesced;
  done.worker_failures = std::move(failures);
  done.worker_failures.insert(done.worker_failures.end(), result.worker_failures.begin(),
                              result.worker_failures.end());
  done.outbox_peak_bytes = upstream.peak_queued_bytes();
  if (!upstream.send(MessageType::kDone, encode_done(done))) {
    return give_up("cannot send Done to the coordinator", options);
  }
  if (flush_until(upstream, net::now_ns() + options.drain_timeout_ns) != WaitResult::kOk) {
    return give_up("the results did not reach the coordinator: " + upstream.error(), options);
  }
  return 0;
}

}  // namespace millstone::cluster
