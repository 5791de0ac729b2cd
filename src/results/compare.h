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

struct Comparison {
  std::string run_id;
  std::string baseline_id;
  CompareOptions options;
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
