#pragma once
// The end-of-run summary, as text for people and as JSON for programs
// (docs/summary-json.md). Both are built from the same merged result.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

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
  // --percentiles: shown in the text and in the JSON's "percentiles_ms", ascending.
  std::vector<double> percentiles = {50, 90, 95, 99, 99.9};
  bool http_steps = true;  // false for a scenario whose flows only have socket steps
  uint32_t streams = 0;    // --http2: streams per connection; 0 = HTTP/1.1
  std::string grpc_call;   // `millstone grpc`: "package.Service/Method"; empty otherwise
};

// Not one complete response and not one successful socket step: the run
// measured nothing (exit code 6), however it looked from the outside.
bool measured_nothing(const metrics::Snapshot& total);

std::string format_summary(const RunDescription& run, const cluster::RunResult& result);
// For scenario runs each `timeline` entry also carries "steps" as an array
// indexed like Plan::step_names (this function does not know the names);
// add_scenario_json() turns it into the documented object keyed by step name.
nlohmann::json summary_json(const RunDescription& run, const cluster::RunResult& result);
// One second of the run as a `timeline` entry (docs/summary-json.md), `length`
// seconds long; the live events of `run --live-events` carry the same fields.
nlohmann::json second_json(const RunDescription& run, uint64_t index, const metrics::Snapshot& s,
                           double length);
// The percentile curve of `h` as [[percentile, ms], ...], percentiles in
// 0..100 ascending: 0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100 and ten
// points per "nine" in between (log-spaced in 1 / (1 - q), like HdrHistogram
// plots). Empty when `h` holds no values.
nlohmann::json percentile_curve_json(const metrics::Histogram& h);
// Most VUs alive at once in any one second (all workers together).
uint64_t peak_vus(const cluster::RunResult& result);
// "1,234,567"
// Microseconds (the histograms' unit) as milliseconds, for JSON and text.
inline double ms(uint64_t us) {
  return static_cast<double>(us) / 1e3;
}
std::string group_thousands(uint64_t n);
// 10000000 rather than 1e+07; fractions to 4 significant decimals: "2.5", "99.99".
std::string plain_number(double value);
// "1 connection", "2 connections", "1,000 connections".
std::string count_of(uint64_t n, std::string_view singular, std::string_view plural);
// "10s", "1.5s", "90s".
std::string format_seconds(double seconds);
// Milliseconds with sensible precision, from microseconds: "0.62ms", "12.3ms", "1.52s".
std::string format_latency(uint64_t us);

}  // namespace millstone::cli
