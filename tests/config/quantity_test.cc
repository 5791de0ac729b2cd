#include "config/quantity.h"

#include <gtest/gtest.h>

namespace millstone::config {
namespace quantity_test {

TEST(Duration, UnitsAndFractions) {
  std::string problem;
  EXPECT_EQ(parse_duration_us("250us", &problem), 250);
  EXPECT_EQ(parse_duration_us("250\xc2\xb5s", &problem), 250);
  EXPECT_EQ(parse_duration_us("20ms", &problem), 20'000);
  EXPECT_EQ(parse_duration_us("1.5s", &problem), 1'500'000);
  EXPECT_EQ(parse_duration_us("2m", &problem), 120'000'000);
  EXPECT_EQ(parse_duration_us("1h", &problem), 3'600'000'000);
  EXPECT_EQ(parse_duration_us("10 s", &problem), 10'000'000);
  EXPECT_EQ(parse_duration_us("0s", &problem), 0);
}

// k6 and Go write "1m30s"; files and flags accept it alike.
TEST(Duration, CompoundParts) {
  std::string problem;
  EXPECT_EQ(parse_duration_us("1m30s", &problem), 90'000'000);
  EXPECT_EQ(parse_duration_us("1h2m3.5s", &problem), 3'723'500'000);
  EXPECT_EQ(parse_duration_us("1s500ms", &problem), 1'500'000);
}

TEST(Duration, RejectsWithAReason) {
  std::string problem;
  EXPECT_FALSE(parse_duration_us("10", &problem));
  EXPECT_EQ(problem, "has no unit; expected a number and a unit, such as 20ms, 1.5s, 250us or 2m");
  EXPECT_FALSE(parse_duration_us("1m30", &problem));
  EXPECT_NE(problem.find("no unit"), std::string::npos) << problem;
  EXPECT_FALSE(parse_duration_us("10days", &problem));
  EXPECT_EQ(problem, "has unknown unit \"days\"; expected one of us, ms, s, m, h");
  EXPECT_FALSE(parse_duration_us("-1s", &problem));
  EXPECT_EQ(problem, "is negative; expected a duration of 0 or more");
  EXPECT_FALSE(parse_duration_us("", &problem));
  EXPECT_FALSE(parse_duration_us("s", &problem));
  EXPECT_FALSE(parse_duration_us("1.2.3s", &problem));
  EXPECT_FALSE(parse_duration_us("nan", &problem));
  EXPECT_FALSE(parse_duration_us("infs", &problem));
  EXPECT_FALSE(parse_duration_us("1e3ms", &problem));
  EXPECT_FALSE(parse_duration_us("99999999999h", &problem));
  EXPECT_EQ(problem, "is longer than 168h; expected at most 168h");
  EXPECT_FALSE(parse_duration_us("25h", &problem, int64_t{24} * 3600'000'000));
  EXPECT_EQ(problem, "is longer than 24h; expected at most 24h");
}

TEST(Rate, PerSecondMinuteHour) {
  std::string problem;
  EXPECT_EQ(parse_rate_per_s("100", "requests", 0, 1e7, &problem), 100);
  EXPECT_EQ(parse_rate_per_s("100/s", "requests", 0, 1e7, &problem), 100);
  EXPECT_EQ(parse_rate_per_s("6000/m", "requests", 0, 1e7, &problem), 100);
  EXPECT_EQ(parse_rate_per_s("3600/h", "requests", 0, 1e7, &problem), 1);
  EXPECT_EQ(parse_rate_per_s("0.5", "requests", 0, 1e7, &problem), 0.5);
}

TEST(Rate, RejectsWithAReason) {
  std::string problem;
  for (const char* bad : {"nan", "inf", "-1", "1e3", "10/d", "", "/s", "x"}) {
    EXPECT_FALSE(parse_rate_per_s(bad, "requests", 0, 1e7, &problem)) << bad;
    EXPECT_EQ(problem,
              "is not a rate; expected requests per second from 0 to 10000000, such as 100, "
              "100/s or 6000/m")
        << bad;
  }
  EXPECT_FALSE(parse_rate_per_s("20000000", "requests", 0, 1e7, &problem));
  EXPECT_NE(problem.find("out of range"), std::string::npos) << problem;
}

}  // namespace quantity_test
}  // namespace millstone::config
