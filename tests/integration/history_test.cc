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
namespace {

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
  EXPECT_THAT(compare.out, HasSubstr("warning: comparing different targets"));

  auto json = run_millstone({"compare", slow_id, fast_id, "--json", "--history", db});
  EXPECT_EQ(json.exit_code, 98) << json.err;
  nlohmann::json j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["regression"], true);
  bool p99 = false;
  for (const nlohmann::json& m : j["metrics"]) {
    if (m["metric"] == "latency p99") p99 = m["verdict"] == "REGRESSION";
  }
  EXPECT_TRUE(p99) << j.dump(2);

  // The other way round, the fast run is better, not a regression.
  auto reverse = run_millstone({"compare", fast_id, slow_id, "--history", db});
  EXPECT_EQ(reverse.exit_code, 0) << reverse.out;
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

}  // namespace
}  // namespace millstone::testing
