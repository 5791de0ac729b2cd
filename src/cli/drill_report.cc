#include "cli/drill_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "results/text_table.h"
#include "text/printable.h"

namespace millstone::cli {

using text::printable;

namespace {

// The first line of an action's output, shortened, for one-line messages.
std::string first_line(const std::string& output, size_t max = 120) {
  std::string line = output.substr(0, output.find('\n'));
  if (line.size() > max) line = line.substr(0, max) + "...";
  return line;
}

std::string seconds(double s) {
  return fmt::format("{:.1f}s", s);
}

nlohmann::json action_json(const drill::ActionResult& r) {
  nlohmann::json j = {{"ok", r.ok}, {"detail", r.detail}, {"output", r.output}};
  if (r.exit_code >= 0) j["exit_code"] = r.exit_code;
  return j;
}

nlohmann::json seconds_or_null(double s) {
  return s < 0 ? nlohmann::json(nullptr) : nlohmann::json(std::round(s * 1000) / 1000);
}

}  // namespace

std::string describe_drill_event(const drill::DrillEvent& e) {
  using Kind = drill::DrillEvent::Kind;
  const std::string name = printable(e.name);
  const std::string detail = printable(e.detail);
  switch (e.kind) {
    case Kind::kStarted:
      return fmt::format("drill {} started at {}: {}", name, seconds(e.at_s), detail);
    case Kind::kStartFailed:
      return fmt::format("drill {} failed to start at {}: {}", name, seconds(e.at_s), detail);
    case Kind::kEnded:
      return fmt::format("drill {} {} at {}: {}", name,
                         e.at_run_end ? "undone at the run's end" : "ended", seconds(e.at_s),
                         detail);
    case Kind::kEndFailed:
      return fmt::format("drill {} could not be undone at {}{}: {}; the fault may still be on",
                         name, seconds(e.at_s), e.at_run_end ? " (the run's end)" : "", detail);
    case Kind::kNotStarted:
      return fmt::format("drill {} did not start: {}", name, detail);
  }
  return {};
}

void DrillLog::on_drill_event(const drill::DrillEvent& event) {
  using Kind = drill::DrillEvent::Kind;
  std::lock_guard lock(mu_);
  // On a terminal the progress line is rewritten in place: clear it first.
  fmt::print(out_, "{}millstone run: {}\n", terminal_ ? "\r\x1b[K" : "",
             describe_drill_event(event));
  std::fflush(out_);
  if (exporter_ != nullptr) {
    const bool failed = event.kind == Kind::kStartFailed || event.kind == Kind::kEndFailed;
    // A fault whose undo failed may still be on: it stays shown as active.
    const bool active = event.kind == Kind::kStarted || event.kind == Kind::kEndFailed;
    exporter_->on_drill(event.name, active, failed);
  }
  if (also_ != nullptr) also_->on_drill_event(event);
}

std::string format_drill_summary(const std::vector<drill::DrillRecord>& records) {
  if (records.empty()) return {};
  size_t width = 8;
  for (const drill::DrillRecord& r : records)
    width = std::max(width, std::min<size_t>(printable(r.name).size(), 32));
  std::string out = fmt::format("\n  {:<{}}  {:<6}  {:>7}  {:>7}  {:<11}  {}\n", "drill", width,
                                "action", "start", "end", "status", "what happened");
  for (const drill::DrillRecord& r : records) {
    std::string what;
    if (r.start_s >= 0) what = printable(r.start_result.detail);
    if (!r.start_result.ok && !r.start_result.output.empty()) {
      what += fmt::format(" ({})", printable(first_line(r.start_result.output)));
    }
    if (r.end_result) {
      what += fmt::format("; {}undo: {}", r.ended_by_run ? "at the run's end, " : "",
                          printable(r.end_result->detail));
    } else if (r.ended_by_run) {
      what += "; on until the run's end";
    }
    if (r.status == drill::DrillRecord::Status::kNotStarted) {
      what = fmt::format("planned at {}; the run ended first", seconds(r.planned_start_s));
    }
    out += fmt::format("  {:<{}}  {:<6}  {:>7}  {:>7}  {:<11}  {}\n", printable(r.name), width,
                       r.action, r.start_s >= 0 ? seconds(r.start_s) : "-",
                       r.end_s >= 0 ? seconds(r.end_s) : "-", drill::status_name(r.status), what);
  }
  return out;
}

nlohmann::json drills_json(const std::vector<drill::DrillRecord>& records) {
  nlohmann::json list = nlohmann::json::array();
  for (const drill::DrillRecord& r : records) {
    list.push_back({{"name", r.name},
                    {"action", r.action},
                    {"location", r.location},
                    {"planned_start_s", r.planned_start_s},
                    {"planned_end_s", seconds_or_null(r.planned_end_s)},
                    {"start_s", seconds_or_null(r.start_s)},
                    {"end_s", seconds_or_null(r.end_s)},
                    {"ended_by_run", r.ended_by_run},
                    {"status", drill::status_name(r.status)},
                    {"start", r.start_s >= 0 ? action_json(r.start_result) : nullptr},
                    {"end", r.end_result ? action_json(*r.end_result) : nullptr}});
  }
  return list;
}

namespace {

std::string ms_text(const std::optional<double>& ms) {
  if (!ms) return "-";
  return *ms >= 1000 ? fmt::format("{:.2f}s", *ms / 1000) : fmt::format("{:.1f}ms", *ms);
}

std::string tolerance_text(const scenario::RecoveryTolerance& t) {
  return t.p99_slack_us >= 0 ? fmt::format("{:g}ms", static_cast<double>(t.p99_slack_us) / 1000)
                             : fmt::format("{:g}%", t.p99_ratio * 100);
}

nlohmann::json number_or_null(const std::optional<double>& v) {
  return v ? nlohmann::json(std::round(*v * 1000) / 1000) : nlohmann::json(nullptr);
}

const char* phase_kind_name(scenario::Phase::Kind kind) {
  switch (kind) {
    case scenario::Phase::Kind::kRun:
      return "run";
    case scenario::Phase::Kind::kBefore:
      return "before";
    case scenario::Phase::Kind::kDuring:
      return "during";
    case scenario::Phase::Kind::kAfter:
      return "after";
  }
  return "run";
}

}  // namespace

std::string format_phase_summary(const scenario::PhaseReport& report) {
  if (report.phases.empty()) return "";
  using Align = results::TextTable::Align;
  results::TextTable table(
      {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight},
      "    ");
  table.add_row({"phase", "requests", "rps", "p50", "p99", "errors"});
  for (const scenario::PhaseFigures& p : report.phases) {
    table.add_row({fmt::format("{} {}", printable(p.phase.name),
                               scenario::span_text(p.phase.first_s, p.phase.end_s)),
                   std::to_string(p.requests), fmt::format("{:.1f}", p.rps), ms_text(p.p50_ms),
                   ms_text(p.p99_ms), fmt::format("{} ({:.3f}%)", p.failed, p.error_rate() * 100)});
  }
  std::string out = "\n  phases\n" + table.render();
  if (report.recovery.empty()) return out;
  if (report.baseline_p99_ms) {
    out += fmt::format(
        "\n  recovery to before: p99 <= {} ({} + {}), error rate <= {:.3f}% ({:.3f}% + {:g} "
        "point{}), on every second for {}s\n",
        ms_text(report.p99_limit_ms), ms_text(report.baseline_p99_ms),
        tolerance_text(report.tolerance), report.error_rate_limit * 100,
        report.baseline_error_rate * 100, report.tolerance.error_rate_points * 100,
        report.tolerance.error_rate_points == 0.01 ? "" : "s", report.tolerance.window_s);
  } else {
    out += "\n  recovery to before\n";
  }
  results::TextTable recovery({Align::kLeft, Align::kLeft}, "    ");
  for (const scenario::BaselineRecovery& r : report.recovery) {
    std::string text;
    switch (r.status) {
      case scenario::BaselineRecovery::Status::kRecovered:
        text = fmt::format("{:.1f}s (back from second {})", r.time_s, r.recovered_at_s);
        break;
      case scenario::BaselineRecovery::Status::kNotRecovered:
        text = fmt::format("not recovered before {} ({:.1f}s after the fault)", printable(r.until),
                           r.time_s);
        break;
      case scenario::BaselineRecovery::Status::kStillOn:
        text = "the fault was still on at the end";
        break;
      case scenario::BaselineRecovery::Status::kNoBaseline:
        text = "no baseline: no complete response before the first fault";
        break;
    }
    recovery.add_row({printable(r.fault), text});
  }
  return out + recovery.render();
}

nlohmann::json phases_json(const scenario::PhaseReport& report) {
  nlohmann::json phases = nlohmann::json::array();
  for (const scenario::PhaseFigures& p : report.phases) {
    phases.push_back({{"name", p.phase.name},
                      {"kind", phase_kind_name(p.phase.kind)},
                      {"start_s", p.phase.first_s},
                      {"end_s", p.phase.end_s},
                      {"requests", p.requests},
                      {"rps", std::round(p.rps * 1000) / 1000},
                      {"p50_ms", number_or_null(p.p50_ms)},
                      {"p99_ms", number_or_null(p.p99_ms)},
                      {"failed", p.failed},
                      {"error_rate", p.error_rate()}});
  }
  nlohmann::json recovery = nlohmann::json::array();
  for (const scenario::BaselineRecovery& r : report.recovery) {
    const bool timed = r.status == scenario::BaselineRecovery::Status::kRecovered ||
                       r.status == scenario::BaselineRecovery::Status::kNotRecovered;
    recovery.push_back(
        {{"fault", r.fault},
         {"status", scenario::baseline_recovery_name(r.status)},
         {"time_s", timed ? nlohmann::json(std::round(r.time_s * 1000) / 1000) : nlohmann::json()},
         {"recovered_at_s",
          r.recovered_at_s >= 0 ? nlohmann::json(r.recovered_at_s) : nlohmann::json()}});
  }
  nlohmann::json baseline = nullptr;
  if (report.baseline_p99_ms) {
    baseline = {{"p99_ms", number_or_null(report.baseline_p99_ms)},
                {"error_rate", report.baseline_error_rate},
                {"p99_limit_ms", std::round(report.p99_limit_ms * 1000) / 1000},
                {"error_rate_limit", report.error_rate_limit}};
  }
  const scenario::RecoveryTolerance& t = report.tolerance;
  nlohmann::json tolerance = {{"p99", tolerance_text(t)},
                              {"error_rate_points", t.error_rate_points},
                              {"window_s", t.window_s}};
  return {
      {"phases", phases}, {"baseline", baseline}, {"tolerance", tolerance}, {"recovery", recovery}};
}

}  // namespace millstone::cli
