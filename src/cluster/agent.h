#pragma once
// A remote agent is a small coordinator (docs/design/agents.md): over a link
// to the run's coordinator (already authenticated: the TLS link and the token
// proof are agent_listener's and the dialer's job) it says Hello, receives
// Start with its range of the fleet's shares, runs them on local worker
// processes through its own `Coordinator`, and forwards each merged second as
// one Snapshot, so the coordinator receives one snapshot per agent per second
// whatever the agent's core count.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cluster/coordinator.h"
#include "cluster/link.h"
#include "cluster/wire.h"
#include "engine/run_plan.h"
#include "net/clock.h"

namespace millstone::cluster {

// What the coordinator sends agent k: the whole run's totals with
// worker_index = the first of its shares and worker_count = the fleet's
// shares W, and how many local workers it runs (Start::local_workers).
struct AgentShare {
  engine::RunPlan plan;
  uint32_t local_workers = 0;  // 0: this agent gets no share (see split_over_agents)
};

// Gives agent k `workers_per_agent[k]` consecutive shares of W = their sum.
// A URL run never has more shares than connections (a worker without a
// connection is not started): the agents with the most workers give some up
// first, and an agent left with none gets local_workers 0 (send it Stop).
std::vector<AgentShare> split_over_agents(const engine::RunPlan& plan,
                                          const std::vector<uint32_t>& workers_per_agent);

struct AgentOptions {
  // How long the coordinator may take to answer Hello with Start.
  int64_t start_timeout_ns = 60 * net::kNsPerSec;
  // This machine's clock minus the coordinator's (measured at the handshake):
  // added to Start::start_ns, subtracted from Ack::ready_ns.
  int64_t clock_offset_ns = 0;
  // How long the last seconds and Done may take to leave after the run.
  int64_t drain_timeout_ns = 10 * net::kNsPerSec;
  // For the agent's own coordinator over its local workers (start_at_ns,
  // interrupt_fd and watch are set by serve_agent).
  CoordinatorOptions workers;
  // One line for each thing a person running the agent should know: the run
  // it got, why it gave up (the coordinator's refusal, a lost link). May be empty.
  std::function<void(const std::string&)> log;
};

// Runs one run for the coordinator at the other end of `upstream`, announcing
// itself with `hello`. SIGINT and SIGTERM stop the agent's workers early (its
// coordinator sees it finish early). A closed or broken upstream link, or an
// Error from it, stops the workers at once. Returns the process exit code: 0
// when the run ended with Done sent, 1 otherwise (the coordinator lost,
// refused, or the Start not one for an agent).
int serve_agent(WorkerLink& upstream, const Hello& hello, const AgentOptions& options);

}  // namespace millstone::cluster
