#include "results/history.h"

#include <pwd.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <utility>

#include <fmt/format.h>

namespace millstone::results {

namespace {

// PRAGMA application_id of a millstone history: "MLST". Tells our database
// apart from any other SQLite file the path may name.
constexpr int32_t kApplicationId = 0x4d4c5354;

// Waiting this long for another process's write lock covers any run being
// recorded at the same moment (a write takes milliseconds).
constexpr int kBusyTimeoutMs = 10000;

// kMigrations[i] brings a database from user_version i to i + 1; each runs
// in one transaction with the version bump. Append, never edit: databases
// in the field are at every version.
const char* const kMigrations[] = {
    // 0 -> 1: the initial schema.
    R"sql(
CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  started_unix_ms INTEGER NOT NULL,
  exit_code INTEGER NOT NULL,
  duration_s REAL NOT NULL,
  requests INTEGER NOT NULL,
  rps REAL NOT NULL,
  error_rate REAL NOT NULL,
  p50_ms REAL NOT NULL,
  p90_ms REAL NOT NULL,
  p99_ms REAL NOT NULL,
  max_ms REAL NOT NULL,
  environment TEXT NOT NULL,
  config TEXT NOT NULL,
  summary TEXT NOT NULL
);
CREATE INDEX runs_by_start ON runs (started_unix_ms);
CREATE INDEX runs_by_key ON runs (key, started_unix_ms);
CREATE TABLE run_seconds (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  second INTEGER NOT NULL,
  requests INTEGER,
  errors INTEGER,
  p50_ms REAL,
  p99_ms REAL,
  max_ms REAL,
  entry TEXT NOT NULL
);
CREATE INDEX run_seconds_by_run ON run_seconds (run_id, second);
CREATE TABLE baselines (
  key TEXT PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  set_unix_ms INTEGER NOT NULL
);
)sql",
};
static_assert(std::size(kMigrations) == History::kSchemaVersion);

// An SQLite call failed: caught by History, which names its database.
struct SqliteFailure {
  int rc;
  std::string message;
};

[[noreturn]] void throw_failure(sqlite3* db, int rc) {
  throw SqliteFailure{rc, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)};
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) throw_failure(db, rc);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are numbered from 1, as in SQL.
  Statement& bind(int i, const std::string& text) {
    check(
        sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int i, int64_t n) {
    check(sqlite3_bind_int64(stmt_, i, n));
    return *this;
  }
  Statement& bind(int i, double x) {
    check(sqlite3_bind_double(stmt_, i, x));
    return *this;
  }
  Statement& bind_null(int i) {
    check(sqlite3_bind_null(stmt_, i));
    return *this;
  }
  // True with a row to read, false when done.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_failure(db_, rc);
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  // Columns are numbered from 0, as in the C API.
  std::string text(int i) const {
    const unsigned char* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string();
  }
  int64_t integer(int i) const { return sqlite3_column_int64(stmt_, i); }
  double real(int i) const { return sqlite3_column_double(stmt_, i); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw_failure(db_, rc);
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) throw_failure(db, rc);
}

int64_t single_integer(sqlite3* db, const char* sql) {
  Statement s(db, sql);
  return s.step() ? s.integer(0) : 0;
}

// BEGIN IMMEDIATE takes the write lock up front (waiting through the busy
// timeout), so a writer never fails half-way on a lock upgrade. Rolls back
// unless committed.
class WriteTransaction {
 public:
  explicit WriteTransaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
  ~WriteTransaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  void commit() {
    exec(db_, "COMMIT");
    done_ = true;
  }

 private:
  sqlite3* db_;
  bool done_ = false;
};

// A number from a summary object, or `fallback` when absent or not a number
// (summaries from older or newer versions may lack a field).
double number(const nlohmann::json& j, const char* name, double fallback = 0) {
  if (!j.is_object()) return fallback;
  auto it = j.find(name);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

// Response samples in a summary may hold bytes that are not UTF-8; the
// history keeps the rest of the run rather than refusing it.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string cause_of(const SqliteFailure& f) {
  switch (f.rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return fmt::format("database is corrupted ({})", f.message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return fmt::format("database is locked by another process for over {}s ({})",
                         kBusyTimeoutMs / 1000, f.message);
    case SQLITE_READONLY:
      return fmt::format("database is read-only ({})", f.message);
    case SQLITE_FULL:
      return fmt::format("disk is full ({})", f.message);
    case SQLITE_CANTOPEN:
      return fmt::format("cannot open the database file ({})", f.message);
    default:
      return f.message;
  }
}

}  // namespace

