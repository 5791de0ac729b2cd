#include "cli/slo_summary.h"

#include <fmt/format.h>

#include "results/text_table.h"
#include "text/printable.h"

namespace millstone::cli {

namespace {

using scenario::Phase;
using scenario::Recovery;
using text::printable;

std::string verdict_cell(const scenario::ThresholdOutcome& o) {
  if (o.unevaluated) return "-- no data";
  return fmt::format("{} {}", o.passed ? "ok" : "FAIL", printable(o.observed_text));
}

const char* phase_kind(Phase::Kind kind) {
  switch (kind) {
    case Phase::Kind::kRun:
      return "run";
    case Phase::Kind::kBefore:
      return "before";
    case Phase::Kind::kDuring:
      return "during";
    case Phase::Kind::kAfter:
      return "after";
  }
  return "run";
}

nlohmann::json span_json(const scenario::SpanJudgment& j) {
  nlohmann::json out = {{"start_s", j.first_s},
                        {"end_s", j.end_s},
                        {"passed", j.outcome.passed},
                        {"no_data", j.outcome.unevaluated},
                        {"observed", j.outcome.observed_text}};
  out["value"] = j.outcome.has_data ? nlohmann::json(j.outcome.observed) : nlohmann::json();
  return out;
}

std::string recovery_text(const Recovery& r) {
  switch (r.status) {
    case Recovery::Status::kRecovered:
      return fmt::format("{:.1f}s (held from second {})", r.time_s, r.recovered_at_s);
    case Recovery::Status::kNotRecovered:
      return fmt::format("did not recover before {} ({:.1f}s after the fault)", r.until, r.time_s);
    case Recovery::Status::kStillOn:
      return "the fault was still on at the end";
  }
  return "";
}

}  // namespace

void GuardProgress::on_second(uint64_t index, const metrics::Snapshot& second,
                              const metrics::Snapshot& /*total*/) {
  if (auto trip = monitor_.observe(index, second)) stop_->request(trip->reason);
}

std::string format_slo_summary(const scenario::SloJudgment& judgment,
                               const std::optional<scenario::GuardTrip>& trip) {
  if (judgment.objectives.empty()) return "";
  std::string out = "\n  SLOs by phase\n";
  std::vector<results::TextTable::Align> columns(judgment.phases.size() + 2,
                                                 results::TextTable::Align::kLeft);
  results::TextTable table(columns, "    ");
  std::vector<std::string> header = {"objective"};
  for (const Phase& p : judgment.phases) {
    header.push_back(
        fmt::format("{} {}", printable(p.name), scenario::span_text(p.first_s, p.end_s)));
  }
  header.push_back("worst window");
  table.add_row(header);
  for (const scenario::ObjectiveJudgment& o : judgment.objectives) {
    std::vector<std::string> row = {fmt::format("{} {}{}",
                                                o.unevaluated ? "--  "
                                                : o.passed    ? "ok  "
                                                              : "FAIL",
                                                printable(o.objective->threshold.text),
                                                o.objective->guard ? " (guard)" : "")};
    for (const scenario::SpanJudgment& p : o.phases)
      row.push_back(verdict_cell(p.outcome));
    if (o.worst_window) {
      row.push_back(fmt::format("{} in {} ({} of {} {}s windows failed)",
                                verdict_cell(o.worst_window->outcome),
                                scenario::span_text(o.worst_window->first_s, o.worst_window->end_s),
                                o.windows_failed, o.windows, o.objective->window_s));
    } else {
      row.push_back("no data");
    }
    table.add_row(std::move(row));
  }
  out += table.render();
  for (const scenario::ObjectiveJudgment& o : judgment.objectives) {
    if (o.unevaluated) {
      out += fmt::format("    not evaluated: {}: no data from the monitored target\n",
                         printable(o.objective->threshold.text));
    }
  }
  if (!judgment.faults.empty()) {
    out += "\n  time to recover\n";
    results::TextTable recovery({results::TextTable::Align::kLeft, results::TextTable::Align::kLeft,
                                 results::TextTable::Align::kLeft},
                                "    ");
    for (size_t f = 0; f < judgment.faults.size(); ++f) {
      for (const scenario::ObjectiveJudgment& o : judgment.objectives) {
        recovery.add_row({printable(judgment.faults[f].name),
                          printable(o.objective->threshold.text), recovery_text(o.recovery[f])});
      }
    }
    out += recovery.render();
  }
  if (trip) out += fmt::format("\n  stopped early: {}\n", printable(trip->reason));
  return out;
}

void add_slo_json(const scenario::SloJudgment& judgment,
                  const std::optional<scenario::GuardTrip>& trip, nlohmann::json* summary) {
  nlohmann::json slo;
  slo["passed"] = judgment.passed();
  nlohmann::json faults = nlohmann::json::array();
  for (const scenario::FaultWindow& f : judgment.faults) {
    faults.push_back({{"name", f.name},
                      {"start_s", f.start_s},
                      {"end_s", f.ended() ? nlohmann::json(f.end_s) : nlohmann::json()}});
  }
  slo["faults"] = faults;
  nlohmann::json phases = nlohmann::json::array();
  for (const Phase& p : judgment.phases) {
    phases.push_back(
        {{"name", p.name},
         {"kind", phase_kind(p.kind)},
         {"fault", p.fault >= 0 ? nlohmann::json(judgment.faults[p.fault].name) : nlohmann::json()},
         {"start_s", p.first_s},
         {"end_s", p.end_s}});
  }
  slo["phases"] = phases;
  nlohmann::json objectives = nlohmann::json::array();
  for (const scenario::ObjectiveJudgment& o : judgment.objectives) {
    const scenario::Objective& objective = *o.objective;
    nlohmann::json one = {{"objective", objective.threshold.text},
                          {"location", objective.threshold.location},
                          {"guard", objective.guard},
                          {"window_s", objective.window_s},
                          {"recovery_window_s", objective.recovery_window_s},
                          {"passed", o.passed},
                          {"status", o.unevaluated ? "no_data"
                                     : o.passed    ? "passed"
                                                   : "failed"}};
    if (objective.guard) one["for_s"] = objective.guard_for_s;
    nlohmann::json by_phase = nlohmann::json::array();
    for (size_t i = 0; i < o.phases.size(); ++i) {
      nlohmann::json p = span_json(o.phases[i]);
      p["phase"] = judgment.phases[i].name;
      by_phase.push_back(std::move(p));
    }
    one["phases"] = by_phase;
    one["windows"] = {{"count", o.windows},
                      {"failed", o.windows_failed},
                      {"worst", o.worst_window ? span_json(*o.worst_window) : nlohmann::json()}};
    nlohmann::json recovery = nlohmann::json::array();
    for (size_t f = 0; f < o.recovery.size(); ++f) {
      const Recovery& r = o.recovery[f];
      nlohmann::json item = {{"fault", judgment.faults[f].name},
                             {"status", scenario::recovery_status_name(r.status)}};
      item["time_s"] =
          r.status == Recovery::Status::kStillOn ? nlohmann::json() : nlohmann::json(r.time_s);
      item["recovered_at_s"] = r.status == Recovery::Status::kRecovered
                                   ? nlohmann::json(r.recovered_at_s)
                                   : nlohmann::json();
      recovery.push_back(std::move(item));
    }
    one["recovery"] = recovery;
    objectives.push_back(std::move(one));
  }
  slo["objectives"] = objectives;
  if (trip) {
    slo["abort"] = {{"objective", trip->objective->threshold.text},
                    {"location", trip->objective->threshold.location},
                    {"second", trip->second},
                    {"failing_s", trip->failing_s},
                    {"observed", trip->observed_text},
                    {"reason", trip->reason}};
  } else {
    slo["abort"] = nullptr;
  }
  (*summary)["slo"] = std::move(slo);
}

}  // namespace millstone::cli
