// The run's result files end to end: `millstone run --report --junit
// --timeseries -o` against `millstone mock`, then the HTML report rendered in
// headless Chromium, the JUnit XML read by a real XML parser and the JSON
// summary validated against docs/summary.schema.json.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "results/report.h"
#include "support.h"

namespace millstone::testing {
namespace report_test {

const char* kMock = R"(
routes:
  - path: /api/items
    headers: {Content-Type: application/json}
    body: '{"items":[{"id":7}]}'
  - method: POST
    path: /api/orders
    status: 201
    body: '{"id":{{ counter }}}'
  - path: /metrics
    headers: {Content-Type: text/html}
    body: "<html><body>502 Bad Gateway</body></html>"
)";

// A free port on 127.0.0.1 that nothing listens on once this returns.
int closed_port() {
  int port = 0;
  const int fd = listen_loopback(&port);
  close(fd);
  return port;
}

// Two steps, one check that always fails (with a sample text holding markup
// that must not break the report), thresholds that pass and one that fails,
// and two scenarios one after the other.
const char* kScenario = R"(
name: "report <test> & co"
target: http://127.0.0.1:1
flows:
  buyer:
    steps:
      - name: items
        get: /api/items
        check:
          status: 200
          body: {contains: "</script><b>"}
      - name: order
        post: /api/orders
        json: {item: 7}
        check:
          status: 201
scenarios:
  warm: {executor: constant-vus, vus: 1, duration: 1s, graceful_stop: 200ms}
  main: {executor: constant-vus, vus: 2, duration: 1s, graceful_stop: 200ms, start: after warm}
thresholds:
  - latency.p99 < 5s
  - checks > 99%
)";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string python(const std::string& program, const std::vector<std::string>& args,
                   int* exit_code) {
  std::string script = write_temp_file(program, ".py");
  // Debian's python3 is the one scripts/install-deps.sh gives python3-jsonschema
  // and python3's own xml; another python3 first on PATH may lack it.
  std::vector<std::string> argv = have("/usr/bin/python3")
                                      ? std::vector<std::string>{"/usr/bin/python3", script}
                                      : std::vector<std::string>{"/usr/bin/env", "python3", script};
  argv.insert(argv.end(), args.begin(), args.end());
  Command c = run_command(argv, 30);
  unlink(script.c_str());
  *exit_code = c.exit_code;
  return c.out + c.err;
}

class ReportIntegration : public ::testing::Test {
 protected:
  // One scenario run shared by the tests below: runs take seconds.
  static void SetUpTestSuite() {
    mock_ = new MockServer(kMock);
    // Target monitoring (docs/monitoring.md): a real node_exporter (CPU,
    // memory, network, and one selected counter of its own), a dead endpoint
    // and the mock's garbage /metrics, scraped during the run.
    node_port_ = closed_port();
    if (access("/usr/bin/prometheus-node-exporter", X_OK) == 0) {
      node_ = new ExternalServer({"/usr/bin/prometheus-node-exporter",
                                  "--web.listen-address=127.0.0.1:" + std::to_string(node_port_),
                                  "--collector.disable-defaults", "--collector.cpu",
                                  "--collector.meminfo", "--collector.netdev"},
                                 write_temp_file("", ".log"));
      wait_listening(node_port_);
    }
    dead_url_ = "http://127.0.0.1:" + std::to_string(closed_port()) + "/metrics";
    const std::string monitor =
        "monitor:\n  - {name: node, url: 'http://127.0.0.1:" + std::to_string(node_port_) +
        "/metrics', metrics: [process_cpu_seconds_total]}\n  - " + dead_url_ +
        "\n  - {name: garbage, url: '" + mock_->url("/metrics") + "', interval: 1s}\n";
    scenario_path_ = write_temp_file(kScenario + monitor, ".yaml");
    report_ = write_temp_file("", ".html");
    junit_ = write_temp_file("", ".xml");
    csv_ = write_temp_file("", ".csv");
    summary_ = write_temp_file("", ".json");
    run_ = new ProcessResult(run_millstone(
        {"run", scenario_path_, "--target", mock_->url(""), "-w", "1", "-q", "--no-history", "-o",
         summary_, "--report", report_, "--junit", junit_, "--timeseries", csv_},
        60));
  }
  static void TearDownTestSuite() {
    delete run_;
    delete mock_;
    delete node_;
  }
  void SetUp() override {
    ASSERT_EQ(run_->exit_code, 99) << "the failing check fails a threshold\n"
                                   << run_->out << run_->err;
  }
  static inline MockServer* mock_ = nullptr;
  static inline ExternalServer* node_ = nullptr;
  static inline int node_port_ = 0;
  static inline std::string dead_url_;
  static inline ProcessResult* run_ = nullptr;
  static inline std::string scenario_path_, report_, junit_, csv_, summary_;
};

