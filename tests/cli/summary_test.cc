#include "cli/summary.h"

#include <gtest/gtest.h>

namespace millstone::cli {
namespace {

cluster::RunResult sample_result() {
  cluster::RunResult r;
  r.duration_s = 2.0;
  r.workers = 2;
  for (uint64_t v = 1; v <= 1000; ++v)
    r.total.latency.record(v * 100);  // 0.1 .. 100 ms
  r.total.requests = 1000;
  r.total.status_counts[200] = 990;
  r.total.status_counts[503] = 10;
  r.total.add_error(metrics::ErrorCause::kTimeout, 3);
  r.total.add_error(metrics::ErrorCause::kReset, 2);
  r.total.scheduled = 1005;
  r.total.started_late = 7;
  r.total.not_started = 2;
  r.seconds[0] = r.total;
  return r;
}

TEST(SummaryJson, HasTheDocumentedFields) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 500, 2, 2000};
  auto j = summary_json(run, sample_result());
  EXPECT_EQ(j["requests"], 1000);
  EXPECT_DOUBLE_EQ(j["duration_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j["rps"].get<double>(), 500.0);
  EXPECT_EQ(j["errors"]["timeout"], 3);
  EXPECT_EQ(j["errors"]["reset"], 2);
  EXPECT_FALSE(j["errors"].contains("bad_chunk"));
  EXPECT_EQ(j["error_total"], 5);
  EXPECT_EQ(j["status"]["503"], 10);
  EXPECT_NEAR(j["latency_ms"]["p50"].get<double>(), 50.0, 0.5);
  EXPECT_NEAR(j["latency_ms"]["p99"].get<double>(), 99.0, 1.0);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["min"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["max"].get<double>(), 100.0);
  for (const char* k : {"p90", "p999", "mean"})
    EXPECT_TRUE(j["latency_ms"].contains(k)) << k;
  EXPECT_EQ(j["model"], "open");
  EXPECT_EQ(j["schedule"]["started_late"], 7);
  EXPECT_EQ(j["schedule"]["not_started"], 2);
  EXPECT_EQ(j["timeline"].size(), 1u);
  EXPECT_TRUE(j["complete"].get<bool>());
}

TEST(SummaryText, NamesErrorsStatusesAndWorkerFailures) {
  RunDescription run{"http://127.0.0.1:1/x", "GET", 10, 0, 2, 2000};
  auto result = sample_result();
  result.worker_failures.push_back("worker 1 (pid 42) died before finishing: killed by signal 9");
  std::string text = format_summary(run, result);
  EXPECT_NE(text.find("1,000"), std::string::npos) << text;
  EXPECT_NE(text.find("timeout: 3"), std::string::npos) << text;
  EXPECT_NE(text.find("503: 10"), std::string::npos) << text;
  EXPECT_NE(text.find("WARNING: worker 1"), std::string::npos) << text;
  EXPECT_NE(text.find("incomplete"), std::string::npos) << text;
  EXPECT_EQ(text.find("schedule"), std::string::npos) << "closed model has no schedule line";
}

TEST(Format, ThousandsAndLatency) {
  EXPECT_EQ(group_thousands(0), "0");
  EXPECT_EQ(group_thousands(999), "999");
  EXPECT_EQ(group_thousands(1234567), "1,234,567");
  EXPECT_EQ(format_latency(620), "0.62ms");
  EXPECT_EQ(format_latency(12'345), "12.3ms");
  EXPECT_EQ(format_latency(1'520'000), "1.52s");
}

}  // namespace
}  // namespace millstone::cli
