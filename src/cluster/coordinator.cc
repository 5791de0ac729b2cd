#include "cluster/coordinator.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include <fmt/format.h>

#include "text/printable.h"

namespace millstone::cluster {

namespace {

// A worker ready this long after the start instant gets a note in the run's output.
constexpr int64_t kLateNoteNs = 100 * net::kNsPerMs;

}  // namespace

struct Coordinator::Peer {
  enum class Phase {
    kHello,     // waiting for Hello
    kReady,     // Hello checked, waiting for the others
    kStarting,  // Start sent, waiting for Ack
    kRunning,   // Ack received: snapshots, then Done
    kEnded,     // finished, lost or failed: see outcome
  };
  std::unique_ptr<WorkerLink> link;
  engine::RunPlan share;
  Phase phase = Phase::kHello;
  WorkerOutcome outcome;
  int64_t last_interval = -1;  // highest interval reported
  uint32_t local_workers = 0;  // > 0: an agent running that many workers
  int64_t last_heard_ns = 0;   // when bytes last arrived on its link
  bool live() const { return phase != Phase::kEnded; }
  bool agent() const { return local_workers > 0; }
};

std::string protocol_mismatch(const std::string& name, uint32_t protocol,
                              const std::string& build) {
  return fmt::format(
      "{} speaks protocol version {} ({}), this coordinator {} (millstone {}); run the same "
      "millstone version everywhere",
      name, protocol,
      build.empty() ? std::string("an older millstone") : "millstone " + text::printable(build),
      kProtocolVersion, MILLSTONE_VERSION);
}

double missing_share(const RunResult& result, uint64_t second) {
  double missing = 0;
  for (const AgentLoss& loss : result.losses) {
    if (loss.at_second <= second) missing += loss.missing_share;
  }
  return std::min(1.0, missing);
}

std::vector<engine::RunPlan> split_plan(const engine::RunPlan& plan, uint32_t workers) {
  workers = std::max<uint32_t>(1, std::min(workers, std::max<uint32_t>(1, plan.connections)));
  return split_plan(plan, 0, workers, workers);
}

std::vector<engine::RunPlan> split_plan(const engine::RunPlan& plan, uint32_t first, uint32_t count,
                                        uint32_t total) {
  total = std::max<uint32_t>(1, total);
  std::vector<engine::RunPlan> plans;
  for (uint32_t i = first; i < first + count && i < total; ++i) {
    engine::RunPlan p = plan;
    p.connections = plan.connections / total + (i < plan.connections % total ? 1 : 0);
    p.rate = plan.rate / total;
    p.worker_index = i;
    p.worker_count = total;
    plans.push_back(std::move(p));
  }
  return plans;
}

Coordinator::Coordinator(std::vector<std::unique_ptr<WorkerLink>> links,
                         std::vector<engine::RunPlan> shares, std::vector<DataFile> data_files,
                         CoordinatorOptions options, ProgressSink* progress,
                         std::vector<uint32_t> local_workers)
    : data_files_(std::move(data_files)), options_(options), progress_(progress) {
  peers_.resize(links.size());
  for (size_t i = 0; i < links.size(); ++i) {
    peers_[i].link = std::move(links[i]);
    if (i < shares.size()) peers_[i].share = std::move(shares[i]);
    if (i < local_workers.size()) peers_[i].local_workers = local_workers[i];
    duration_ms_ = std::max(duration_ms_, peers_[i].share.duration_ms);
    slowest_timeout_ms_ = std::max(
        {slowest_timeout_ms_, peers_[i].share.timeout_ms, peers_[i].share.connect_timeout_ms});
  }
  result_.workers = static_cast<uint32_t>(peers_.size());
}

Coordinator::~Coordinator() = default;

void Coordinator::end(Peer& peer, WorkerOutcome::State state, std::string reason, bool tell) {
  if (!peer.live()) return;
  const bool was_started = peer.phase >= Peer::Phase::kStarting;
  peer.phase = Peer::Phase::kEnded;
  peer.outcome.state = state;
  peer.outcome.reason = std::move(reason);
  // A worker told why stops at once instead of waiting for its own timeout.
  if (tell) {
    peer.link->send(MessageType::kError, encode_error(peer.outcome.reason));
    peer.link->flush();
  }
  peer.link->close();
  // An agent given up on by a second interrupt, or never started because of
  // one, was not lost: the user ended the run.
  if (!peer.agent() || state == WorkerOutcome::State::kFinished || interrupts_ >= 2 ||
      (result_.interrupted && !was_started)) {
    return;
  }
  AgentLoss loss;
  loss.agent = peer.link->name();
  loss.host = peer.outcome.hello.host;
  loss.at_second = static_cast<uint64_t>(peer.last_interval + 1);
  loss.missing_share = static_cast<double>(peer.local_workers) /
                       static_cast<double>(std::max<uint32_t>(1, peer.share.worker_count));
  loss.cause = peer.outcome.reason;
  result_.losses.push_back(loss);
  if (options_.on_agent_loss != CoordinatorOptions::OnAgentLoss::kFail || stopped_on_loss_) {
    return;
  }
  // --on-agent-loss fail: the run ends now, and is incomplete.
  stopped_on_loss_ = true;
  result_.worker_failures.push_back(
      fmt::format("{} was lost at second {} ({}); --on-agent-loss fail stopped the run", loss.agent,
                  loss.at_second, text::printable(loss.cause)));
  request_stop();
}

void Coordinator::request_stop() {
  stop_sent_ = true;
  for (Peer& peer : peers_) {
    if (peer.phase == Peer::Phase::kRunning || peer.phase == Peer::Phase::kStarting) {
      peer.link->send(MessageType::kStop, {});
    }
  }
}

void Coordinator::abandon(const std::string& why) {
  stop_sent_ = true;
  for (Peer& peer : peers_)
    fail(peer, fmt::format("{}: {}", peer.link->name(), why));
}

void Coordinator::check_silence(int64_t now) {
  if (options_.silence_timeout_ns <= 0) return;
  for (Peer& peer : peers_) {
    if (!peer.agent() || peer.phase != Peer::Phase::kRunning) continue;
    const int64_t since = std::max(peer.last_heard_ns, start_ns_);
    if (now - since >= options_.silence_timeout_ns) {
      end(peer, WorkerOutcome::State::kLinkLost,
          fmt::format("{} sent nothing for {}", peer.link->name(),
                      seconds_text(options_.silence_timeout_ns)),
          true);
    }
  }
}

void Coordinator::note_started() {
  if (started_noted_ || start_ns_ == 0) return;
  if (std::any_of(peers_.begin(), peers_.end(),
                  [](const Peer& p) { return p.phase == Peer::Phase::kStarting; })) {
    return;
  }
  started_noted_ = true;
  if (progress_) progress_->on_started(latest_ready_ns_);
}

void Coordinator::fail(Peer& peer, std::string reason) {
  end(peer, WorkerOutcome::State::kFailed, std::move(reason), true);
}

bool Coordinator::any_live() const {
  return std::any_of(peers_.begin(), peers_.end(), [](const Peer& p) { return p.live(); });
}

void Coordinator::on_interrupt() {
  signalfd_siginfo info;
  while (read(options_.interrupt_fd, &info, sizeof info) > 0) {
    ++interrupts_;
    result_.interrupted = true;
    stop_sent_ = true;
    for (Peer& peer : peers_) {
      if (!peer.live()) continue;
      if (interrupts_ == 1 && peer.phase >= Peer::Phase::kStarting) {
        peer.link->send(MessageType::kStop, {});
      } else {
        fail(peer,
             peer.phase >= Peer::Phase::kStarting
                 ? fmt::format("{} was given up on after a second interrupt", peer.link->name())
                 : fmt::format("{} was not started: the run was interrupted", peer.link->name()));
      }
    }
  }
}

void Coordinator::on_stop_request() {
  if (!result_.stop_reason.empty() || result_.interrupted) return;
  result_.stop_reason = options_.stop->reason();
  if (result_.stop_reason.empty()) result_.stop_reason = "stopped on request";
  stop_sent_ = true;
  for (Peer& peer : peers_) {
    if (peer.live() && peer.phase >= Peer::Phase::kStarting) {
      peer.link->send(MessageType::kStop, {});
    }
  }
}

void Coordinator::pump(int64_t deadline_ns, const std::function<bool()>& done) {
  std::vector<pollfd> fds;
  std::vector<Peer*> owners;
  while (!done()) {
    fds.clear();
    owners.clear();
    // Agents are pinged from here, so one alive but with nothing to report
    // (waiting for the others, between seconds) is heard from: its pongs.
    int64_t next_heartbeat = INT64_MAX;
    const int64_t before = net::now_ns();
    for (Peer& peer : peers_) {
      if (!peer.live()) continue;
      next_heartbeat = std::min(next_heartbeat, peer.link->heartbeat(before));
      short events = POLLIN;
      if (peer.link->queued_bytes() > 0) events |= POLLOUT;
      fds.push_back({peer.link->fd(), events, 0});
      owners.push_back(&peer);
    }
    if (options_.interrupt_fd >= 0) fds.push_back({options_.interrupt_fd, POLLIN, 0});
    const size_t watch_slot = fds.size();
    const bool watching = options_.watch && options_.watch->fd() >= 0;
    if (watching) fds.push_back({options_.watch->fd(), options_.watch->events(), 0});
    // The stop descriptor stays readable once requested: polled until acted on.
    const bool watch_stop = options_.stop && options_.stop->fd() >= 0 &&
                            result_.stop_reason.empty() && !result_.interrupted;
    if (watch_stop) fds.push_back({options_.stop->fd(), POLLIN, 0});
    const int64_t left_ns = deadline_ns - net::now_ns();
    if (left_ns <= 0) return;
    const int64_t wait_ns = std::min(left_ns, std::max<int64_t>(0, next_heartbeat - before));
    const int timeout_ms =
        static_cast<int>(std::min<int64_t>((wait_ns + net::kNsPerMs - 1) / net::kNsPerMs, 200));
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) return;
    const int64_t now = net::now_ns();
    for (size_t i = 0; n > 0 && i < owners.size(); ++i) {
      if (fds[i].revents & POLLIN) owners[i]->last_heard_ns = now;
    }
    check_silence(now);
    if (options_.stop && options_.stop->requested()) on_stop_request();
    if (n <= 0) {
      emit_progress(false);
      continue;
    }
    if (options_.interrupt_fd >= 0 && (fds[owners.size()].revents & POLLIN)) on_interrupt();
    if (watching && fds[watch_slot].revents != 0) {
      options_.watch->on_ready(*this, fds[watch_slot].revents);
    }
    for (size_t i = 0; i < owners.size(); ++i) {
      Peer& peer = *owners[i];
      if (fds[i].revents == 0 || !peer.live()) continue;
      read_from(peer);
    }
    note_started();
    emit_progress(false);
    // A guard judges each second as it is emitted, and may ask to stop.
    if (options_.stop && options_.stop->requested()) on_stop_request();
  }
}