TEST_F(ReportIntegration, ReportRendersInHeadlessChromiumWithoutErrors) {
  ASSERT_TRUE(have("/usr/bin/chromium")) << "install chromium (scripts/install-deps.sh)";
  Rendered r = render_in_chromium(report_);
  ASSERT_FALSE(r.run.timed_out) << r.run.err;
  EXPECT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  // Throughput, latency, VUs, per-step p99 over time, the generator's own
  // load, node_exporter's CPU, memory and network, its selected counter, and
  // the percentile curve.
  EXPECT_EQ(r.charts, 10);
  EXPECT_GT(r.points, 0);
  EXPECT_NE(r.dom.find("<canvas"), std::string::npos) << "uPlot drew canvases";
  EXPECT_TRUE(r.console_errors.empty()) << r.console_errors.front();
  // The page shows the run: verdict, the failed check with its sample, the thresholds.
  EXPECT_NE(r.dom.find("FAILED"), std::string::npos);
  EXPECT_NE(r.dom.find("buyer/items"), std::string::npos);
  EXPECT_NE(r.dom.find("checks &gt; 99%"), std::string::npos);
  EXPECT_NE(r.dom.find("report &lt;test&gt; &amp; co"), std::string::npos);
  EXPECT_EQ(r.dom.find("<b>"), std::string::npos) << "sample text stayed text";
  // The monitored target's charts come under the load charts, on the same seconds.
  const size_t latency = r.dom.find(">Latency<");
  const size_t cpu = r.dom.find(">Target node: CPU busy<");
  ASSERT_NE(cpu, std::string::npos);
  EXPECT_LT(latency, cpu);
  EXPECT_LT(r.dom.find(">Load generator: CPU and event loop per worker<"), cpu);
  EXPECT_NE(r.dom.find(">Target node: memory used<"), std::string::npos);
  EXPECT_NE(r.dom.find(">Target node: counters, per second<"), std::string::npos);
  EXPECT_NE(r.dom.find("Monitor: monitor garbage ("), std::string::npos);
}

