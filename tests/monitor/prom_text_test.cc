#include "monitor/prom_text.h"

#include <cmath>

#include <gtest/gtest.h>

namespace millstone::monitor {
namespace prom_text_test {

Exposition parse_ok(std::string_view text) {
  Exposition e;
  ParseError error;
  EXPECT_TRUE(parse_text(text, &e, &error)) << "line " << error.line << ": " << error.message;
  return e;
}

ParseError parse_bad(std::string_view text, const ParseLimits& limits = {}) {
  Exposition e;
  ParseError error;
  EXPECT_FALSE(parse_text(text, &e, &error)) << text;
  return error;
}

TEST(PromText, CommentsHelpAndTypeNameTheFamilies) {
  const Exposition e = parse_ok(
      "# a free comment\n"
      "#another one without a blank\n"
      "# HELP http_requests_total Requests served, by code.\\nSecond line \\\\ done\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{code=\"200\"} 1027\n"
      "\n"
      "   \t\n"
      "http_requests_total{code=\"500\"} 3 1395066363000\n");
  ASSERT_EQ(e.families.size(), 1u);
  EXPECT_EQ(e.families[0].name, "http_requests_total");
  EXPECT_EQ(e.families[0].type, MetricType::kCounter);
  EXPECT_EQ(e.families[0].help, "Requests served, by code.\nSecond line \\ done");
  ASSERT_EQ(e.samples.size(), 2u);
  EXPECT_EQ(e.samples[0].type, MetricType::kCounter);
  EXPECT_EQ(e.samples[0].label("code"), "200");
  EXPECT_EQ(e.samples[0].value, 1027);
  EXPECT_FALSE(e.samples[0].timestamp_ms);
  EXPECT_EQ(e.samples[1].timestamp_ms, 1395066363000);
}

TEST(PromText, LabelValuesUnescapeAndKeyEscapesAgain) {
  const Exposition e = parse_ok(
      "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
      "file:\\n\\\"FILE.TXT\\\"\",} 1.458255915e9\n");
  ASSERT_EQ(e.samples.size(), 1u);
  const Sample& s = e.samples[0];
  EXPECT_EQ(s.label("path"), "C:\\DIR\\FILE.TXT");
  EXPECT_EQ(s.label("error"), "Cannot find file:\n\"FILE.TXT\"");
  EXPECT_EQ(s.value, 1.458255915e9);
  EXPECT_EQ(s.type, MetricType::kUntyped);
  EXPECT_EQ(series_key(s),
            "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
            "file:\\n\\\"FILE.TXT\\\"\"}");
  EXPECT_EQ(parse_ok("up 1\n").samples[0].label("x"), "");
  EXPECT_EQ(series_key(parse_ok("up 1\n").samples[0]), "up");
}

TEST(PromText, SpecialValuesAndTimestamps) {
  const Exposition e =
      parse_ok("a NaN\nb +Inf\nc -Inf\nd -0.5e-3 -1\ne 12 +5\nf inf\ng 1E3\nh .5\n");
  ASSERT_EQ(e.samples.size(), 8u);
  EXPECT_TRUE(std::isnan(e.samples[0].value));
  EXPECT_EQ(e.samples[1].value, HUGE_VAL);
  EXPECT_EQ(e.samples[2].value, -HUGE_VAL);
  EXPECT_EQ(e.samples[3].value, -0.5e-3);
  EXPECT_EQ(e.samples[3].timestamp_ms, -1);
  EXPECT_EQ(e.samples[4].timestamp_ms, 5);
  EXPECT_EQ(e.samples[5].value, HUGE_VAL);
  EXPECT_EQ(e.samples[6].value, 1000);
  EXPECT_EQ(e.samples[7].value, 0.5);
}

TEST(PromText, HistogramsAndSummariesTypeTheirParts) {
  const Exposition e = parse_ok(
      "# TYPE rpc_duration_seconds summary\n"
      "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
      "rpc_duration_seconds_sum 1.7560473e+07\n"
      "rpc_duration_seconds_count 2693\n"
      "# TYPE http_request_duration_seconds histogram\n"
      "http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n"
      "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
      "http_request_duration_seconds_sum 53423\n"
      "http_request_duration_seconds_count 144320\n");
  ASSERT_EQ(e.samples.size(), 7u);
  EXPECT_EQ(e.samples[0].type, MetricType::kGauge);
  EXPECT_EQ(e.samples[1].type, MetricType::kCounter);
  EXPECT_EQ(e.samples[2].type, MetricType::kCounter);
  for (size_t i = 3; i < 7; ++i)
    EXPECT_EQ(e.samples[i].type, MetricType::kCounter) << i;
  EXPECT_EQ(e.families.size(), 2u);
  EXPECT_EQ(e.families[1].type, MetricType::kHistogram);
}

TEST(PromText, RejectsWhatTheFormatDoesNotAllowNamingTheLine) {
  EXPECT_EQ(parse_bad("ok 1\n{x=\"1\"} 2\n").line, 2u);
  EXPECT_NE(parse_bad("m{a=\"1\"\n").message.find("',' or '}'"), std::string::npos);
  EXPECT_NE(parse_bad("m{a=\"1} 2\n").message.find("not closed"), std::string::npos);
  EXPECT_NE(parse_bad("m{a=\"\\t\"} 2\n").message.find("escape"), std::string::npos);
  EXPECT_NE(parse_bad("m{a=\"1\",a=\"2\"} 2\n").message.find("twice"), std::string::npos);
  EXPECT_NE(parse_bad("m{1a=\"1\"} 2\n").message.find("label name"), std::string::npos);
  EXPECT_NE(parse_bad("m{a:b=\"1\"} 2\n").message.find("'='"), std::string::npos);
  EXPECT_NE(parse_bad("m\n").message.find("no value"), std::string::npos);
  EXPECT_NE(parse_bad("m 1x\n").message.find("expected a number"), std::string::npos);
  EXPECT_NE(parse_bad("m 0x10\n").message.find("expected a number"), std::string::npos);
  EXPECT_NE(parse_bad("m -NaN\n").message.find("expected a number"), std::string::npos);
  EXPECT_NE(parse_bad("m 1 2.5\n").message.find("timestamp"), std::string::npos);
  EXPECT_NE(parse_bad("m 1 2 3\n").message.find("unexpected"), std::string::npos);
  EXPECT_NE(parse_bad("m 1\r\n").message.find("carriage return"), std::string::npos);
  EXPECT_NE(parse_bad("# TYPE m counter\n# TYPE m gauge\n").message.find("second TYPE"),
            std::string::npos);
  EXPECT_NE(parse_bad("m 1\n# TYPE m counter\n").message.find("after its samples"),
            std::string::npos);
  EXPECT_NE(parse_bad("# TYPE m countr\n").message.find("expected counter"), std::string::npos);
  EXPECT_NE(parse_bad("# HELP m a\n# HELP m b\n").message.find("second HELP"), std::string::npos);
  EXPECT_NE(parse_bad("# HELP m bad \\t escape\n").message.find("escape"), std::string::npos);
  EXPECT_NE(parse_bad("# TYPE h histogram\nh 1\n").message.find("_bucket"), std::string::npos);
  EXPECT_NE(parse_bad("# TYPE h histogram\nh_bucket 1\n").message.find("le label"),
            std::string::npos);
  EXPECT_NE(parse_bad("# TYPE s summary\ns 1\n").message.find("quantile"), std::string::npos);
  EXPECT_EQ(parse_bad("<html>\n<body>garbage</body>\n").line, 1u);
}

TEST(PromText, IsBoundedInSamplesLabelsLinesAndFamilies) {
  ParseLimits limits;
  limits.max_samples = 2;
  limits.max_labels = 2;
  limits.max_line = 32;
  limits.max_families = 2;
  Exposition e;
  ParseError error;
  EXPECT_FALSE(parse_text("a 1\nb 2\nc 3\n", &e, &error, limits));
  EXPECT_EQ(error.line, 3u);
  EXPECT_FALSE(parse_text("a{x=\"1\",y=\"2\",z=\"3\"} 1\n", &e, &error, limits));
  EXPECT_NE(error.message.find("more than 2 labels"), std::string::npos);
  EXPECT_FALSE(parse_text(std::string(40, 'a') + " 1\n", &e, &error, limits));
  EXPECT_NE(error.message.find("line of 42 bytes"), std::string::npos);
  EXPECT_FALSE(parse_text("# TYPE a gauge\n# TYPE b gauge\n# TYPE c gauge\n", &e, &error, limits));
  EXPECT_NE(error.message.find("families"), std::string::npos);
}

TEST(PromText, EmptyAndUnterminatedLastLineAreFine) {
  EXPECT_TRUE(parse_ok("").samples.empty());
  EXPECT_EQ(parse_ok("a 1\nb 2").samples.size(), 2u);
}

}  // namespace prom_text_test
}  // namespace millstone::monitor
