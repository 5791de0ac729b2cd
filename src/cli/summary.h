#pragma once
// The end-of-run summary, as text for people and as JSON for programs
// (docs/summary-json.md). Both are built from the same merged result.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cluster/coordinator.h"
#include "engine/run_plan.h"

namespace millstone::cli {

struct RunDescription {
  std::string url;
  std::string method;
  uint32_t connections = 0;
  double rate = 0;  // 0 = closed model
  uint32_t workers = 0;
  uint64_t duration_ms = 0;
  bool scenario = false;  // a scenario file: VUs instead of connections, no single method
};

std::string format_summary(const RunDescription& run, const cluster::RunResult& result);
nlohmann::json summary_json(const RunDescription& run, const cluster::RunResult& result);
// Most VUs alive in any one second (all workers together).
uint64_t peak_vus(const cluster::RunResult& result);
// "1,234,567"
std::string group_thousands(uint64_t n);
// Milliseconds with sensible precision, from microseconds: "0.62ms", "12.3ms", "1.52s".
std::string format_latency(uint64_t us);

}  // namespace millstone::cli