TEST_F(ReportIntegration, MonitoredEndpointsAreInTheRecordAndBadOnesAreOneWarningEach) {
  ASSERT_NE(node_, nullptr) << "install prometheus-node-exporter (scripts/install-deps.sh)";
  // Bad endpoints are one warning each; the verdict (SetUp: 99, a threshold) stands.
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
      ++n;
    return n;
  };
  EXPECT_EQ(count(run_->err, "warning: monitor"), 2u) << run_->err;
  EXPECT_EQ(count(run_->err, dead_url_ + "): 3 of 3 scrapes failed"), 1u) << run_->err;
  EXPECT_EQ(count(run_->err, "not the Prometheus text format: line 1: expected a metric name"), 1u)
      << run_->err;
  const nlohmann::json j = read_json(summary_);
  const nlohmann::json& targets = j["monitor"]["targets"];
  ASSERT_EQ(targets.size(), 3u) << j["monitor"].dump();
  // Scrapes at 0, 1 and 2 s of the 2.4 s run. The exporter's own count of
  // what it answered (before the request that reads it) agrees.
  EXPECT_EQ(targets[0]["name"], "node");
  EXPECT_EQ(targets[0]["scrapes"], 3);
  EXPECT_EQ(targets[0]["failed"], 0);
  const std::string served =
      shell("curl -s http://127.0.0.1:" + std::to_string(node_port_) + "/metrics");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      served, m, std::regex(R"(promhttp_metric_handler_requests_total\{code="200"\} (\d+))")))
      << served.substr(0, 400);
  EXPECT_EQ(std::stoi(m[1]), 3);
  EXPECT_EQ(targets[1]["failed"], 3);
  EXPECT_EQ(targets[2]["failed"], 3);
  std::map<std::string, nlohmann::json> series;
  for (const nlohmann::json& s : j["monitor"]["series"])
    series[s["name"].get<std::string>()] = s;
  ASSERT_EQ(series.count("cpu_percent"), 1u) << j["monitor"].dump();
  const nlohmann::json& cpu = series["cpu_percent"];
  EXPECT_EQ(cpu["target"], "node");
  EXPECT_EQ(cpu["unit"], "%");
  ASSERT_EQ(cpu["points"].size(), 2u) << cpu.dump();
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(cpu["points"][i][0], i);  // seconds 0 and 1, as in the timeline
    EXPECT_GE(cpu["points"][i][1].get<double>(), 0);
    EXPECT_LE(cpu["points"][i][1].get<double>(), 100);
  }
  EXPECT_EQ(series.count("memory_used_bytes"), 1u);
  EXPECT_EQ(series.count("network_rx_bytes_per_s"), 1u);
  ASSERT_EQ(series.count("process_cpu_seconds_total"), 1u);
  EXPECT_EQ(series["process_cpu_seconds_total"]["kind"], "counter");
  EXPECT_EQ(series["process_cpu_seconds_total"]["unit"], "/s");
  EXPECT_EQ(j["timeline"][0]["second"], 0);
  EXPECT_TRUE(j.contains("generator"));
}

TEST_F(ReportIntegration, HeaderNamesTheTargetTheLoadAndWhyItFailed) {
  ASSERT_TRUE(have("/usr/bin/chromium"));
  Rendered r = render_in_chromium(report_);
  ASSERT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  // The URL the requests went to (--target), not the scenario file.
  EXPECT_NE(r.dom.find("target " + mock_->url("")), std::string::npos);
  EXPECT_EQ(r.dom.find("target " + scenario_path_), std::string::npos);
  EXPECT_NE(r.dom.find("scenario file " + scenario_path_), std::string::npos);
  EXPECT_NE(r.dom.find("warm (constant-vus, 0 s to 1.2 s), main (constant-vus, 1.2 s to 2.4 s)"),
            std::string::npos);
  // Why it failed, before the overview.
  size_t reason = r.dom.find("Threshold failed: checks &gt; 99%: observed ");
  ASSERT_NE(reason, std::string::npos);
  EXPECT_LT(reason, r.dom.find("id=\"overview\""));
  EXPECT_EQ(r.dom.find("Threshold failed: latency.p99"), std::string::npos) << "that one passed";
}

TEST_F(ReportIntegration, ScenarioBoundariesAreMarkedOnTheTimeCharts) {
  ASSERT_TRUE(have("/usr/bin/chromium"));
  Rendered r = render_in_chromium(report_);
  ASSERT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  // Throughput, latency, VUs, per-step p99, the generator's load and the
  // four monitor charts each mark where warm ends and main starts.
  EXPECT_EQ(body_attribute(r.dom, "data-markers"), "9");
  EXPECT_NE(r.dom.find("Dashed lines: warm ends, main starts at 1.2 s"), std::string::npos);
}

