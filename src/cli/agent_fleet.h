#pragma once
// `millstone run --agents N` (docs/agents.md): the coordinator's side of a
// run over remote agents. Opens the agents' port, waits (bounded) for N
// agents to join and says who joined, splits the run over them by their
// workers, and runs it with one Coordinator over their links, which pings
// them, watches their silence and records each one lost.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cluster/agent_listener.h"
#include "cluster/coordinator.h"
#include "engine/run_plan.h"
#include "net/stop_request.h"

namespace millstone::cli {

class AgentFleet {
 public:
  // Reads the token file and opens the port. 0, or the exit code after one
  // line on stderr (3: the token file, 7: cannot listen).
  static int open(const RunOptions& options, std::FILE* out, std::unique_ptr<AgentFleet>* fleet);
  ~AgentFleet();

  // Waits up to --agent-wait for the agents, one line on `out` per agent
  // that joined. 0, or 4 after one line when fewer joined.
  int gather();

  // Splits `plan` (the run's totals) over the agents and runs it. The result
  // counts every remote worker; drifting agent clocks are notes.
  cluster::RunResult run(const engine::RunPlan& plan, cluster::ProgressSink* progress,
                         std::vector<cluster::DataFile> data_files, const net::StopRequest* stop);

  // After run(): one line per agent (who, workers, how it ended), and the same as JSON.
  std::string summary_text(const cluster::RunResult& result) const;
  nlohmann::json summary_json(const cluster::RunResult& result) const;

 private:
  struct Member;
  AgentFleet(const RunOptions& options, std::FILE* out);
  // Agents whose connection closed while the others were awaited.
  void drop_departed();

  const RunOptions& options_;
  std::FILE* out_;
  std::unique_ptr<cluster::AgentListener> listener_;
  std::vector<Member> members_;
  uint32_t total_workers_ = 0;
};

}  // namespace millstone::cli
