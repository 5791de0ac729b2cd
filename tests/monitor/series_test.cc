#include "monitor/series.h"

#include <stdexcept>

#include <gtest/gtest.h>

namespace millstone::monitor {
namespace series_test {

Exposition parse(const std::string& text) {
  Exposition e;
  ParseError error;
  EXPECT_TRUE(parse_text(text, &e, &error)) << error.message;
  return e;
}

std::string node_text(double idle0, double user0, double idle1, double user1, double avail,
                      double rx) {
  return "# TYPE node_cpu_seconds_total counter\n"
         "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} " +
         std::to_string(idle0) + "\n" + "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} " +
         std::to_string(user0) + "\n" + "node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} " +
         std::to_string(idle1) + "\n" + "node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} " +
         std::to_string(user1) + "\n" +
         "node_memory_MemTotal_bytes 1000\n"
         "node_memory_MemAvailable_bytes " +
         std::to_string(avail) + "\n" +
         "node_network_receive_bytes_total{device=\"lo\"} 999999\n"
         "node_network_receive_bytes_total{device=\"eth0\"} " +
         std::to_string(rx) + "\n" + "node_network_transmit_bytes_total{device=\"eth0\"} 0\n";
}

const Series* find(const std::vector<Series>& all, const std::string& name) {
  for (const Series& s : all) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(MonitorSeries, NodeExporterGivesCpuMemoryAndNetworkOnTheRunsSeconds) {
  SeriesBuilder b(Target{"node", "http://127.0.0.1:9100/metrics", {}, 1000, "--monitor"});
  // Baseline at the start, then the ends of seconds 0 and 1.
  b.add(0.01, parse(node_text(100, 10, 100, 10, 600, 5000)));
  // Second 0: 2 CPU-seconds passed, 0.5 of them idle: 75% busy.
  b.add(1.02, parse(node_text(100.5, 11, 100, 10.5, 500, 6000)));
  // Second 1 (a scrape that came 0.4 s late still closes it): fully idle.
  b.add(2.4, parse(node_text(101.5, 11, 101, 10.5, 400, 6000)));
  const std::vector<Series> all = b.series();
  const Series* cpu = find(all, "cpu_percent");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->unit, "%");
  ASSERT_EQ(cpu->points.size(), 2u);
  EXPECT_EQ(cpu->points[0].second, 0u);
  EXPECT_DOUBLE_EQ(cpu->points[0].value, 75);
  EXPECT_EQ(cpu->points[1].second, 1u);
  EXPECT_DOUBLE_EQ(cpu->points[1].value, 0);
  const Series* mem = find(all, "memory_used_bytes");
  ASSERT_NE(mem, nullptr);
  ASSERT_EQ(mem->points.size(), 2u);  // the baseline closes no second
  EXPECT_EQ(mem->points[0].value, 500);
  const Series* rx = find(all, "network_rx_bytes_per_s");
  ASSERT_NE(rx, nullptr);
  ASSERT_EQ(rx->points.size(), 2u);
  EXPECT_NEAR(rx->points[0].value, 1000 / 1.01, 1e-6);  // loopback left out
  EXPECT_EQ(rx->points[1].value, 0);
  // No metrics: given, so nothing else is kept from a node_exporter.
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(b.outcome().warning(), "");
}

TEST(MonitorSeries, SelectedCountersAreRatesGaugesAsTheyAreResetsLeaveAGap) {
  SeriesBuilder b(Target{"app", "http://x/metrics", {"http_requests_total", "queue_.*"}, 1000, ""});
  auto text = [](int requests, int queue) {
    return "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} " +
           std::to_string(requests) + "\nqueue_depth " + std::to_string(queue) +
           "\nqueue_nan NaN\nother 1\n";
  };
  b.add(0, parse(text(100, 1)));
  b.add(1, parse(text(300, 7)));
  b.add(2, parse(text(50, 9)));  // restarted: no rate for second 1
  b.add(3, parse(text(150, 2)));
  const std::vector<Series> all = b.series();
  ASSERT_EQ(all.size(), 3u);
  const Series* requests = find(all, "http_requests_total{code=\"200\"}");
  ASSERT_NE(requests, nullptr);
  EXPECT_EQ(requests->kind, "counter");
  EXPECT_EQ(requests->unit, "/s");
  ASSERT_EQ(requests->points.size(), 2u);
  EXPECT_EQ(requests->points[0].second, 0u);
  EXPECT_EQ(requests->points[0].value, 200);
  EXPECT_EQ(requests->points[1].second, 2u);
  EXPECT_EQ(requests->points[1].value, 100);
  const Series* queue = find(all, "queue_depth");
  ASSERT_NE(queue, nullptr);
  EXPECT_EQ(queue->kind, "untyped");
  ASSERT_EQ(queue->points.size(), 3u);
  EXPECT_EQ(queue->points[2].value, 2);
  EXPECT_TRUE(find(all, "queue_nan")->points.empty());  // NaN is a gap, not a number
  EXPECT_EQ(find(all, "other"), nullptr);
}

TEST(MonitorSeries, FailuresAreCountedAndWarnedOnceWithTheFirstReason) {
  SeriesBuilder b(Target{"dead", "http://127.0.0.1:1/metrics", {}, 1000, ""});
  b.add_failure("Connection refused");
  b.add_failure("timed out");
  const TargetOutcome o = b.outcome();
  EXPECT_EQ(o.scrapes, 2u);
  EXPECT_EQ(o.failed, 2u);
  EXPECT_EQ(o.warning(),
            "monitor dead (http://127.0.0.1:1/metrics): 2 of 2 scrapes failed, the first: "
            "Connection refused");
  const nlohmann::json j = to_json(MonitorResult{{o}, b.series()});
  EXPECT_EQ(j["targets"][0]["failed"], 2);
  EXPECT_EQ(j["targets"][0]["first_error"], "Connection refused");
  EXPECT_TRUE(j["series"].empty());
}

TEST(MonitorSeries, NothingMatchedIsAWarningAndSeriesAreCapped) {
  SeriesBuilder none(Target{"app", "http://x/metrics", {"absent_.*"}, 1000, ""});
  none.add(0, parse("present 1\n"));
  EXPECT_NE(none.outcome().warning().find("no metric matched metrics: [absent_.*]"),
            std::string::npos);
  SeriesBuilder all(Target{"app", "http://x/metrics", {}, 1000, ""});
  std::string text;
  for (size_t i = 0; i < kMaxSeriesPerTarget + 5; ++i)
    text += "m{i=\"" + std::to_string(i) + "\"} 1\n";
  all.add(1, parse(text));
  EXPECT_EQ(all.series().size(), kMaxSeriesPerTarget);
  EXPECT_EQ(all.outcome().dropped_series, 5u);
  EXPECT_THROW(SeriesBuilder(Target{"bad", "http://x", {"("}, 1000, ""}), std::invalid_argument);
}

}  // namespace series_test
}  // namespace millstone::monitor