TEST_F(ReportIntegration, LegendsShowValuesWithoutACursorAndWhenPrinted) {
  ASSERT_TRUE(have("/usr/bin/chromium"));
  Rendered r = render_in_chromium(report_);
  ASSERT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  size_t legends = 0;
  for (size_t at = 0; (at = r.dom.find("class=\"legend-static\"", at)) != std::string::npos; ++at)
    ++legends;
  EXPECT_EQ(legends, 10u) << "one per chart";
  EXPECT_TRUE(std::regex_search(r.dom, std::regex(R"(VUs</td><td class="num">[0-9.]+</td>)")))
      << "the VUs' minimum is a number";
  // Printed, uPlot's live legend (values only under the mouse) gives way to these.
  std::string html = read_file(report_);
  size_t print = html.find("@media print");
  ASSERT_NE(print, std::string::npos);
  EXPECT_NE(html.find(".u-legend { display: none; }", print), std::string::npos);
}

TEST_F(ReportIntegration, ConsoleErrorDetectionCatchesABrokenPage) {
  ASSERT_TRUE(have("/usr/bin/chromium")) << "install chromium (scripts/install-deps.sh)";
  // A page that throws: Chromium must log it and the detector must see it.
  std::string broken = write_temp_file(
      "<!doctype html><html><body><script>null.boom();</script></body></html>", ".html");
  Rendered b = render_in_chromium(broken);
  ASSERT_FALSE(b.run.timed_out);
  EXPECT_FALSE(b.console_errors.empty()) << "no console line in:\n" << b.run.err;
  // The real report with its run data corrupted: the page says so in data-status.
  std::string html = read_file(report_);
  size_t at = html.find("id=\"run-data\">");
  ASSERT_NE(at, std::string::npos);
  html.insert(at + 14, "{");
  std::string corrupted = write_temp_file(html, ".html");
  Rendered c = render_in_chromium(corrupted);
  EXPECT_EQ(c.status.rfind("error: ", 0), 0u) << c.status;
  EXPECT_FALSE(c.console_errors.empty());
}

TEST_F(ReportIntegration, ReportLoadsNothingFromTheNetwork) {
  std::string html = read_file(report_);
  ASSERT_GT(html.size(), 50'000u) << "uPlot is embedded";
  std::regex external(
      R"((src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import|import\s*\(?\s*["']https?:)",
      std::regex::icase);
  std::smatch m;
  EXPECT_FALSE(std::regex_search(html, m, external)) << m.str();
}

TEST_F(ReportIntegration, ScreenshotIsDrawn) {
  ASSERT_TRUE(have("/usr/bin/chromium"));
  std::string png = write_temp_file("", ".png");
  unlink(png.c_str());
  Rendered r = render_in_chromium(report_, "--screenshot=" + png);
  ASSERT_FALSE(r.run.timed_out);
  std::string bytes = read_file(png);
  ASSERT_GT(bytes.size(), 10'000u) << r.run.err;
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
}

TEST_F(ReportIntegration, JunitParsesWithCountsAndFailures) {
  int code = 0;
  std::string out = python(R"(
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = {s.get("name"): {"tests": int(s.get("tests")), "failures": int(s.get("failures")),
          "cases": len(s.findall("testcase")), "failed": len(s.findall("testcase/failure")),
          "messages": [f.get("message") for f in s.findall("testcase/failure")],
          "texts": [f.text or "" for f in s.findall("testcase/failure")]}
          for s in root.findall("testsuite")}
print(json.dumps({"root": root.tag, "tests": int(root.get("tests")),
                  "failures": int(root.get("failures")), "suites": suites}))
)",
                           {junit_}, &code);
  ASSERT_EQ(code, 0) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["root"], "testsuites");
  EXPECT_EQ(j["tests"], 2 + 3 + 1);  // thresholds, checks (2 status + 1 body), run
  EXPECT_EQ(j["failures"], 2);       // the body check and the checks threshold
  for (const char* name : {"thresholds", "checks", "run"}) {
    ASSERT_TRUE(j["suites"].contains(name)) << out;
    EXPECT_EQ(j["suites"][name]["tests"], j["suites"][name]["cases"]) << name;
    EXPECT_EQ(j["suites"][name]["failures"], j["suites"][name]["failed"]) << name;
  }
  EXPECT_EQ(j["suites"]["thresholds"]["failures"], 1);
  EXPECT_NE(j["suites"]["thresholds"]["messages"][0].get<std::string>().find("limit: checks > 99%"),
            std::string::npos);
  EXPECT_EQ(j["suites"]["checks"]["failures"], 1);
  EXPECT_NE(j["suites"]["checks"]["texts"][0].get<std::string>().find("e.g. "), std::string::npos)
      << "the sampled failure text is in the failure";
  EXPECT_EQ(j["suites"]["run"]["failures"], 0);
}