std::string default_history_path() {
  const char* explicit_path = std::getenv("MILLSTONE_HISTORY");
  if (explicit_path && *explicit_path) return explicit_path;
  // The XDG spec says a relative XDG_DATA_HOME is invalid and to be ignored.
  const char* data_home = std::getenv("XDG_DATA_HOME");
  if (data_home && data_home[0] == '/') return std::string(data_home) + "/millstone/history.db";
  std::string home;
  if (const char* h = std::getenv("HOME"); h && *h) {
    home = h;
  } else if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir && *pw->pw_dir) {
    home = pw->pw_dir;
  }
  if (home.empty()) {
    throw ResultsError(
        "no home directory to keep the run history in; set MILLSTONE_HISTORY or use --history");
  }
  return home + "/.local/share/millstone/history.db";
}

double run_error_rate(const nlohmann::json& summary) {
  double failed = 0;
  double attempts = 0;
  auto steps = summary.find("steps");
  if (steps != summary.end() && steps->is_array() && !steps->empty()) {
    for (const nlohmann::json& s : *steps) {
      failed += number(s, "failed");
      attempts += number(s, "requests") + number(s, "errors");
    }
  } else {
    failed = number(summary, "error_total");
    attempts = number(summary, "requests") + failed;
    auto status = summary.find("status");
    if (status != summary.end() && status->is_object()) {
      for (const auto& [code, n] : status->items()) {
        if (std::atoi(code.c_str()) >= 400 && n.is_number()) failed += n.get<double>();
      }
    }
  }
  return attempts > 0 ? failed / attempts : 0;
}

void History::Closer::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

History::History(std::string path, Mode mode) : path_(std::move(path)) {
  if (path_.empty()) fail("no database path given");
  struct stat st {};
  if (stat(path_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail("is a directory, not a database file");
  } else if (mode == Mode::kMustExist) {
    if (errno == ENOENT) fail("no history database here (no run has been recorded yet)");
    fail(fmt::format("cannot open: {}", strerror(errno)));
  } else {
    std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (ec) fail(fmt::format("cannot create directory {}: {}", parent.string(), ec.message()));
    }
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (mode == Mode::kCreate) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path_.c_str(), &raw, flags, nullptr);
  db_.reset(raw);  // closed even when opening failed
  if (rc != SQLITE_OK) {
    int err = sqlite3_system_errno(raw);
    std::string cause = cause_of({rc, raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)});
    if (err != 0) cause += fmt::format(": {}", strerror(err));
    fail(cause);
  }
  sqlite3_extended_result_codes(db_.get(), 1);
  sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);
  try {
    migrate();
  } catch (const SqliteFailure& f) {
    fail(cause_of(f));
  }
}

History::~History() = default;
History::History(History&&) noexcept = default;
History& History::operator=(History&&) noexcept = default;

void History::fail(const std::string& cause) const {
  throw ResultsError(fmt::format("{}: {}", path_, cause));
}

void History::migrate() {
  sqlite3* db = db_.get();
  // The first read of the file: garbage fails here with SQLITE_NOTADB.
  int64_t version = single_integer(db, "PRAGMA user_version");
  int64_t application = single_integer(db, "PRAGMA application_id");
  if (version != kSchemaVersion || application != kApplicationId) {
    WriteTransaction transaction(db);
    // Another process may have migrated while we waited for the lock.
    version = single_integer(db, "PRAGMA user_version");
    application = single_integer(db, "PRAGMA application_id");
    bool empty = single_integer(db, "SELECT count(*) FROM sqlite_master") == 0;
    if (application != kApplicationId && !(version == 0 && application == 0 && empty)) {
      fail("not a millstone history database");
    }
    if (version > kSchemaVersion) {
      fail(fmt::format(
          "written by a newer millstone (schema version {}; this millstone reads up to {})",
          version, kSchemaVersion));
    }
    for (int64_t v = version; v < kSchemaVersion; ++v) {
      exec(db, kMigrations[v]);
    }
    exec(db, fmt::format("PRAGMA user_version = {}", kSchemaVersion).c_str());
    exec(db, fmt::format("PRAGMA application_id = {}", kApplicationId).c_str());
    transaction.commit();
  }
  // WAL lets `runs` read while a run is being recorded. The mode is stored
  // in the file; switching needs a moment alone with it, so if another
  // process holds it right now the next open switches instead.
  std::string journal;
  {
    Statement mode(db, "PRAGMA journal_mode");  // finished before switching
    if (mode.step()) journal = mode.text(0);
  }
  if (journal != "wal") {
    int rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) {
      throw_failure(db, rc);
    }
  }
  exec(db, "PRAGMA foreign_keys = ON");
}

