#pragma once
// The local run history: every run's record in one SQLite database, so runs
// can be listed, shown, compared and a baseline kept per scenario.
// Location: $MILLSTONE_HISTORY if set, else $XDG_DATA_HOME/millstone/history.db,
// else ~/.local/share/millstone/history.db (docs/history.md).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "results/record.h"

struct sqlite3;

namespace millstone::results {

// The default database path from the environment (see above). Throws
// ResultsError when neither variable nor a home directory is available.
std::string default_history_path();

// RUN names no recorded run, or more than one (an ambiguous prefix), or
// `baseline` when no baseline is set. A usage problem rather than a broken
// database: `millstone compare` exits 2 for these and 3 for other errors.
class RunLookupError : public ResultsError {
 public:
  using ResultsError::ResultsError;
};

// The numbers of one run as stored in the `runs` table, for listings.
struct RunRow {
  std::string id;
  std::string key;
  std::string name;
  int64_t started_unix_ms = 0;
  int exit_code = 0;
  double duration_s = 0;
  uint64_t requests = 0;
  double rps = 0;
  double error_rate = 0;  // a fraction: see run_error_rate()
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  bool is_baseline = false;  // the baseline of its key
};

// Failed attempts over attempts, as the scenario `error_rate` threshold counts
// them: transport errors plus responses with status >= 400, over complete
// responses plus transport errors. 0 when nothing was attempted.
double run_error_rate(const nlohmann::json& summary);

class History {
 public:
  // The schema this code writes; PRAGMA user_version holds a database's.
  static constexpr int kSchemaVersion = 1;

  enum class Mode {
    kCreate,     // create the file (and its directory) when missing: recording a run
    kMustExist,  // a missing file is an error: listing, showing, comparing
  };
  // Opens the database and brings its schema up to kSchemaVersion. Throws
  // ResultsError ("PATH: cause") when it cannot be created or opened, is not
  // a SQLite file, is another program's database, or is from a newer millstone.
  explicit History(std::string path, Mode mode = Mode::kCreate);
  ~History();
  History(History&&) noexcept;
  History& operator=(History&&) noexcept;
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  const std::string& path() const { return path_; }

  // Stores the run, its per-second timeline and its numbers in one transaction.
  void add(const RunRecord& record);
  // Newest first; only runs of `key` unless it is empty.
  std::vector<RunRow> list(size_t limit, const std::string& key = "") const;
  // RUN: a full id, a unique prefix of one, `last` (the newest run) or
  // `baseline` (the baseline of the newest run's key). Throws RunLookupError.
  RunRecord find(const std::string& run) const;
  // Makes the run with this full id the baseline of its key. Throws
  // RunLookupError when there is no such run.
  void set_baseline(const std::string& run_id);
  // The id of the key's baseline run, if one was set.
  std::optional<std::string> baseline_for(const std::string& key) const;
  // The stored per-second timeline entries of a run, in order.
  std::vector<nlohmann::json> timeline(const std::string& run_id) const;

 private:
  [[noreturn]] void fail(const std::string& cause) const;
  void migrate();
  RunRecord load(const std::string& id) const;

  std::string path_;
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  std::unique_ptr<sqlite3, Closer> db_;
};

}  // namespace millstone::results
