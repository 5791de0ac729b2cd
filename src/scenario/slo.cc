#include "scenario/slo.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "scenario/target_thresholds.h"

namespace millstone::scenario {

namespace {

// Fault times are when the scheduler acted (a few milliseconds after the
// planned instant); rounding keeps a fault planned from 3 s to 6 s on
// seconds 3, 4 and 5 rather than spilling into a fourth.
int64_t rounded_second(double s, int64_t run_seconds) {
  return std::clamp<int64_t>(std::llround(std::max(0.0, s)), 0, run_seconds);
}

struct FaultSpan {
  int index = 0;
  int64_t first_s = 0;
  int64_t end_s = 0;  // run_seconds for a fault still on at the end
};

std::vector<FaultSpan> fault_spans(const FaultWindows& faults, int64_t run_seconds) {
  std::vector<FaultSpan> spans;
  for (size_t i = 0; i < faults.size(); ++i) {
    FaultSpan span;
    span.index = static_cast<int>(i);
    span.first_s = rounded_second(faults[i].start_s, run_seconds);
    span.end_s = faults[i].ended() ? rounded_second(faults[i].end_s, run_seconds) : run_seconds;
    if (span.end_s <= span.first_s) span.end_s = std::min(span.first_s + 1, run_seconds);
    spans.push_back(span);
  }
  std::stable_sort(spans.begin(), spans.end(),
                   [](const FaultSpan& a, const FaultSpan& b) { return a.first_s < b.first_s; });
  return spans;
}

// How far an outcome is on the wrong side of its limit, for the worst window:
// larger is worse; no data is worst of all.
double badness(const ThresholdOutcome& o) {
  if (o.unevaluated) return -INFINITY;  // a target series without points: not a failure
  if (!o.has_data) return INFINITY;
  const Threshold& t = *o.threshold;
  switch (t.op) {
    case Threshold::Op::kLt:
    case Threshold::Op::kLe:
      return o.observed - t.value;
    case Threshold::Op::kGt:
    case Threshold::Op::kGe:
      return t.value - o.observed;
    case Threshold::Op::kEq:
      return std::fabs(o.observed - t.value);
  }
  return 0;
}

}  // namespace

const char* recovery_status_name(Recovery::Status status) {
  switch (status) {
    case Recovery::Status::kRecovered:
      return "recovered";
    case Recovery::Status::kNotRecovered:
      return "not_recovered";
    case Recovery::Status::kStillOn:
      return "still_on";
  }
  return "unknown";
}

std::vector<Phase> cut_phases(const FaultWindows& faults, int64_t run_seconds) {
  std::vector<Phase> phases;
  auto add = [&](Phase::Kind kind, int fault, int64_t first_s, int64_t end_s) {
    if (end_s <= first_s) return;
    Phase p;
    p.kind = kind;
    p.fault = fault;
    p.first_s = first_s;
    p.end_s = end_s;
    switch (kind) {
      case Phase::Kind::kRun:
        p.name = "run";
        break;
      case Phase::Kind::kBefore:
        p.name = "before";
        break;
      case Phase::Kind::kDuring:
        p.name = "during " + faults[fault].name;
        break;
      case Phase::Kind::kAfter:
        p.name = "after " + faults[fault].name;
        break;
    }
    phases.push_back(std::move(p));
  };
  if (faults.empty()) {
    add(Phase::Kind::kRun, -1, 0, run_seconds);
    return phases;
  }
  const std::vector<FaultSpan> spans = fault_spans(faults, run_seconds);
  add(Phase::Kind::kBefore, -1, 0, spans.front().first_s);
  for (const FaultSpan& span : spans) {
    add(Phase::Kind::kDuring, span.index, span.first_s, span.end_s);
    if (!faults[span.index].ended()) continue;
    int64_t next = run_seconds;
    for (const FaultSpan& other : spans) {
      if (other.index != span.index && other.first_s >= span.end_s) {
        next = std::min(next, other.first_s);
      }
    }
    add(Phase::Kind::kAfter, span.index, span.end_s, next);
  }
  return phases;
}

SecondSeries::SecondSeries(const std::map<uint64_t, metrics::Snapshot>& seconds, double duration_s)
    : seconds_(seconds) {
  if (seconds_.empty()) return;
  const int64_t last = static_cast<int64_t>(seconds_.rbegin()->first);
  fold_last_ = last > 0 && duration_s >= 0 && duration_s - static_cast<double>(last) < 0.5;
  run_seconds_ = fold_last_ ? last : last + 1;
}

metrics::Snapshot SecondSeries::merged(int64_t first_s, int64_t end_s) const {
  metrics::Snapshot out;
  // A folded last second belongs to the span that ends the run.
  const int64_t to = fold_last_ && end_s >= run_seconds_ ? run_seconds_ + 1 : end_s;
  for (auto it = seconds_.lower_bound(static_cast<uint64_t>(std::max<int64_t>(0, first_s)));
       it != seconds_.end() && static_cast<int64_t>(it->first) < to; ++it) {
    out.merge(it->second);
  }
  return out;
}

bool SloJudgment::passed() const {
  return std::all_of(objectives.begin(), objectives.end(),
                     [](const ObjectiveJudgment& o) { return o.passed; });
}

SloJudgment judge_objectives(const Plan& plan, const std::map<uint64_t, metrics::Snapshot>& seconds,
                             const FaultWindows& faults, double duration_s,
                             const monitor::MonitorResult* monitored) {
  SloJudgment judgment;
  const SecondSeries series(seconds, duration_s);
  const int64_t run_seconds = series.run_seconds();
  judgment.faults = faults;
  judgment.phases = cut_phases(faults, run_seconds);
  if (plan.objectives.empty()) return judgment;

  static const std::vector<monitor::Series> kNoSeries;
  const std::vector<monitor::Series>& target_series = monitored ? monitored->series : kNoSeries;
  auto judge = [&](const Threshold& t, const metrics::Snapshot& merged, int64_t first_s,
                   int64_t end_s) {
    SpanJudgment j;
    j.first_s = first_s;
    j.end_s = end_s;
    if (t.metric == Threshold::Metric::kTarget) {
      // The target's points of these seconds; a span that ends the run takes
      // the folded last second's too.
      j.outcome =
          evaluate_target_threshold(t, target_series, first_s, end_s >= run_seconds ? -1 : end_s);
    } else {
      j.outcome = evaluate_threshold(plan, t, merged, static_cast<double>(end_s - first_s));
    }
    return j;
  };
  std::vector<metrics::Snapshot> phase_totals;
  for (const Phase& p : judgment.phases)
    phase_totals.push_back(series.merged(p.first_s, p.end_s));
  // Each window length is merged once, for every objective that uses it.
  std::map<int64_t, std::vector<metrics::Snapshot>> windows_by_length;
  auto windows_of = [&](int64_t length) -> const std::vector<metrics::Snapshot>& {
    auto [it, added] = windows_by_length.try_emplace(length);
    if (added && run_seconds > 0) {
      const int64_t count = std::max<int64_t>(1, run_seconds - length + 1);
      for (int64_t start = 0; start < count; ++start)
        it->second.push_back(series.merged(start, std::min(start + length, run_seconds)));
    }
    return it->second;
  };
  std::vector<metrics::Snapshot> single_seconds;
  for (int64_t s = 0; s < run_seconds; ++s)
    single_seconds.push_back(series.merged(s, s + 1));
  const std::vector<FaultSpan> spans = fault_spans(faults, run_seconds);

  for (const Objective& objective : plan.objectives) {
    const Threshold& t = objective.threshold;
    ObjectiveJudgment oj;
    oj.objective = &objective;
    bool passed = true;
    bool evaluated = false;
    for (size_t i = 0; i < judgment.phases.size(); ++i) {
      const Phase& p = judgment.phases[i];
      oj.phases.push_back(judge(t, phase_totals[i], p.first_s, p.end_s));
      passed = passed && threshold_ok(oj.phases.back().outcome);
      evaluated = evaluated || !oj.phases.back().outcome.unevaluated;
    }
    const std::vector<metrics::Snapshot>& windows = windows_of(objective.window_s);
    for (size_t start = 0; start < windows.size(); ++start) {
      const int64_t first_s = static_cast<int64_t>(start);
      SpanJudgment w =
          judge(t, windows[start], first_s, std::min(first_s + objective.window_s, run_seconds));
      ++oj.windows;
      if (!threshold_ok(w.outcome)) ++oj.windows_failed;
      if (!oj.worst_window || badness(w.outcome) > badness(oj.worst_window->outcome)) {
        oj.worst_window = std::move(w);
      }
    }
    passed = passed && oj.windows_failed == 0;
    // A run without a second of data has nothing that could pass.
    if (judgment.phases.empty()) passed = false;

    // Whether the objective held on each second by itself, for recovery.
    std::vector<bool> held;
    for (int64_t s = 0; s < run_seconds; ++s) {
      held.push_back(threshold_ok(judge(t, single_seconds[s], s, s + 1).outcome));
    }
    oj.recovery.resize(faults.size());
    for (const FaultSpan& span : spans) {
      Recovery& r = oj.recovery[span.index];
      const FaultWindow& fault = faults[span.index];
      if (!fault.ended()) continue;  // kStillOn
      int64_t until = run_seconds;
      r.until = "the end of the run";
      for (const FaultSpan& other : spans) {
        if (other.index != span.index && other.first_s >= span.end_s && other.first_s < until) {
          until = other.first_s;
          r.until = "the next fault (" + faults[other.index].name + ")";
        }
      }
      const int64_t need = std::max<int64_t>(1, objective.recovery_window_s);
      int64_t streak_start = span.end_s;
      for (int64_t s = span.end_s; s < until; ++s) {
        if (!held[s]) {
          streak_start = s + 1;
          continue;
        }
        if (s + 1 - streak_start >= need) {
          r.status = Recovery::Status::kRecovered;
          r.recovered_at_s = streak_start;
          r.time_s = std::max(0.0, static_cast<double>(streak_start) - fault.end_s);
          break;
        }
      }
      if (r.status != Recovery::Status::kRecovered) {
        r.status = Recovery::Status::kNotRecovered;
        r.time_s = std::max(0.0, static_cast<double>(until) - fault.end_s);
        // A target series without any point judged nothing, so cannot fail.
        if (evaluated) passed = false;
      }
    }
    oj.passed = passed;
    oj.unevaluated = !evaluated && !judgment.phases.empty();
    judgment.objectives.push_back(std::move(oj));
  }
  return judgment;
}

std::string span_text(int64_t first_s, int64_t end_s) {
  return fmt::format("{}s-{}s", first_s, end_s);
}

}  // namespace millstone::scenario
