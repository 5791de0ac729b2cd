#include "cli/duration.h"

#include <gtest/gtest.h>

namespace millstone::cli {
namespace {

TEST(Duration, UnitsAndFractions) {
  std::string error;
  EXPECT_EQ(parse_duration_us("250us", &error), 250);
  EXPECT_EQ(parse_duration_us("20ms", &error), 20'000);
  EXPECT_EQ(parse_duration_us("1.5s", &error), 1'500'000);
  EXPECT_EQ(parse_duration_us("2m", &error), 120'000'000);
  EXPECT_EQ(parse_duration_us("1h", &error), 3'600'000'000);
}

TEST(Duration, RejectsWithAReason) {
  std::string error;
  EXPECT_FALSE(parse_duration_us("10", &error));
  EXPECT_NE(error.find("no unit"), std::string::npos) << error;
  EXPECT_FALSE(parse_duration_us("10 s", &error));
  EXPECT_FALSE(parse_duration_us("10days", &error));
  EXPECT_NE(error.find("unknown unit"), std::string::npos) << error;
  EXPECT_FALSE(parse_duration_us("", &error));
  EXPECT_FALSE(parse_duration_us("s", &error));
  EXPECT_FALSE(parse_duration_us("1.2.3s", &error));
  EXPECT_FALSE(parse_duration_us("99999999999h", &error));
}

TEST(Duration, Formats) {
  EXPECT_EQ(format_duration_us(250), "250us");
  EXPECT_EQ(format_duration_us(20'000), "20ms");
  EXPECT_EQ(format_duration_us(1'500'000), "1.5s");
}

}  // namespace
}  // namespace millstone::cli
