#include "scenario/phase_figures.h"

#include <algorithm>
#include <cmath>

namespace millstone::scenario {

namespace {

std::optional<double> percentile_ms(const metrics::Snapshot& s, double q) {
  if (s.latency.count() == 0) return std::nullopt;
  return static_cast<double>(s.latency.value_at(q)) / 1000.0;
}

}  // namespace

const char* baseline_recovery_name(BaselineRecovery::Status status) {
  switch (status) {
    case BaselineRecovery::Status::kRecovered:
      return "recovered";
    case BaselineRecovery::Status::kNotRecovered:
      return "not_recovered";
    case BaselineRecovery::Status::kStillOn:
      return "still_on";
    case BaselineRecovery::Status::kNoBaseline:
      return "no_baseline";
  }
  return "unknown";
}

PhaseReport report_phases(const Plan& plan, const std::map<uint64_t, metrics::Snapshot>& seconds,
                          const FaultWindows& faults, double duration_s) {
  PhaseReport report;
  report.tolerance = plan.recovery_tolerance;
  const SecondSeries series(seconds, duration_s);
  const int64_t run_seconds = series.run_seconds();
  for (const Phase& phase : cut_phases(faults, run_seconds)) {
    const metrics::Snapshot merged = series.merged(phase.first_s, phase.end_s);
    const metrics::Failures f = merged.failures();
    PhaseFigures figures;
    figures.phase = phase;
    figures.requests = merged.requests;
    figures.attempts = f.attempts;
    figures.failed = f.failed;
    figures.rps = static_cast<double>(merged.requests) / static_cast<double>(phase.seconds());
    figures.p50_ms = percentile_ms(merged, 0.50);
    figures.p99_ms = percentile_ms(merged, 0.99);
    report.phases.push_back(std::move(figures));
  }

  const auto before =
      std::find_if(report.phases.begin(), report.phases.end(),
                   [](const PhaseFigures& p) { return p.phase.kind == Phase::Kind::kBefore; });
  const RecoveryTolerance& t = report.tolerance;
  if (before != report.phases.end() && before->p99_ms) {
    report.baseline_p99_ms = before->p99_ms;
    report.baseline_error_rate = before->error_rate();
    report.p99_limit_ms = t.p99_slack_us >= 0
                              ? *before->p99_ms + static_cast<double>(t.p99_slack_us) / 1000.0
                              : *before->p99_ms * (1 + t.p99_ratio);
    report.error_rate_limit = report.baseline_error_rate + t.error_rate_points;
  }
  // A second holds when it has complete responses, its p99 is within the
  // limit and its error rate too: a second with nothing to show is no evidence
  // of recovery.
  auto held = [&](int64_t s) {
    const metrics::Snapshot second = series.merged(s, s + 1);
    const metrics::Failures f = second.failures();
    const std::optional<double> p99 = percentile_ms(second, 0.99);
    return p99 && *p99 <= report.p99_limit_ms && f.rate() <= report.error_rate_limit;
  };
  for (size_t i = 0; i < faults.size(); ++i) {
    BaselineRecovery r;
    r.fault = faults[i].name;
    const int fault = static_cast<int>(i);
    auto phase_of = [&](Phase::Kind kind) -> const Phase* {
      for (const PhaseFigures& p : report.phases) {
        if (p.phase.kind == kind && p.phase.fault == fault) return &p.phase;
      }
      return nullptr;
    };
    const Phase* during = phase_of(Phase::Kind::kDuring);
    if (!faults[i].ended()) {
      r.status = BaselineRecovery::Status::kStillOn;
    } else if (!report.baseline_p99_ms || during == nullptr) {
      r.status = BaselineRecovery::Status::kNoBaseline;
    } else {
      // Watched from the fault's end until the next fault starts (its 'after' phase).
      const Phase* after = phase_of(Phase::Kind::kAfter);
      const int64_t from = during->end_s;
      const int64_t until = after != nullptr ? after->end_s : from;
      r.until = "the end of the run";
      if (until < run_seconds) {
        for (const FaultWindow& other : faults) {
          if (std::llround(other.start_s) == until) r.until = "the next fault (" + other.name + ")";
        }
      }
      const int64_t need = std::max<int64_t>(1, t.window_s);
      int64_t streak = from;
      r.status = BaselineRecovery::Status::kNotRecovered;
      r.time_s = std::max(0.0, static_cast<double>(until) - faults[i].end_s);
      for (int64_t s = from; s < until; ++s) {
        if (!held(s)) {
          streak = s + 1;
          continue;
        }
        if (s + 1 - streak >= need) {
          r.status = BaselineRecovery::Status::kRecovered;
          r.recovered_at_s = streak;
          r.time_s = std::max(0.0, static_cast<double>(streak) - faults[i].end_s);
          r.until.clear();
          break;
        }
      }
    }
    report.recovery.push_back(std::move(r));
  }
  return report;
}

}  // namespace millstone::scenario
