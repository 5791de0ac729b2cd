#include "results/report.h"

#include <regex>

#include <gtest/gtest.h>

namespace millstone::results {
namespace report_test {

RunRecord sample_record(const std::string& hostile) {
  RunRecord r;
  r.id = "20261123-032041-4f2a";
  r.name = "shop.yaml";
  r.exit_code = 99;
  r.env.host = "box";
  r.env.started_unix_ms = 1795000000000;
  r.config = {{"scenario_file", "shop.yaml"}, {"scenario_source", hostile}};
  r.summary = {
      {"schema_version", 1},
      {"model", "scenario"},
      {"scenario", hostile},
      {"requests", 10},
      {"timeline", nlohmann::json::array({{{"second", 0}, {"requests", 10}}})},
      {"checks",
       {{{"name", "buyer/items: status"}, {"passed", 1}, {"failed", 1}, {"samples", {hostile}}}}}};
  return r;
}

// The text between <script type="application/json" id="run-data"> and </script>.
std::string run_data_text(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"run-data\">";
  size_t start = html.find(open);
  if (start == std::string::npos) return "";
  start += open.size();
  size_t end = html.find("</script>", start);
  if (end == std::string::npos) return "";
  return html.substr(start, end - start);
}

TEST(HtmlReport, EmbedsTheRunSoThatNoPayloadCanBreakOut) {
  std::string hostile = "</script><script>alert(1)</script><!-- & -->\"'";
  std::string html = html_report(sample_record(hostile));
  EXPECT_EQ(html.find("<script>alert(1)"), std::string::npos);
  std::string data = run_data_text(html);
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(data.find('<'), std::string::npos);
  EXPECT_EQ(data.find('>'), std::string::npos);
  EXPECT_EQ(data.find('&'), std::string::npos);
  // ... and it still reads back exactly.
  auto j = nlohmann::json::parse(data);
  EXPECT_EQ(j["summary"]["scenario"], hostile);
  EXPECT_EQ(j["summary"]["checks"][0]["samples"][0], hostile);
  EXPECT_EQ(j["config"]["scenario_source"], hostile);
  EXPECT_EQ(j["id"], "20261123-032041-4f2a");
  EXPECT_EQ(j["exit_code"], 99);
  EXPECT_EQ(j["environment"]["host"], "box");
}

TEST(HtmlReport, InvalidUtf8InTheRunDoesNotThrow) {
  std::string html = html_report(sample_record(std::string("bad \xff\xfe bytes")));
  auto j = nlohmann::json::parse(run_data_text(html));
  EXPECT_NE(j["summary"]["scenario"].get<std::string>().find("bad "), std::string::npos);
}

TEST(HtmlReport, IsSelfContained) {
  RunRecord record = sample_record("x");
  record.name = "http://127.0.0.1:8080/<b>";
  std::string html = html_report(record);
  EXPECT_EQ(html.find("@@"), std::string::npos) << "a template marker was left unfilled";
  EXPECT_NE(html.find("var uPlot="), std::string::npos) << "uPlot is embedded";
  EXPECT_NE(html.find(".uplot"), std::string::npos) << "uPlot's style sheet is embedded";
  EXPECT_NE(html.find("body.dataset.status = \"ok\""), std::string::npos)
      << "the report script is embedded";
  EXPECT_NE(html.find("<title>FAILED http://127.0.0.1:8080/&lt;b&gt; - millstone</title>"),
            std::string::npos);
  std::regex external(
      R"((src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import|import\s*\(?\s*["']https?:)",
      std::regex::icase);
  EXPECT_FALSE(std::regex_search(html, external)) << "the report must not load anything";
  // Four script elements (error handler, run data, uPlot, report): nothing
  // embedded ends one early.
  size_t closed = 0;
  for (size_t at = 0; (at = html.find("</script", at)) != std::string::npos; ++at)
    ++closed;
  EXPECT_EQ(closed, 4u);
}

TEST(HtmlComparison, EmbedsBothRunsTheComparisonAndItsView) {
  RunRecord run = sample_record("</script><b>run</b>");
  run.id = "20261124-000000-aaaa";
  RunRecord baseline = sample_record("base");
  Comparison c;
  c.run_id = run.id;
  c.baseline_id = baseline.id;
  c.load_differences.push_back({"rate", "none (closed model)", "500 req/s"});
  MetricComparison m;
  m.metric = "throughput";
  m.verdict = Verdict::kRegression;
  c.metrics.push_back(m);
  std::string html = html_comparison(c, run, baseline);
  EXPECT_EQ(html.find("@@"), std::string::npos);
  EXPECT_NE(html.find("<title>REGRESSION 20261124-000000-aaaa vs 20261123-032041-4f2a - "
                      "millstone</title>"),
            std::string::npos);
  EXPECT_NE(html.find("function millstoneComparison"), std::string::npos) << "the view is embedded";
  EXPECT_NE(html.find("var uPlot="), std::string::npos) << "uPlot is embedded";
  std::regex external(
      R"((src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import|import\s*\(?\s*["']https?:)",
      std::regex::icase);
  EXPECT_FALSE(std::regex_search(html, external)) << "the page must not load anything";
  auto j = nlohmann::json::parse(run_data_text(html));
  EXPECT_EQ(j["kind"], "comparison");
  EXPECT_EQ(j["comparison"]["load_differs"], true);
  EXPECT_EQ(j["comparison"]["regression"], true);
  EXPECT_EQ(j["run"]["summary"]["scenario"], "</script><b>run</b>");
  EXPECT_EQ(j["baseline"]["id"], "20261123-032041-4f2a");
  // A run's report does not carry the comparison view.
  EXPECT_EQ(html_report(run).find("function millstoneComparison"), std::string::npos);
}

TEST(HtmlReport, WriteFailsWithTheFileName) {
  try {
    write_html_report(sample_record("x"), "/nonexistent-dir/report.html");
    FAIL() << "expected ResultsError";
  } catch (const ResultsError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/report.html"), std::string::npos);
  }
}

// A URL run where 4.5% of responses were 500s has no thresholds: its badge
// must not say PASSED as if its numbers had been judged.
TEST(Verdict, NamesWhatItJudged) {
  RunRecord url;
  url.name = "http://127.0.0.1:8080/";
  url.exit_code = 0;
  url.summary = {{"requests", 1000},
                 {"error_total", 0},
                 {"http_failures", 45},
                 {"error_rate", 0.045},
                 {"thresholds", nullptr}};
  RunVerdict v = run_verdict(url);
  EXPECT_EQ(v.word, "COMPLETED");
  EXPECT_TRUE(v.good);
  EXPECT_NE(v.judged.find("no thresholds"), std::string::npos) << v.judged;
  EXPECT_NE(v.judged.find("error rate 4.50% (45 HTTP failures, 0 transport errors)"),
            std::string::npos)
      << v.judged;
  EXPECT_NE(html_report(url).find("<title>COMPLETED http://127.0.0.1:8080/ - millstone</title>"),
            std::string::npos);
  auto data = nlohmann::json::parse(run_data_text(html_report(url)));
  EXPECT_EQ(data["verdict"]["word"], "COMPLETED");

  RunRecord scenario = url;
  scenario.summary["thresholds"] = {{{"threshold", "error_rate < 5%"}, {"passed", true}},
                                    {{"threshold", "latency.p99 < 1s"}, {"passed", true}}};
  EXPECT_EQ(run_verdict(scenario).word, "PASSED");
  EXPECT_NE(run_verdict(scenario).judged.find("2 of 2 thresholds held"), std::string::npos);

  scenario.exit_code = 99;
  scenario.summary["thresholds"][0] = {
      {"threshold", "error_rate < 1%"}, {"passed", false}, {"observed", "4.500%"}};
  v = run_verdict(scenario);
  EXPECT_EQ(v.word, "FAILED");
  EXPECT_NE(v.judged.find("1 of 2 thresholds failed, first error_rate < 1% (observed 4.500%)"),
            std::string::npos)
      << v.judged;

  RunRecord silent = url;
  silent.exit_code = 6;
  silent.summary = {{"connections_attempted", 10}, {"connections_established", 10}};
  v = run_verdict(silent);
  EXPECT_EQ(v.word, "FAILED");
  EXPECT_NE(v.judged.find("nothing was measured"), std::string::npos) << v.judged;

  // A drill whose fault did not happen leaves the run incomplete, and says which.
  RunRecord drill = url;
  drill.exit_code = 5;
  drill.summary["drills"] = {
      {{"name", "ok"}, {"status", "done"}},
      {{"name", "slow-db"},
       {"status", "failed"},
       {"start", {{"detail", "POST http://127.0.0.1:8474/proxies/db/toxics: HTTP 404"}}}}};
  v = run_verdict(drill);
  EXPECT_EQ(v.word, "INCOMPLETE");
  EXPECT_NE(v.judged.find("drill slow-db failed to start: POST "
                          "http://127.0.0.1:8474/proxies/db/toxics: HTTP 404; "),
            std::string::npos)
      << v.judged;
}

}  // namespace report_test
}  // namespace millstone::results
