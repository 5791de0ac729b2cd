#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"

namespace millstone::cli {

int main_command(int argc, char** argv) {
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
      ->add_option("-c,--connections", run.connections,
                   "Connections (closed model: each keeps one request in flight)")
      ->capture_default_str();
  run_cmd->add_option("-d,--duration", run.duration, "How long to run (10s, 2m...)")
      ->capture_default_str();
  run_cmd->add_option("-r,--rate", run.rate,
                      "Open model: requests per second, started on a fixed schedule; latency "
                      "counts from when each was due");
  run_cmd->add_option("-m,--method", run.method, "HTTP method")->capture_default_str();
  run_cmd->add_option("-H,--header", run.headers, "Request header 'Name: value' (repeatable)");
  run_cmd->add_option("--body", run.body, "Request body");
  run_cmd->add_option("--body-file", run.body_file, "Read the request body from a file");
  run_cmd->add_option("--timeout", run.timeout, "Per-request timeout")->capture_default_str();
  run_cmd->add_option("--connect-timeout", run.connect_timeout, "Connect timeout")
      ->capture_default_str();
  run_cmd->add_option("-w,--workers", run.workers,
                      "Worker processes (default: one per core, more if the open-file limit "
                      "needs it)");
  run_cmd->add_option("--source-address", run.source_addresses,
                      "Local addresses to spread connections over, past the ~28,000 ports one "
                      "address has per target: A,B or a range 10.0.0.2-10.0.0.9 (loopback "
                      "targets get 127.0.0.x automatically)");
  run_cmd->add_option("-o,--out", run.out, "Write the summary as JSON to this file");
  run_cmd->add_flag("-q,--quiet", run.quiet, "No live progress line");
  run_cmd->add_option("--report", run.report, "Write a self-contained HTML report to this file");
  run_cmd->add_option("--junit", run.junit, "Write thresholds and checks as JUnit XML");
  run_cmd->add_option("--timeseries", run.timeseries,
                      "Write the per-second series (FILE.csv or FILE.ndjson)");
  run_cmd->add_option("--history", run.history,
                      "Run history database (default: $MILLSTONE_HISTORY, else "
                      "~/.local/share/millstone/history.db)");
  run_cmd->add_flag("--no-history", run.no_history, "Do not record this run in the history");
  run_cmd->add_option("--metrics-listen", run.metrics_listen,
                      "Serve live Prometheus metrics at http://HOST:PORT/metrics during the run");
  run_cmd->add_option("--webhook", run.webhook,
                      "POST the summary (Slack-compatible JSON) to this URL when the run ends");

  MockOptions mock;
  CLI::App* mock_cmd = app.add_subcommand("mock", "Serve HTTP routes from a mock configuration");
  mock_cmd->add_option("--config", mock.config,
                       "Mock configuration (YAML, see docs/mock.md); default: the demo routes");
  mock_cmd->add_option("--listen", mock.listen, "Address to listen on, HOST:PORT")
      ->capture_default_str();
  mock_cmd->add_option("-w,--workers", mock.workers, "Worker processes (default: one per core)");
  mock_cmd->add_option("--seed", mock.seed, "Seed for latency and error randomness");
  mock_cmd->add_flag("-q,--quiet", mock.quiet, "Do not print per-route counts at exit");

  std::string validate_path;
  CLI::App* validate_cmd =
      app.add_subcommand("validate", "Check a scenario file without sending anything");
  validate_cmd->add_option("file", validate_path, "Scenario file")->required();

  HistoryOptions history;
  auto history_flag = [&history](CLI::App* cmd) {
    cmd->add_option("--history", history.history, "Run history database");
  };
  CLI::App* runs_cmd = app.add_subcommand("runs", "List the runs in the history, newest first");
  history_flag(runs_cmd);
  runs_cmd->add_option("-n,--limit", history.limit, "How many runs")->capture_default_str();
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
  demo_cmd->add_option("-d,--duration", demo.duration, "How long to run")->capture_default_str();
  demo_cmd->add_option("-c,--connections", demo.connections, "Connections")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (run_cmd->parsed()) {
    for (const char* flag : {"--connections", "--rate", "--duration", "--method", "--header",
                             "--body", "--body-file"}) {
      run.url_only_flags = run.url_only_flags || run_cmd->count(flag) > 0;
    }
    for (int i = 0; i < argc; ++i) {
      if (i > 0) run.command_line += ' ';
      run.command_line += argv[i];
    }
    return run_command(run);
  }
  if (runs_cmd->parsed()) return runs_command(history);
  if (show_cmd->parsed()) return show_command(history);
  if (compare_cmd->parsed()) return compare_command(history);
  if (baseline_cmd->parsed()) return baseline_command(history);
  if (report_cmd->parsed()) return report_command(history);
  if (validate_cmd->parsed()) return validate_command(validate_path);
  if (mock_cmd->parsed()) return mock_command(mock);
  if (demo_cmd->parsed()) return demo_command(demo);
  return kExitUsage;
}

}  // namespace millstone::cli
