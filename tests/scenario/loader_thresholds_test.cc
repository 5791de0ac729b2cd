// Threshold texts parsed into Thresholds, and short names resolved by suffix.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scenario/threshold_parse.h"

namespace millstone::scenario {
namespace loader_thresholds_test {

using ::testing::ElementsAre;
using M = Threshold::Metric;
using O = Threshold::Op;
using S = Threshold::Statistic;

Threshold parsed(std::string_view text) {
  std::string error;
  size_t offset = 0;
  std::optional<Threshold> t = parse_threshold(text, &error, &offset);
  EXPECT_TRUE(t.has_value()) << text << ": " << error;
  return t.value_or(Threshold{});
}

TEST(LoaderThresholdTest, Parses) {
  Threshold t = parsed("  latency.p99.9{step = shopper/login } <= 1.5s ");
  EXPECT_EQ(t.text, "latency.p99.9{step = shopper/login } <= 1.5s");
  EXPECT_EQ(t.metric, M::kLatency);
  EXPECT_EQ(t.statistic, S::kPercentile);
  EXPECT_EQ(t.percentile, 99.9);
  EXPECT_EQ(t.step, "shopper/login");
  EXPECT_EQ(t.op, O::kLe);
  EXPECT_EQ(t.value, 1.5e6);

  t = parsed("latency.max<250us");
  EXPECT_EQ(t.statistic, S::kMax);
  EXPECT_EQ(t.op, O::kLt);
  EXPECT_EQ(t.value, 250);
  t = parsed("latency.min >= 0ms");
  EXPECT_EQ(t.statistic, S::kMin);
  EXPECT_EQ(t.op, O::kGe);
  t = parsed("latency.p100 == 2ms");
  EXPECT_EQ(t.percentile, 100);
  EXPECT_EQ(t.op, O::kEq);
  EXPECT_EQ(t.value, 2000);

  t = parsed("checks > 99.9%");
  EXPECT_EQ(t.metric, M::kCheckPassRate);
  EXPECT_DOUBLE_EQ(t.value, 0.999);
  t = parsed("checks{check=login: status in [200]} >= 0.5");
  EXPECT_EQ(t.check, "login: status in [200]");
  EXPECT_EQ(t.value, 0.5);
  t = parsed("error_rate{step=GET /items/{{ id }}} < 1%");
  EXPECT_EQ(t.metric, M::kErrorRate);
  EXPECT_EQ(t.step, "GET /items/{{ id }}");
  EXPECT_DOUBLE_EQ(t.value, 0.01);
  t = parsed("iterations{flow=shopper} > 10");
  EXPECT_EQ(t.metric, M::kIterations);
  EXPECT_EQ(t.flow, "shopper");
  EXPECT_EQ(t.value, 10);
  t = parsed("rps > 50/s");
  EXPECT_EQ(t.metric, M::kRps);
  EXPECT_EQ(t.value, 50);
  t = parsed("rps{step=login} >= 0.5");
  EXPECT_EQ(t.value, 0.5);
  t = parsed("requests > 100");
  EXPECT_EQ(t.metric, M::kRequests);
  t = parsed("dropped_iterations < 1");
  EXPECT_EQ(t.metric, M::kDroppedIterations);
}

struct BadThreshold {
  std::string_view text;
  size_t offset;
  std::string_view error;
};

TEST(LoaderThresholdTest, ErrorsPointAtTheProblem) {
  const BadThreshold cases[] = {
      {"", 0, "the threshold is empty; expected e.g. \"latency.p99 < 200ms\""},
      {"p99 < 1s", 0,
       "unknown metric \"p99\"; expected latency.pNN (p50, p95, p99.9...), latency.min, "
       "latency.max, latency.mean, checks, error_rate, requests, rps, iterations, "
       "dropped_iterations or target.SERIES"},
      {"latency.p0 < 1s", 8,
       "percentile \"p0\" is out of range; expected p followed by a number above 0 and at most "
       "100, such as p99 or p99.9"},
      {"latency.median < 1s", 8,
       "unknown latency statistic \"median\" (did you mean \"p50\"?); expected p50, p90, p95, "
       "p99, p99.9 (any pNN), min, max or mean"},
      {"latency.p99 < 1 s", 14, ""},  // a space before the unit is fine
      {"latency.p99 < -1ms", 14,
       "\"-1ms\" is not a duration; expected a number and a unit, such as 200ms, 1.5s or 500us"},
      {"checks > 99", 9,
       "\"99\" is not a rate; expected a percentage such as 99.9% or a fraction from 0 to 1 such "
       "as 0.999"},
      {"checks{step=login} > 99%", 7,
       "checks cannot be filtered by \"step\"; expected one of: check"},
      {"dropped_iterations{flow=a} < 1", 19,
       "dropped_iterations cannot be filtered by \"flow\"; expected no tag filter"},
      {"latency.p99{step=} < 1s", 17, "tag step has no value; expected a name, e.g. {step=...}"},
      {"latency.p99 != 1s", 12,
       "\"!\" where a comparison belongs; expected <, <=, >, >= or ==, "
       "e.g. latency.p99 < 200ms"},
      {"requests > 5 requests", 11,
       "\"5 requests\" is not a count; expected a whole number, e.g. requests > 100"},
  };
  for (const BadThreshold& c : cases) {
    std::string error;
    size_t offset = 99;
    const std::optional<Threshold> t = parse_threshold(c.text, &error, &offset);
    if (c.error.empty()) {
      EXPECT_TRUE(t.has_value()) << c.text << ": " << error;
      continue;
    }
    EXPECT_FALSE(t.has_value()) << c.text;
    EXPECT_EQ(error, c.error) << c.text;
    EXPECT_EQ(offset, c.offset) << c.text;
  }
}

TEST(LoaderThresholdTest, ResolvesSuffixesByWholeComponents) {
  const std::vector<std::vector<std::string>> names = {
      {"shopper", "login"},
      {"shopper", "checkout", "pay"},
      {"admin", "checkout", "pay"},
      {"browser", "GET /login"},
      {"login", "x"},
  };
  EXPECT_THAT(resolve_suffix("login", names), ElementsAre(0u));
  EXPECT_THAT(resolve_suffix("shopper/login", names), ElementsAre(0u));
  EXPECT_THAT(resolve_suffix("pay", names), ElementsAre(1u, 2u));  // ambiguous
  EXPECT_THAT(resolve_suffix("checkout/pay", names), ElementsAre(1u, 2u));
  EXPECT_THAT(resolve_suffix("admin/checkout/pay", names), ElementsAre(2u));
  EXPECT_THAT(resolve_suffix("GET /login", names), ElementsAre(3u));
  EXPECT_THAT(resolve_suffix("ogin", names), ElementsAre());  // not a whole component
  EXPECT_THAT(resolve_suffix("shopper", names), ElementsAre());
  // A full name wins over a suffix of another name.
  const std::vector<std::vector<std::string>> overlapping = {{"a", "b"}, {"x", "a", "b"}};
  EXPECT_THAT(resolve_suffix("a/b", overlapping), ElementsAre(0u));
}

}  // namespace loader_thresholds_test
}  // namespace millstone::scenario
