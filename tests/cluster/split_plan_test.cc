#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "cluster/agent.h"
#include "cluster/coordinator.h"
#include "engine/load_generator.h"

namespace millstone::cluster {
namespace split_plan_test {

TEST(SplitPlan, SharesConnectionsAndRateExactly) {
  engine::RunPlan plan;
  plan.connections = 10;
  plan.rate = 900;
  auto plans = split_plan(plan, 4);
  ASSERT_EQ(plans.size(), 4u);
  uint32_t connections = 0;
  double rate = 0;
  for (uint32_t i = 0; i < plans.size(); ++i) {
    EXPECT_EQ(plans[i].worker_index, i);
    EXPECT_EQ(plans[i].worker_count, 4u);
    connections += plans[i].connections;
    rate += plans[i].rate;
  }
  EXPECT_EQ(connections, 10u);
  EXPECT_DOUBLE_EQ(rate, 900.0);
  EXPECT_EQ(plans[0].connections, 3u);
  EXPECT_EQ(plans[3].connections, 2u);
}

TEST(SplitPlan, NoWorkerWithoutAConnection) {
  engine::RunPlan plan;
  plan.connections = 2;
  auto plans = split_plan(plan, 8);
  EXPECT_EQ(plans.size(), 2u);
  for (auto& p : plans)
    EXPECT_EQ(p.connections, 1u);
}

// Agents of 3, 5 and 2 workers: what each splits from its Start is exactly
// what one machine with 10 workers would have run.
TEST(SplitOverAgents, SharesSumExactlyAcrossTheFleet) {
  engine::RunPlan plan;
  plan.connections = 37;
  plan.rate = 1000;
  std::vector<AgentShare> agents = split_over_agents(plan, {3, 5, 2});
  ASSERT_EQ(agents.size(), 3u);
  std::vector<engine::RunPlan> fleet;
  for (const AgentShare& a : agents) {
    EXPECT_EQ(a.plan.worker_count, 10u);
    EXPECT_EQ(a.plan.connections, 37u);  // totals: the agent splits them
    for (engine::RunPlan& p :
         split_plan(a.plan, a.plan.worker_index, a.local_workers, a.plan.worker_count)) {
      fleet.push_back(std::move(p));
    }
  }
  EXPECT_EQ(agents[1].plan.worker_index, 3u);
  EXPECT_EQ(agents[2].plan.worker_index, 8u);
  std::vector<engine::RunPlan> one_machine = split_plan(plan, 10);
  ASSERT_EQ(fleet.size(), one_machine.size());
  uint32_t connections = 0;
  double rate = 0;
  for (size_t i = 0; i < fleet.size(); ++i) {
    EXPECT_EQ(fleet[i].worker_index, i);
    EXPECT_EQ(fleet[i].connections, one_machine[i].connections);
    EXPECT_EQ(fleet[i].rate, one_machine[i].rate);
    connections += fleet[i].connections;
    rate += fleet[i].rate;
  }
  EXPECT_EQ(connections, 37u);
  EXPECT_DOUBLE_EQ(rate, 1000.0);
}

// A URL run never has a worker without a connection: the biggest agents give
// workers up first, and an agent with nothing left gets no share.
TEST(SplitOverAgents, NoMoreSharesThanConnections) {
  engine::RunPlan plan;
  plan.connections = 4;
  std::vector<AgentShare> agents = split_over_agents(plan, {4, 2, 1});
  uint32_t shares = 0;
  for (const AgentShare& a : agents) {
    EXPECT_EQ(a.plan.worker_count, 4u);
    shares += a.local_workers;
    for (const engine::RunPlan& p :
         split_plan(a.plan, a.plan.worker_index, a.local_workers, a.plan.worker_count)) {
      EXPECT_EQ(p.connections, 1u);
    }
  }
  EXPECT_EQ(shares, 4u);
  // A scenario shares VUs per executor, not connections: every worker runs.
  plan.scenario_source = "name: x";
  agents = split_over_agents(plan, {4, 2, 1});
  EXPECT_EQ(agents[2].plan.worker_count, 7u);
  EXPECT_EQ(agents[2].plan.worker_index, 6u);
}

// The open model: every worker's schedule merged is one evenly spaced
// schedule at the whole rate, not `workers` requests at each tick.
TEST(SplitOverAgents, MergedArrivalsAreEvenlySpaced) {
  engine::RunPlan plan;
  plan.connections = 40;
  plan.rate = 1000;
  const int64_t start = 1'000'000'000;
  const int64_t end = start + net::kNsPerSec;
  std::vector<int64_t> merged;
  for (const AgentShare& a : split_over_agents(plan, {3, 4})) {
    for (const engine::RunPlan& p :
         split_plan(a.plan, a.plan.worker_index, a.local_workers, a.plan.worker_count)) {
      for (uint64_t k = 0;; ++k) {
        const int64_t due =
            engine::LoadGenerator::due_time(start, p.rate, p.worker_index, p.worker_count, k);
        if (due >= end) break;
        merged.push_back(due);
      }
    }
  }
  std::sort(merged.begin(), merged.end());
  ASSERT_EQ(merged.size(), 1000u);  // exactly the rate, over 7 workers
  EXPECT_EQ(merged.front(), start);
  for (size_t j = 1; j < merged.size(); ++j)
    EXPECT_NEAR(merged[j] - merged[j - 1], net::kNsPerMs, 1) << j;
}

}  // namespace split_plan_test
}  // namespace millstone::cluster
