#include "cli/limits.h"

#include <gtest/gtest.h>

#include "scenario/loader.h"

namespace millstone::cli {
namespace limits_test {

TEST(LoopbackSources, OneAddressIsEnoughUpToAQuarterOfThePorts) {
  EXPECT_TRUE(loopback_sources(1000, 28232).empty());
  EXPECT_TRUE(loopback_sources(7058, 28232).empty());
  EXPECT_EQ(loopback_sources(7059, 28232).size(), 2u);
}

TEST(LoopbackSources, SpreadsPastThePortRange) {
  auto sources = loopback_sources(100000, 28232);  // 7,058 used per address
  ASSERT_EQ(sources.size(), 15u);
  EXPECT_EQ(sources.front(), "127.0.0.1");
  EXPECT_EQ(sources.back(), "127.0.0.15");
  EXPECT_EQ(loopback_sources(1000000, 28232).size(), 142u);
}

TEST(SourceFlags, ListsAndRanges) {
  std::vector<std::string> out;
  std::string error;
  ASSERT_TRUE(parse_source_flags({"127.0.0.2-127.0.0.4,127.0.0.9", "127.0.0.10"}, &out, &error))
      << error;
  EXPECT_EQ(out, (std::vector<std::string>{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.9",
                                           "127.0.0.10"}));
}

TEST(SourceFlags, RejectsDuplicatesBadRangesAndNames) {
  std::vector<std::string> out;
  std::string error;
  EXPECT_FALSE(parse_source_flags({"127.0.0.2,127.0.0.2"}, &out, &error));
  EXPECT_NE(error.find("twice"), std::string::npos) << error;
  EXPECT_FALSE(parse_source_flags({"127.0.0.9-127.0.0.2"}, &out, &error));
  EXPECT_NE(error.find("FIRST-LAST"), std::string::npos) << error;
  EXPECT_FALSE(parse_source_flags({"localhost"}, &out, &error));
  EXPECT_NE(error.find("numeric"), std::string::npos) << error;
}

TEST(SourceFlags, AnAddressThisHostDoesNotHaveIsAClearError) {
  std::vector<std::string> out;
  std::string error;
  // TEST-NET-3 (RFC 5737): never configured on a test machine.
  EXPECT_FALSE(parse_source_flags({"203.0.113.7"}, &out, &error));
  EXPECT_NE(error.find("cannot bind"), std::string::npos) << error;
  EXPECT_NE(error.find("203.0.113.7"), std::string::npos) << error;
}

TEST(CapacityWarnings, NameThePortLimitAndHowToRaiseIt) {
  std::string range;
  uint32_t ports = local_port_count(&range);
  auto warnings = capacity_warnings(uint64_t{ports} * 2, 1, false);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("ip_local_port_range"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("--source-address"), std::string::npos) << warnings[0];
  for (const auto& w : capacity_warnings(uint64_t{ports} * 2, 3, false)) {
    EXPECT_EQ(w.find("ip_local_port_range"), std::string::npos) << w;
  }
  EXPECT_TRUE(capacity_warnings(100, 1, true).empty());
}

TEST(CapacityWarnings, NameMemoryWhenTheRunCannotFit) {
  auto warnings = capacity_warnings(uint64_t{1} << 40, 1u << 20, true);
  bool memory = false;
  for (const auto& w : warnings)
    memory = memory || w.find("MiB available") != std::string::npos;
  EXPECT_TRUE(memory);
}

TEST(PeakConnections, AddsScenariosThatOverlapOnly) {
  auto plan = scenario::parse_scenario(R"(
target: http://127.0.0.1:8080
flows:
  f:
    steps:
      - get: /
scenarios:
  warmup: {executor: ramping-vus, start_vus: 0, stages: [{duration: 10s, target: 50}]}
  steady: {executor: constant-vus, vus: 30, duration: 10s, start: after warmup}
  side:   {executor: constant-arrival-rate, rate: 10, duration: 30s, pre_allocated_vus: 5, max_vus: 20}
)",
                                       "peak.yaml", ".");
  // warmup (50) and side (20) overlap at the start; steady (30) + side (20) later.
  EXPECT_EQ(peak_connections(*plan), 70u);
}

TEST(WorkerCount, TheOpenFileLimitSharesConnectionsOutOverProcesses) {
  EXPECT_EQ(workers_for_descriptors(1, 20'000), 1u);
  EXPECT_EQ(workers_for_descriptors(19'968, 20'000), 1u);
  EXPECT_EQ(workers_for_descriptors(19'969, 20'000), 2u);
  EXPECT_EQ(workers_for_descriptors(1'000'000, 20'000), 51u);
  // Below twice the reserve, half the limit is for connections.
  EXPECT_EQ(workers_for_descriptors(600, 64), 19u);
  EXPECT_EQ(workers_for_descriptors(1, 1), 1u);
}

TEST(WorkerCount, MoreProcessesThanCoresIsSaidBeforeTheRun) {
  EXPECT_FALSE(worker_count_warning(30'000, 20'000, 2));
  auto warning = worker_count_warning(1'000'000, 20'000, 2);
  ASSERT_TRUE(warning);
  EXPECT_NE(warning->find("51 worker processes on 2 cores"), std::string::npos) << *warning;
  EXPECT_NE(warning->find("ulimit -Hn"), std::string::npos) << *warning;
  EXPECT_NE(warning->find("ends on time"), std::string::npos) << *warning;
}

}  // namespace limits_test
}  // namespace millstone::cli
