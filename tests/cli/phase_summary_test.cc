// The table of phases and the recovery to 'before' as the text summary and
// the JSON summary show them (cli/drill_report.h).
#include <gtest/gtest.h>

#include "cli/drill_report.h"

namespace millstone::cli {
namespace phase_summary_test {

scenario::PhaseFigures figures(const char* name, scenario::Phase::Kind kind, int64_t from,
                               int64_t to, uint64_t requests, double p99_ms, uint64_t failed) {
  scenario::PhaseFigures f;
  f.phase.name = name;
  f.phase.kind = kind;
  f.phase.first_s = from;
  f.phase.end_s = to;
  f.requests = requests;
  f.attempts = requests + failed;
  f.failed = failed;
  f.rps = static_cast<double>(requests) / static_cast<double>(to - from);
  f.p50_ms = p99_ms / 2;
  f.p99_ms = p99_ms;
  return f;
}

TEST(PhaseSummary, TableAndNotRecovered) {
  scenario::PhaseReport r;
  r.phases = {figures("before", scenario::Phase::Kind::kBefore, 0, 10, 1000, 40, 0),
              figures("during kill-api", scenario::Phase::Kind::kDuring, 10, 15, 200, 2500, 300),
              figures("after kill-api", scenario::Phase::Kind::kAfter, 15, 30, 1500, 90, 15)};
  r.phases[1].p50_ms.reset();  // as when no response completed
  r.baseline_p99_ms = 40;
  r.p99_limit_ms = 48;
  r.error_rate_limit = 0.01;
  scenario::BaselineRecovery never;
  never.fault = "kill-api";
  never.status = scenario::BaselineRecovery::Status::kNotRecovered;
  never.time_s = 14.9;
  never.until = "the end of the run";
  r.recovery = {never};
  EXPECT_EQ(format_phase_summary(r),
            "\n  phases\n"
            "    phase                    requests    rps     p50     p99         errors\n"
            "    before 0s-10s                1000  100.0  20.0ms  40.0ms     0 (0.000%)\n"
            "    during kill-api 10s-15s       200   40.0       -   2.50s  300 (60.000%)\n"
            "    after kill-api 15s-30s       1500  100.0  45.0ms  90.0ms    15 (0.990%)\n"
            "\n  recovery to before: p99 <= 48.0ms (40.0ms + 20%), error rate <= 1.000% (0.000% "
            "+ 1 point), on every second for 5s\n"
            "    kill-api  not recovered before the end of the run (14.9s after the fault)\n");
  const nlohmann::json j = phases_json(r);
  EXPECT_EQ(j["phases"][1]["p50_ms"], nullptr);
  EXPECT_EQ(j["phases"][1]["p99_ms"], 2500.0);
  EXPECT_EQ(j["recovery"][0]["status"], "not_recovered");
  EXPECT_EQ(j["recovery"][0]["recovered_at_s"], nullptr);
  EXPECT_EQ(j["baseline"]["p99_limit_ms"], 48.0);
  EXPECT_EQ(j["tolerance"]["p99"], "20%");
}

}  // namespace phase_summary_test
}  // namespace millstone::cli
