// The run history database: recording, lookup, baselines, concurrency,
// schema migration and the errors a broken file gives.
#include "results/history.h"

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace millstone::results {
namespace history_test {

using ::testing::HasSubstr;

RunRecord make_record(const std::string& id, const std::string& key, int64_t started_unix_ms,
                      double p99_ms = 10) {
  RunRecord r;
  r.id = id;
  r.key = key;
  r.name = key.substr(key.find(' ') + 1);
  r.env.host = "box";
  r.env.cores = 4;
  r.env.command_line = "millstone run " + r.name;
  r.env.started_unix_ms = started_unix_ms;
  r.config = {{"target", r.name}, {"connections", 10}};
  r.summary = {{"schema_version", 1},
               {"run_id", id},
               {"requests", 1000},
               {"rps", 100.0},
               {"duration_s", 10.0},
               {"error_total", 5},
               {"errors", {{"timeout", 5}}},
               {"status", {{"200", 990}, {"503", 10}}},
               {"latency_ms", {{"p50", 2.0}, {"p90", 5.0}, {"p99", p99_ms}, {"max", 40.0}}},
               {"timeline",
                {{{"second", 0},
                  {"requests", 600},
                  {"errors", 2},
                  {"p50_ms", 1.5},
                  {"p99_ms", 9.0},
                  {"max_ms", 20.0},
                  {"vus", 3}},
                 {{"second", 1},
                  {"requests", 400},
                  {"errors", 3},
                  {"p50_ms", 2.5},
                  {"p99_ms", 11.0},
                  {"max_ms", 40.0},
                  {"future_field", {{"a", 1}}}}}}};
  return r;
}

// Distinct, well-formed ids for process c's run i.
std::string fmt_id(int c, int i) {
  char id[32];
  snprintf(id, sizeof id, "20261123-%02d%04d-%04x", c, i, c * 1000 + i);
  return id;
}

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/millstone-history-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/history.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs SQL on the file directly, as another program (or an older millstone) would.
  void raw_sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }
  int64_t raw_integer(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    sqlite3_stmt* s = nullptr;
    int64_t value = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      value = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return value;
  }
  std::string error_opening(const std::string& path, History::Mode mode = History::Mode::kCreate) {
    try {
      History h(path, mode);
    } catch (const ResultsError& e) {
      return e.what();
    }
    return "(no error)";
  }

  std::string dir_;
  std::string path_;
};

TEST_F(HistoryTest, RecordsRunsAndListsThemNewestFirst) {
  History h(path_);
  h.add(make_record("20261123-030000-aaaa", "GET http://a/x", 1000));
  h.add(make_record("20261123-030100-bbbb", "GET http://a/x", 3000));
  h.add(make_record("20261123-030200-cccc", "GET http://a/y", 2000));
  auto rows = h.list(10);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, "20261123-030100-bbbb");
  EXPECT_EQ(rows[1].id, "20261123-030200-cccc");
  EXPECT_EQ(rows[2].id, "20261123-030000-aaaa");
  EXPECT_EQ(rows[0].requests, 1000u);
  EXPECT_DOUBLE_EQ(rows[0].rps, 100.0);
  EXPECT_DOUBLE_EQ(rows[0].p99_ms, 10.0);
  EXPECT_DOUBLE_EQ(rows[0].max_ms, 40.0);
  // 5 transport errors and 10 responses with 503 out of 1005 attempts.
  EXPECT_NEAR(rows[0].error_rate, 15.0 / 1005.0, 1e-12);
  EXPECT_EQ(h.list(2).size(), 2u);
}

TEST_F(HistoryTest, ListFiltersByKeyOrByUrlWhateverTheMethod) {
  History h(path_);
  h.add(make_record("20261123-030000-aaaa", "GET http://a/x", 1000));
  h.add(make_record("20261123-030100-bbbb", "POST http://a/x", 2000));
  h.add(make_record("20261123-030200-cccc", "/srv/shop.yaml", 3000));
  EXPECT_EQ(h.list(10, "GET http://a/x").size(), 1u);
  EXPECT_EQ(h.list(10, "http://a/x").size(), 2u);
  ASSERT_EQ(h.list(10, "/srv/shop.yaml").size(), 1u);
  EXPECT_EQ(h.list(10, "/srv/shop.yaml")[0].id, "20261123-030200-cccc");
  EXPECT_TRUE(h.list(10, "http://a/").empty());
}