TEST_F(ReportIntegration, CsvSeriesHasOneRowPerSecondWithStepColumns) {
  std::string csv = read_file(csv_);
  auto summary = read_json(summary_);
  std::vector<std::string> rows;
  std::istringstream in(csv);
  for (std::string line; std::getline(in, line);)
    rows.push_back(line);
  ASSERT_EQ(rows.size(), summary["timeline"].size() + 1) << csv;
  ASSERT_GE(rows.size(), 3u);
  EXPECT_EQ(rows[0].rfind("second,requests,rps,", 0), 0u);
  EXPECT_NE(rows[0].find(",step:buyer/items:p99_ms,"), std::string::npos) << rows[0];
  EXPECT_NE(rows[0].find(",step:buyer/order:p99_ms"), std::string::npos) << rows[0];
  EXPECT_EQ(rows[1].rfind("0," + summary["timeline"][0]["requests"].dump() + ",", 0), 0u)
      << rows[1];
}

TEST(ReportIntegrationUrl, OpenModelReportShowsTheScheduleAndTheLoad) {
  ASSERT_TRUE(have("/usr/bin/chromium"));
  MockServer mock(kMock);
  std::string report = write_temp_file("", ".html");
  auto run = run_millstone({"run", mock.url("/api/items"), "-r", "40", "-c", "2", "-d", "1s", "-w",
                            "1", "-q", "--no-history", "--report", report},
                           60);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  Rendered r = render_in_chromium(report);
  ASSERT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  EXPECT_NE(r.dom.find("target GET " + mock.url("/api/items")), std::string::npos);
  EXPECT_NE(r.dom.find("load open model: 40 req/s over 2 connections for 1 s"), std::string::npos);
  EXPECT_NE(r.dom.find("Open-model schedule"), std::string::npos);
  EXPECT_NE(r.dom.find("started late"), std::string::npos);
  EXPECT_NE(r.dom.find("not started"), std::string::npos);
  EXPECT_EQ(r.dom.find("id=\"reason\""), std::string::npos) << "it passed";
}

// A run of 2.5 s: 100 requests and 10 errors in each whole second, 50 and 5
// in the last half second. Drawn as counts, that half second is a dip.
results::RunRecord partial_second_run(double duration_s) {
  results::RunRecord r;
  r.id = "20261124-000000-0001";
  r.name = "http://127.0.0.1:9/x";
  r.summary = {{"model", "closed"},        {"url", r.name},
               {"method", "GET"},          {"connections", 4},
               {"duration_s", duration_s}, {"planned_duration_s", 2.5}};
  nlohmann::json timeline = nlohmann::json::array();
  double last = duration_s - 2;
  for (int second = 0; second < 3; ++second) {
    double length = second < 2 ? 1 : last;
    double requests = 100 * length;
    timeline.push_back({{"second", second},
                        {"requests", requests},
                        // The summary scales rps by the length, slivers under 0.1 s aside.
                        {"rps", length < 0.1 ? requests : 100.0},
                        {"errors", 10 * length},
                        {"connections_opened", second == 0 ? 4 : 0},
                        {"p99_ms", 5.0}});
  }
  r.summary["timeline"] = timeline;
  return r;
}

