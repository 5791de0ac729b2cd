// End-to-end: `millstone run` records into the history, and `runs`, `show`,
// `baseline` and `compare` read it back.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace history_test {

using ::testing::HasSubstr;
using ::testing::Not;

// /steady answers in a fixed 100 ms, so with an open-model rate, two runs
// see nearly the same throughput and latency; /fast answers at once.
const char* kRoutes = R"(
routes:
  - path: /steady
    body: "ok\n"
    latency: 100ms
  - path: /fast
    body: "fast\n"
)";

std::string recorded_id(const ProcessResult& r) {
  std::smatch m;
  std::regex recorded(R"(millstone run: recorded as (\S+) \(millstone show ([^\s)]+))");
  if (!std::regex_search(r.err, m, recorded)) return "";
  EXPECT_EQ(m[1], m[2]);
  return m[1];
}

// A short open-model run: 20 requests a second for `duration`, one worker.
ProcessResult run_at(const MockServer& mock, const std::string& path,
                     const std::vector<std::string>& extra, const std::string& duration = "2s") {
  std::vector<std::string> args = {"run", mock.url(path), "--rate", "20", "-c", "4",
                                   "-d",  duration,       "-w",     "1",  "-q"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_millstone(args, 30);
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(HistoryIntegration, RunsAreRecordedListedShownAndComparedWithTheirBaseline) {
  MockServer mock(kRoutes);
  std::string db = temp_dir() + "/history.db";
  std::string out1 = write_temp_file("", ".json");
  std::string out2 = write_temp_file("", ".json");
  auto first = run_at(mock, "/steady", {"--history", db, "-o", out1});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto second = run_at(mock, "/steady", {"--history", db, "-o", out2});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  std::string id1 = recorded_id(first);
  std::string id2 = recorded_id(second);
  ASSERT_FALSE(id1.empty()) << first.err;
  ASSERT_FALSE(id2.empty()) << second.err;
  ASSERT_NE(id1, id2);
  EXPECT_THAT(first.err, HasSubstr("--history " + db));

  auto runs = run_millstone({"runs", "--history", db});
  ASSERT_EQ(runs.exit_code, 0) << runs.err;
  size_t at1 = runs.out.find(id1);
  size_t at2 = runs.out.find(id2);
  ASSERT_NE(at1, std::string::npos) << runs.out;
  ASSERT_NE(at2, std::string::npos) << runs.out;
  EXPECT_LT(at2, at1) << "newest first:\n" << runs.out;
  EXPECT_THAT(runs.out, HasSubstr(mock.url("/steady")));
  EXPECT_THAT(runs.out, HasSubstr("passed"));

  // The stored summary is the one --out wrote.
  auto shown = run_millstone({"show", id2, "--json", "--history", db});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(nlohmann::json::parse(shown.out), read_json(out2));
  auto text = run_millstone({"show", id1.substr(0, id1.size() - 1), "--history", db});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("run        " + id1));
  EXPECT_THAT(text.out, HasSubstr("latency    min"));

  auto no_baseline = run_millstone({"compare", id2, "--history", db});
  EXPECT_EQ(no_baseline.exit_code, 2);
  EXPECT_THAT(no_baseline.err, HasSubstr("millstone baseline RUN"));

  auto baseline = run_millstone({"baseline", id1, "--history", db});
  ASSERT_EQ(baseline.exit_code, 0) << baseline.err;
  runs = run_millstone({"runs", "--history", db});
  EXPECT_THAT(runs.out, HasSubstr(" * " + id1)) << runs.out;
  EXPECT_THAT(runs.out, HasSubstr("   " + id2)) << runs.out;

  // Two runs of a fixed-latency route at a fixed rate: the same within a
  // generous tolerance, because the max of 40 samples moves with the load
  // of the machine running the tests.
  auto compare = run_millstone({"compare", "last", "--tolerance", "100%", "--history", db});
  EXPECT_EQ(compare.exit_code, 0) << compare.out << compare.err;
  EXPECT_THAT(compare.out, HasSubstr("run " + id2 + " against baseline " + id1));
  EXPECT_THAT(compare.out, HasSubstr("no regression beyond 100%"));
  EXPECT_THAT(compare.out, Not(HasSubstr("warning")));
}

TEST(HistoryIntegration, ASlowerRouteAgainstAFastBaselineIsAP99Regression) {
  MockServer mock(kRoutes);
  std::string db = temp_dir() + "/history.db";
  auto fast = run_at(mock, "/fast", {"--history", db});
  ASSERT_EQ(fast.exit_code, 0) << fast.err;
  auto slow = run_at(mock, "/steady", {"--history", db});
  ASSERT_EQ(slow.exit_code, 0) << slow.err;
  std::string fast_id = recorded_id(fast);
  std::string slow_id = recorded_id(slow);
  ASSERT_FALSE(fast_id.empty() || slow_id.empty()) << fast.err << slow.err;

  auto compare = run_millstone({"compare", slow_id, fast_id, "--history", db});
  EXPECT_EQ(compare.exit_code, 98) << compare.out << compare.err;
  EXPECT_TRUE(std::regex_search(compare.out, std::regex(R"(\n  latency p99 .*REGRESSION\n)")))
      << compare.out;
  EXPECT_THAT(compare.out, HasSubstr("WARNING: the two runs did not apply the same load"));
  EXPECT_THAT(compare.out, HasSubstr("GET " + mock.url("/fast") + "  GET " + mock.url("/steady")));

  auto json = run_millstone({"compare", slow_id, fast_id, "--json", "--history", db});
  EXPECT_EQ(json.exit_code, 98) << json.err;
  nlohmann::json j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["regression"], true);
  bool p99 = false;
  for (const nlohmann::json& m : j["metrics"]) {
    if (m["metric"] == "latency p99") p99 = m["verdict"] == "REGRESSION";
  }
  EXPECT_TRUE(p99) << j.dump(2);
  EXPECT_EQ(j["load_differs"], true);
  EXPECT_EQ(j["load_differences"][0]["what"], "target");

  // The other way round, the fast run is better, not a regression.
  auto reverse = run_millstone({"compare", fast_id, slow_id, "--history", db});
  EXPECT_EQ(reverse.exit_code, 0) << reverse.out;
}