TEST_F(HistoryTest, RoundTripsTheWholeRecord) {
  {
    History h(path_);
    RunRecord r = make_record("20261123-030000-aaaa", "GET http://a/x", 1234);
    r.exit_code = 99;
    h.add(r);
  }
  History h(path_, History::Mode::kMustExist);
  RunRecord r = h.find("20261123-030000-aaaa");
  RunRecord expected = make_record("20261123-030000-aaaa", "GET http://a/x", 1234);
  EXPECT_EQ(r.key, expected.key);
  EXPECT_EQ(r.name, expected.name);
  EXPECT_EQ(r.exit_code, 99);
  EXPECT_EQ(r.summary, expected.summary);
  EXPECT_EQ(r.config, expected.config);
  EXPECT_EQ(r.env.host, "box");
  EXPECT_EQ(r.env.started_unix_ms, 1234);
}

TEST_F(HistoryTest, KeepsEachTimelineEntryWholeIncludingUnknownFields) {
  History h(path_);
  RunRecord r = make_record("20261123-030000-aaaa", "GET http://a/x", 1000);
  h.add(r);
  auto entries = h.timeline(r.id);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0], r.summary["timeline"][0]);
  EXPECT_EQ(entries[1]["future_field"]["a"], 1);
  EXPECT_EQ(raw_integer("SELECT requests FROM run_seconds WHERE second = 1"), 400);
}

TEST_F(HistoryTest, FindsByFullIdOrUniquePrefix) {
  History h(path_);
  h.add(make_record("20261123-030000-aaaa", "k", 1000));
  h.add(make_record("20261123-040000-bbbb", "k", 2000));
  EXPECT_EQ(h.find("20261123-030000-aaaa").id, "20261123-030000-aaaa");
  EXPECT_EQ(h.find("20261123-04").id, "20261123-040000-bbbb");
  EXPECT_EQ(h.find("20261123-030000-a").id, "20261123-030000-aaaa");
}

TEST_F(HistoryTest, AmbiguousPrefixSaysHowManyRunsItMatches) {
  History h(path_);
  h.add(make_record("20261123-030000-aaaa", "k", 1000));
  h.add(make_record("20261123-030001-bbbb", "k", 2000));
  h.add(make_record("20261123-030002-cccc", "k", 3000));
  try {
    h.find("20261123-0300");
    FAIL() << "expected RunLookupError";
  } catch (const RunLookupError& e) {
    EXPECT_THAT(e.what(), HasSubstr("ambiguous: matches 3 runs"));
    EXPECT_THAT(e.what(), HasSubstr(path_));
  }
}

TEST_F(HistoryTest, UnknownOrEmptyRunIsALookupError) {
  History h(path_);
  EXPECT_THROW(h.find("last"), RunLookupError);
  h.add(make_record("20261123-030000-aaaa", "k", 1000));
  EXPECT_THROW(h.find("2027"), RunLookupError);
  EXPECT_THROW(h.find(""), RunLookupError);
  EXPECT_THROW(h.set_baseline("20261123"), RunLookupError);
}

TEST_F(HistoryTest, LastIsTheRunThatStartedLast) {
  History h(path_);
  h.add(make_record("20261123-050000-aaaa", "k", 5000));
  h.add(make_record("20261123-060000-bbbb", "k", 6000));
  h.add(make_record("20261123-040000-cccc", "k", 4000));
  EXPECT_EQ(h.find("last").id, "20261123-060000-bbbb");
}

TEST_F(HistoryTest, KeepsOneBaselinePerKey) {
  History h(path_);
  h.add(make_record("20261123-030000-aaaa", "GET http://a/x", 1000));
  h.add(make_record("20261123-030100-bbbb", "GET http://a/x", 2000));
  h.add(make_record("20261123-030200-cccc", "GET http://a/y", 3000));
  EXPECT_FALSE(h.baseline_for("GET http://a/x"));
  try {
    h.find("baseline");
    FAIL() << "expected RunLookupError";
  } catch (const RunLookupError& e) {
    EXPECT_THAT(e.what(), HasSubstr("millstone baseline RUN"));
  }
  h.set_baseline("20261123-030000-aaaa");
  h.set_baseline("20261123-030200-cccc");
  EXPECT_EQ(h.baseline_for("GET http://a/x"), "20261123-030000-aaaa");
  EXPECT_EQ(h.baseline_for("GET http://a/y"), "20261123-030200-cccc");
  // `baseline` is the baseline of the last run's key.
  EXPECT_EQ(h.find("baseline").id, "20261123-030200-cccc");
  h.set_baseline("20261123-030100-bbbb");
  EXPECT_EQ(h.baseline_for("GET http://a/x"), "20261123-030100-bbbb");
  auto rows = h.list(10);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_TRUE(rows[0].is_baseline);   // cccc
  EXPECT_TRUE(rows[1].is_baseline);   // bbbb
  EXPECT_FALSE(rows[2].is_baseline);  // aaaa, replaced
}

