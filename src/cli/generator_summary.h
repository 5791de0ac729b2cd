#pragma once
// The load generator watching itself (docs/monitoring.md#the-generator): each
// worker's CPU, event-loop busy time and timer lag per second, and whether a
// saturated worker, rather than the target, limited the run.
#include <string>

#include <nlohmann/json.hpp>

#include "cluster/coordinator.h"

namespace millstone::cli {

struct GeneratorVerdict {
  bool limited = false;
  // "the load generator, not the target, limited this run: worker 0 was
  // saturated in 3 of 3 seconds (...)"; empty when not limited.
  std::string sentence;
};
// Limited when some worker was saturated (metrics::saturated) in most of its seconds.
GeneratorVerdict judge_generator(const cluster::RunResult& result);
// The summary's "generator" object: the verdict and each worker's series.
nlohmann::json generator_json(const cluster::RunResult& result);
// "  generator    busiest worker 99% of a core ...\n", and the verdict when limited.
std::string format_generator_summary(const cluster::RunResult& result);

}  // namespace millstone::cli