std::string legend_min(const std::string& dom, const std::string& series) {
  std::smatch m;
  if (std::regex_search(dom, m, std::regex(series + R"(</td><td class="num">([^<]*)</td>)")))
    return m[1];
  return "(no legend row for " + series + ")";
}

TEST(ReportIntegrationUrl, TheLastPartialSecondIsPerSecondNotADip) {
  ASSERT_TRUE(have("/usr/bin/chromium"));
  std::string half = write_temp_file("", ".html");
  results::write_html_report(partial_second_run(2.5), half);
  Rendered r = render_in_chromium(half);
  ASSERT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  EXPECT_EQ(legend_min(r.dom, "requests/s"), "100.0");
  EXPECT_EQ(legend_min(r.dom, "errors/s"), "10.0") << "5 errors in 0.5 s are 10 a second";
  EXPECT_NE(r.dom.find("The last second lasted 0.50 s"), std::string::npos);
  // A sliver of 0.05 s is too short to be a rate: it is left out.
  std::string sliver = write_temp_file("", ".html");
  results::write_html_report(partial_second_run(2.05), sliver);
  r = render_in_chromium(sliver);
  ASSERT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  EXPECT_EQ(legend_min(r.dom, "requests/s"), "100.0");
  EXPECT_EQ(legend_min(r.dom, "errors/s"), "10.0");
  EXPECT_NE(r.dom.find("The last 0.05 s of the run is left out"), std::string::npos);
}

TEST(ReportIntegrationUrl, ComparisonPageRendersWithTheLoadWarningFirst) {
  ASSERT_TRUE(have("/usr/bin/chromium"));
  MockServer mock(kMock);
  std::string db = temp_dir() + "/history.db";
  auto closed = run_millstone(
      {"run", mock.url("/api/items"), "-c", "2", "-d", "1s", "-w", "1", "-q", "--history", db}, 60);
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  ASSERT_EQ(run_millstone({"baseline", "last", "--history", db}).exit_code, 0);
  auto open = run_millstone({"run", mock.url("/api/items"), "-r", "20", "-c", "2", "-d", "1s", "-w",
                             "1", "-q", "--history", db},
                            60);
  ASSERT_EQ(open.exit_code, 0) << open.err;
  std::string page = temp_dir() + "/compare.html";
  auto compare =
      run_millstone({"compare", "last", "--history", db, "--tolerance", "100%", "--report", page});
  // 20 req/s against thousands: throughput regressed beyond any doubt.
  EXPECT_EQ(compare.exit_code, 98) << compare.out << compare.err;
  EXPECT_NE(compare.err.find("millstone compare: wrote " + page), std::string::npos);
  Rendered r = render_in_chromium(page);
  ASSERT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  EXPECT_EQ(r.charts, 3) << "throughput, p99 over time, and the percentile curves";
  EXPECT_GT(r.points, 0);
  EXPECT_TRUE(r.console_errors.empty()) << r.console_errors.front();
  size_t warning = r.dom.find("id=\"load-warning\"");
  ASSERT_NE(warning, std::string::npos);
  EXPECT_LT(warning, r.dom.find("id=\"metrics\""));
  EXPECT_NE(r.dom.find("none (closed model)"), std::string::npos);
  EXPECT_NE(r.dom.find("20 req/s"), std::string::npos);
  EXPECT_NE(r.dom.find(">REGRESSION<"), std::string::npos);
  std::string html = read_file(page);
  std::regex external(
      R"((src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import|import\s*\(?\s*["']https?:)",
      std::regex::icase);
  EXPECT_FALSE(std::regex_search(html, external)) << "offline, like the run report";
  auto unwritable = run_millstone({"compare", "last", "--history", db, "--tolerance", "1000000%",
                                   "--report", "/nonexistent-dir/c.html"});
  EXPECT_EQ(unwritable.exit_code, 3) << unwritable.out << unwritable.err;
  EXPECT_NE(unwritable.err.find("--report /nonexistent-dir/c.html"), std::string::npos);
}

