#include "cli/agent_fleet.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "cli/exit_codes.h"
#include "cli/limits.h"
#include "cli/summary.h"
#include "cluster/agent.h"
#include "cluster/local_workers.h"
#include "cluster/token.h"
#include "net/clock.h"
#include "text/printable.h"
#include "tls/server_context.h"

namespace millstone::cli {

namespace {

// An agent forks its workers and they build their workloads after Start:
// the start instant leaves them this long (a local run leaves 250 ms; a
// worker ready later gets a note, its share missing from the seconds before).
constexpr int64_t kAgentStartLeadNs = 500 * net::kNsPerMs;

double ns_to_ms(int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

}  // namespace

struct AgentFleet::Member {
  cluster::JoinedAgent joined;
  cluster::AgentLink* link = nullptr;  // owned by joined.link, then by the coordinator
  uint32_t workers = 0;                // 0: no share (sent Stop)
  uint32_t first_share = 0;
  int coordinator_index = -1;  // its position among the coordinator's links
};

AgentFleet::AgentFleet(const RunOptions& options, std::FILE* out) : options_(options), out_(out) {}
AgentFleet::~AgentFleet() = default;

int AgentFleet::open(const RunOptions& options, std::FILE* out,
                     std::unique_ptr<AgentFleet>* fleet) {
  std::optional<cluster::Token> token;
  try {
    token = cluster::Token::read_file(options.token_file);
  } catch (const cluster::TokenError& e) {
    fmt::print(stderr, "millstone run: --token-file: {}\n", text::printable(e.what()));
    return kExitConfig;
  }
  std::unique_ptr<AgentFleet> made(new AgentFleet(options, out));
  cluster::AgentListenerOptions listen;
  listen.listen = options.agent_listen;
  try {
    made->listener_ =
        std::make_unique<cluster::AgentListener>(*token, listen, [](const std::string& line) {
          fmt::print(stderr, "millstone run: {}\n", text::printable(line));
          std::fflush(stderr);
        });
  } catch (const cluster::AgentListenError& e) {
    fmt::print(stderr, "millstone run: --agent-listen {}: {}\n",
               text::printable(options.agent_listen), text::printable(e.what()));
    return kExitCannotListen;
  } catch (const std::exception& e) {  // TokenError, TlsSetupError: OpenSSL failed
    fmt::print(stderr, "millstone run: --agent-listen {}: {}\n",
               text::printable(options.agent_listen), text::printable(e.what()));
    return kExitInternal;
  }
  *fleet = std::move(made);
  return 0;
}

void AgentFleet::drop_departed() {
  for (size_t i = 0; i < members_.size();) {
    pollfd p{members_[i].link->fd(), POLLRDHUP, 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      fmt::print(out_, "{} ({}) left before the run started; waiting for another\n",
                 text::printable(members_[i].link->name()),
                 text::printable(members_[i].joined.hello.host));
      std::fflush(out_);
      members_.erase(members_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    ++i;
  }
}

int AgentFleet::gather() {
  const uint32_t wanted = options_.agents;
  fmt::print(out_, "waiting up to {} for {} on {}\n",
             format_seconds(static_cast<double>(options_.agent_wait_us) / 1e6),
             count_of(wanted, "agent", "agents"), listener_->address());
  std::fflush(out_);
  const int64_t deadline = net::now_ns() + options_.agent_wait_us * 1000;
  while (members_.size() < wanted) {
    const int64_t now = net::now_ns();
    if (now >= deadline) break;
    // In slices, to notice an agent that left while the others are awaited.
    std::optional<cluster::JoinedAgent> joined =
        listener_->next(std::min(deadline, now + 250 * net::kNsPerMs));
    drop_departed();
    if (!joined) continue;
    Member m;
    m.link = joined->link.get();
    m.joined = std::move(*joined);
    const cluster::Hello& h = m.joined.hello;
    const cluster::ClockSample& c = m.joined.clock;
    fmt::print(out_,
               "agent {} joined: {} ({}), {}, fd limit {}, millstone {}, clock offset {:+.3f} ms "
               "(+/- {:.3f} ms), rtt {:.3f} ms\n",
               members_.size() + 1, text::printable(h.host), text::printable(m.joined.peer),
               count_of(h.cores, "core", "cores"), h.fd_limit, text::printable(h.build_version),
               ns_to_ms(c.offset_ns), ns_to_ms(c.error_ns()), ns_to_ms(c.rtt_ns));
    std::fflush(out_);
    members_.push_back(std::move(m));
  }
  if (members_.size() < wanted) {
    fmt::print(stderr,
               "millstone run: {} of {} joined on {} within {} (--agent-wait); start them "
               "with: millstone agent --join {} --token-file FILE\n",
               members_.size(), count_of(wanted, "agent", "agents"), listener_->address(),
               format_seconds(static_cast<double>(options_.agent_wait_us) / 1e6),
               listener_->address());
    return kExitUnreachable;
  }
  // The listener stays (its TLS context serves the links) but is not driven
  // any more: an agent that dials later completes no handshake and retries
  // until its --join-timeout.
  return 0;
}

cluster::RunResult AgentFleet::run(const engine::RunPlan& plan, cluster::ProgressSink* progress,
                                   std::vector<cluster::DataFile> data_files,
                                   const net::StopRequest* stop) {
  // One worker per core an agent announced; a URL run's agent takes more if
  // its share of the connections needs more descriptors than one worker has.
  uint64_t cores = 0;
  for (const Member& m : members_)
    cores += std::max<uint32_t>(1, m.joined.hello.cores);
  std::vector<uint32_t> per_agent;
  for (const Member& m : members_) {
    uint32_t w = std::max<uint32_t>(1, m.joined.hello.cores);
    if (plan.scenario_source.empty()) {
      const uint64_t share = (plan.connections * w + cores - 1) / cores;
      w = std::max(w, workers_for_descriptors(share, m.joined.hello.fd_limit));
    }
    per_agent.push_back(w);
  }
  std::vector<cluster::AgentShare> shares = cluster::split_over_agents(plan, per_agent);

  std::vector<std::unique_ptr<cluster::WorkerLink>> links;
  std::vector<engine::RunPlan> plans;
  std::vector<uint32_t> local_workers;
  for (size_t k = 0; k < members_.size(); ++k) {
    Member& m = members_[k];
    m.workers = shares[k].local_workers;
    m.first_share = shares[k].plan.worker_index;
    total_workers_ += m.workers;
    if (m.workers == 0) {
      // More agents than connections: this one has nothing to run.
      m.link->send(cluster::MessageType::kStop, {});
      cluster::flush_until(*m.link, net::now_ns() + net::kNsPerSec);
      m.link->close();
      fmt::print(out_, "agent {}: no share ({} connections for more workers); sent home\n", k + 1,
                 plan.connections);
      continue;
    }
    fmt::print(out_, "agent {}: {}, shares {}-{} of {}\n", k + 1,
               count_of(m.workers, "worker", "workers"), m.first_share,
               m.first_share + m.workers - 1, shares[k].plan.worker_count);
    m.coordinator_index = static_cast<int>(links.size());
    links.push_back(std::move(m.joined.link));
    plans.push_back(std::move(shares[k].plan));
    local_workers.push_back(m.workers);
  }
  std::fflush(out_);

  std::optional<cluster::InterruptSignals> signals(std::in_place);
  cluster::CoordinatorOptions coordinator_options;
  coordinator_options.interrupt_fd = signals->fd();
  coordinator_options.stop = stop;
  coordinator_options.start_lead_ns = kAgentStartLeadNs;
  coordinator_options.on_agent_loss = options_.agent_loss_aborts
                                          ? cluster::CoordinatorOptions::OnAgentLoss::kFail
                                          : cluster::CoordinatorOptions::OnAgentLoss::kContinue;
  cluster::Coordinator coordinator(std::move(links), std::move(plans), std::move(data_files),
                                   coordinator_options, progress, std::move(local_workers));
  cluster::RunResult result = coordinator.run();
  result.workers = total_workers_;
  signals.reset();
  // The links live as long as the coordinator: their clocks are read here.
  for (const Member& m : members_) {
    if (m.coordinator_index < 0 || m.link->drift_ns() <= cluster::AgentLink::kDriftNoteNs) {
      continue;
    }
    result.worker_notes.push_back(fmt::format(
        "{}'s clock offset moved {:.3f} ms during the run (from {:+.3f} to {:+.3f} ms); its "
        "seconds are aligned on the handshake's offset",
        m.link->name(), ns_to_ms(m.link->drift_ns()), ns_to_ms(m.link->handshake_clock().offset_ns),
        ns_to_ms(m.link->offset_ns())));
  }
  for (Member& m : members_)
    m.link = nullptr;  // closed and gone with the coordinator
  return result;
}

namespace {

std::string outcome_of(const cluster::RunResult& result, int index, const std::string& name,
                       std::optional<uint64_t>* lost_at) {
  for (const cluster::AgentLoss& loss : result.losses) {
    if (loss.agent == name) {
      *lost_at = loss.at_second;
      return "lost";
    }
  }
  if (index < 0) return "no share";
  if (static_cast<size_t>(index) >= result.outcomes.size()) return "failed";
  switch (result.outcomes[static_cast<size_t>(index)].state) {
    case cluster::WorkerOutcome::State::kFinished:
      return "finished";
    case cluster::WorkerOutcome::State::kLinkLost:
    case cluster::WorkerOutcome::State::kFailed:
      break;
  }
  return "failed";
}

}  // namespace

std::string AgentFleet::summary_text(const cluster::RunResult& result) const {
  std::string out = fmt::format("\n  Agents ({}, {}):\n", members_.size(),
                                count_of(total_workers_, "worker", "workers"));
  for (size_t k = 0; k < members_.size(); ++k) {
    const Member& m = members_[k];
    std::optional<uint64_t> lost_at;
    const std::string name = "agent " + m.joined.peer;
    const std::string outcome = outcome_of(result, m.coordinator_index, name, &lost_at);
    out += fmt::format("    agent {}  {} ({})  {}  {}{}\n", k + 1,
                       text::printable(m.joined.hello.host), text::printable(m.joined.peer),
                       count_of(m.workers, "worker", "workers"), outcome,
                       lost_at ? fmt::format(" at second {}", *lost_at) : std::string());
  }
  return out;
}

nlohmann::json AgentFleet::summary_json(const cluster::RunResult& result) const {
  nlohmann::json agents = nlohmann::json::array();
  for (const Member& m : members_) {
    std::optional<uint64_t> lost_at;
    const std::string name = "agent " + m.joined.peer;
    nlohmann::json a = {{"agent", name},
                        {"host", m.joined.hello.host},
                        {"millstone_version", m.joined.hello.build_version},
                        {"cores", m.joined.hello.cores},
                        {"fd_limit", m.joined.hello.fd_limit},
                        {"workers", m.workers},
                        {"first_share", m.first_share},
                        {"clock_offset_ms", ns_to_ms(m.joined.clock.offset_ns)},
                        {"clock_error_ms", ns_to_ms(m.joined.clock.error_ns())},
                        {"rtt_ms", ns_to_ms(m.joined.clock.rtt_ns)},
                        {"outcome", outcome_of(result, m.coordinator_index, name, &lost_at)}};
    if (lost_at) a["lost_at_second"] = *lost_at;
    agents.push_back(std::move(a));
  }
  return agents;
}

}  // namespace millstone::cli