void Coordinator::read_from(Peer& peer) {
  // Read before writing: a worker that sent Done and exited makes a
  // queued Stop fail with EPIPE, and its Done, still unread in the
  // socket, must count first (it did finish).
  MessageType type;
  std::string payload;
  for (bool more = true; more && peer.live();) {
    switch (peer.link->receive(&type, &payload)) {
      case WorkerLink::Receive::kMessage:
        handle(peer, type, payload);
        break;
      case WorkerLink::Receive::kNothing:
        more = false;
        break;
      case WorkerLink::Receive::kClosed:
        end(peer, WorkerOutcome::State::kLinkLost,
            fmt::format("{}'s link closed before it finished", peer.link->name()), false);
        break;
      case WorkerLink::Receive::kBroken:
        end(peer, WorkerOutcome::State::kFailed, peer.link->error(), false);
        break;
    }
  }
  if (peer.live() && !peer.link->flush()) {
    end(peer, WorkerOutcome::State::kLinkLost, peer.link->error(), false);
  }
}

void Coordinator::handle(Peer& peer, MessageType type, const std::string& payload) {
  const std::string& name = peer.link->name();
  if (type == MessageType::kError) {
    std::string text;
    if (!decode_error(payload, &text)) text = "(an error message that does not decode)";
    end(peer, WorkerOutcome::State::kFailed, fmt::format("{}: {}", name, text::printable(text)),
        false);
    return;
  }
  switch (peer.phase) {
    case Peer::Phase::kHello: {
      if (type != MessageType::kHello) break;
      uint32_t protocol = 0;
      std::string build;
      if (!decode_hello_versions(payload, &protocol, &build)) {
        fail(peer, fmt::format("{} sent a Hello too short to hold a version", name));
        return;
      }
      if (protocol != kProtocolVersion) {
        fail(peer, protocol_mismatch(name, protocol, build));
        return;
      }
      if (!decode_hello(payload, &peer.outcome.hello)) {
        fail(peer, fmt::format("{} sent a Hello that does not decode", name));
        return;
      }
      peer.phase = Peer::Phase::kReady;
      return;
    }
    case Peer::Phase::kStarting: {
      if (type != MessageType::kAck) break;
      Ack ack;
      if (!decode_ack(payload, &ack)) {
        fail(peer, fmt::format("{} sent an Ack that does not decode", name));
        return;
      }
      peer.outcome.late_ns = std::max<int64_t>(0, ack.ready_ns - start_ns_);
      latest_ready_ns_ = std::max(latest_ready_ns_, ack.ready_ns);
      peer.phase = Peer::Phase::kRunning;
      return;
    }
    case Peer::Phase::kRunning: {
      if (type == MessageType::kSnapshot) {
        metrics::Snapshot snapshot;
        if (!decode_snapshot(payload, &snapshot)) {
          fail(peer, fmt::format("{} sent a snapshot that does not decode", name));
          return;
        }
        const uint64_t peak_before = result_.total.peak_vus;
        result_.total.merge(snapshot);
        peer.outcome.load[snapshot.interval_index].merge(snapshot.generator);
        metrics::Snapshot& second = result_.seconds[snapshot.interval_index];
        second.merge(snapshot);
        second.interval_index = snapshot.interval_index;
        // Peaks add across workers within a second, but not across seconds:
        // the run's is the largest second's. A second's only grows as its
        // snapshots arrive, so the largest so far is kept here at once (going
        // over every second for every snapshot was quadratic in the run's
        // length, times the workers: 100 workers for 30 min, 162 million steps).
        result_.total.peak_vus = std::max(peak_before, second.peak_vus);
        peer.last_interval =
            std::max(peer.last_interval, static_cast<int64_t>(snapshot.interval_index));
        return;
      }
      if (type == MessageType::kDone) {
        if (!decode_done(payload, &peer.outcome.done)) {
          fail(peer, fmt::format("{} sent a Done that does not decode", name));
          return;
        }
        for (const std::string& failure : peer.outcome.done.worker_failures) {
          result_.worker_failures.push_back(fmt::format("{}: {}", name, text::printable(failure)));
        }
        end(peer, WorkerOutcome::State::kFinished, {}, false);
        return;
      }
      break;
    }
    case Peer::Phase::kReady:
    case Peer::Phase::kEnded:
      break;
  }
  fail(peer, fmt::format("{} broke the protocol: an unexpected {} message", name,
                         message_type_name(type)));
}

