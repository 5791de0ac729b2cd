#include "results/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "results/history.h"
#include "results/text_table.h"
#include "text/printable.h"

namespace millstone::results {

namespace {

enum class Better { kHigher, kLower };

std::optional<double> number_at(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(name);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

const nlohmann::json& member(const nlohmann::json& j, const char* name) {
  static const nlohmann::json null;
  if (!j.is_object()) return null;
  auto it = j.find(name);
  return it == j.end() ? null : *it;
}

// `worsening` is how much worse the run is, as a fraction of the baseline
// (negative when better). Floating-point slack keeps exactly-the-tolerance
// (100 -> 110 at 10%) on the allowed side.
Verdict relative_verdict(double worsening, double tolerance) {
  constexpr double kSlack = 1e-9;
  if (worsening > tolerance + kSlack) return Verdict::kRegression;
  if (worsening > tolerance / 2 + kSlack) return Verdict::kWorse;
  if (-worsening > tolerance / 2 + kSlack) return Verdict::kBetter;
  return Verdict::kSame;
}

std::optional<double> change_pct(double baseline, double run) {
  if (baseline == 0) return std::nullopt;
  return (run - baseline) / std::fabs(baseline) * 100;
}

MetricComparison numeric(std::string metric, std::string unit, double baseline, double run,
                         Better better, double tolerance) {
  MetricComparison m;
  m.metric = std::move(metric);
  m.unit = std::move(unit);
  m.baseline = baseline;
  m.run = run;
  m.change_pct = change_pct(baseline, run);
  if (baseline == run) {
    m.verdict = Verdict::kSame;
  } else if (baseline == 0) {
    // No relative change from zero: any worsening is beyond any tolerance.
    bool worse = better == Better::kLower ? run > 0 : run < 0;
    m.verdict = worse ? Verdict::kRegression : Verdict::kBetter;
  } else {
    double worsening = (run - baseline) / std::fabs(baseline);
    if (better == Better::kHigher) worsening = -worsening;
    m.verdict = relative_verdict(worsening, tolerance);
  }
  return m;
}

// A rate of bad outcomes (a fraction; lower is better), shown in percent.
// Its relative verdict only counts once the absolute change passes the floor.
MetricComparison bad_rate(std::string metric, double baseline, double run,
                          const CompareOptions& options, bool show_as_pass_rate) {
  MetricComparison m =
      numeric(std::move(metric), "%", baseline * 100, run * 100, Better::kLower, options.tolerance);
  if (std::fabs(run - baseline) <= options.rate_floor + 1e-12) m.verdict = Verdict::kSame;
  if (show_as_pass_rate) {
    m.baseline = (1 - baseline) * 100;
    m.run = (1 - run) * 100;
    m.change_pct = change_pct(*m.baseline, *m.run);
  }
  return m;
}

MetricComparison text_verdict(std::string metric, std::string baseline_text, std::string run_text,
                              Verdict verdict) {
  MetricComparison m;
  m.metric = std::move(metric);
  m.baseline_text = std::move(baseline_text);
  m.run_text = std::move(run_text);
  m.verdict = verdict;
  return m;
}

std::string result_text(const RunRecord& r) {
  return r.exit_code == 0 ? "passed" : fmt::format("exit {}", r.exit_code);
}

void compare_steps(const nlohmann::json& run, const nlohmann::json& baseline,
                   const CompareOptions& options, std::vector<MetricComparison>* out) {
  const nlohmann::json& run_steps = member(run, "steps");
  const nlohmann::json& base_steps = member(baseline, "steps");
  if (!run_steps.is_array() || !base_steps.is_array()) return;
  for (const nlohmann::json& step : run_steps) {
    std::string name = member(step, "name").is_string() ? step["name"].get<std::string>() : "";
    auto base = std::find_if(base_steps.begin(), base_steps.end(), [&](const nlohmann::json& b) {
      return member(b, "name") == step["name"];
    });
    if (name.empty() || base == base_steps.end()) continue;
    // A step that answered nothing on either side has no latency to compare.
    if (number_at(step, "requests").value_or(0) == 0 ||
        number_at(*base, "requests").value_or(0) == 0) {
      continue;
    }
    auto run_p99 = number_at(member(step, "latency_ms"), "p99");
    auto base_p99 = number_at(member(*base, "latency_ms"), "p99");
    if (!run_p99 || !base_p99) continue;
    out->push_back(numeric(fmt::format("step {} p99", name), "ms", *base_p99, *run_p99,
                           Better::kLower, options.tolerance));
  }
}

void compare_checks(const nlohmann::json& run, const nlohmann::json& baseline,
                    const CompareOptions& options, std::vector<MetricComparison>* out) {
  const nlohmann::json& run_checks = member(run, "checks");
  const nlohmann::json& base_checks = member(baseline, "checks");
  if (!run_checks.is_array() || !base_checks.is_array()) return;
  auto failure_rate = [](const nlohmann::json& c) -> std::optional<double> {
    double passed = number_at(c, "passed").value_or(0);
    double failed = number_at(c, "failed").value_or(0);
    if (passed + failed == 0) return std::nullopt;
    return failed / (passed + failed);
  };
  for (const nlohmann::json& check : run_checks) {
    if (!member(check, "name").is_string()) continue;
    auto base = std::find_if(base_checks.begin(), base_checks.end(), [&](const nlohmann::json& b) {
      return member(b, "name") == check["name"];
    });
    if (base == base_checks.end()) continue;
    auto run_rate = failure_rate(check);
    auto base_rate = failure_rate(*base);
    if (!run_rate || !base_rate) continue;
    out->push_back(bad_rate(fmt::format("check {} pass rate", check["name"].get<std::string>()),
                            *base_rate, *run_rate, options, true));
  }
}

void compare_thresholds(const nlohmann::json& run, const nlohmann::json& baseline,
                        std::vector<MetricComparison>* out) {
  const nlohmann::json& run_thresholds = member(run, "thresholds");
  const nlohmann::json& base_thresholds = member(baseline, "thresholds");
  if (!run_thresholds.is_array() || !base_thresholds.is_array()) return;
  for (const nlohmann::json& t : run_thresholds) {
    // A target.* threshold without data (status no_data) was not judged: nothing to compare.
    auto judged = [](const nlohmann::json& j) {
      return member(j, "passed").is_boolean() && member(j, "status") != "no_data";
    };
    if (!member(t, "threshold").is_string() || !judged(t)) continue;
    auto base =
        std::find_if(base_thresholds.begin(), base_thresholds.end(), [&](const nlohmann::json& b) {
          return member(b, "threshold") == t["threshold"] && judged(b);
        });
    if (base == base_thresholds.end()) continue;
    bool was = (*base)["passed"].get<bool>();
    bool is = t["passed"].get<bool>();
    Verdict v = was == is ? Verdict::kSame : (is ? Verdict::kBetter : Verdict::kRegression);
    auto text = [](bool passed, const nlohmann::json& j) {
      const nlohmann::json& observed = member(j, "observed");
      return fmt::format("{} ({})", passed ? "pass" : "FAIL",
                         observed.is_string() ? observed.get<std::string>() : observed.dump());
    };
    out->push_back(text_verdict(fmt::format("threshold {}", t["threshold"].get<std::string>()),
                                text(was, *base), text(is, t), v));
  }
}

std::string string_at(const nlohmann::json& j, const char* name) {
  const nlohmann::json& v = member(j, name);
  return v.is_string() ? v.get<std::string>() : "";
}

// A scenario run's base URL: the summary's `target`, or for runs recorded
// before it existed, what follows " -> " in its `url` ("shop.yaml -> http://...").
std::string scenario_target(const nlohmann::json& summary) {
  std::string target = string_at(summary, "target");
  if (!target.empty()) return target;
  std::string url = string_at(summary, "url");
  size_t arrow = url.rfind(" -> ");
  return arrow == std::string::npos ? "" : url.substr(arrow + 4);
}

std::string model_text(const std::string& model) {
  if (model == "closed") return "closed (-c, no --rate)";
  if (model == "open") return "open (--rate)";
  if (model == "scenario") return "scenario file";
  return model.empty() ? "-" : model;
}

std::string rate_text(const std::optional<double>& rate) {
  return rate ? fmt::format("{:g} req/s", *rate) : "none (closed model)";
}

std::string count_text(const std::optional<uint64_t>& n) {
  return n ? std::to_string(*n) : "-";
}

std::string seconds_text(const std::optional<double>& s) {
  return s ? fmt::format("{:g}s", *s) : "-";
}

// 1-based number of the first line where two texts differ.
size_t first_different_line(const std::string& a, const std::string& b) {
  size_t line = 1;
  for (size_t i = 0; i < a.size() && i < b.size() && a[i] == b[i]; ++i) {
    if (a[i] == '\n') ++line;
  }
  return line;
}

std::string format_number(const std::optional<double>& x, const std::string& unit) {
  if (!x) return "-";
  if (unit == "%") return fmt::format("{:.3f}%", *x);
  if (unit == "ms") return *x < 10 ? fmt::format("{:.3f}ms", *x) : fmt::format("{:.1f}ms", *x);
  return fmt::format("{:.1f}", *x);
}

}  // namespace

bool parse_tolerance(const std::string& text, double* tolerance, std::string* error) {
  std::string digits = text;
  bool percent = !digits.empty() && digits.back() == '%';
  if (percent) digits.pop_back();
  char* end = nullptr;
  double value = digits.empty() ? NAN : std::strtod(digits.c_str(), &end);
  if (digits.empty() || end != digits.c_str() + digits.size() || !std::isfinite(value)) {
    *error = fmt::format("'{}': expected a percentage like 10% or a fraction like 0.1", text);
    return false;
  }
  if (value < 0) {
    *error = fmt::format("'{}': must not be negative", text);
    return false;
  }
  if (!percent && value > 1) {
    *error = fmt::format("'{}': ambiguous; write {}% or a fraction like 0.1", text, text);
    return false;
  }
  *tolerance = percent ? value / 100 : value;
  return true;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kBetter:
      return "better";
    case Verdict::kSame:
      return "same";
    case Verdict::kWorse:
      return "worse";
    case Verdict::kRegression:
      return "REGRESSION";
  }
  return "?";
}

LoadShape load_shape(const RunRecord& record) {
  const nlohmann::json& s = record.summary;
  LoadShape shape;
  shape.model = string_at(s, "model");
  shape.planned_duration_s = number_at(s, "planned_duration_s");
  auto count = [&](const char* name) -> std::optional<uint64_t> {
    auto n = number_at(s, name);
    if (!n) return std::nullopt;
    return static_cast<uint64_t>(std::max(0.0, *n));
  };
  if (shape.model == "scenario") {
    shape.target = scenario_target(s);
    shape.peak_vus = count("peak_vus");
    shape.scenario_file = record.key;
    shape.scenario_source = string_at(record.config, "scenario_source");
  } else {
    // A URL run's key is "METHOD URL" (record.h): the same text, also for
    // records whose summary lacks the fields.
    std::string url = string_at(s, "url");
    std::string method = string_at(s, "method");
    shape.target = url.empty() ? record.key : (method.empty() ? "GET" : method) + " " + url;
    shape.connections = count("connections");
    shape.rate = number_at(s, "rate");
    if (shape.rate && *shape.rate <= 0) shape.rate.reset();
  }
  return shape;
}

std::vector<LoadDifference> load_differences(const LoadShape& run, const LoadShape& baseline) {
  std::vector<LoadDifference> out;
  auto add = [&](const char* what, std::string b, std::string r) {
    if (b != r) out.push_back({what, std::move(b), std::move(r)});
  };
  bool run_scenario = run.model == "scenario";
  bool base_scenario = baseline.model == "scenario";
  add("load model", model_text(baseline.model), model_text(run.model));
  add("target", baseline.target, run.target);
  if (!run_scenario && !base_scenario) {
    add("rate", rate_text(baseline.rate), rate_text(run.rate));
    add("connections", count_text(baseline.connections), count_text(run.connections));
  }
  add("planned duration", seconds_text(baseline.planned_duration_s),
      seconds_text(run.planned_duration_s));
  if (run_scenario && base_scenario) {
    add("scenario file", baseline.scenario_file, run.scenario_file);
    if (run.scenario_source != baseline.scenario_source) {
      out.push_back(
          {"scenario text", "as recorded",
           fmt::format("differs from line {}",
                       first_different_line(run.scenario_source, baseline.scenario_source))});
      add("peak VUs", count_text(baseline.peak_vus), count_text(run.peak_vus));
    }
  }
  return out;
}

bool Comparison::regression() const {
  return std::any_of(metrics.begin(), metrics.end(),
                     [](const MetricComparison& m) { return m.verdict == Verdict::kRegression; });
}

Comparison compare_runs(const RunRecord& run, const RunRecord& baseline,
                        const CompareOptions& options) {
  Comparison c;
  c.run_id = run.id;
  c.baseline_id = baseline.id;
  c.options = options;
  const nlohmann::json& r = run.summary;
  const nlohmann::json& b = baseline.summary;
  c.load_differences = load_differences(load_shape(run), load_shape(baseline));
  // A URL run's key is its target and a scenario run's its file, so a
  // difference in either already says the keys differ.
  bool key_explained = std::any_of(
      c.load_differences.begin(), c.load_differences.end(), [](const LoadDifference& d) {
        return d.what == "target" || d.what == "scenario file" || d.what == "load model";
      });
  if (run.key != baseline.key && !key_explained) {
    c.warnings.push_back(fmt::format("comparing different keys: the run is {}, the baseline {}",
                                     run.key, baseline.key));
  }
  if (!run.env.host.empty() && !baseline.env.host.empty() && run.env.host != baseline.env.host) {
    c.warnings.push_back(fmt::format("the run is from host {}, the baseline from {}", run.env.host,
                                     baseline.env.host));
  }
  for (const auto& [record, role] : {std::pair{&run, "run"}, std::pair{&baseline, "baseline"}}) {
    const nlohmann::json& complete = member(record->summary, "complete");
    const nlohmann::json& interrupted = member(record->summary, "interrupted");
    if ((complete.is_boolean() && !complete.get<bool>()) ||
        (interrupted.is_boolean() && interrupted.get<bool>())) {
      c.warnings.push_back(
          fmt::format("the {} {} was incomplete or interrupted", role, record->id));
    }
  }

  c.metrics.push_back(text_verdict("result", result_text(baseline), result_text(run),
                                   baseline.passed() && !run.passed()   ? Verdict::kRegression
                                   : !baseline.passed() && run.passed() ? Verdict::kBetter
                                                                        : Verdict::kSame));
  if (auto br = number_at(b, "rps"), rr = number_at(r, "rps"); br && rr) {
    c.metrics.push_back(
        numeric("throughput", "req/s", *br, *rr, Better::kHigher, options.tolerance));
  }
  const nlohmann::json& bl = member(b, "latency_ms");
  const nlohmann::json& rl = member(r, "latency_ms");
  for (const char* p : {"p50", "p90", "p99", "max"}) {
    auto bv = number_at(bl, p);
    auto rv = number_at(rl, p);
    if (!bv || !rv) continue;
    c.metrics.push_back(
        numeric(fmt::format("latency {}", p), "ms", *bv, *rv, Better::kLower, options.tolerance));
  }
  c.metrics.push_back(bad_rate("error rate", run_error_rate(b), run_error_rate(r), options, false));
  compare_steps(r, b, options, &c.metrics);
  compare_checks(r, b, options, &c.metrics);
  compare_thresholds(r, b, &c.metrics);
  return c;
}

std::string format_comparison(const Comparison& c) {
  std::string out = fmt::format("run {} against baseline {}, tolerance {:g}%\n", c.run_id,
                                c.baseline_id, c.options.tolerance * 100);
  if (!c.load_differences.empty()) {
    out +=
        "\nWARNING: the two runs did not apply the same load to the same target; the verdicts\n"
        "below compare different tests, not the same test on two builds:\n";
    TextTable table({TextTable::Align::kLeft, TextTable::Align::kLeft, TextTable::Align::kLeft});
    table.add_row({"", "baseline", "run"});
    for (const LoadDifference& d : c.load_differences)
      table.add_row({d.what, text::printable(d.baseline), text::printable(d.run)});
    out += table.render();
  }
  if (!c.warnings.empty()) out += "\n";
  // Metric names carry step, check and threshold names, and warnings carry
  // targets and hosts: text from scenario files and the history database.
  for (const std::string& w : c.warnings)
    out += fmt::format("warning: {}\n", text::printable(w));
  auto label = [](const MetricComparison& m) {
    return text::printable(m.unit == "req/s" ? m.metric + " (req/s)" : m.metric);
  };
  using Align = TextTable::Align;
  TextTable table({Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kLeft});
  table.add_row({"metric", "baseline", "run", "change", "verdict"});
  size_t regressions = 0;
  for (const MetricComparison& m : c.metrics) {
    bool numeric = m.baseline.has_value() || m.run.has_value();
    std::string base =
        numeric ? format_number(m.baseline, m.unit) : text::printable(m.baseline_text);
    std::string run = numeric ? format_number(m.run, m.unit) : text::printable(m.run_text);
    std::string change = m.change_pct ? fmt::format("{:+.1f}%", *m.change_pct) : "";
    table.add_row({label(m), base, run, change, verdict_name(m.verdict)});
    if (m.verdict == Verdict::kRegression) ++regressions;
  }
  out += "\n" + table.render();
  std::string caveat =
      c.load_differences.empty() ? "" : " (but the load differed: see the WARNING above)";
  if (regressions) {
    out += fmt::format("\nREGRESSION: {} metric{} worse than the baseline beyond {:g}%{}\n",
                       regressions, regressions == 1 ? "" : "s", c.options.tolerance * 100, caveat);
  } else {
    out += fmt::format("\nno regression beyond {:g}%{}\n", c.options.tolerance * 100, caveat);
  }
  return out;
}

nlohmann::json to_json(const Comparison& c) {
  nlohmann::json metrics = nlohmann::json::array();
  for (const MetricComparison& m : c.metrics) {
    nlohmann::json j = {{"metric", m.metric}, {"verdict", verdict_name(m.verdict)}};
    if (!m.unit.empty()) j["unit"] = m.unit;
    if (m.baseline || m.run) {
      j["baseline"] = m.baseline ? nlohmann::json(*m.baseline) : nlohmann::json();
      j["run"] = m.run ? nlohmann::json(*m.run) : nlohmann::json();
    } else {
      j["baseline"] = m.baseline_text;
      j["run"] = m.run_text;
    }
    j["change_pct"] = m.change_pct ? nlohmann::json(*m.change_pct) : nlohmann::json();
    metrics.push_back(std::move(j));
  }
  nlohmann::json differences = nlohmann::json::array();
  for (const LoadDifference& d : c.load_differences)
    differences.push_back({{"what", d.what}, {"baseline", d.baseline}, {"run", d.run}});
  return {{"run", c.run_id},
          {"baseline", c.baseline_id},
          {"tolerance", c.options.tolerance},
          {"rate_floor", c.options.rate_floor},
          {"load_differs", !c.load_differences.empty()},
          {"load_differences", differences},
          {"warnings", c.warnings},
          {"regression", c.regression()},
          {"metrics", metrics}};
}

}  // namespace millstone::results
