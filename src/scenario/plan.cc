#include "scenario/plan.h"

#include <algorithm>

namespace millstone::scenario {

int64_t ScenarioRun::end_us() const {
  int64_t active_us = executor.duration_us;
  if (executor.kind == Executor::Kind::kRampingVus ||
      executor.kind == Executor::Kind::kRampingArrivalRate) {
    active_us = 0;
    for (const Stage& stage : executor.stages) {
      active_us += stage.duration_us;
    }
  }
  // An iterations executor may end early, but the timeline has to assume the
  // longest it may take: its max duration.
  return start_us + active_us + executor.graceful_stop_us;
}

uint32_t Plan::connections_per_vu() const {
  // A VU keeps its HTTP connection across iterations and may hold a socket
  // too, but only when some flow sends requests and some flow uses sockets.
  const uint32_t http = (uses_http_version(1) ? 1 : 0) + (uses_http_version(2) ? 1 : 0);
  return std::max<uint32_t>(1, http + (has_socket_steps() ? 1 : 0));
}

bool Plan::uses_http_version(uint8_t version) const {
  for (const Flow& flow : flows) {
    for (const HttpRequest& request : flow.requests) {
      if (request.http_version == version) return true;
    }
  }
  return false;
}

bool Plan::has_socket_steps() const {
  for (const Flow& flow : flows) {
    if (!flow.socket_steps.empty()) return true;
  }
  return false;
}

bool Plan::uses_tls() const {
  if (target.tls() || (amqp.enabled && amqp.tls)) return true;
  for (const Flow& flow : flows) {
    for (const SocketStep& step : flow.socket_steps) {
      if (step.uses_tls(target.tls())) return true;
    }
  }
  return false;
}

int64_t Plan::total_duration_us() const {
  int64_t end = 0;
  for (const ScenarioRun& scenario : scenarios) {
    end = std::max(end, scenario.end_us());
  }
  return end;
}

std::string AmqpSettings::for_worker(std::string_view name, uint32_t worker) {
  std::string out;
  const std::string index = std::to_string(worker);
  while (!name.empty()) {
    const size_t at = name.find("{{");
    if (at == std::string_view::npos) break;
    const size_t end = name.find("}}", at);
    if (end == std::string_view::npos) break;
    out.append(name.substr(0, at));
    out += index;  // the loader allows {{ worker }} only
    name.remove_prefix(end + 2);
  }
  out.append(name);
  return out;
}

bool AmqpSettings::queues_per_worker() const {
  return std::all_of(consumed.begin(), consumed.end(),
                     [](const Consumed& c) { return c.queue.find("{{") != std::string::npos; });
}

}  // namespace millstone::scenario
