#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include <cctype>
#include <functional>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flag_values.h"
#include "proxy/standalone.h"

namespace millstone::cli {

namespace {

// Flag values are checked while CLI11 parses, so a bad one stops the command
// before anything starts; the error is our one line, not CLI11's text.
template <typename T>
T checked(std::optional<T> value, const std::string& error) {
  if (!value) throw CLI::ValidationError(error);
  return *value;
}

template <typename T>
std::function<void(const std::string&)> whole_into(T* field, std::string flag, uint64_t min,
                                                   uint64_t max) {
  return [field, flag = std::move(flag), min, max](const std::string& text) {
    std::string error;
    *field = static_cast<T>(checked(parse_whole_flag(flag, text, min, max, &error), error));
  };
}

std::function<void(const std::string&)> duration_into(int64_t* field, std::string flag) {
  return [field, flag = std::move(flag)](const std::string& text) {
    std::string error;
    *field = checked(parse_duration_flag(flag, text, &error), error);
  };
}

// -e NAME=VALUE: NAME as templates can refer to it.
std::pair<std::string, std::string> env_pair(const std::string& text) {
  const size_t equals = text.find('=');
  const std::string name = text.substr(0, std::min(equals, text.size()));
  bool identifier = !name.empty() && !std::isdigit(static_cast<unsigned char>(name.front()));
  for (char c : name) {
    identifier = identifier && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  }
  if (equals == std::string::npos || !identifier) {
    throw CLI::ValidationError(fmt::format(
        "-e '{}' is not a parameter; expected NAME=VALUE with NAME made of letters, digits and _ "
        "(not starting with a digit), such as -e BASE_PATH=/api",
        text));
  }
  return {name, text.substr(equals + 1)};
}

// --on-agent-loss: continue or fail (the names); abort, its first
// name, is still read as fail so that scripts written for it keep working.
void check_agent_loss_policy(const std::string& text) {
  if (text != "continue" && text != "fail" && text != "abort") {
    throw CLI::ValidationError(fmt::format(
        "--on-agent-loss '{}': expected continue (the run goes on without the lost agent's "
        "share, exit 9) or fail (the run stops there, exit 5)",
        text));
  }
}

}  // namespace

int main_command(int argc, char** argv, bool parse_only) {
  CLI::App app{"millstone: load, latency and failure-drill tester for networked services"};
  app.set_version_flag("--version", std::string("millstone ") + MILLSTONE_VERSION);
  app.require_subcommand(1);

  RunOptions run;
  CLI::App* run_cmd =
      app.add_subcommand("run", "Send load to a URL, or run a scenario file, and report");
  run_cmd->add_option("target", run.url, "http://HOST[:PORT]/PATH, or a scenario file (.yaml)")
      ->required();
  run_cmd->add_option("--target", run.target,
                      "Scenario files: send to this base URL instead of the file's target:");
  run_cmd
      ->add_option_function<std::string>(
          "-c,--connections", whole_into(&run.connections, "--connections", 1, kMaxConnections),
          "Connections (closed model: each keeps one request in flight)")
      ->default_str("50");
  run_cmd
      ->add_option_function<std::string>(
          "-d,--duration",
          [&run](const std::string& text) {
            duration_into(&run.duration_us, "--duration")(text);
            run.duration_given = true;
          },
          "How long to run (10s, 2m, 1m30s). Scenario files: the duration of constant-vus and "
          "constant-arrival-rate scenarios")
      ->default_str("10s");
  run_cmd->add_option_function<std::string>(
      "-r,--rate",
      [&run](const std::string& text) {
        std::string error;
        run.rate = checked(parse_rate_flag("--rate", text, &error), error);
      },
      "Open model: requests per second (100, 100/s, 6000/m), started on a fixed schedule; "
      "latency counts from when each was due. Scenario files: the rate of "
      "constant-arrival-rate scenarios");
  run_cmd->add_option_function<std::string>(
      "--vus",
      [&run](const std::string& text) {
        std::string error;
        run.vus = static_cast<uint32_t>(
            checked(parse_whole_flag("--vus", text, 1, kMaxConnections, &error), error));
      },
      "Scenario files: the VUs of constant-vus and iterations scenarios "
      "(docs/scenarios.md#overrides)");
  run_cmd->add_option_function<std::vector<std::string>>(
      "-e,--env",
      [&run](const std::vector<std::string>& texts) {
        for (const std::string& text : texts)
          run.env.push_back(env_pair(text));
      },
      "Scenario parameter NAME=VALUE for {{ env.NAME }}, over the process environment "
      "(repeatable)");
  run_cmd
      ->add_option_function<std::string>(
          "--percentiles",
          [&run](const std::string& text) {
            std::string error;
            run.percentiles = checked(parse_percentiles_flag("--percentiles", text, &error), error);
          },
          "Latency percentiles of the summaries, each above 0 and at most 100")
      ->default_str("50,90,95,99,99.9");
  run_cmd->add_option("-m,--method", run.method, "HTTP method")->capture_default_str();
  run_cmd->add_option("-H,--header", run.headers, "Request header 'Name: value' (repeatable)");
  run_cmd->add_option("--body", run.body, "Request body");
  run_cmd->add_option("--body-file", run.body_file, "Read the request body from a file");
  run_cmd
      ->add_option_function<std::string>("--timeout", duration_into(&run.timeout_us, "--timeout"),
                                         "Per-request timeout")
      ->default_str("10s");
  run_cmd
      ->add_option_function<std::string>(
          "--connect-timeout", duration_into(&run.connect_timeout_us, "--connect-timeout"),
          "Connect timeout")
      ->default_str("5s");
  run_cmd->add_option_function<std::string>(
      "-w,--workers", whole_into(&run.workers, "--workers", 1, kMaxWorkers),
      "Worker processes (default: one per core, more if the open-file limit needs it)");
  run_cmd
      ->add_option_function<std::string>(
          "--io",
          [&run](const std::string& text) {
            run.io =
                checked(net::parse_io_backend(text), "--io " + text + ": expected epoll or uring");
          },
          "What drives the workers' event loops: epoll, or uring (io_uring: multishot recv into "
          "a shared buffer ring, sends batched per loop turn; plain HTTP/1.1 connections, TLS "
          "and HTTP/2 keep readiness semantics; Linux 6.0+)")
      ->default_str("epoll");
  run_cmd->add_option("--source-address", run.source_addresses,
                      "Local addresses to spread connections over, past the ~28,000 ports one "
                      "address has per target: A,B or a range 10.0.0.2-10.0.0.9 (loopback "
                      "targets get 127.0.0.x automatically)");
  run_cmd->add_option("-o,--out", run.out,
                      "Write the summary as JSON to this file; '-' writes it to stdout (the text "
                      "summary then goes to stderr)");
  run_cmd->add_flag("-q,--quiet", run.quiet, "No live progress line");
  run_cmd->add_option("--report", run.report, "Write a self-contained HTML report to this file");
  run_cmd->add_option("--junit", run.junit, "Write thresholds and checks as JUnit XML");
  run_cmd->add_option("--timeseries", run.timeseries,
                      "Write the per-second series (FILE.csv or FILE.ndjson)");
  run_cmd->add_option("--history", run.history,
                      "Run history database (default: $MILLSTONE_HISTORY, else "
                      "~/.local/share/millstone/history.db)");
  run_cmd->add_flag("--no-history", run.no_history, "Do not record this run in the history");
  run_cmd->add_flag("-k,--insecure", run.insecure,
                    "https: do not verify the server's certificate (chain or name)");
  run_cmd->add_option("--cacert", run.cacert,
                      "https: trust the CA certificates in this PEM file instead of the system's");
  run_cmd->add_option("--cert", run.cert, "https: client certificate (PEM), with --key");
  run_cmd->add_option("--key", run.key, "https: the client certificate's private key (PEM)");
  run_cmd->add_option_function<std::string>(
      "--tls-min",
      [&run](const std::string& text) {
        std::string error;
        run.tls_min = checked(parse_tls_version_flag("--tls-min", text, &error), error);
      },
      "https: lowest TLS version to offer, 1.2 or 1.3 (default 1.2)");
  run_cmd->add_option_function<std::string>(
      "--tls-max",
      [&run](const std::string& text) {
        std::string error;
        run.tls_max = checked(parse_tls_version_flag("--tls-max", text, &error), error);
      },
      "https: highest TLS version to offer, 1.2 or 1.3 (default 1.3)");
  run_cmd->add_flag("--no-tls-resumption", run.no_tls_resumption,
                    "https: a full handshake on every connection (no session resumption)");
  run_cmd->add_option_function<std::string>(
      "--alpn",
      [&run](const std::string& text) {
        std::string error;
        run.alpn = checked(parse_alpn_flag("--alpn", text, &error), error);
      },
      "https: ALPN protocols to offer, comma-separated (default http/1.1)");
  run_cmd->add_flag("--no-keepalive", run.no_keepalive,
                    "Close each connection after its response and open a new one (a TCP "
                    "connect, and for https a TLS handshake, per request)");
  run_cmd->add_flag("--http2", run.http2,
                    "HTTP/2: ALPN h2 over https:// (the server must select it), prior knowledge "
                    "over http://");
  run_cmd
      ->add_option_function<std::string>(
          "--streams", whole_into(&run.streams, "--streams", 1, 10'000),
          "--http2: requests in flight per connection (h2load's -m); the server's "
          "SETTINGS_MAX_CONCURRENT_STREAMS may lower it")
      ->default_str("1");
  run_cmd
      ->add_option_function<std::string>(
          "--h2-window", whole_into(&run.h2_window, "--h2-window", 1, 2'147'483'647),
          "--http2: initial flow-control window per stream, bytes (the connection's window is "
          "this times --streams)")
      ->default_str("65535");
  run_cmd
      ->add_option_function<std::string>(
          "--h2-header-table",
          whole_into(&run.h2_header_table, "--h2-header-table", 0, 2'147'483'647),
          "--http2: HPACK dynamic table size the server may use towards us, bytes")
      ->default_str("4096");
  run_cmd->add_option("--metrics-listen", run.metrics_listen,
                      "Serve live Prometheus metrics at http://HOST:PORT/metrics during the run");
  run_cmd->add_option("--webhook", run.webhook,
                      "POST the summary (Slack-compatible JSON) to this URL when the run ends");
  // Remote agents (docs/agents.md).
  run_cmd->add_option_function<std::string>(
      "--agents", whole_into(&run.agents, "--agents", 1, 10'000),
      "Run on N remote agents (`millstone agent --join`) instead of local workers");
  run_cmd->add_option("--agent-listen", run.agent_listen,
                      "--agents: the address agents dial, ADDR:PORT (numeric; port 0 picks one)");
  run_cmd->add_option("--token-file", run.token_file,
                      "--agents: the join secret (`millstone token > FILE`, mode 0600)");
  run_cmd
      ->add_option_function<std::string>("--agent-wait",
                                         duration_into(&run.agent_wait_us, "--agent-wait"),
                                         "--agents: how long to wait for the N agents to join")
      ->default_str("60s");
  run_cmd
      ->add_option_function<std::string>(
          "--on-agent-loss",
          [&run](const std::string& text) {
            check_agent_loss_policy(text);
            run.agent_loss_aborts = text != "continue";
          },
          "--agents: when an agent is lost, continue without its share (exit 9) or fail: stop "
          "the run there (exit 5)")
      ->default_str("continue");
  run_cmd->add_option("--live-events", run.live_events,
                      "Append the run's live events (each second, drills, guards) to FILE as "
                      "JSON lines; /dev/fd/N writes to an inherited descriptor (docs/serve.md)");
  run_cmd->add_option("--monitor", run.monitors,
                      "Scrape this Prometheus text endpoint (node_exporter, a service's /metrics) "
                      "every second during the run, into the record and report; repeatable");

  // `millstone grpc` (docs/grpc.md): quick mode for one gRPC method, like ghz.
  RunOptions grpc_run;
  grpc_run.connections = 1;
  grpc_run.streams = 50;
  GrpcOptions grpc;
  CLI::App* grpc_cmd = app.add_subcommand(
      "grpc", "Send load to a gRPC method (unary or streaming), messages from JSON");
  grpc_cmd
      ->add_option("target", grpc_run.url,
                   "HOST:PORT or http://HOST:PORT (cleartext HTTP/2), https://HOST:PORT (TLS)")
      ->required();
  grpc_cmd->add_option("--proto", grpc.proto, "The .proto file declaring the service");
  grpc_cmd->add_flag("--reflect", grpc.reflect,
                     "Ask the server's reflection service for the service instead of --proto");
  grpc_cmd->add_flag("--list", grpc.list,
                     "Print the services and methods the server's reflection lists, then exit");
  grpc_cmd->add_option("--import-path", grpc.import_paths,
                       "Folder the .proto's imports are found in (repeatable)");
  grpc_cmd->add_option("--call", grpc.call, "The method: package.Service/Method");
  grpc_cmd->add_option(
      "-d,--data", grpc.data,
      "The request message as JSON (proto3 JSON mapping), a list for client streaming; "
      "default {}");
  grpc_cmd->add_option("--data-file", grpc.data_file,
                       "Read the request message's JSON from a file");
  grpc_cmd->add_option("-H,--metadata", grpc.metadata,
                       "Metadata (a request header) 'name: value' (repeatable)");
  grpc_cmd->add_option_function<std::string>(
      "--deadline", duration_into(&grpc.deadline_us, "--deadline"),
      "Deadline of each call, sent as grpc-timeout (the server answers DEADLINE_EXCEEDED past "
      "it); default none");
  grpc_cmd
      ->add_option_function<std::string>(
          "-c,--connections",
          whole_into(&grpc_run.connections, "--connections", 1, kMaxConnections),
          "HTTP/2 connections")
      ->default_str("1");
  grpc_cmd
      ->add_option_function<std::string>(
          "--streams", whole_into(&grpc_run.streams, "--streams", 1, 10'000),
          "Calls in flight per connection (closed model: each stream keeps one call in flight)")
      ->default_str("50");
  grpc_cmd
      ->add_option_function<std::string>("-z,--duration",
                                         duration_into(&grpc_run.duration_us, "--duration"),
                                         "How long to run (10s, 2m, 1m30s)")
      ->default_str("10s");
  grpc_cmd->add_option_function<std::string>(
      "-r,-R,--rate",
      [&grpc_run](const std::string& text) {
        std::string error;
        grpc_run.rate = checked(parse_rate_flag("--rate", text, &error), error);
      },
      "Open model: calls per second (100, 100/s, 6000/m), each due at its own time; latency "
      "counts from when it was due");
  grpc_cmd
      ->add_option_function<std::string>(
          "--timeout", duration_into(&grpc_run.timeout_us, "--timeout"),
          "Per-call timeout on our side (the call is reset and counted as timeout)")
      ->default_str("10s");
  grpc_cmd
      ->add_option_function<std::string>(
          "--connect-timeout", duration_into(&grpc_run.connect_timeout_us, "--connect-timeout"),
          "Connect timeout (TLS handshake included)")
      ->default_str("5s");
  grpc_cmd->add_option_function<std::string>(
      "-w,--workers", whole_into(&grpc_run.workers, "--workers", 1, kMaxWorkers),
      "Worker processes (default: one per core)");
  grpc_cmd->add_option("--source-address", grpc_run.source_addresses,
                       "Local addresses to spread connections over (as for run)");
  grpc_cmd
      ->add_option_function<std::string>(
          "--percentiles",
          [&grpc_run](const std::string& text) {
            std::string error;
            grpc_run.percentiles =
                checked(parse_percentiles_flag("--percentiles", text, &error), error);
          },
          "Latency percentiles of the summaries, each above 0 and at most 100")
      ->default_str("50,90,95,99,99.9");
  grpc_cmd->add_option("-o,--out", grpc_run.out,
                       "Write the summary as JSON to this file; '-' writes it to stdout");
  grpc_cmd->add_flag("-q,--quiet", grpc_run.quiet, "No live progress line");
  grpc_cmd->add_option("--report", grpc_run.report, "Write a self-contained HTML report");
  grpc_cmd->add_option("--junit", grpc_run.junit, "Write JUnit XML");
  grpc_cmd->add_option("--timeseries", grpc_run.timeseries,
                       "Write the per-second series (FILE.csv or FILE.ndjson)");
  grpc_cmd->add_option("--history", grpc_run.history, "Run history database");
  grpc_cmd->add_flag("--no-history", grpc_run.no_history, "Do not record this run in the history");
  grpc_cmd->add_flag("-k,--insecure", grpc_run.insecure,
                     "https: do not verify the server's certificate");
  grpc_cmd->add_option("--cacert", grpc_run.cacert, "https: trust the CAs in this PEM file");
  grpc_cmd->add_option("--cert", grpc_run.cert, "https: client certificate (PEM), with --key");
  grpc_cmd->add_option("--key", grpc_run.key, "https: the client certificate's private key");
  grpc_cmd->add_option_function<std::string>(
      "--tls-min",
      [&grpc_run](const std::string& text) {
        std::string error;
        grpc_run.tls_min = checked(parse_tls_version_flag("--tls-min", text, &error), error);
      },
      "https: lowest TLS version, 1.2 or 1.3");
  grpc_cmd->add_option_function<std::string>(
      "--tls-max",
      [&grpc_run](const std::string& text) {
        std::string error;
        grpc_run.tls_max = checked(parse_tls_version_flag("--tls-max", text, &error), error);
      },
      "https: highest TLS version, 1.2 or 1.3");
  grpc_cmd->add_flag("--no-tls-resumption", grpc_run.no_tls_resumption,
                     "https: a full handshake on every connection");
  grpc_cmd
      ->add_option_function<std::string>(
          "--h2-window", whole_into(&grpc_run.h2_window, "--h2-window", 1, 2'147'483'647),
          "Initial flow-control window per stream, bytes")
      ->default_str("65535");
  grpc_cmd
      ->add_option_function<std::string>(
          "--h2-header-table",
          whole_into(&grpc_run.h2_header_table, "--h2-header-table", 0, 2'147'483'647),
          "HPACK dynamic table size the server may use towards us, bytes")
      ->default_str("4096");
  grpc_cmd->add_option("--metrics-listen", grpc_run.metrics_listen,
                       "Serve live Prometheus metrics at http://HOST:PORT/metrics during the run");
  grpc_cmd->add_option("--webhook", grpc_run.webhook,
                       "POST the summary (Slack-compatible JSON) to this URL when the run ends");
  grpc_cmd->add_option("--monitor", grpc_run.monitors,
                       "Scrape this Prometheus text endpoint every second during the run; "
                       "repeatable");

  // `millstone amqp` (docs/amqp.md): publish/consume throughput and latency, like PerfTest.
  AmqpOptions amqp;
  CLI::App* amqp_cmd = app.add_subcommand(
      "amqp",
      "Publish to and consume from an AMQP 0-9-1 broker (RabbitMQ): rates, confirm and "
      "end-to-end latency");
  amqp_cmd->add_option("url", amqp.url, "amqp[s]://USER:PASSWORD@HOST[:PORT]/[VHOST]")->required();
  amqp_cmd
      ->add_option_function<std::string>("--publishers",
                                         whole_into(&amqp.publishers, "--publishers", 0, 10'000),
                                         "Publishing connections (one channel each)")
      ->default_str("1");
  amqp_cmd
      ->add_option_function<std::string>("--consumers",
                                         whole_into(&amqp.consumers, "--consumers", 0, 10'000),
                                         "Consuming connections (one channel each)")
      ->default_str("1");
  amqp_cmd->add_option_function<std::string>(
      "-r,--rate",
      [&amqp](const std::string& text) {
        std::string error;
        amqp.rate = checked(parse_rate_flag("--rate", text, &error), error);
      },
      "Messages per second, all publishers together, on a fixed schedule (latency counts from "
      "when each was due); default: as fast as the confirm window allows");
  amqp_cmd
      ->add_option_function<std::string>("-s,--size",
                                         whole_into(&amqp.size, "--size", 1, 64 * 1024 * 1024),
                                         "Message body bytes (at least 16)")
      ->default_str("64");
  amqp_cmd
      ->add_option_function<std::string>(
          "-d,--duration", duration_into(&amqp.duration_us, "--duration"), "How long to publish")
      ->default_str("10s");
  amqp_cmd
      ->add_option_function<std::string>(
          "--connect-timeout", duration_into(&amqp.connect_timeout_us, "--connect-timeout"),
          "Give up on a TCP connect after this long")
      ->default_str("5s");
  amqp_cmd
      ->add_option_function<std::string>(
          "--drain", duration_into(&amqp.drain_us, "--drain"),
          "After publishing: wait at most this long for confirms and deliveries")
      ->default_str("2s");
  amqp_cmd
      ->add_option("--exchange", amqp.exchange,
                   "Exchange to declare and publish to ('' = the "
                   "default exchange)")
      ->capture_default_str();
  amqp_cmd->add_option("--queue", amqp.queue, "Queue to declare, bind and consume from")
      ->capture_default_str();
  amqp_cmd->add_option("--routing-key", amqp.routing_key,
                       "Routing key of the binding and of every message (default: the queue)");
  amqp_cmd->add_flag("--no-confirm", amqp.no_confirm, "Publish without publisher confirms");
  amqp_cmd
      ->add_option_function<std::string>(
          "--confirm-window", whole_into(&amqp.confirm_window, "--confirm-window", 1, 1'000'000),
          "Unconfirmed messages a publisher may have outstanding")
      ->default_str("1000");
  amqp_cmd
      ->add_option_function<std::string>("--prefetch",
                                         whole_into(&amqp.prefetch, "--prefetch", 0, 65'535),
                                         "basic.qos prefetch count per consumer; 0 = unlimited")
      ->default_str("100");
  amqp_cmd->add_flag("--persistent", amqp.persistent, "Persistent messages (delivery mode 2)");
  amqp_cmd
      ->add_option_function<std::string>("--heartbeat",
                                         whole_into(&amqp.heartbeat_s, "--heartbeat", 0, 65'535),
                                         "Heartbeat interval to ask for, seconds (0 = none)")
      ->default_str("60");
  amqp_cmd
      ->add_option_function<std::string>("--frame-max",
                                         whole_into(&amqp.frame_max, "--frame-max", 4096, 1 << 24),
                                         "Largest frame to ask for, bytes")
      ->default_str("131072");
  amqp_cmd
      ->add_option_function<std::string>(
          "--percentiles",
          [&amqp](const std::string& text) {
            std::string error;
            amqp.percentiles =
                checked(parse_percentiles_flag("--percentiles", text, &error), error);
          },
          "Latency percentiles of the summary, each above 0 and at most 100")
      ->default_str("50,90,99,99.9");
  amqp_cmd->add_option("-o,--out", amqp.out,
                       "Write the summary as JSON to this file; '-' writes it to stdout");
  amqp_cmd->add_flag("-q,--quiet", amqp.quiet, "No live progress line");
  amqp_cmd->add_flag("-k,--insecure", amqp.insecure,
                     "amqps: do not verify the broker's certificate");
  amqp_cmd->add_option("--cacert", amqp.cacert, "amqps: trust the CAs in this PEM file");
  amqp_cmd->add_option("--cert", amqp.cert, "amqps: client certificate (PEM), with --key");
  amqp_cmd->add_option("--key", amqp.key, "amqps: the client certificate's private key");

  MockOptions mock;
  CLI::App* mock_cmd = app.add_subcommand("mock", "Serve HTTP routes from a mock configuration");
  mock_cmd->add_option("--config", mock.config,
                       "Mock configuration (YAML, see docs/mock.md); default: the demo routes");
  mock_cmd->add_option("--listen", mock.listen, "Address to listen on, HOST:PORT")
      ->capture_default_str();
  mock_cmd->add_option_function<std::string>("-w,--workers",
                                             whole_into(&mock.workers, "--workers", 1, kMaxWorkers),
                                             "Worker processes (default: one per core)");
  mock_cmd->add_option_function<std::string>(
      "--connections", whole_into(&mock.connections, "--connections", 1, 100'000'000),
      "Start enough workers to hold this many connections at the open-file limit (each "
      "worker holds up to its limit; default: one worker per core)");
  mock_cmd->add_option_function<std::string>(
      "--seed",
      [&mock](const std::string& text) {
        std::string error;
        mock.seed = checked(parse_whole_flag("--seed", text, 0, UINT64_MAX, &error), error);
      },
      "Seed for latency and error randomness, 0 to 18446744073709551615");
  mock_cmd->add_flag("-q,--quiet", mock.quiet, "Do not print per-route counts at exit");
  mock_cmd->add_flag("--tls", mock.tls,
                     "Serve HTTPS with a self-signed certificate made at start-up (EC P-256, "
                     "names localhost, 127.0.0.1 and ::1)");
  mock_cmd->add_option("--cert", mock.cert_file,
                       "HTTPS with this certificate (PEM, chain allowed); needs --key");
  mock_cmd->add_option("--key", mock.key_file, "The private key (PEM) of --cert");
  mock_cmd->add_option("--tls-cert-out", mock.tls_certificate_out,
                       "Write the served certificate (PEM) to FILE, for clients' --cacert");
  mock_cmd->add_option_function<std::string>(
      "--tls-handshake-timeout",
      duration_into(&mock.tls_handshake_timeout_us, "--tls-handshake-timeout"),
      "Close a TLS client that has not completed its handshake by then (default 10s)");
  mock_cmd->add_flag("--no-http2", mock.no_http2,
                     "Serve HTTP/1.1 only: no h2c by prior knowledge, and TLS offers only "
                     "http/1.1 by ALPN");
  mock_cmd->add_option_function<std::string>(
      "--max-concurrent-streams",
      whole_into(&mock.max_concurrent_streams, "--max-concurrent-streams", 1, 10000),
      "HTTP/2 streams a client may have open on one connection (default 100, at most 10000)");
  mock_cmd
      ->add_option("--control-token", mock.control_token,
                   "Changes through the control API (/__millstone/routes) need "
                   "'Authorization: Bearer TOKEN' (also from MILLSTONE_CONTROL_TOKEN)")
      ->envname("MILLSTONE_CONTROL_TOKEN");

  std::string validate_path;
  CLI::App* validate_cmd =
      app.add_subcommand("validate", "Check a scenario file without sending anything");
  validate_cmd->add_option("file", validate_path, "Scenario file")->required();
  std::vector<std::pair<std::string, std::string>> validate_env;
  validate_cmd->add_option_function<std::vector<std::string>>(
      "-e,--env",
      [&validate_env](const std::vector<std::string>& texts) {
        for (const std::string& text : texts)
          validate_env.push_back(env_pair(text));
      },
      "Scenario parameter NAME=VALUE for {{ env.NAME }} (repeatable)");

  HistoryOptions history;
  auto history_flag = [&history](CLI::App* cmd) {
    cmd->add_option("--history", history.history, "Run history database");
  };
  CLI::App* runs_cmd = app.add_subcommand("runs", "List the runs in the history, newest first");
  history_flag(runs_cmd);
  runs_cmd
      ->add_option_function<std::string>(
          "-n,--limit", whole_into(&history.limit, "--limit", 1, 1'000'000), "How many runs")
      ->default_str("20");
  runs_cmd->add_option("--scenario", history.key, "Only runs of this scenario file or URL");
  CLI::App* show_cmd = app.add_subcommand("show", "Print a recorded run's summary");
  history_flag(show_cmd);
  show_cmd->add_option("run", history.run, "Run id (or a unique prefix), 'last' or 'baseline'")
      ->required();
  show_cmd->add_flag("--json", history.json, "Print the run's JSON summary");
  CLI::App* compare_cmd = app.add_subcommand(
      "compare", "Compare a run with a baseline; exit 98 on a regression beyond the tolerance");
  history_flag(compare_cmd);
  compare_cmd->add_option("run", history.run, "Run id (or a unique prefix), or 'last'")->required();
  compare_cmd->add_option("baseline", history.baseline,
                          "Run to compare with (default: the baseline of the run's scenario)");
  compare_cmd
      ->add_option("--tolerance", history.tolerance,
                   "Allowed worsening of throughput, latency and error rate")
      ->capture_default_str();
  compare_cmd->add_flag("--json", history.json, "Print the comparison as JSON");
  compare_cmd->add_option("--report", history.report,
                          "Also write the comparison as a self-contained HTML page");
  CLI::App* report_cmd =
      app.add_subcommand("report", "Write a recorded run's HTML report again, from the history");
  history_flag(report_cmd);
  report_cmd->add_option("run", history.run, "Run id (or a unique prefix), 'last' or 'baseline'")
      ->required();
  report_cmd->add_option("-o,--out", history.out, "The HTML file to write")->required();
  CLI::App* baseline_cmd =
      app.add_subcommand("baseline", "Mark a run as the baseline of its scenario");
  history_flag(baseline_cmd);
  baseline_cmd->add_option("run", history.run, "Run id (or a unique prefix), or 'last'")
      ->required();

  DemoOptions demo;
  CLI::App* demo_cmd =
      app.add_subcommand("demo", "Start the built-in mock server and run a short load against it");
  demo_cmd
      ->add_option_function<std::string>(
          "-d,--duration", duration_into(&demo.duration_us, "--duration"), "How long to run")
      ->default_str("5s");
  demo_cmd
      ->add_option_function<std::string>(
          "-c,--connections", whole_into(&demo.connections, "--connections", 1, kMaxConnections),
          "Connections")
      ->default_str("50");

  proxy::StandaloneOptions proxy_options;
  CLI::App* proxy_cmd = app.add_subcommand(
      "proxy",
      "Run the fault proxy: TCP proxies with toxics, driven by a Toxiproxy-compatible API");
  proxy_cmd->add_option("--api", proxy_options.api, "Address of the HTTP API, HOST:PORT")
      ->capture_default_str();
  proxy_cmd->add_option("--config", proxy_options.config,
                        "Proxies to create at start: a JSON array of {name, listen, upstream, "
                        "enabled} (Toxiproxy's populate format)");
  proxy_cmd->add_option("--token-file", proxy_options.token_file,
                        "Changes through the API (every method but GET) need 'Authorization: "
                        "Bearer TOKEN', TOKEN being this file's one line");
  proxy_cmd->add_option_function<std::string>(
      "--seed",
      [&proxy_options](const std::string& text) {
        std::string error;
        proxy_options.seed =
            checked(parse_whole_flag("--seed", text, 0, UINT64_MAX, &error), error);
      },
      "Seed for toxicity draws, latency jitter and slice sizes");

  CLI::App* token_cmd = app.add_subcommand(
      "token",
      "Print a new join secret for remote agents (mst1.<43 characters>); a file it is "
      "written to is made private (docs/agents.md)");

  AgentCommandOptions agent;
  CLI::App* agent_cmd = app.add_subcommand(
      "agent", "Be a load machine: join a `millstone run --agents` coordinator and run its share");
  agent_cmd->add_option("--join", agent.join, "The coordinator's --agent-listen address, HOST:PORT")
      ->required();
  agent_cmd->add_option("--token-file", agent.token_file, "The join secret (mode 0600)")
      ->required();
  agent_cmd->add_flag("--keep", agent.keep,
                      "After a run, join again for the next one (default: exit after one run)");
  agent_cmd->add_option_function<std::string>(
      "-w,--workers", whole_into(&agent.workers, "--workers", 1, kMaxWorkers),
      "Local worker processes to offer (default: one per core)");
  agent_cmd
      ->add_option_function<std::string>(
          "--join-timeout", duration_into(&agent.join_timeout_us, "--join-timeout"),
          "Keep retrying the coordinator this long (0.5 s doubling to 5 s between attempts)")
      ->default_str("5m");

  // `millstone k8s render` (docs/agents.md#kubernetes).
  CLI::App* k8s_cmd =
      app.add_subcommand("k8s", "Kubernetes: manifests for a run over agents on a cluster");
  k8s_cmd->require_subcommand(1);
  K8sRenderOptions k8s;
  CLI::App* render_cmd = k8s_cmd->add_subcommand(
      "render",
      "Print the manifests of one run (token Secret, scenario ConfigMap, coordinator Job and "
      "Service, agents Indexed Job) for `kubectl apply -f -`; more `run` flags after --");
  render_cmd->add_option("scenario", k8s.scenario, "Scenario file (.yaml)")->required();
  render_cmd
      ->add_option_function<std::string>("--agents", whole_into(&k8s.agents, "--agents", 1, 10'000),
                                         "How many agents (the Indexed Job's completions)")
      ->required();
  render_cmd->add_option("--name", k8s.name, "Prefix of every object's name")
      ->capture_default_str();
  render_cmd->add_option("--image", k8s.image, "The millstone image (deploy/Dockerfile)")
      ->capture_default_str();
  render_cmd->add_option("--namespace", k8s.kube_namespace,
                         "Namespace of every object (default: kubectl's current one)");
  render_cmd->add_option("--token-file", k8s.token_file,
                         "Put this join token in the rendered Secret (default: a new one)");
  render_cmd->add_option("--token-secret", k8s.token_secret,
                         "Use this existing Secret (key 'token') instead of rendering one");
  render_cmd
      ->add_option_function<std::string>("--port", whole_into(&k8s.port, "--port", 1, 65'535),
                                         "The coordinator's port for agents (and its Service's)")
      ->default_str("7070");
  render_cmd
      ->add_option("--agent-cpu", k8s.agent_cpu,
                   "CPU each agent requests (a quantity: 2, 500m); its --workers is this "
                   "rounded up")
      ->capture_default_str();
  render_cmd->add_option("--agent-memory", k8s.agent_memory,
                         "Memory each agent requests and is limited to (512Mi, 4Gi)");
  render_cmd->add_option_function<std::string>(
      "--agent-workers", whole_into(&k8s.agent_workers, "--agent-workers", 1, kMaxWorkers),
      "Local workers per agent (default: --agent-cpu rounded up)");
  render_cmd->add_option("--coordinator-cpu", k8s.coordinator_cpu, "CPU the coordinator requests")
      ->capture_default_str();
  render_cmd->add_option("--coordinator-memory", k8s.coordinator_memory,
                         "Memory the coordinator requests and is limited to");
  render_cmd
      ->add_option_function<std::string>(
          "--agent-wait",
          [&k8s](const std::string& text) {
            std::string error;
            checked(parse_duration_flag("--agent-wait", text, &error), error);
            k8s.agent_wait = text;
          },
          "How long the coordinator waits for the agents, and they retry it")
      ->default_str("5m");
  render_cmd
      ->add_option_function<std::string>(
          "--on-agent-loss",
          [&k8s](const std::string& text) {
            check_agent_loss_policy(text);
            k8s.on_agent_loss = text;
          },
          "continue or fail, as for run")
      ->default_str("continue");
  render_cmd
      ->add_option_function<std::string>(
          "--results-hold",
          [&k8s](const std::string& text) {
            if (text == "0" || text == "0s") {
              k8s.results_hold_us = 0;
              return;
            }
            duration_into(&k8s.results_hold_us, "--results-hold")(text);
          },
          "After the run, the coordinator's pod keeps its /results (report, JSON) this long "
          "for kubectl cp; 0 exits at once")
      ->default_str("10m");
  render_cmd
      ->add_option_function<std::vector<std::string>>(
          "-e,--env",
          [&k8s](const std::vector<std::string>& texts) {
            for (const std::string& text : texts)
              k8s.env.push_back(env_pair(text));
          },
          "Scenario parameter NAME=VALUE; every parameter the scenario uses is written into the "
          "coordinator's command line")
      // One value per -e, so a `--` after it still starts the run flags.
      ->allow_extra_args(false);
  render_cmd->add_option("run_args", k8s.run_args, "After --: more `millstone run` flags");

  ServeOptions serve;
  CLI::App* serve_cmd = app.add_subcommand(
      "serve", "Serve the REST API: start, watch (Server-Sent Events), stop runs (docs/serve.md)");
  serve_cmd
      ->add_option("--listen", serve.listen, "ADDR:PORT to listen on (numeric; port 0 picks one)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--token-file", serve.token_file,
                   "The bearer token clients must send (`millstone token > FILE`, mode 0600)")
      ->required();
  serve_cmd->add_option("--cert", serve.cert_file,
                        "HTTPS: the server certificate (PEM), with --key");
  serve_cmd->add_option("--key", serve.key_file, "HTTPS: the certificate's private key (PEM)");
  serve_cmd->add_option("--data-dir", serve.data_dir,
                        "Where runs keep their files (default $XDG_DATA_HOME/millstone/serve, "
                        "else ~/.local/share/millstone/serve)");
  serve_cmd->add_option("--scenarios", serve.scenarios_dir,
                        "A directory of saved scenarios (*.yaml) the API lists and the web "
                        "console offers to run (GET /v1/scenarios)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string command;
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (!sub->parsed()) continue;
      command = " " + sub->get_name();
      for (const CLI::App* nested : sub->get_subcommands({})) {
        if (nested->parsed()) command += " " + nested->get_name();
      }
    }
    // One line, ours or CLI11's ("The following arguments were not expected: ...").
    fmt::print(stderr, "millstone{}: {}\n", command, e.what());
    return kExitUsage;
  }
  if (parse_only) return kExitOk;
  if (run_cmd->parsed()) {
    for (const char* flag : {"--connections", "--method", "--header", "--body", "--body-file"}) {
      run.url_only_flags = run.url_only_flags || run_cmd->count(flag) > 0;
    }
    for (const char* flag : {"--streams", "--h2-window", "--h2-header-table"}) {
      run.h2_flags = run.h2_flags || run_cmd->count(flag) > 0;
    }
    for (int i = 0; i < argc; ++i) {
      if (i > 0) run.command_line += ' ';
      run.command_line += argv[i];
    }
    return run_command(run);
  }
  if (grpc_cmd->parsed()) {
    for (int i = 0; i < argc; ++i) {
      if (i > 0) grpc_run.command_line += ' ';
      grpc_run.command_line += argv[i];
    }
    return grpc_command(grpc_run, grpc);
  }
  if (amqp_cmd->parsed()) return amqp_command(amqp);
  if (runs_cmd->parsed()) return runs_command(history);
  if (show_cmd->parsed()) return show_command(history);
  if (compare_cmd->parsed()) return compare_command(history);
  if (baseline_cmd->parsed()) return baseline_command(history);
  if (report_cmd->parsed()) return report_command(history);
  if (validate_cmd->parsed()) return validate_command(validate_path, validate_env);
  if (mock_cmd->parsed()) return mock_command(mock);
  if (demo_cmd->parsed()) return demo_command(demo);
  if (proxy_cmd->parsed()) return proxy_command(proxy_options);
  if (token_cmd->parsed()) return token_command();
  if (agent_cmd->parsed()) return agent_command(agent);
  if (serve_cmd->parsed()) return serve_command(serve);
  if (render_cmd->parsed()) return k8s_render_command(k8s);
  return kExitUsage;
}

}  // namespace millstone::cli
