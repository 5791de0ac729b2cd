#pragma once
// The `millstone` command line: one function per subcommand, all returning an
// exit code from exit_codes.h. Exceptions from configuration loading stop
// here and become one line on stderr.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/io_backend.h"
#include "scenario/values.h"
#include "tls/options.h"

namespace millstone::proxy {
struct StandaloneOptions;
}

namespace millstone::cli {

struct RunOptions {
  std::string url;              // a URL, or a scenario file (docs/scenarios.md)
  std::string target;           // scenario files: replaces the file's target:
  bool url_only_flags = false;  // -c, -m, -H, --body or --body-file were given
  uint32_t connections = 50;
  int64_t duration_us = 10'000'000;
  bool duration_given = false;  // scenario files: -d overrides (docs/scenarios.md#overrides)
  double rate = 0;              // per second; 0 = closed model (or no --rate override)
  std::optional<uint32_t> vus;  // --vus: scenario files only
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::string body_file;
  int64_t timeout_us = 10'000'000;
  int64_t connect_timeout_us = 5'000'000;
  uint32_t workers = 0;                       // 0 = one per core (more if the fd limit needs it)
  std::vector<std::string> source_addresses;  // --source-address (lists and ranges)
  // -e NAME=VALUE in order (a later one wins): {{ env.NAME }} in scenario
  // files, over the process environment.
  std::vector<std::pair<std::string, std::string>> env;
  // Latency percentiles of the summaries, ascending, in (0, 100].
  std::vector<double> percentiles = {50, 90, 95, 99, 99.9};
  std::string out;     // JSON summary path; "-" = stdout
  bool quiet = false;  // no progress line
  // Results (docs/reports.md).
  std::string report;                 // --report FILE.html
  std::string junit;                  // --junit FILE.xml
  std::string timeseries;             // --timeseries FILE.csv|.ndjson
  std::string history;                // --history DB (default: results::default_history_path())
  bool no_history = false;            // --no-history
  std::string metrics_listen;         // --metrics-listen HOST:PORT
  std::string webhook;                // --webhook URL
  std::vector<std::string> monitors;  // --monitor URL, repeatable (docs/monitoring.md)
  std::string live_events;            // --live-events FILE: NDJSON as the run goes (serve)
  std::string command_line;           // argv, for the run record
  // https (quick mode, README "HTTPS").
  bool insecure = false;  // -k: no certificate verification
  std::string cacert;     // --cacert FILE (PEM): trust these CAs instead of the system's
  std::string cert;       // --cert FILE and --key FILE: client certificate
  std::string key;
  std::optional<tls::TlsVersion> tls_min;
  std::optional<tls::TlsVersion> tls_max;
  bool no_tls_resumption = false;
  std::optional<std::vector<std::string>> alpn;  // default: http/1.1
  bool no_keepalive = false;  // close after each response and reconnect (http and https)
  net::IoBackend io = net::IoBackend::kEpoll;  // --io: the workers' event loop backend
  // HTTP/2 (quick mode, docs/http2.md).
  bool http2 = false;                // --http2: ALPN h2 over TLS, prior knowledge over cleartext
  uint32_t streams = 1;              // --streams: requests in flight per connection
  bool h2_flags = false;             // --streams, --h2-window or --h2-header-table given
  uint32_t h2_window = 65'535;       // --h2-window: SETTINGS_INITIAL_WINDOW_SIZE
  uint32_t h2_header_table = 4'096;  // --h2-header-table: SETTINGS_HEADER_TABLE_SIZE
  // Remote agents (docs/agents.md): run on N `millstone agent`s instead of
  // local workers.
  uint32_t agents = 0;                 // --agents N; 0 = local workers
  std::string agent_listen;            // --agent-listen ADDR:PORT
  std::string token_file;              // --token-file FILE
  int64_t agent_wait_us = 60'000'000;  // --agent-wait: how long to wait for the N agents
  bool agent_loss_aborts = false;      // --on-agent-loss fail (or abort); default continue
  // Whether any TLS flag was given (they need an https:// URL).
  bool tls_flags() const {
    return insecure || !cacert.empty() || !cert.empty() || !key.empty() || tls_min || tls_max ||
           no_tls_resumption || alpn;
  }
};

// `millstone grpc` (docs/grpc.md); the load options are RunOptions'.
struct GrpcOptions {
  std::string proto;                      // --proto FILE
  std::vector<std::string> import_paths;  // --import-path DIR (repeatable)
  std::string call;                       // --call package.Service/Method
  bool reflect = false;                   // --reflect: the service from server reflection
  bool list = false;                      // --list: print what reflection lists, no run
  std::string data;                       // -d JSON
  std::string data_file;                  // --data-file FILE
  std::vector<std::string> metadata;      // -H "name: value"
  int64_t deadline_us = 0;                // --deadline: sent as grpc-timeout; 0 = none
};

// `millstone amqp` (docs/amqp.md).
struct AmqpOptions {
  std::string url;  // amqp://USER:PASSWORD@HOST:PORT/VHOST
  uint32_t publishers = 1;
  uint32_t consumers = 1;
  double rate = 0;  // messages per second, all publishers together; 0 = as fast as confirms allow
  uint32_t size = 64;
  int64_t duration_us = 10'000'000;
  int64_t connect_timeout_us = 5'000'000;
  int64_t drain_us = 2'000'000;
  std::string exchange = "millstone";
  std::string queue = "millstone-perf";
  std::string routing_key;  // default: the queue's name
  bool no_confirm = false;
  uint32_t confirm_window = 1000;
  uint16_t prefetch = 100;
  bool persistent = false;
  uint16_t heartbeat_s = 60;
  uint32_t frame_max = 131072;
  std::vector<double> percentiles = {50, 90, 99, 99.9};
  std::string out;     // JSON summary path; "-" = stdout
  bool quiet = false;  // no progress line
  // amqps:// (TLS): as `millstone run`'s https flags.
  bool insecure = false;
  std::string cacert;
  std::string cert;
  std::string key;
};

struct HistoryOptions {
  std::string history;            // --history DB
  std::string run;                // RUN: an id, a unique id prefix, "last", or "baseline"
  std::string baseline;           // compare: BASELINE (default: the scenario's baseline)
  std::string key;                // runs: only runs of this scenario/URL
  uint32_t limit = 20;            // runs: how many
  std::string tolerance = "10%";  // compare: allowed worsening before it is a regression
  bool json = false;              // show/compare: print JSON
  std::string report;             // compare: --report FILE.html
  std::string out;                // report: -o FILE.html
};

struct MockOptions {
  std::string config;  // empty = the built-in demo routes
  std::string listen = "127.0.0.1:8080";
  uint32_t workers = 0;  // 0 = one per core
  // --connections N: enough workers to hold N connections at the open-file
  // limit (docs/scale.md); 0 = not given.
  uint64_t connections = 0;
  std::optional<uint64_t> seed;  // none = from the config (or 0)
  bool quiet = false;
  // HTTPS: --tls (a self-signed certificate made at start-up), or --cert and --key.
  bool tls = false;
  std::string cert_file;
  std::string key_file;
  std::string tls_certificate_out;  // --tls-cert-out: write the certificate's PEM here
  int64_t tls_handshake_timeout_us = 10'000'000;
  bool no_http2 = false;                  // --no-http2: HTTP/1.1 only
  uint32_t max_concurrent_streams = 100;  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
  std::string control_token;              // the mock control API needs it for changes when set
};

// `millstone agent` (docs/agents.md).
struct AgentCommandOptions {
  std::string join;                       // --join HOST:PORT
  std::string token_file;                 // --token-file FILE
  bool keep = false;                      // --keep: after a run, join again for the next
  uint32_t workers = 0;                   // --workers N; 0 = one per core
  int64_t join_timeout_us = 300'000'000;  // --join-timeout: retry budget of one join
};

// `millstone serve` (docs/serve.md).
struct ServeOptions {
  std::string listen = "127.0.0.1:8090";  // --listen ADDR:PORT
  std::string token_file;                 // --token-file FILE (`millstone token`)
  std::string cert_file;                  // --cert and --key: HTTPS
  std::string key_file;
  std::string data_dir;       // --data-dir; default $XDG_DATA_HOME/millstone/serve
  std::string scenarios_dir;  // --scenarios DIR: saved scenarios the console offers
};

// `millstone k8s render` (docs/agents.md#kubernetes): the manifests of one
// run over agents on a cluster.
struct K8sRenderOptions {
  std::string scenario;                    // FILE.yaml
  uint32_t agents = 0;                     // --agents N
  std::string name = "millstone";          // --name: prefix of every object's name
  std::string image = "millstone:latest";  // --image
  std::string kube_namespace;              // --namespace; empty = kubectl's current one
  std::string token_file;                  // --token-file: the rendered Secret's token
  std::string token_secret;                // --token-secret: an existing Secret, not rendered
  uint32_t port = 7070;                    // --port: the coordinator's, for agents
  std::string agent_cpu = "1";             // --agent-cpu: a Kubernetes quantity
  std::string agent_memory;                // --agent-memory
  uint32_t agent_workers = 0;              // --agent-workers; 0 = from --agent-cpu
  std::string coordinator_cpu = "1";       // --coordinator-cpu
  std::string coordinator_memory;          // --coordinator-memory
  std::string agent_wait = "5m";           // --agent-wait, as the coordinator gets it
  std::string on_agent_loss = "continue";  // --on-agent-loss
  int64_t results_hold_us = 600'000'000;   // --results-hold: the pod keeps /results this long
  std::vector<std::pair<std::string, std::string>> env;  // -e NAME=VALUE
  std::vector<std::string> run_args;                     // after --: more `millstone run` flags
};

struct DemoOptions {
  int64_t duration_us = 5'000'000;
  uint32_t connections = 50;
};

int run_command(const RunOptions& options);
int validate_command(const std::string& path,
                     const std::vector<std::pair<std::string, std::string>>& env);
// {{ env.NAME }} values: the process environment, then -e NAME=VALUE over it.
scenario::Parameters scenario_parameters(
    const std::vector<std::pair<std::string, std::string>>& env);
// A run target that is not an http(s) URL and names a file or ends in .yaml/.yml.
bool looks_like_scenario(const std::string& target);
int mock_command(const MockOptions& options);
int grpc_command(RunOptions run, const GrpcOptions& grpc);
int amqp_command(const AmqpOptions& options);
// The run history (src/cli/history_commands.cc).
int runs_command(const HistoryOptions& options);
int show_command(const HistoryOptions& options);
int compare_command(const HistoryOptions& options);
int baseline_command(const HistoryOptions& options);
int report_command(const HistoryOptions& options);
int demo_command(const DemoOptions& options);
// The fault proxy (docs/proxy.md).
int proxy_command(const proxy::StandaloneOptions& options);

// A new join secret for remote agents (docs/agents.md).
int token_command();
// A load machine for `millstone run --agents` (src/cli/agent_command.cc).
int agent_command(const AgentCommandOptions& options);

// The REST API over runs (src/cli/serve_command.cc).
int serve_command(const ServeOptions& options);

// Prints the manifests (src/cli/k8s_render.cc).
int k8s_render_command(const K8sRenderOptions& options);

// Entry point for main(): parses argv and dispatches. `parse_only`: parse and
// check the flags as for a real run, print what is wrong, dispatch nothing
// (`k8s render` checks the command lines it writes this way).
int main_command(int argc, char** argv, bool parse_only = false);

}  // namespace millstone::cli