TEST(ReportIntegrationUrl, NdjsonSeriesAndJunitForAUrlRun) {
  MockServer mock(kMock);
  std::string series = write_temp_file("", ".ndjson");
  std::string junit = write_temp_file("", ".xml");
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", mock.url("/api/items"), "-c", "2", "-d", "2s", "-w", "1", "-q",
                          "--no-history", "-o", out, "--timeseries", series, "--junit", junit},
                         60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto summary = read_json(out);
  std::istringstream in(read_file(series));
  size_t n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    ASSERT_LT(n, summary["timeline"].size());
    EXPECT_EQ(nlohmann::json::parse(line), summary["timeline"][n]);
  }
  EXPECT_EQ(n, summary["timeline"].size());
  EXPECT_GE(n, 2u);
  int code = 0;
  std::string counts = python(R"(
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
print(root.get("tests"), root.get("failures"), [s.get("name") for s in root.findall("testsuite")])
)",
                              {junit}, &code);
  ASSERT_EQ(code, 0) << counts;
  EXPECT_EQ(counts, "1 0 ['thresholds', 'checks', 'run']\n");
}

// docs/summary.schema.json describes every summary millstone writes.
const char* kValidate = R"(
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
# The published schema lets later versions add fields; here every object that
# lists its properties must list all of them, so no field goes undocumented.
def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for k, v in node.items():
            if k != "if":  # a condition names the properties it tests, not all of them
                strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
strict(schema)
validator = Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    for e in validator.iter_errors(json.load(open(path))):
        bad += 1
        print(path, "/".join(str(p) for p in e.absolute_path), e.message)
sys.exit(1 if bad else 0)
)";

TEST_F(ReportIntegration, SummariesValidateAgainstTheSchema) {
  int code = 0;
  std::string check = python("import jsonschema\n", {}, &code);
  ASSERT_EQ(code, 0) << "python3-jsonschema is missing (scripts/install-deps.sh): " << check;
  MockServer mock(kMock);
  std::string url_summary = write_temp_file("", ".json");
  auto r = run_millstone({"run", mock.url("/api/items"), "-c", "2", "-d", "1s", "-r", "50", "-w",
                          "1", "-q", "--no-history", "-o", url_summary},
                         60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // A run with WebSocket steps has a `sockets` section.
  MockServer ws_mock(
      "routes:\n  - path: /health\nwebsockets:\n  - path: /ws\n"
      "    push: {every: 50ms, message: '{\"sent_us\":{{ now_us }}}'}\n");
  const std::string ws_scenario = write_temp_file(
      "target: " + ws_mock.url("") +
          "\nflows:\n  listen:\n    steps:\n      - ws.connect: /ws\n"
          "      - ws.hold: {duration: 300ms, latency_from: $.sent_us}\n"
          "scenarios:\n  main: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s}\n",
      ".yaml");
  std::string ws_summary = write_temp_file("", ".json");
  r = run_millstone({"run", ws_scenario, "-w", "1", "-q", "--no-history", "-o", ws_summary}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(read_json(ws_summary).contains("sockets"));
  std::string schema = std::string(MILLSTONE_SOURCE_DIR) + "/docs/summary.schema.json";
  std::string out = python(kValidate, {schema, summary_, url_summary, ws_summary}, &code);
  EXPECT_EQ(code, 0) << out;
  // The schema is strict: it is no use if it accepts anything.
  auto broken = read_json(summary_);
  broken["timeline"][0]["requests"] = "many";
  broken["steps"][0]["latency_ms"].erase("p50");
  broken["surprise"] = 1;
  std::string broken_path = write_temp_file(broken.dump(), ".json");
  out = python(kValidate, {schema, broken_path}, &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("timeline/0/requests"), std::string::npos) << out;
  EXPECT_NE(out.find("'p50' is a required property"), std::string::npos) << out;
  EXPECT_NE(out.find("surprise"), std::string::npos) << out;
}

}  // namespace report_test
}  // namespace millstone::testing

