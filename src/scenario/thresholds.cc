#include "scenario/thresholds.h"

#include <algorithm>

#include <fmt/format.h>

#include "scenario/target_thresholds.h"

namespace millstone::scenario {

namespace {

int index_of(const std::vector<std::string>& names, const std::string& name) {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

std::string latency_text(double us) {
  if (us < 10'000) return fmt::format("{:.2f}ms", us / 1e3);
  if (us < 1'000'000) return fmt::format("{:.1f}ms", us / 1e3);
  return fmt::format("{:.2f}s", us / 1e6);
}

}  // namespace

bool compare_to_limit(double observed, Threshold::Op op, double value) {
  switch (op) {
    case Threshold::Op::kLt:
      return observed < value;
    case Threshold::Op::kLe:
      return observed <= value;
    case Threshold::Op::kGt:
      return observed > value;
    case Threshold::Op::kGe:
      return observed >= value;
    case Threshold::Op::kEq:
      return observed == value;
  }
  return false;
}

ThresholdOutcome evaluate_threshold(const Plan& plan, const Threshold& t,
                                    const metrics::Snapshot& total, double duration_s) {
  ThresholdOutcome o;
  o.threshold = &t;
  int step = t.step.empty() ? -1 : index_of(plan.step_names, t.step);
  const metrics::StepStats* stats =
      step >= 0 && static_cast<size_t>(step) < total.steps.size() ? &total.steps[step] : nullptr;
  switch (t.metric) {
    case Threshold::Metric::kLatency: {
      const metrics::Histogram& h = stats ? stats->latency : total.latency;
      o.has_data = h.count() > 0;
      switch (t.statistic) {
        case Threshold::Statistic::kPercentile:
          o.observed = static_cast<double>(h.value_at(t.percentile / 100.0));
          break;
        case Threshold::Statistic::kMin:
          o.observed = static_cast<double>(h.min());
          break;
        case Threshold::Statistic::kMax:
          o.observed = static_cast<double>(h.max());
          break;
        case Threshold::Statistic::kMean:
          o.observed = h.mean();
          break;
      }
      o.observed_text = latency_text(o.observed);
      break;
    }
    case Threshold::Metric::kErrorRate: {
      uint64_t failed = 0;
      uint64_t attempts = 0;
      if (stats) {
        failed = stats->failed;
        attempts = stats->requests + stats->errors;
      } else if (!t.step.empty()) {
        attempts = 0;
      } else {
        // The summary's error rate, by the same definition.
        metrics::Failures f = total.failures();
        failed = f.failed;
        attempts = f.attempts;
      }
      o.has_data = attempts > 0;
      o.observed = attempts ? static_cast<double>(failed) / static_cast<double>(attempts) : 0;
      o.observed_text = fmt::format("{:.3f}%", o.observed * 100);
      break;
    }
    case Threshold::Metric::kCheckPassRate: {
      uint64_t passed = 0;
      uint64_t evaluated = 0;
      int check = t.check.empty() ? -1 : index_of(plan.check_names, t.check);
      for (size_t i = 0; i < total.checks.size(); ++i) {
        if (check >= 0 && static_cast<int>(i) != check) continue;
        passed += total.checks[i].passed;
        evaluated += total.checks[i].passed + total.checks[i].failed;
      }
      o.has_data = evaluated > 0;
      o.observed = evaluated ? static_cast<double>(passed) / static_cast<double>(evaluated) : 0;
      o.observed_text = fmt::format("{:.3f}%", o.observed * 100);
      break;
    }
    case Threshold::Metric::kRequests:
    case Threshold::Metric::kRps: {
      uint64_t requests = stats ? stats->requests : t.step.empty() ? total.requests : 0;
      o.has_data = true;
      o.observed = static_cast<double>(requests);
      if (t.metric == Threshold::Metric::kRps) {
        o.observed = duration_s > 0 ? o.observed / duration_s : 0;
        o.observed_text = fmt::format("{:.1f}/s", o.observed);
      } else {
        o.observed_text = fmt::format("{}", requests);
      }
      break;
    }
    case Threshold::Metric::kIterations: {
      uint64_t n = 0;
      for (size_t f = 0; f < total.flows.size() && f < plan.flows.size(); ++f) {
        if (t.flow.empty() || plan.flows[f].name == t.flow) n += total.flows[f].iterations;
      }
      o.has_data = true;
      o.observed = static_cast<double>(n);
      o.observed_text = fmt::format("{}", n);
      break;
    }
    case Threshold::Metric::kTarget:
      // Judged over the monitored series (evaluate_target_threshold); here
      // there are none.
      return evaluate_target_threshold(t, {});
    case Threshold::Metric::kDroppedIterations:
      o.has_data = true;
      o.observed = static_cast<double>(total.dropped_iterations);
      o.observed_text = fmt::format("{}", total.dropped_iterations);
      break;
  }
  o.passed = o.has_data && compare_to_limit(o.observed, t.op, t.value);
  if (!o.has_data) o.observed_text = "no data";
  return o;
}

std::vector<ThresholdOutcome> evaluate_thresholds(const Plan& plan, const metrics::Snapshot& total,
                                                  double duration_s,
                                                  const monitor::MonitorResult* monitored) {
  std::vector<ThresholdOutcome> outcomes;
  for (const Threshold& t : plan.thresholds) {
    if (t.metric == Threshold::Metric::kTarget) {
      outcomes.push_back(evaluate_target_threshold(
          t, monitored ? monitored->series : std::vector<monitor::Series>{}));
    } else {
      outcomes.push_back(evaluate_threshold(plan, t, total, duration_s));
    }
  }
  return outcomes;
}

}  // namespace millstone::scenario
