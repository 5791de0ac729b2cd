#pragma once
// A run against a baseline, metric by metric, for `millstone compare`
// (docs/history.md). Everything comes from the two JSON summaries.
//
// Each metric gets a verdict from its relative change, in the direction that
// is worse for it (less throughput, more latency, more errors):
//   REGRESSION  worse by more than the tolerance
//   worse       worse by more than half the tolerance, up to the tolerance
//   same        within half the tolerance either way
//   better      better by more than half the tolerance
// Rates near zero are noise in relative terms (0.001% -> 0.002% doubles), so
// the error rate and each check's failure rate also need an absolute change
// above `rate_floor` (0.1 percentage points) before they can be worse.
//
// Verdicts only mean something between runs of the same test: the same load
// on the same target. Where the load shape or the target differ, the
// comparison lists each difference before any verdict (`load_differences`).
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "results/record.h"

namespace millstone::results {

struct CompareOptions {
  double tolerance = 0.10;    // a fraction: 0.10 allows 10% worse
  double rate_floor = 0.001;  // a fraction: 0.001 is 0.1 percentage points
};

// "10%" or "0.1" -> 0.1. False with *error set for anything else, negative
// values, or a bare number above 1 ("10" is ambiguous: write 10% or 0.1).
bool parse_tolerance(const std::string& text, double* tolerance, std::string* error);

enum class Verdict { kBetter, kSame, kWorse, kRegression };
const char* verdict_name(Verdict v);  // "better", "same", "worse", "REGRESSION"

struct MetricComparison {
  std::string metric;  // "throughput", "latency p99", "step buyer/items p99", ...
  std::string unit;    // "req/s", "ms", "%", or "" for verdicts
  // Numbers in `unit`; absent for threshold verdicts and the run result,
  // which compare text (baseline_text, run_text).
  std::optional<double> baseline;
  std::optional<double> run;
  std::string baseline_text;
  std::string run_text;
  std::optional<double> change_pct;  // absent when the baseline is 0 or not a number
  Verdict verdict = Verdict::kSame;
};

// What a run was asked to do, as its record tells: the load model, its size
// and where it went.
struct LoadShape {
  std::string model;  // "closed", "open", "scenario"
  // URL runs: "METHOD URL"; scenario runs: the base URL the requests went to.
  std::string target;
  std::optional<double> rate;           // open model: requests per second planned
  std::optional<uint64_t> connections;  // URL runs: -c
  std::optional<uint64_t> peak_vus;     // scenario runs: most VUs alive (observed)
  std::optional<double> planned_duration_s;
  std::string scenario_file;    // scenario runs: the key (the file's absolute path)
  std::string scenario_source;  // scenario runs: the file's text as it was run
};
LoadShape load_shape(const RunRecord& record);

// One way in which two runs' load shapes differ, in words for people:
// {"rate", "closed model (no --rate)", "500 req/s"}.
struct LoadDifference {
  std::string what;  // "load model", "target", "rate", "connections", "peak VUs",
                     // "planned duration", "scenario file", "scenario text"
  std::string baseline;
  std::string run;
};
// Empty when the two runs applied the same load to the same target. Peak VUs
// are listed only together with a different scenario text: with the same file
// an arrival-rate executor's VU count follows the target's latency, a result
// rather than a setting.
std::vector<LoadDifference> load_differences(const LoadShape& run, const LoadShape& baseline);

struct Comparison {
  std::string run_id;
  std::string baseline_id;
  CompareOptions options;
  // The load or the target differ: the verdicts compare different tests.
  std::vector<LoadDifference> load_differences;
  std::vector<std::string> warnings;  // different keys, hosts, incomplete runs
  std::vector<MetricComparison> metrics;
  bool regression() const;
};

Comparison compare_runs(const RunRecord& run, const RunRecord& baseline,
                        const CompareOptions& options);
// A table for people: one line per metric, warnings first, a verdict last.
std::string format_comparison(const Comparison& c);
nlohmann::json to_json(const Comparison& c);

}  // namespace millstone::results