namespace millstone::testing {
namespace report_test {

// A ramp's saturation knee (docs/scenarios.md#saturation-knee) from a
// synthetic record: a dashed line on the throughput, latency and VU charts,
// and the sentence under the overview; a no-data target threshold is shown
// as not evaluated, not as a failure.
TEST(ReportIntegrationKnee, TheKneeIsMarkedOnTheLoadCharts) {
  ASSERT_TRUE(have("/usr/bin/chromium"));
  results::RunRecord record;
  record.id = "20261204-120000-abcd";
  record.name = "ramp.yaml";
  record.exit_code = 99;
  nlohmann::json timeline = nlohmann::json::array();
  const double rps[] = {100, 200, 300, 395, 405, 402, 404};
  const double p99[] = {5, 5.2, 5.5, 6, 9, 14, 19};
  for (int s = 0; s < 21; ++s) {
    timeline.push_back({{"second", s},
                        {"rps", rps[s / 3]},
                        {"p50_ms", 1},
                        {"p90_ms", 2},
                        {"p99_ms", p99[s / 3]},
                        {"max_ms", 30},
                        {"vus", 10 * (s / 3 + 1)},
                        {"steps", nlohmann::json::object()}});
  }
  const std::string text =
      "saturation knee at ~395 rps / 50 VUs, at t=12s: p99 rose from 6.0 to 14.0 ms while rps "
      "grew only 1.8%";
  record.summary = {{"model", "scenario"},
                    {"scenario", "ramp"},
                    {"duration_s", 21},
                    {"timeline", timeline},
                    {"steps", nlohmann::json::array()},
                    {"thresholds",
                     {{{"threshold", "target.cpu < 80%"},
                       {"location", "ramp.yaml:9:5"},
                       {"passed", false},
                       {"status", "no_data"},
                       {"observed", "no data"}},
                      {{"threshold", "latency.p99 < 10ms"},
                       {"location", "ramp.yaml:10:5"},
                       {"passed", false},
                       {"status", "failed"},
                       {"observed", "19.00ms"}}}},
                    {"knee",
                     {{"second", 12},
                      {"rps", 395},
                      {"vus", 50},
                      {"p99_before_ms", 6},
                      {"p99_after_ms", 14},
                      {"rps_growth_percent", 1.8},
                      {"from_s", 9},
                      {"to_s", 18},
                      {"window_s", 3},
                      {"text", text}}}};
  const std::string path = write_temp_file("", ".html");
  results::write_html_report(record, path);
  Rendered r = render_in_chromium(path);
  ASSERT_EQ(r.status, "ok") << r.run.err.substr(0, 4000);
  EXPECT_TRUE(r.console_errors.empty()) << r.console_errors.front();
  EXPECT_EQ(body_attribute(r.dom, "data-markers"), "3");  // throughput, latency, VUs
  EXPECT_NE(r.dom.find("Dashed lines: saturation knee ~395 rps at 12 s"), std::string::npos)
      << r.dom.substr(0, 2000);
  EXPECT_NE(r.dom.find("Saturation knee at ~395 rps / 50 VUs, at t=12s"), std::string::npos);
  EXPECT_NE(r.dom.find("not evaluated: no data from the monitored target"), std::string::npos);
  // The header's reasons name the failed threshold, not the unevaluated one.
  EXPECT_NE(r.dom.find("Threshold failed: latency.p99 &lt; 10ms: observed 19.00ms"),
            std::string::npos);
  EXPECT_EQ(r.dom.find("Threshold failed: target.cpu"), std::string::npos);
}

}  // namespace report_test
}  // namespace millstone::testing
