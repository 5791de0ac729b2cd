#pragma once
// The body of `POST /v1/runs` (docs/serve.md#starting-a-run), checked before
// anything starts, and the `millstone run` command line it becomes. A bad
// body is one line naming the field and what was expected; the run itself
// checks the rest (a scenario's content) and fails as a run.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace millstone::serve {

struct RunRequest {
  // Exactly one of the three.
  std::string url;            // a quick run: http(s)://...
  std::string scenario;       // a scenario file on the server (absolute once checked)
  std::string scenario_yaml;  // a scenario's text, written into the run's directory
  std::string target;         // scenarios: base URL instead of the file's target:
  std::optional<std::string> duration;
  std::optional<std::string> rate;
  std::optional<uint64_t> connections;
  std::optional<uint64_t> vus;
  std::optional<uint64_t> workers;
  std::optional<std::string> timeout;
  std::vector<std::pair<std::string, std::string>> env;
  std::optional<std::string> method;
  std::vector<std::string> headers;
  std::optional<std::string> body;
};

// Parses and checks the JSON text; nullopt with *error set (one line: "field
// 'duration': ..."). Relative scenario paths are resolved from `base_dir`
// (serve's working directory) and must name a readable regular file.
std::optional<RunRequest> parse_run_request(std::string_view text, const std::string& base_dir,
                                            std::string* error);

// The request as the API shows it back (GET /v1/runs/{id}: "request").
nlohmann::json run_request_json(const RunRequest& request);

// Where a run writes what it produces; all absolute.
struct RunFiles {
  std::string dir;
  std::string scenario;  // scenario_yaml's copy
  std::string summary;   // summary.json
  std::string report;    // report.html
  std::string junit;     // junit.xml
  std::string output;    // output.log: the run's stdout and stderr
  std::string history;   // the serve's run history database
};

// argv after the program: `run TARGET -q --out ... [overrides]`; the live
// events go to descriptor `live_fd`.
std::vector<std::string> run_arguments(const RunRequest& request, const RunFiles& files,
                                       int live_fd);

}  // namespace millstone::serve
