#include <gtest/gtest.h>

#include "cluster/coordinator.h"

namespace millstone::cluster {
namespace {

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

}  // namespace
}  // namespace millstone::cluster
