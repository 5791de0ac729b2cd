#include "cli/generator_summary.h"

#include <algorithm>

#include <fmt/format.h>

#include "cli/summary.h"

namespace millstone::cli {

namespace {

struct WorkerFigures {
  size_t index = 0;
  uint64_t seconds = 0;
  uint64_t saturated_seconds = 0;
  uint64_t max_cpu_permille = 0;
  uint64_t max_busy_permille = 0;
  uint64_t max_loop_lag_us = 0;
};

WorkerFigures figures(size_t index, const cluster::WorkerOutcome& outcome) {
  WorkerFigures f;
  f.index = index;
  for (const auto& [second, load] : outcome.load) {
    if (load.wall_us == 0) continue;  // a worker that predates the measurement
    ++f.seconds;
    if (load.saturated > 0) ++f.saturated_seconds;
    f.max_cpu_permille = std::max(f.max_cpu_permille, load.max_cpu_permille);
    f.max_busy_permille = std::max(f.max_busy_permille, load.max_busy_permille);
    f.max_loop_lag_us = std::max(f.max_loop_lag_us, load.max_loop_lag_us);
  }
  return f;
}

bool limited(const WorkerFigures& f) {
  return f.seconds > 0 && 2 * f.saturated_seconds > f.seconds;
}

std::string worker_name(const cluster::RunResult& result, size_t index) {
  return fmt::format("worker {}", result.outcomes[index].hello.worker_index);
}

}  // namespace

GeneratorVerdict judge_generator(const cluster::RunResult& result) {
  GeneratorVerdict v;
  std::vector<WorkerFigures> saturated;
  for (size_t i = 0; i < result.outcomes.size(); ++i) {
    const WorkerFigures f = figures(i, result.outcomes[i]);
    if (limited(f)) saturated.push_back(f);
  }
  if (saturated.empty()) return v;
  v.limited = true;
  const WorkerFigures& worst = *std::max_element(
      saturated.begin(), saturated.end(), [](const WorkerFigures& a, const WorkerFigures& b) {
        return a.saturated_seconds * b.seconds < b.saturated_seconds * a.seconds;
      });
  const std::string who =
      saturated.size() == 1 ? fmt::format("{} was", worker_name(result, worst.index))
                            : fmt::format("{} of {} workers were, {}", saturated.size(),
                                          result.outcomes.size(), worker_name(result, worst.index));
  v.sentence = fmt::format(
      "the load generator, not the target, limited this run: {} saturated in {} of {} seconds "
      "(up to {}% of a core, its event loop busy up to {}% of the time, timers up to {} late); "
      "give it more workers (--workers) or machines",
      who, worst.saturated_seconds, worst.seconds, worst.max_cpu_permille / 10,
      worst.max_busy_permille / 10, format_latency(worst.max_loop_lag_us));
  return v;
}

nlohmann::json generator_json(const cluster::RunResult& result) {
  const GeneratorVerdict verdict = judge_generator(result);
  nlohmann::json workers = nlohmann::json::array();
  for (size_t i = 0; i < result.outcomes.size(); ++i) {
    const cluster::WorkerOutcome& outcome = result.outcomes[i];
    const WorkerFigures f = figures(i, outcome);
    nlohmann::json cpu = nlohmann::json::array();
    nlohmann::json busy = nlohmann::json::array();
    nlohmann::json lag = nlohmann::json::array();
    for (const auto& [second, load] : outcome.load) {
      if (load.wall_us == 0) continue;
      cpu.push_back(
          {second, static_cast<double>(load.cpu_us) * 100 / static_cast<double>(load.wall_us)});
      busy.push_back(
          {second, static_cast<double>(load.busy_us) * 100 / static_cast<double>(load.wall_us)});
      lag.push_back({second, static_cast<double>(load.max_loop_lag_us) / 1e3});
    }
    workers.push_back({{"worker", outcome.hello.worker_index},
                       {"host", outcome.hello.host},
                       {"seconds", f.seconds},
                       {"saturated_seconds", f.saturated_seconds},
                       {"saturated", limited(f)},
                       {"cpu_percent", std::move(cpu)},
                       {"loop_busy_percent", std::move(busy)},
                       {"loop_lag_ms", std::move(lag)}});
  }
  return {{"limited", verdict.limited},
          {"reason", verdict.sentence},
          {"saturated_when",
           "a second in which a worker used 90% of a core or more, its event loop waited for "
           "events less than 5% of the time, or a timer fired 100 ms late or more"},
          {"workers", std::move(workers)}};
}

std::string format_generator_summary(const cluster::RunResult& result) {
  WorkerFigures busiest;
  bool any = false;
  for (size_t i = 0; i < result.outcomes.size(); ++i) {
    const WorkerFigures f = figures(i, result.outcomes[i]);
    if (f.seconds == 0) continue;
    if (!any || f.max_cpu_permille > busiest.max_cpu_permille) busiest = f;
    any = true;
  }
  if (!any) return "";
  std::string out = fmt::format(
      "  generator    busiest {}: up to {}% of a core, event loop busy up to {}%, timers up to "
      "{} late\n",
      worker_name(result, busiest.index), busiest.max_cpu_permille / 10,
      busiest.max_busy_permille / 10, format_latency(busiest.max_loop_lag_us));
  const GeneratorVerdict verdict = judge_generator(result);
  if (verdict.limited) out += fmt::format("  LIMITED BY THE GENERATOR: {}\n", verdict.sentence);
  return out;
}

}  // namespace millstone::cli