TEST(HistoryIntegration, AnOpenModelRunAgainstAClosedBaselineWarnsAtTheTop) {
  MockServer mock(kRoutes);
  std::string db = temp_dir() + "/history.db";
  auto closed = run_millstone(
      {"run", mock.url("/fast"), "-c", "4", "-d", "1s", "-w", "1", "-q", "--history", db}, 30);
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  auto open = run_at(mock, "/fast", {"--history", db}, "1s");
  ASSERT_EQ(open.exit_code, 0) << open.err;
  auto compare =
      run_millstone({"compare", recorded_id(open), recorded_id(closed), "--history", db});
  EXPECT_EQ(compare.exit_code, 98) << "20 req/s against thousands\n" << compare.out;
  // The warning is the first thing after the title line, before any verdict.
  size_t newline = compare.out.find('\n');
  ASSERT_NE(newline, std::string::npos);
  EXPECT_EQ(compare.out.substr(newline + 1, 10), "\nWARNING: ") << compare.out;
  EXPECT_THAT(compare.out, HasSubstr("  load model  closed (-c, no --rate)  open (--rate)\n"));
  EXPECT_THAT(compare.out, HasSubstr("  rate        none (closed model)     20 req/s\n"));
  EXPECT_LT(compare.out.find("WARNING"), compare.out.find("REGRESSION")) << compare.out;
}

TEST(HistoryIntegration, ReportRewritesARecordedRunsReport) {
  MockServer mock(kRoutes);
  std::string dir = temp_dir();
  std::string db = dir + "/history.db";
  auto run = run_at(mock, "/fast", {"--history", db, "--report", dir + "/at-run.html"}, "1s");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string id = recorded_id(run);
  auto again =
      run_millstone({"report", id.substr(0, 17), "-o", dir + "/again.html", "--history", db});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("wrote the report of " + id + " to " + dir + "/again.html"));
  std::string at_run = file_bytes(dir + "/at-run.html");
  ASSERT_GT(at_run.size(), 50'000u);
  EXPECT_TRUE(file_bytes(dir + "/again.html") == at_run) << "the same file as run --report";
  auto last = run_millstone({"report", "last", "-o", dir + "/last.html", "--history", db});
  EXPECT_EQ(last.exit_code, 0) << last.err;
  EXPECT_TRUE(file_bytes(dir + "/last.html") == at_run);

  auto unknown = run_millstone({"report", "1999", "-o", dir + "/x.html", "--history", db});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("millstone report: "));
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.html"));
  auto unwritable =
      run_millstone({"report", "last", "-o", "/nonexistent-dir/r.html", "--history", db});
  EXPECT_EQ(unwritable.exit_code, 3);
  EXPECT_THAT(unwritable.err, HasSubstr("/nonexistent-dir/r.html"));
  auto no_out = run_millstone({"report", "last", "--history", db});
  EXPECT_EQ(no_out.exit_code, 2) << "-o is required";
}

// Long and non-ASCII step and check names: `show` sizes its columns by what a
// terminal draws, so the counts still line up.
const char* kNamedScenario = R"(
name: names
target: http://127.0.0.1:1
flows:
  shop:
    steps:
      - name: "\u6CE8\u6587"
        get: /fast
        check: {status: 200}
      - name: a step whose name is longer than thirty-two columns
        get: /fast
        check: {status: 200, body: {contains: "fast"}}
scenarios:
  once: {executor: iterations, vus: 1, iterations: 3}
)";

// The display column (in a UTF-8 terminal) where `text` ends on `line`.
size_t end_column(const std::string& line, const std::string& text) {
  size_t at = line.find(text);
  if (at == std::string::npos) return 0;
  size_t columns = 0;
  for (size_t i = 0; i < at + text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if ((c & 0xC0) == 0x80) continue;
    columns += c >= 0xE3 && c <= 0xE9 ? 2 : 1;  // CJK ideographs are two columns wide
  }
  return columns;
}

