#include "cli/scenario_summary.h"

#include <algorithm>

#include <fmt/format.h>

#include "cli/socket_summary.h"
#include "cli/summary.h"
#include "text/printable.h"

namespace millstone::cli {

using text::printable;

namespace {

// Checks are named "flow/step: ...", so a flow's checks share its prefix.
std::pair<uint64_t, uint64_t> flow_checks(const scenario::Plan& plan,
                                          const metrics::Snapshot& total, const std::string& flow) {
  uint64_t passed = 0;
  uint64_t failed = 0;
  std::string prefix = flow + "/";
  for (size_t i = 0; i < plan.check_names.size() && i < total.checks.size(); ++i) {
    if (plan.check_names[i].compare(0, prefix.size(), prefix) != 0) continue;
    passed += total.checks[i].passed;
    failed += total.checks[i].failed;
  }
  return {passed, failed};
}

const char* executor_name(scenario::Executor::Kind kind) {
  using Kind = scenario::Executor::Kind;
  switch (kind) {
    case Kind::kConstantVus:
      return "constant-vus";
    case Kind::kRampingVus:
      return "ramping-vus";
    case Kind::kConstantArrivalRate:
      return "constant-arrival-rate";
    case Kind::kRampingArrivalRate:
      return "ramping-arrival-rate";
    case Kind::kIterations:
      return "iterations";
  }
  return "?";
}

nlohmann::json latency_json(const metrics::Histogram& h) {
  return {
      {"min", ms(h.min())},          {"p50", ms(h.value_at(0.5))},  {"p90", ms(h.value_at(0.9))},
      {"p95", ms(h.value_at(0.95))}, {"p99", ms(h.value_at(0.99))}, {"p999", ms(h.value_at(0.999))},
      {"max", ms(h.max())},          {"mean", h.mean() / 1e3},      {"count", h.count()}};
}

}  // namespace

std::string format_scenario_summary(const scenario::Plan& plan, const metrics::Snapshot& total,
                                    const std::vector<scenario::ThresholdOutcome>& thresholds,
                                    const std::vector<double>& percentiles) {
  std::string out;
  size_t width = 12;
  for (const std::string& name : plan.step_names)
    width = std::max(width, name.size());
  width = std::min<size_t>(width, 48);
  out += fmt::format("\n  {:<{}}  {:>10} {:>8}", "step", width, "requests", "failed");
  for (double p : percentiles)
    out += fmt::format(" {:>9}", "p" + plain_number(p));
  out += fmt::format(" {:>9}\n", "max");
  for (size_t i = 0; i < plan.step_names.size() && i < total.steps.size(); ++i) {
    const metrics::StepStats& s = total.steps[i];
    const metrics::Histogram& h = s.latency;
    auto lat = [&](uint64_t us) { return h.count() ? format_latency(us) : std::string("-"); };
    out += fmt::format("  {:<{}}  {:>10} {:>8}", printable(plan.step_names[i]), width,
                       group_thousands(s.requests), group_thousands(s.failed));
    for (double p : percentiles)
      out += fmt::format(" {:>9}", lat(h.value_at(p / 100.0)));
    out += fmt::format(" {:>9}\n", lat(h.max()));
    if (s.extract_failed) {
      out += fmt::format("  {:<{}}  {} responses lacked a value to extract\n", "", width,
                         group_thousands(s.extract_failed));
    }
  }
  if (!plan.check_names.empty()) {
    out += "\n  checks\n";
    for (size_t i = 0; i < plan.check_names.size() && i < total.checks.size(); ++i) {
      const metrics::CheckStats& c = total.checks[i];
      uint64_t n = c.passed + c.failed;
      if (n == 0) {
        // Its step never got a response to check: neither passed nor failed.
        out += fmt::format("    --   {}  not run\n", printable(plan.check_names[i]));
        continue;
      }
      out += fmt::format("    {} {}  {}/{} ({:.2f}%)\n", c.failed ? "FAIL" : "ok  ",
                         printable(plan.check_names[i]), group_thousands(c.passed),
                         group_thousands(n), 100.0 * c.passed / n);
      for (const std::string& sample : c.samples)
        out += fmt::format("           e.g. {}\n", printable(sample));
    }
  }
  out += "\n  flows       ";
  for (size_t f = 0; f < plan.flows.size() && f < total.flows.size(); ++f) {
    out += fmt::format("{}{}: {}", f ? "; " : "", printable(plan.flows[f].name),
                       count_of(total.flows[f].iterations, "iteration", "iterations"));
    if (total.flows[f].aborted) {
      out += fmt::format(" ({} aborted)", group_thousands(total.flows[f].aborted));
    }
    auto [passed, failed] = flow_checks(plan, total, plan.flows[f].name);
    if (failed)
      out += fmt::format(", {} of {} checks failed", group_thousands(failed),
                         group_thousands(passed + failed));
  }
  out += "\n";
  if (total.dropped_iterations) {
    out += fmt::format(
        "  dropped     {} iterations could not start on time: every VU was busy (raise "
        "max_vus)\n",
        group_thousands(total.dropped_iterations));
  }
  out += format_socket_summary(plan, total);
  if (!thresholds.empty()) {
    out += "\n  thresholds\n";
    for (const auto& t : thresholds) {
      if (t.unevaluated) {
        // A dead endpoint: said, but it neither passes nor fails the run.
        out += fmt::format("    {} {:<40} not evaluated: no data from the monitored target\n",
                           "--  ", printable(t.threshold->text));
        continue;
      }
      out += fmt::format("    {} {:<40} observed {}\n", t.passed ? "ok  " : "FAIL",
                         printable(t.threshold->text), printable(t.observed_text));
    }
  }
  return out;
}

void add_scenario_json(const scenario::Plan& plan, const metrics::Snapshot& total,
                       const std::vector<scenario::ThresholdOutcome>& thresholds,
                       nlohmann::json* summary) {
  nlohmann::json& j = *summary;
  j["scenario"] = plan.name;
  j["target"] = fmt::format("{}://{}", plan.target.scheme.empty() ? "http" : plan.target.scheme,
                            plan.target.host_header());
  // When each scenario ran, so the report can mark where one ends and the
  // next begins (`start: after`).
  nlohmann::json scenarios = nlohmann::json::array();
  for (const scenario::ScenarioRun& run : plan.scenarios) {
    double graceful_s = static_cast<double>(run.executor.graceful_stop_us) / 1e6;
    double end_s = static_cast<double>(run.end_us()) / 1e6;
    scenarios.push_back({{"name", run.name},
                         {"executor", executor_name(run.executor.kind)},
                         {"start_s", static_cast<double>(run.start_us) / 1e6},
                         {"end_s", end_s},
                         {"graceful_stop_s", graceful_s}});
  }
  j["scenarios"] = scenarios;
  nlohmann::json steps = nlohmann::json::array();
  for (size_t i = 0; i < plan.step_names.size() && i < total.steps.size(); ++i) {
    const metrics::StepStats& s = total.steps[i];
    steps.push_back({{"name", plan.step_names[i]},
                     {"requests", s.requests},
                     {"failed", s.failed},
                     {"errors", s.errors},
                     {"extract_failed", s.extract_failed},
                     {"latency_ms", latency_json(s.latency)},
                     {"latency_percentiles", percentile_curve_json(s.latency)}});
  }
  j["steps"] = steps;
  // summary_json() left each second's steps as an array indexed like
  // plan.step_names: key them by name, and leave out steps idle that second.
  if (j.contains("timeline")) {
    for (nlohmann::json& second : j["timeline"]) {
      nlohmann::json named = nlohmann::json::object();
      if (second.contains("steps") && second["steps"].is_array()) {
        const nlohmann::json& by_index = second["steps"];
        for (size_t i = 0; i < by_index.size() && i < plan.step_names.size(); ++i) {
          const nlohmann::json& step = by_index[i];
          if (step["requests"].get<uint64_t>() == 0 && step["failed"].get<uint64_t>() == 0)
            continue;
          named[plan.step_names[i]] = step;
        }
      }
      second["steps"] = std::move(named);
    }
  }
  nlohmann::json checks = nlohmann::json::array();
  for (size_t i = 0; i < plan.check_names.size() && i < total.checks.size(); ++i) {
    const metrics::CheckStats& c = total.checks[i];
    checks.push_back({{"name", plan.check_names[i]},
                      {"passed", c.passed},
                      {"failed", c.failed},
                      {"samples", c.samples}});
  }
  j["checks"] = checks;
  nlohmann::json flows = nlohmann::json::array();
  for (size_t f = 0; f < plan.flows.size() && f < total.flows.size(); ++f) {
    auto [passed, failed] = flow_checks(plan, total, plan.flows[f].name);
    flows.push_back({{"name", plan.flows[f].name},
                     {"iterations", total.flows[f].iterations},
                     {"aborted", total.flows[f].aborted},
                     {"checks_passed", passed},
                     {"checks_failed", failed}});
  }
  j["flows"] = flows;
  j["dropped_iterations"] = total.dropped_iterations;
  add_socket_json(plan, total, &j);
  nlohmann::json ts = nlohmann::json::array();
  bool all = true;
  for (const auto& t : thresholds) {
    all = all && scenario::threshold_ok(t);
    ts.push_back({{"threshold", t.threshold->text},
                  {"location", t.threshold->location},
                  {"passed", t.passed},
                  {"status", t.unevaluated ? "no_data"
                             : t.passed    ? "passed"
                                           : "failed"},
                  {"observed", t.observed_text}});
    if (t.threshold->metric == scenario::Threshold::Metric::kTarget) {
      ts.back()["value"] = t.has_data ? nlohmann::json(t.observed) : nlohmann::json();
    }
  }
  j["thresholds"] = ts;
  j["thresholds_passed"] = all;
}

}  // namespace millstone::cli