void Coordinator::receive_hellos() {
  // An agent's link holds its Hello already (the listener read it to check
  // the version and show who joined): no readiness will announce it.
  for (Peer& peer : peers_)
    read_from(peer);
  pump(net::now_ns() + options_.hello_timeout_ns, [&] {
    return result_.interrupted || std::none_of(peers_.begin(), peers_.end(), [](const Peer& p) {
             return p.phase == Peer::Phase::kHello;
           });
  });
  for (Peer& peer : peers_) {
    if (peer.phase == Peer::Phase::kHello) {
      fail(peer, fmt::format("{} did not answer Hello within {}", peer.link->name(),
                             seconds_text(options_.hello_timeout_ns)));
    }
  }
}

void Coordinator::send_starts() {
  start_ns_ =
      options_.start_at_ns > 0 ? options_.start_at_ns : net::now_ns() + options_.start_lead_ns;
  Start start;
  start.start_ns = start_ns_;
  start.data_files = data_files_;
  for (Peer& peer : peers_) {
    if (peer.phase != Peer::Phase::kReady) continue;
    start.plan = peer.share;
    start.local_workers = peer.local_workers;
    if (!peer.link->send(MessageType::kStart, encode_start(start))) {
      end(peer, WorkerOutcome::State::kLinkLost,
          fmt::format("{}: cannot send Start: {}", peer.link->name(),
                      peer.link->error().empty() ? "its outbox is full" : peer.link->error()),
          false);
      continue;
    }
    peer.phase = Peer::Phase::kStarting;
  }
  if (progress_) progress_->on_start(start_ns_);
}

