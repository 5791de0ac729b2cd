#include "results/timeseries.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "metrics/snapshot.h"

namespace millstone::results {
namespace timeseries_test {

std::vector<std::string> lines(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  size_t at = 0;
  for (size_t next; (next = text.find(sep, at)) != std::string::npos; at = next + sep.size())
    out.push_back(text.substr(at, next - at));
  EXPECT_EQ(at, text.size()) << "every line ends with the separator";
  return out;
}

RunRecord record_with_steps() {
  RunRecord r;
  r.summary = {
      {"model", "scenario"},
      {"steps", {{{"name", "buyer/items"}}, {{"name", "buyer/say \"hi\", twice"}}}},
      {"timeline",
       {{{"second", 0},
         {"requests", 10},
         {"rps", 10.0},
         {"errors", 2},
         {"error_causes", {{"timeout", 2}}},
         {"p50_ms", 1.5},
         {"p99_ms", 9.25},
         {"vus", 4},
         {"steps",
          {{"buyer/items", {{"requests", 6}, {"failed", 1}, {"p50_ms", 1.0}, {"p99_ms", 2.0}}}}}},
        {{"second", 1},
         {"requests", 3},
         {"rps", 3.0},
         {"errors", 0},
         {"error_causes", nlohmann::json::object()},
         {"steps",
          {{"buyer/say \"hi\", twice",
            {{"requests", 3}, {"failed", 0}, {"p50_ms", 0.5}, {"p99_ms", 0.75}}}}}}}}};
  return r;
}

TEST(Timeseries, FormatFromTheFileName) {
  SeriesFormat f;
  ASSERT_TRUE(series_format_for("out/run.csv", &f));
  EXPECT_EQ(f, SeriesFormat::kCsv);
  ASSERT_TRUE(series_format_for("RUN.CSV", &f));
  EXPECT_EQ(f, SeriesFormat::kCsv);
  ASSERT_TRUE(series_format_for("run.ndjson", &f));
  EXPECT_EQ(f, SeriesFormat::kNdjson);
  ASSERT_TRUE(series_format_for("run.jsonl", &f));
  EXPECT_EQ(f, SeriesFormat::kNdjson);
  EXPECT_FALSE(series_format_for("run.json", &f));
  EXPECT_FALSE(series_format_for("csv", &f));
}

TEST(Timeseries, CsvHasFixedColumnsThenErrorsThenStepsQuotedPerRfc4180) {
  std::string text = timeseries_text(record_with_steps(), SeriesFormat::kCsv);
  auto rows = lines(text, "\r\n");
  ASSERT_EQ(rows.size(), 3u) << text;
  EXPECT_EQ(
      rows[0].rfind("second,requests,rps,errors,p50_ms,p90_ms,p95_ms,p99_ms,max_ms,bytes_sent,"
                    "bytes_received,connections_opened,vus,dropped_iterations,checks_passed,"
                    "checks_failed,error:connect_refused,",
                    0),
      0u)
      << rows[0];
  EXPECT_NE(rows[0].find(",error:timeout,"), std::string::npos);
  EXPECT_NE(rows[0].find(",step:buyer/items:requests,step:buyer/items:failed,"
                         "step:buyer/items:p50_ms,step:buyer/items:p99_ms,"),
            std::string::npos)
      << rows[0];
  EXPECT_NE(rows[0].find(",\"step:buyer/say \"\"hi\"\", twice:p99_ms\""), std::string::npos)
      << rows[0];
  // second 0: fixed values, absent fields empty, the timeout count, step 1 idle.
  EXPECT_EQ(rows[1].rfind("0,10,10.0,2,1.5,,,9.25,,,,,4,,,,", 0), 0u) << rows[1];
  auto ends_with = [](const std::string& row, const std::string& tail) {
    return row.size() >= tail.size() &&
           row.compare(row.size() - tail.size(), tail.size(), tail) == 0;
  };
  // The error columns: every cause, in order; only timeout (the 6th) had some.
  std::string errors;
  for (size_t k = 0; k < metrics::kErrorCauseCount; ++k)
    errors += k == static_cast<size_t>(metrics::ErrorCause::kTimeout) ? ",2" : ",0";
  EXPECT_TRUE(ends_with(rows[1], errors + ",6,1,1.0,2.0,0,0,,")) << rows[1];
  EXPECT_TRUE(ends_with(rows[2], ",0,0,,,3,0,0.5,0.75")) << rows[2];
  for (const std::string& row : rows) {
    // Same number of fields everywhere (the quoted header field has one comma inside).
    size_t commas = std::count(row.begin(), row.end(), ',');
    EXPECT_EQ(commas, std::count(rows[0].begin(), rows[0].end(), ',') - (&row == &rows[0] ? 0 : 4))
        << row;
  }
}

TEST(Timeseries, NdjsonIsOneTimelineEntryPerLine) {
  RunRecord r = record_with_steps();
  std::string text = timeseries_text(r, SeriesFormat::kNdjson);
  auto rows = lines(text, "\n");
  ASSERT_EQ(rows.size(), 2u);
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(nlohmann::json::parse(rows[i]), r.summary["timeline"][i]);
}

TEST(Timeseries, RejectsAnUnknownExtensionWhenWriting) {
  EXPECT_THROW(write_timeseries(record_with_steps(), "/tmp/series.txt"), ResultsError);
}

}  // namespace timeseries_test
}  // namespace millstone::results
