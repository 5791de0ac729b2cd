#include "cli/history_commands.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "cli/exit_codes.h"
#include "cli/summary.h"
#include "results/compare.h"
#include "results/history.h"
#include "results/report.h"
#include "results/text_table.h"
#include "text/printable.h"

namespace millstone::cli {

using text::printable;

namespace {

// "2026-11-23 03:20:41" in local time.
std::string local_time(int64_t unix_ms) {
  time_t seconds = static_cast<time_t>(unix_ms / 1000);
  tm local{};
  localtime_r(&seconds, &local);
  char text[32];
  strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

std::string result_name(int exit_code) {
  switch (exit_code) {
    case kExitOk:
      return "passed";
    case kExitConfig:
      return "exit 3 (an output file failed)";
    case kExitIncomplete:
      return "exit 5 (incomplete)";
    case kExitThresholds:
      return "exit 99 (thresholds failed)";
    case kExitInterrupted:
      return "exit 130 (interrupted)";
    default:
      return fmt::format("exit {}", exit_code);
  }
}

std::string short_result(int exit_code) {
  switch (exit_code) {
    case kExitOk:
      return "passed";
    case kExitIncomplete:
      return "incomplete";
    case kExitThresholds:
      return "thresholds";
    case kExitInterrupted:
      return "interrupted";
    default:
      return fmt::format("exit {}", exit_code);
  }
}

std::string ms_text(double ms) {
  if (ms >= 1000) return fmt::format("{:.2f}s", ms / 1000);
  if (ms >= 100) return fmt::format("{:.0f}ms", ms);
  if (ms >= 10) return fmt::format("{:.1f}ms", ms);
  return fmt::format("{:.2f}ms", ms);
}

double num(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return 0;
  auto it = j.find(name);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

// Strings of a stored summary, ready to print (they came from targets and
// scenario files).
std::string str(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return "";
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? printable(it->get<std::string>()) : "";
}

// A count as text, or whatever else is stored there, printable.
std::string count_text(const nlohmann::json& n) {
  return n.is_number_unsigned()
             ? group_thousands(n.get<uint64_t>())
             : printable(n.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

uint64_t count(const nlohmann::json& j, const char* name) {
  return static_cast<uint64_t>(std::max(0.0, num(j, name)));
}

std::string resolve_path(const HistoryOptions& options) {
  return options.history.empty() ? results::default_history_path() : options.history;
}

// The one-line message of a failed history command, and its exit code: a
// RUN that names nothing (or a missing baseline) is a usage error, anything
// wrong with the database itself is a configuration error.
int report(const char* command, const results::ResultsError& e) {
  fmt::print(stderr, "millstone {}: {}\n", command, printable(e.what()));
  return dynamic_cast<const results::RunLookupError*>(&e) ? kExitUsage : kExitConfig;
}

std::string format_run(const results::RunRecord& record, bool is_baseline) {
  const nlohmann::json& s = record.summary;
  std::string out;
  out += fmt::format("run        {}  {}{}\n", record.id, result_name(record.exit_code),
                     is_baseline ? "  (the baseline of its key)" : "");
  out += fmt::format("name       {}\n", printable(record.name));
  out += fmt::format("key        {}\n", printable(record.key));
  out += fmt::format("started    {} (local time) on {} ({} cores, {}), millstone {}\n",
                     local_time(record.env.started_unix_ms), printable(record.env.host),
                     record.env.cores, printable(record.env.kernel),
                     printable(record.env.millstone_version));
  if (!record.env.command_line.empty()) {
    out += fmt::format("command    {}\n", printable(record.env.command_line));
  }
  std::string model = str(s, "model");
  const std::string connections = count_of(count(s, "connections"), "connection", "connections");
  std::string load = model == "scenario" ? fmt::format("scenario {}, peak {}", str(s, "scenario"),
                                                       count_of(count(s, "peak_vus"), "VU", "VUs"))
                     : model == "open"   ? fmt::format("open model, {} req/s over {}",
                                                       plain_number(num(s, "rate")), connections)
                                         : fmt::format("closed model, {}", connections);
  out += fmt::format("load       {}, {}; ran {:.1f}s of {:.1f}s\n", load,
                     count_of(count(s, "workers"), "worker", "workers"), num(s, "duration_s"),
                     num(s, "planned_duration_s"));
  out += fmt::format("requests   {} ({:.1f}/s)\n", group_thousands(count(s, "requests")),
                     num(s, "rps"));
  std::string causes;
  if (s.contains("errors") && s["errors"].is_object()) {
    for (const auto& [cause, n] : s["errors"].items()) {
      causes +=
          fmt::format("{}{} {}", causes.empty() ? ": " : ", ", printable(cause), count_text(n));
    }
  }
  out +=
      fmt::format("errors     {}{}; error rate {:.3f}%\n", group_thousands(count(s, "error_total")),
                  causes, results::run_error_rate(s) * 100);
  if (s.contains("status") && s["status"].is_object() && !s["status"].empty()) {
    std::string statuses;
    for (const auto& [code, n] : s["status"].items()) {
      statuses +=
          fmt::format("{}{}: {}", statuses.empty() ? "" : ", ", printable(code), count_text(n));
    }
    out += fmt::format("status     {}\n", statuses);
  }
  const nlohmann::json& l = s.contains("latency_ms") ? s["latency_ms"] : nlohmann::json();
  out += fmt::format("latency    min {}  p50 {}  p90 {}  p99 {}  max {}\n", ms_text(num(l, "min")),
                     ms_text(num(l, "p50")), ms_text(num(l, "p90")), ms_text(num(l, "p99")),
                     ms_text(num(l, "max")));
  // Tables sized to their content, measured in terminal columns: step and
  // check names are the user's and may be long or not ASCII.
  using Align = results::TextTable::Align;
  if (s.contains("steps") && s["steps"].is_array() && !s["steps"].empty()) {
    out += "steps\n";
    results::TextTable table(
        {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
    table.add_row({"step", "requests", "failed", "p50", "p99"});
    for (const nlohmann::json& step : s["steps"]) {
      const nlohmann::json& sl =
          step.contains("latency_ms") ? step["latency_ms"] : nlohmann::json();
      table.add_row({str(step, "name"), group_thousands(count(step, "requests")),
                     group_thousands(count(step, "failed")), ms_text(num(sl, "p50")),
                     ms_text(num(sl, "p99"))});
    }
    out += table.render();
  }
  if (s.contains("checks") && s["checks"].is_array() && !s["checks"].empty()) {
    out += "checks\n";
    results::TextTable table({Align::kLeft, Align::kLeft, Align::kRight, Align::kRight});
    table.add_row({"", "check", "passed", "failed"});
    for (const nlohmann::json& check : s["checks"]) {
      table.add_row({count(check, "failed") ? "FAIL" : "ok", str(check, "name"),
                     group_thousands(count(check, "passed")),
                     group_thousands(count(check, "failed"))});
    }
    out += table.render();
  }
  if (s.contains("thresholds") && s["thresholds"].is_array() && !s["thresholds"].empty()) {
    out += "thresholds\n";
    results::TextTable table({Align::kLeft, Align::kLeft, Align::kLeft});
    for (const nlohmann::json& t : s["thresholds"]) {
      bool passed = t.contains("passed") && t["passed"].is_boolean() && t["passed"].get<bool>();
      const bool no_data = str(t, "status") == "no_data";
      table.add_row({no_data  ? "--"
                     : passed ? "pass"
                              : "FAIL",
                     str(t, "threshold"),
                     no_data ? "not evaluated: no data" : "observed " + str(t, "observed")});
    }
    out += table.render();
  }
  return out;
}

}  // namespace

void record_in_history(const RunOptions& options, const results::RunRecord& record) {
  if (options.no_history) return;
  std::string path = options.history;
  try {
    if (path.empty()) path = results::default_history_path();
    results::History history(path, results::History::Mode::kCreate);
    history.add(record);
  } catch (const std::exception& e) {
    // ResultsError names the database already; anything else (a bug) gets it here.
    if (path.empty()) {
      fmt::print(stderr, "millstone run: history: {}; the run was not recorded\n", e.what());
    } else if (dynamic_cast<const results::ResultsError*>(&e)) {
      fmt::print(stderr, "millstone run: history {}; the run was not recorded\n", e.what());
    } else {
      fmt::print(stderr, "millstone run: history {}: {}; the run was not recorded\n", path,
                 e.what());
    }
    return;
  }
  std::string flag = options.history.empty() ? "" : " --history " + options.history;
  fmt::print(stderr, "millstone run: recorded as {} (millstone show {}{})\n", record.id, record.id,
             flag);
}

int runs_command(const HistoryOptions& options) {
  try {
    std::string path = resolve_path(options);
    if (access(path.c_str(), F_OK) != 0) {
      fmt::print("no runs recorded yet ({} does not exist)\n", path);
      return kExitOk;
    }
    results::History history(path, results::History::Mode::kMustExist);
    // --scenario takes the file as the user names it; runs are keyed by its
    // absolute path.
    std::string key = options.key;
    if (!key.empty() && access(key.c_str(), F_OK) == 0) {
      if (char* real = realpath(key.c_str(), nullptr)) {
        key = real;
        free(real);
      }
    }
    std::vector<results::RunRow> rows = history.list(options.limit, key);
    if (rows.empty()) {
      fmt::print("no runs{} in {}\n", key.empty() ? "" : " of " + key, path);
      return kExitOk;
    }
    fmt::print("   {:<20}  {:<19}  {:<36}  {:>8}  {:>10}  {:>8}  {:>8}  {}\n", "id", "started",
               "name", "duration", "rps", "p99", "errors", "result");
    bool any_baseline = false;
    for (const results::RunRow& r : rows) {
      std::string name = printable(r.name);
      if (name.size() > 36) {
        size_t cut = name.size() - 33;
        while (cut < name.size() && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80)
          ++cut;
        name = "..." + name.substr(cut);  // not inside a UTF-8 sequence
      }
      fmt::print(" {} {:<20}  {:<19}  {:<36}  {:>7.1f}s  {:>10.1f}  {:>8}  {:>7.3f}%  {}\n",
                 r.is_baseline ? '*' : ' ', r.id, local_time(r.started_unix_ms), name, r.duration_s,
                 r.rps, ms_text(r.p99_ms), r.error_rate * 100, short_result(r.exit_code));
      any_baseline = any_baseline || r.is_baseline;
    }
    if (any_baseline)
      fmt::print("* the baseline of its scenario or URL (millstone baseline RUN)\n");
    return kExitOk;
  } catch (const results::ResultsError& e) {
    return report("runs", e);
  }
}

int show_command(const HistoryOptions& options) {
  try {
    results::History history(resolve_path(options), results::History::Mode::kMustExist);
    results::RunRecord record = history.find(options.run);
    if (options.json) {
      std::cout << record.summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
    } else {
      std::cout << format_run(record, history.baseline_for(record.key) == record.id);
    }
    return kExitOk;
  } catch (const results::ResultsError& e) {
    return report("show", e);
  }
}

int compare_command(const HistoryOptions& options) {
  results::CompareOptions compare;
  std::string error;
  if (!results::parse_tolerance(options.tolerance, &compare.tolerance, &error)) {
    fmt::print(stderr, "millstone compare: --tolerance {}\n", error);
    return kExitUsage;
  }
  try {
    results::History history(resolve_path(options), results::History::Mode::kMustExist);
    results::RunRecord run = history.find(options.run);
    std::string baseline_run = options.baseline;
    if (baseline_run.empty()) {
      std::optional<std::string> id = history.baseline_for(run.key);
      if (!id) {
        fmt::print(stderr,
                   "millstone compare: {}: no baseline for {}; mark one with `millstone baseline "
                   "RUN`, or name one: `millstone compare {} BASELINE`\n",
                   history.path(), printable(run.key), options.run);
        return kExitUsage;
      }
      baseline_run = *id;
    }
    results::RunRecord baseline = history.find(baseline_run);
    results::Comparison comparison = results::compare_runs(run, baseline, compare);
    if (options.json) {
      std::cout << results::to_json(comparison)
                       .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
    } else {
      std::cout << results::format_comparison(comparison);
    }
    std::cout << std::flush;
    int code = comparison.regression() ? kExitRegression : kExitOk;
    if (!options.report.empty()) {
      // As for `run --report`: a file that cannot be written is exit 3,
      // unless a regression (98) already says more.
      try {
        results::write_html_comparison(comparison, run, baseline, options.report);
        fmt::print(stderr, "millstone compare: wrote {}\n", options.report);
      } catch (const results::ResultsError& e) {
        fmt::print(stderr, "millstone compare: --report {}: {}\n", options.report, e.what());
        if (code == kExitOk) code = kExitConfig;
      }
    }
    return code;
  } catch (const results::ResultsError& e) {
    return report("compare", e);
  }
}

int report_command(const HistoryOptions& options) {
  try {
    results::History history(resolve_path(options), results::History::Mode::kMustExist);
    results::RunRecord record = history.find(options.run);
    results::write_html_report(record, options.out);
    fmt::print("wrote the report of {} to {}\n", record.id, options.out);
    return kExitOk;
  } catch (const results::ResultsError& e) {
    return report("report", e);
  }
}

int baseline_command(const HistoryOptions& options) {
  try {
    results::History history(resolve_path(options), results::History::Mode::kMustExist);
    results::RunRecord record = history.find(options.run);
    history.set_baseline(record.id);
    fmt::print("{} is now the baseline of {}\n", record.id, printable(record.key));
    return kExitOk;
  } catch (const results::ResultsError& e) {
    return report("baseline", e);
  }
}

}  // namespace millstone::cli