void Coordinator::run_until_done() {
  const int64_t ack_deadline = net::now_ns() + options_.ack_timeout_ns;
  const int64_t planned_end = start_ns_ + static_cast<int64_t>(duration_ms_) * net::kNsPerMs;
  const int64_t stop_at = planned_end + options_.stop_after_end_ns;
  const int64_t give_up_at = planned_end +
                             static_cast<int64_t>(slowest_timeout_ms_) * net::kNsPerMs +
                             options_.finish_grace_ns;
  while (any_live()) {
    bool starting = std::any_of(peers_.begin(), peers_.end(),
                                [](const Peer& p) { return p.phase == Peer::Phase::kStarting; });
    int64_t wake = give_up_at;
    if (!stop_sent_) wake = std::min(wake, stop_at);
    if (starting) wake = std::min(wake, ack_deadline);
    pump(wake, [&] { return !any_live(); });
    const int64_t now = net::now_ns();
    if (now >= ack_deadline) {
      for (Peer& peer : peers_) {
        if (peer.phase == Peer::Phase::kStarting) {
          fail(peer, fmt::format("{} did not acknowledge Start within {}", peer.link->name(),
                                 seconds_text(options_.ack_timeout_ns)));
        }
      }
    }
    note_started();
    if (!stop_sent_ && now >= stop_at) {
      // Workers end on their own at the planned end; this catches one that
      // could not keep time (dozens of workers on a few cores).
      request_stop();
    }
    if (now >= give_up_at) {
      for (Peer& peer : peers_) {
        if (peer.live()) {
          fail(peer,
               fmt::format("{} did not finish in time and was given up on", peer.link->name()));
        }
      }
    }
  }
}

