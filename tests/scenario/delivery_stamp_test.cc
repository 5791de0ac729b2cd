#include "scenario/delivery_stamp.h"

#include <gtest/gtest.h>

#include "metrics/histogram.h"

namespace millstone::scenario {
namespace delivery_stamp_test {

using Type = JsonEvaluator::Value::Type;

JsonEvaluator::Value number(double n) {
  JsonEvaluator::Value v;
  v.type = Type::kNumber;
  v.number = n;
  return v;
}

JsonEvaluator::Value text(const std::string& s) {
  JsonEvaluator::Value v;
  v.type = Type::kString;
  v.text = s;
  return v;
}

constexpr int64_t kNowUs = 1'764'000'000'000'000;  // late 2025, Unix microseconds

TEST(DeliveryStamp, MicrosecondsAndMillisecondsGiveTheLatency) {
  EXPECT_EQ(delivery_latency_us(number(kNowUs - 2500), kNowUs), 2500u);
  EXPECT_EQ(delivery_latency_us(number((kNowUs - 3000) / 1000.0), kNowUs), 3000u);
  EXPECT_EQ(delivery_latency_us(text(std::to_string(kNowUs - 40)), kNowUs), 40u);
  EXPECT_EQ(delivery_latency_us(number(kNowUs), kNowUs), 0u);  // same microsecond
}

TEST(DeliveryStamp, AStampInTheFutureIsInvalidNotZero) {
  EXPECT_EQ(delivery_latency_us(number(kNowUs + 1), kNowUs), std::nullopt);
  EXPECT_EQ(delivery_latency_us(number(kNowUs / 1000.0 + 60'000), kNowUs), std::nullopt);
}

TEST(DeliveryStamp, AStampOlderThanTheHistogramHoldsIsInvalidNotClamped) {
  const double oldest = static_cast<double>(kNowUs - int64_t(metrics::Histogram::kMaxValue));
  EXPECT_EQ(delivery_latency_us(number(oldest), kNowUs), metrics::Histogram::kMaxValue);
  EXPECT_EQ(delivery_latency_us(number(oldest - 1), kNowUs), std::nullopt);
  EXPECT_EQ(delivery_latency_us(number(1), kNowUs), std::nullopt);  // 1 ms after 1970
}

TEST(DeliveryStamp, WhatIsNoTimeIsInvalid) {
  EXPECT_EQ(delivery_latency_us(number(0), kNowUs), std::nullopt);
  EXPECT_EQ(delivery_latency_us(number(-5), kNowUs), std::nullopt);
  EXPECT_EQ(delivery_latency_us(number(1e300), kNowUs), std::nullopt);
  EXPECT_EQ(delivery_latency_us(text(""), kNowUs), std::nullopt);
  EXPECT_EQ(delivery_latency_us(text("12abc"), kNowUs), std::nullopt);
  EXPECT_EQ(delivery_latency_us(text("soon"), kNowUs), std::nullopt);
  JsonEvaluator::Value flag;
  flag.type = Type::kBool;
  flag.text = "true";
  EXPECT_EQ(delivery_latency_us(flag, kNowUs), std::nullopt);
}

}  // namespace delivery_stamp_test
}  // namespace millstone::scenario