TEST_F(HistoryTest, TwoProcessesRecordingAtOnceBothSucceed) {
  { History create(path_); }  // the schema first; each child opens its own connection
  constexpr int kPerProcess = 30;
  pid_t children[2];
  for (int c = 0; c < 2; ++c) {
    children[c] = fork();
    ASSERT_GE(children[c], 0);
    if (children[c] == 0) {
      try {
        for (int i = 0; i < kPerProcess; ++i) {
          // One connection per run, as each `millstone run` process has.
          History h(path_);
          h.add(make_record(fmt_id(c, i), "k", 1000 + i));
        }
      } catch (const std::exception& e) {
        fprintf(stderr, "child %d: %s\n", c, e.what());
        _exit(1);
      }
      _exit(0);
    }
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  History h(path_);
  EXPECT_EQ(h.list(1000).size(), 2u * kPerProcess);
}

TEST_F(HistoryTest, CreatesTheSchemaInAVersion0Database) {
  // A valid, empty SQLite file at user_version 0: what sqlite3 leaves after
  // touching a new file, and where every migration starts.
  raw_sql("PRAGMA page_size = 4096; VACUUM;");
  ASSERT_EQ(raw_integer("PRAGMA user_version"), 0);
  {
    History h(path_, History::Mode::kMustExist);
    h.add(make_record("20261123-030000-aaaa", "k", 1000));
  }
  EXPECT_EQ(raw_integer("PRAGMA user_version"), History::kSchemaVersion);
  EXPECT_EQ(raw_integer("SELECT count(*) FROM runs"), 1);
  EXPECT_EQ(raw_integer("SELECT count(*) FROM run_seconds"), 2);
  // WAL, so a run can be recorded while another process reads.
  sqlite3* db = nullptr;
  sqlite3_open(path_.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_F(HistoryTest, AnotherProgramsDatabaseIsNotTouched) {
  raw_sql("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');");
  std::string error = error_opening(path_);
  EXPECT_THAT(error, HasSubstr(path_ + ": not a millstone history database"));
  EXPECT_EQ(raw_integer("SELECT count(*) FROM notes"), 1);
  EXPECT_EQ(raw_integer("PRAGMA user_version"), 0);
}

TEST_F(HistoryTest, ANewerSchemaIsRefused) {
  { History h(path_); }
  raw_sql("PRAGMA user_version = 99");
  EXPECT_THAT(error_opening(path_), HasSubstr("newer millstone (schema version 99"));
}

TEST_F(HistoryTest, GarbageFileIsReportedAsCorruptedAndLeftAlone) {
  std::string garbage;
  for (int i = 0; i < 8192; ++i)
    garbage += static_cast<char>((i * 131 + 7) & 0xff);
  std::ofstream(path_, std::ios::binary) << garbage;
  std::string error = error_opening(path_);
  EXPECT_EQ(error, path_ + ": database is corrupted (file is not a database)");
  std::ifstream in(path_, std::ios::binary);
  std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, garbage);
}

TEST_F(HistoryTest, UnusablePathsAreOneLineNamingThem) {
  std::string file = dir_ + "/plain-file";
  std::ofstream(file) << "x";
  std::string under_file = file + "/sub/history.db";
  EXPECT_EQ(error_opening(under_file),
            under_file + ": cannot create directory " + file + "/sub: Not a directory");
  EXPECT_THAT(error_opening(dir_), HasSubstr(dir_ + ": is a directory"));
  EXPECT_THAT(error_opening(dir_ + "/missing.db", History::Mode::kMustExist),
              HasSubstr("no history database here"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/missing.db"));
}

TEST_F(HistoryTest, CreatesMissingDirectories) {
  std::string deep = dir_ + "/a/b/history.db";
  History h(deep);
  h.add(make_record("20261123-030000-aaaa", "k", 1000));
  EXPECT_TRUE(std::filesystem::exists(deep));
}

TEST(HistoryPath, FollowsMillstoneHistoryThenXdgThenHome) {
  auto saved = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto history = saved("MILLSTONE_HISTORY");
  auto xdg = saved("XDG_DATA_HOME");
  auto home = saved("HOME");
  setenv("MILLSTONE_HISTORY", "/x/h.db", 1);
  setenv("XDG_DATA_HOME", "/data", 1);
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(default_history_path(), "/x/h.db");
  unsetenv("MILLSTONE_HISTORY");
  EXPECT_EQ(default_history_path(), "/data/millstone/history.db");
  setenv("XDG_DATA_HOME", "relative", 1);  // invalid by the XDG spec: ignored
  EXPECT_EQ(default_history_path(), "/home/u/.local/share/millstone/history.db");
  unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(default_history_path(), "/home/u/.local/share/millstone/history.db");
  auto restore = [](const char* name, const std::optional<std::string>& v) {
    if (v)
      setenv(name, v->c_str(), 1);
    else
      unsetenv(name);
  };
  restore("MILLSTONE_HISTORY", history);
  restore("XDG_DATA_HOME", xdg);
  restore("HOME", home);
}

}  // namespace history_test
}  // namespace millstone::results
