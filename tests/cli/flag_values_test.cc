#include "cli/flag_values.h"

#include <gtest/gtest.h>

namespace millstone::cli {
namespace flag_values_test {

TEST(FlagValues, WholeNumbersInRange) {
  std::string error;
  EXPECT_EQ(parse_whole_flag("--connections", "50", 1, 100, &error), 50u);
  EXPECT_FALSE(parse_whole_flag("--connections", "-1", 1, 100, &error));
  EXPECT_EQ(error, "--connections \"-1\" is not a whole number; expected 1 to 100");
  EXPECT_FALSE(parse_whole_flag("--connections", "0", 1, 100, &error));
  EXPECT_EQ(error, "--connections \"0\" is out of range; expected 1 to 100");
  EXPECT_FALSE(parse_whole_flag("--connections", "2.5", 1, 100, &error));
  EXPECT_FALSE(parse_whole_flag("--connections", "", 1, 100, &error));
  EXPECT_FALSE(parse_whole_flag("--seed", "18446744073709551616", 0, UINT64_MAX, &error));
  EXPECT_NE(error.find("out of range"), std::string::npos) << error;
  EXPECT_EQ(parse_whole_flag("--seed", "18446744073709551615", 0, UINT64_MAX, &error), UINT64_MAX);
}

TEST(FlagValues, DurationsUseTheFileGrammarAndArePositive) {
  std::string error;
  EXPECT_EQ(parse_duration_flag("--duration", "1m30s", &error), 90'000'000);
  EXPECT_FALSE(parse_duration_flag("--duration", "0s", &error));
  EXPECT_NE(error.find("--duration \"0s\" is zero"), std::string::npos) << error;
  EXPECT_FALSE(parse_duration_flag("--timeout", "10", &error));
  EXPECT_EQ(error,
            "--timeout \"10\" has no unit; expected a number and a unit, such as 20ms, 1.5s, "
            "250us or 2m");
}

TEST(FlagValues, RatesAreFiniteAndAboveZero) {
  std::string error;
  EXPECT_EQ(parse_rate_flag("--rate", "100/s", &error), 100);
  EXPECT_EQ(parse_rate_flag("--rate", "6000/m", &error), 100);
  for (const char* bad : {"nan", "inf", "-5", "1e9999"}) {
    EXPECT_FALSE(parse_rate_flag("--rate", bad, &error)) << bad;
    EXPECT_NE(error.find("is not a rate"), std::string::npos) << error;
  }
  EXPECT_FALSE(parse_rate_flag("--rate", "0", &error));
  EXPECT_NE(error.find("--rate \"0\" is zero"), std::string::npos) << error;
}

TEST(FlagValues, PercentilesAreSortedAndInRange) {
  std::string error;
  auto list = parse_percentiles_flag("--percentiles", "99.9,50,p95,95", &error);
  ASSERT_TRUE(list) << error;
  EXPECT_EQ(*list, (std::vector<double>{50, 95, 99.9}));
  EXPECT_EQ(parse_percentiles_flag("--percentiles", "100", &error), std::vector<double>{100});
  for (const char* bad : {"0", "100.1", "-1", "50,,90", "nan", "", "50;90", "99.99999"}) {
    EXPECT_FALSE(parse_percentiles_flag("--percentiles", bad, &error)) << bad;
    EXPECT_NE(error.find("is not a percentile"), std::string::npos) << error;
  }
}

TEST(FlagValues, TlsVersions) {
  std::string error;
  EXPECT_EQ(parse_tls_version_flag("--tls-min", "1.2", &error), tls::TlsVersion::k1_2);
  EXPECT_EQ(parse_tls_version_flag("--tls-max", "1.3", &error), tls::TlsVersion::k1_3);
  for (const char* bad : {"1.1", "1.0", "", "1.3 ", "TLSv1.3", "13"}) {
    EXPECT_FALSE(parse_tls_version_flag("--tls-min", bad, &error)) << bad;
    EXPECT_NE(error.find("--tls-min"), std::string::npos) << error;
    EXPECT_NE(error.find("expected 1.2 or 1.3"), std::string::npos) << error;
  }
}

TEST(FlagValues, AlpnListsKeepTheirOrder) {
  std::string error;
  EXPECT_EQ(parse_alpn_flag("--alpn", "h2,http/1.1", &error),
            (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(parse_alpn_flag("--alpn", "http/1.1", &error), std::vector<std::string>{"http/1.1"});
  for (const std::string& bad :
       std::vector<std::string>{"", ",", "h2,", ",h2", "h2,,x", "h 2", std::string(256, 'a')}) {
    EXPECT_FALSE(parse_alpn_flag("--alpn", bad, &error)) << bad;
    EXPECT_NE(error.find("--alpn"), std::string::npos) << error;
    EXPECT_NE(error.find("expected protocol names separated by commas"), std::string::npos)
        << error;
  }
}

}  // namespace flag_values_test
}  // namespace millstone::cli