void History::add(const RunRecord& record) {
  const nlohmann::json& s = record.summary;
  const nlohmann::json empty = nlohmann::json::object();
  auto latency = s.is_object() && s.contains("latency_ms") ? s["latency_ms"] : empty;
  try {
    WriteTransaction transaction(db_.get());
    Statement run(db_.get(),
                  "INSERT INTO runs (id, key, name, started_unix_ms, exit_code, duration_s, "
                  "requests, rps, error_rate, p50_ms, p90_ms, p99_ms, max_ms, environment, config, "
                  "summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                  "?15, ?16)");
    run.bind(1, record.id)
        .bind(2, record.key)
        .bind(3, record.name)
        .bind(4, record.env.started_unix_ms)
        .bind(5, int64_t{record.exit_code})
        .bind(6, number(s, "duration_s"))
        .bind(7, static_cast<int64_t>(number(s, "requests")))
        .bind(8, number(s, "rps"))
        .bind(9, run_error_rate(s))
        .bind(10, number(latency, "p50"))
        .bind(11, number(latency, "p90"))
        .bind(12, number(latency, "p99"))
        .bind(13, number(latency, "max"))
        .bind(14, dump(to_json(record.env)))
        .bind(15, dump(record.config))
        .bind(16, dump(s));
    run.step();
    auto timeline = s.is_object() ? s.find("timeline") : s.end();
    if (s.is_object() && timeline != s.end() && timeline->is_array()) {
      Statement second(db_.get(),
                       "INSERT INTO run_seconds (run_id, second, requests, errors, p50_ms, "
                       "p99_ms, max_ms, entry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
      int64_t index = 0;
      for (const nlohmann::json& entry : *timeline) {
        second.bind(1, record.id).bind(2, static_cast<int64_t>(number(entry, "second", index)));
        // Typed columns for querying with the sqlite3 shell; NULL when an
        // entry lacks the field. `entry` keeps everything, including fields
        // added after this schema.
        int column = 3;
        for (const char* field : {"requests", "errors"}) {
          if (entry.contains(field) && entry[field].is_number()) {
            second.bind(column, entry[field].get<int64_t>());
          } else {
            second.bind_null(column);
          }
          ++column;
        }
        for (const char* field : {"p50_ms", "p99_ms", "max_ms"}) {
          if (entry.contains(field) && entry[field].is_number()) {
            second.bind(column, entry[field].get<double>());
          } else {
            second.bind_null(column);
          }
          ++column;
        }
        second.bind(8, dump(entry));
        second.step();
        second.reset();
        ++index;
      }
    }
    transaction.commit();
  } catch (const SqliteFailure& f) {
    if ((f.rc & 0xff) == SQLITE_CONSTRAINT)
      fail(fmt::format("run {} is already recorded", record.id));
    fail(cause_of(f));
  }
}

std::vector<RunRow> History::list(size_t limit, const std::string& key) const {
  std::vector<RunRow> rows;
  try {
    // A filter without a space ("http://host/path") matches the URL of a
    // key of any method ("GET http://host/path").
    Statement s(db_.get(),
                "SELECT r.id, r.key, r.name, r.started_unix_ms, r.exit_code, r.duration_s, "
                "r.requests, r.rps, r.error_rate, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, "
                "b.run_id IS NOT NULL FROM runs r "
                "LEFT JOIN baselines b ON b.key = r.key AND b.run_id = r.id "
                "WHERE ?1 = '' OR r.key = ?1 OR (instr(?1, ' ') = 0 AND "
                "substr(r.key, instr(r.key, ' ') + 1) = ?1) "
                "ORDER BY r.started_unix_ms DESC, r.id DESC LIMIT ?2");
    s.bind(1, key).bind(2, static_cast<int64_t>(limit));
    while (s.step()) {
      RunRow row;
      row.id = s.text(0);
      row.key = s.text(1);
      row.name = s.text(2);
      row.started_unix_ms = s.integer(3);
      row.exit_code = static_cast<int>(s.integer(4));
      row.duration_s = s.real(5);
      row.requests = static_cast<uint64_t>(s.integer(6));
      row.rps = s.real(7);
      row.error_rate = s.real(8);
      row.p50_ms = s.real(9);
      row.p90_ms = s.real(10);
      row.p99_ms = s.real(11);
      row.max_ms = s.real(12);
      row.is_baseline = s.integer(13) != 0;
      rows.push_back(std::move(row));
    }
  } catch (const SqliteFailure& f) {
    fail(cause_of(f));
  }
  return rows;
}

RunRecord History::find(const std::string& run) const {
  std::string id;
  try {
    if (run == "last" || run == "baseline") {
      Statement last(db_.get(), "SELECT id, key FROM runs ORDER BY started_unix_ms DESC, id DESC");
      if (!last.step()) throw RunLookupError(fmt::format("{}: no run recorded yet", path_));
      id = last.text(0);
      if (run == "baseline") {
        std::string key = last.text(1);
        auto baseline = baseline_for(key);
        if (!baseline) {
          throw RunLookupError(fmt::format(
              "{}: no baseline for {} (the last run's); mark one with `millstone baseline RUN`",
              path_, key));
        }
        id = *baseline;
      }
    } else {
      Statement matches(db_.get(),
                        "SELECT id FROM runs WHERE ?1 <> '' AND (id = ?1 OR "
                        "substr(id, 1, length(?1)) = ?1) ORDER BY id = ?1 DESC, id");
      matches.bind(1, run);
      std::vector<std::string> ids;
      while (matches.step()) {
        ids.push_back(matches.text(0));
        if (ids.front() == run) break;  // an exact id wins over longer ids it prefixes
      }
      if (ids.empty()) {
        throw RunLookupError(
            fmt::format("{}: no run '{}' (`millstone runs` lists them)", path_, run));
      }
      if (ids.size() > 1 && ids.front() != run) {
        std::string shown;
        for (size_t i = 0; i < ids.size() && i < 3; ++i)
          shown += (i ? ", " : "") + ids[i];
        throw RunLookupError(fmt::format("{}: '{}' is ambiguous: matches {} runs ({}{})", path_,
                                         run, ids.size(), shown, ids.size() > 3 ? ", ..." : ""));
      }
      id = ids.front();
    }
  } catch (const SqliteFailure& f) {
    fail(cause_of(f));
  }
  return load(id);
}

RunRecord History::load(const std::string& id) const {
  RunRecord record;
  try {
    Statement s(db_.get(),
                "SELECT id, key, name, exit_code, environment, config, summary FROM runs "
                "WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) throw RunLookupError(fmt::format("{}: no run '{}'", path_, id));
    record.id = s.text(0);
    record.key = s.text(1);
    record.name = s.text(2);
    record.exit_code = static_cast<int>(s.integer(3));
    try {
      record.env = environment_from_json(nlohmann::json::parse(s.text(4)));
      record.config = nlohmann::json::parse(s.text(5));
      record.summary = nlohmann::json::parse(s.text(6));
    } catch (const nlohmann::json::exception& e) {
      fail(fmt::format("database is corrupted (run {} has unreadable JSON: {})", id, e.what()));
    }
  } catch (const SqliteFailure& f) {
    fail(cause_of(f));
  }
  return record;
}

void History::set_baseline(const std::string& run_id) {
  try {
    WriteTransaction transaction(db_.get());
    Statement s(db_.get(),
                "INSERT OR REPLACE INTO baselines (key, run_id, set_unix_ms) "
                "SELECT key, id, ?2 FROM runs WHERE id = ?1");
    s.bind(1, run_id).bind(2, now_unix_ms());
    s.step();
    if (sqlite3_changes(db_.get()) == 0) {
      throw RunLookupError(fmt::format("{}: no run '{}'", path_, run_id));
    }
    transaction.commit();
  } catch (const SqliteFailure& f) {
    fail(cause_of(f));
  }
}

std::optional<std::string> History::baseline_for(const std::string& key) const {
  try {
    Statement s(db_.get(), "SELECT run_id FROM baselines WHERE key = ?1");
    s.bind(1, key);
    if (s.step()) return s.text(0);
  } catch (const SqliteFailure& f) {
    fail(cause_of(f));
  }
  return std::nullopt;
}

std::vector<nlohmann::json> History::timeline(const std::string& run_id) const {
  std::vector<nlohmann::json> entries;
  try {
    Statement s(db_.get(),
                "SELECT entry FROM run_seconds WHERE run_id = ?1 ORDER BY second, rowid");
    s.bind(1, run_id);
    while (s.step())
      entries.push_back(nlohmann::json::parse(s.text(0), nullptr, false));
  } catch (const SqliteFailure& f) {
    fail(cause_of(f));
  }
  return entries;
}

}  // namespace millstone::results
