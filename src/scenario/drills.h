#pragma once
// `drills:` in a scenario file (docs/scenarios.md#drills): faults on the
// run's timeline, each with one action. Compiled by loader_drills.cc; run by
// the coordinator's drill scheduler (src/drill/), never by the workers.
#include <cstdint>
#include <string>
#include <vector>

namespace millstone::scenario {

// A command as an argument vector: argv[0] is looked up on PATH. With a shell
// (shell: true) the vector is {"/bin/sh", "-c", TEXT}.
using Command = std::vector<std::string>;

struct ExecAction {
  Command command;
  Command undo;  // empty: nothing to run when the fault ends
};

struct SignalAction {
  int signal = 0;        // SIGKILL, ...
  int undo_signal = 0;   // 0: none (SIGCONT by default after SIGSTOP/SIGTSTP with a duration)
  int64_t pid = 0;       // 0: read pid_file when the fault starts
  std::string pid_file;  // resolved against the scenario file's folder
};

// A bearer token for a drill's HTTP API: the mock's --control-token, or the
// gateway in front of a Toxiproxy. The file names where it is (token_env:,
// token_file:); the coordinator reads it when the run starts
// (drill::read_token) and sends "Authorization: Bearer TOKEN". Never printed.
struct ApiToken {
  std::string env;       // token_env: an environment variable's name
  std::string file;      // token_file: a path, resolved against the scenario's folder
  std::string location;  // FILE:LINE:COL of the key, for messages
  std::string value;     // the secret, once read; empty in the loaded Plan
  bool given() const { return !env.empty() || !file.empty(); }
};

// `proxies:` in the file: a fault proxy millstone runs itself for the run
// (in the coordinator, docs/scenarios.md#proxies), listening where the flows
// send their requests and forwarding to the upstream. Drills address it by
// name.
struct RunProxy {
  std::string name;
  std::string listen;    // HOST:PORT, a port the flows name
  std::string upstream;  // HOST:PORT
  std::string location;  // FILE:LINE:COL, for messages
};

// A toxic on a Toxiproxy-compatible API (millstone proxy, or Toxiproxy), or
// on one of the run's own proxies (`local`).
struct ProxyAction {
  std::string api;     // base URL, "http://127.0.0.1:8474"; empty when local
  bool local = false;  // the proxy is one of the file's proxies: (no api: given)
  std::string proxy;   // the proxy's name
  std::string
      toxic_type;  // latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data
  std::string stream = "downstream";
  double toxicity = 1.0;
  std::vector<std::pair<std::string, int64_t>> attributes;  // Toxiproxy's units
  ApiToken token;
};

// A change to a mock route through the mock's control API.
struct MockAction {
  std::string url;    // the mock's base URL, "http://127.0.0.1:8080"
  std::string route;  // the route's name
  std::string patch;  // JSON object: the route's fields to change
  ApiToken token;     // the mock's --control-token
};

struct Drill {
  enum class Kind : uint8_t { kExec, kSignal, kProxy, kMock };
  std::string name;
  std::string location;  // "drill.yaml:12:5", for messages
  Kind kind = Kind::kExec;
  int64_t start_us = 0;             // from the run's start
  int64_t duration_us = -1;         // < 0: no duration (a one-off action)
  int64_t timeout_us = 10'000'000;  // each action (start and undo) is bounded by this
  std::string after;                // `after: SCENARIO` as written, for the summary ("" with at:)
  ExecAction exec;
  SignalAction signal;
  ProxyAction proxy;
  MockAction mock;

  bool has_duration() const { return duration_us >= 0; }
  int64_t end_us() const { return has_duration() ? start_us + duration_us : start_us; }
};

const char* drill_kind_name(Drill::Kind kind);  // "exec", "signal", "proxy", "mock"
// "SIGKILL" for 9; "signal 64" for one without a name.
std::string signal_name(int signal);

}  // namespace millstone::scenario