TEST(HistoryIntegration, ShowAlignsItsTablesWhateverTheNames) {
  MockServer mock(kRoutes);
  std::string db = temp_dir() + "/history.db";
  std::string scenario = write_temp_file(kNamedScenario, ".yaml");
  auto run = run_millstone(
      {"run", scenario, "--target", mock.url(""), "-w", "1", "-q", "--history", db}, 30);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto shown = run_millstone({"show", "last", "--history", db});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  std::vector<std::string> steps, checks;
  std::istringstream in(shown.out);
  std::vector<std::string>* section = nullptr;
  for (std::string line; std::getline(in, line);) {
    if (line == "steps")
      section = &steps;
    else if (line == "checks")
      section = &checks;
    else if (line.rfind("  ", 0) != 0)
      section = nullptr;
    else if (section)
      section->push_back(line);
  }
  ASSERT_EQ(steps.size(), 3u) << shown.out;   // a header and two steps
  ASSERT_EQ(checks.size(), 4u) << shown.out;  // a header and three checks
  // Right-aligned counts end in the column where their header ends.
  size_t requests = end_column(steps[0], "requests");
  ASSERT_GT(requests, 0u);
  EXPECT_EQ(end_column(steps[1], " 3 "), requests + 1) << shown.out;
  EXPECT_EQ(end_column(steps[2], " 3 "), requests + 1) << shown.out;
  size_t passed = end_column(checks[0], "passed");
  for (size_t i = 1; i < checks.size(); ++i)
    EXPECT_EQ(end_column(checks[i], "  3  "), passed + 2) << shown.out;
}

TEST(HistoryIntegration, UnknownRunsAndMissingDatabasesHaveTheirExitCodes) {
  std::string dir = temp_dir();
  auto missing = run_millstone({"compare", "last", "--history", dir + "/none.db"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.err, HasSubstr(dir + "/none.db: no history database"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/none.db"));
  auto empty_list = run_millstone({"runs", "--history", dir + "/none.db"});
  EXPECT_EQ(empty_list.exit_code, 0);
  EXPECT_THAT(empty_list.out, HasSubstr("no runs recorded yet"));

  MockServer mock(kRoutes);
  std::string db = dir + "/history.db";
  auto run = run_at(mock, "/fast", {"--history", db}, "1s");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto unknown = run_millstone({"show", "1999", "--history", db});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("no run '1999'"));
  auto bad_tolerance = run_millstone({"compare", "last", "--tolerance", "10", "--history", db});
  EXPECT_EQ(bad_tolerance.exit_code, 2);
}

TEST(HistoryIntegration, ACorruptedDatabaseIsAWarningAndTheRunKeepsItsExitCode) {
  MockServer mock(kRoutes);
  std::string db = temp_dir() + "/history.db";
  std::string garbage(4096, '\x5a');
  std::ofstream(db, std::ios::binary) << garbage;
  std::string out = write_temp_file("", ".json");
  auto run = run_at(mock, "/fast", {"--history", db, "-o", out}, "1s");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, HasSubstr("millstone run: history " + db +
                                 ": database is corrupted (file is not a database); the run "
                                 "was not recorded\n"));
  EXPECT_GT(read_json(out)["requests"].get<uint64_t>(), 0u);
  EXPECT_EQ(file_bytes(db), garbage);
  auto runs = run_millstone({"runs", "--history", db});
  EXPECT_EQ(runs.exit_code, 3);
  EXPECT_THAT(runs.err, HasSubstr("database is corrupted"));
  auto compare = run_millstone({"compare", "last", "--history", db});
  EXPECT_EQ(compare.exit_code, 3);
}

TEST(HistoryIntegration, NoHistoryRecordsNothing) {
  MockServer mock(kRoutes);
  std::string db = temp_dir() + "/history.db";
  auto run = run_at(mock, "/fast", {"--history", db, "--no-history"}, "1s");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, Not(HasSubstr("recorded as")));
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST(HistoryIntegration, RunsGoToMillstoneHistoryWithoutAFlag) {
  // support.cc pointed MILLSTONE_HISTORY at this test binary's own database.
  const char* env = std::getenv("MILLSTONE_HISTORY");
  ASSERT_NE(env, nullptr);
  ASSERT_EQ(std::string(env).rfind("/tmp/millstone-test-history-", 0), 0u) << env;
  MockServer mock(kRoutes);
  auto run = run_at(mock, "/fast", {}, "1s");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string id = recorded_id(run);
  ASSERT_FALSE(id.empty()) << run.err;
  EXPECT_THAT(run.err, Not(HasSubstr("--history")));
  EXPECT_TRUE(std::filesystem::exists(env));
  auto shown = run_millstone({"show", id});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr(id));
}

}  // namespace history_test
}  // namespace millstone::testing
