#include "cli/drill_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

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

}  // namespace millstone::cli
