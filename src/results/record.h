#pragma once
// Everything that is kept about one finished run: who ran what, where, and
// what came out. The JSON summary (docs/summary-json.md) is the canonical
// result; the HTML report, JUnit XML, time series, run history and webhook
// are all written from a RunRecord, so they never disagree.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace millstone::results {

// A results file or database could not be written or read. what() is one
// line naming the file and the cause.
class ResultsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Environment {
  std::string host;               // gethostname()
  uint32_t cores = 0;             // online CPUs
  std::string kernel;             // uname -sr: "Linux 6.1.0-18-amd64"
  std::string os;                 // PRETTY_NAME from /etc/os-release, or ""
  std::string millstone_version;  // MILLSTONE_VERSION
  std::string command_line;       // argv joined with spaces (quoted where needed)
  int64_t started_unix_ms = 0;    // wall clock at the start of the run
};
// Reads this machine's facts; command_line and started_unix_ms are left to the caller.
Environment current_environment();
nlohmann::json to_json(const Environment& env);
Environment environment_from_json(const nlohmann::json& j);

struct RunRecord {
  std::string id;    // unique, sortable by time: "20261123-032041-4f2a"
  std::string name;  // what was run: the scenario file path as given, or the URL
  // The key under which runs are compared and a baseline is kept: the
  // scenario's absolute path (or the file's `name:`), or METHOD URL.
  std::string key;
  Environment env;
  nlohmann::json config;   // the options and, for scenarios, the scenario file text
  nlohmann::json summary;  // summary_json() + add_scenario_json(): docs/summary-json.md
  int exit_code = 0;       // what `millstone run` exits with
  bool passed() const { return exit_code == 0; }
};

// What a run's badge says, and what it was judged on: a run without
// thresholds is COMPLETED, not PASSED, since nothing judged its numbers.
struct RunVerdict {
  std::string word;    // PASSED, COMPLETED, FAILED, ABORTED, INCOMPLETE, INTERRUPTED
  std::string judged;  // one sentence: what the word rests on, with the error rate
  bool good = false;   // PASSED or COMPLETED (exit code 0)
};
RunVerdict run_verdict(const RunRecord& record);

// "20261123-032041-4f2a": UTC time of `started_unix_ms` and 4 random hex digits.
std::string make_run_id(int64_t started_unix_ms);

}  // namespace millstone::results
