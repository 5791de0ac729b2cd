#include "mock/response.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace millstone::mock {
namespace response_test {

Route route_with_errors(const std::vector<double>& rates) {
  Route route;
  for (double rate : rates) {
    ErrorRule rule;
    rule.rate = rate;
    route.errors.push_back(rule);
  }
  return route;
}

TEST(PickErrorTest, RatesAreRespected) {
  const Route route = route_with_errors({0.01, 0.001, 0.05, 0.0});
  Prng prng(3);
  std::vector<int> counts(route.errors.size() + 1);
  constexpr int kDraws = 1'000'000;
  for (int i = 0; i < kDraws; ++i) {
    const ErrorRule* rule = pick_error(route, prng);
    ++counts[rule == nullptr ? route.errors.size() : static_cast<size_t>(rule - &route.errors[0])];
  }
  // Five binomial standard deviations: sqrt(p(1-p)/n).
  auto near = [&](int count, double p) {
    EXPECT_NEAR(static_cast<double>(count) / kDraws, p, 5 * std::sqrt(p * (1 - p) / kDraws))
        << "expected rate " << p;
  };
  near(counts[0], 0.01);
  near(counts[1], 0.001);
  near(counts[2], 0.05);
  EXPECT_EQ(counts[3], 0);
  near(counts[4], 1 - 0.061);
}

TEST(PickErrorTest, RateOneAlwaysFires) {
  const Route route = route_with_errors({1.0});
  Prng prng(5);
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_EQ(pick_error(route, prng), &route.errors[0]);
  }
}

TEST(PickErrorTest, NoRulesDrawsNothing) {
  const Route route;
  Prng prng(5);
  Prng untouched(5);
  EXPECT_EQ(pick_error(route, prng), nullptr);
  EXPECT_EQ(prng(), untouched());
}

TEST(PickErrorTest, SameSeedSameChoices) {
  const Route route = route_with_errors({0.2, 0.3});
  Prng a = Prng::for_worker(42, 3);
  Prng b = Prng::for_worker(42, 3);
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_EQ(pick_error(route, a), pick_error(route, b));
  }
}

}  // namespace response_test
}  // namespace millstone::mock