void Coordinator::emit_progress(bool flush_all) {
  while (progress_) {
    // Every worker still running must have reported this second (or a later one).
    const bool waiting = std::any_of(peers_.begin(), peers_.end(), [&](const Peer& p) {
      return p.live() && p.last_interval < static_cast<int64_t>(next_progress_);
    });
    if (!flush_all && waiting) return;
    auto it = result_.seconds.find(next_progress_);
    if (it == result_.seconds.end()) {
      // Nobody reported this second (every worker joined after it): skipped
      // once a later one exists.
      if (result_.seconds.upper_bound(next_progress_) == result_.seconds.end()) return;
      ++next_progress_;
      continue;
    }
    // The last, partial interval comes with Done; it is not a whole second.
    const bool partial = std::any_of(peers_.begin(), peers_.end(), [&](const Peer& p) {
      return p.outcome.state == WorkerOutcome::State::kFinished &&
             p.last_interval == static_cast<int64_t>(next_progress_);
    });
    if (!partial) progress_->on_second(next_progress_, it->second, result_.total);
    ++next_progress_;
  }
}

RunResult Coordinator::run() {
  receive_hellos();
  if (stopped_on_loss_) {
    for (Peer& peer : peers_) {
      fail(peer, fmt::format("{} was not started: an agent was lost before the start",
                             peer.link->name()));
    }
  } else if (!result_.interrupted) {
    send_starts();
    run_until_done();
  } else {
    for (Peer& peer : peers_) {
      fail(peer, fmt::format("{} was not started: the run was interrupted", peer.link->name()));
    }
  }
  if (start_ns_ == 0) start_ns_ = net::now_ns();
  result_.duration_s = static_cast<double>(net::now_ns() - start_ns_) / 1e9;
  if (!result_.interrupted && result_.stop_reason.empty()) {
    result_.duration_s =
        std::clamp(result_.duration_s, 0.0, static_cast<double>(duration_ms_) / 1e3);
  }
  emit_progress(true);
  if (progress_) progress_->on_finish();
  // Late workers are one line, however many (dozens of workers on a few cores).
  std::vector<const Peer*> late;
  int64_t latest_ns = 0;
  for (Peer& peer : peers_) {
    if (peer.link) peer.link->close();
    const WorkerOutcome& o = peer.outcome;
    if (o.state == WorkerOutcome::State::kFinished && o.late_ns >= kLateNoteNs) {
      late.push_back(&peer);
      latest_ns = std::max(latest_ns, o.late_ns);
    }
    if (o.done.snapshots_coalesced > 0) {
      result_.worker_notes.push_back(fmt::format(
          "{}'s link was backed up: {} of its seconds were merged into later ones (totals are "
          "exact, the per-second series is not)",
          peer.link->name(), o.done.snapshots_coalesced));
    }
    result_.outcomes.push_back(o);
  }
  if (late.size() == 1) {
    result_.worker_notes.push_back(
        fmt::format("{} was ready {} after the start; its share of the load is missing from the "
                    "seconds before",
                    late[0]->link->name(), seconds_text(latest_ns)));
  } else if (!late.empty()) {
    result_.worker_notes.push_back(
        fmt::format("{} of {} workers were ready up to {} after the start; their share of the load "
                    "is missing from the seconds before",
                    late.size(), peers_.size(), seconds_text(latest_ns)));
  }
  return std::move(result_);
}

}  // namespace millstone::cluster
