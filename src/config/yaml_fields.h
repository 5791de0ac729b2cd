#pragma once
// Reading YAML with errors that point into the file, for the mock's config
// and for scenarios: maps with known keys (unknown ones get a "did you mean"),
// scalars, durations, numbers and latency distributions. Every failure throws
// the file kind's own error (derived from config::Error) with one line
// "FILE:LINE:COL: what was wrong; what was expected".
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/yaml_text.h"
#include "random/randomness.h"

namespace millstone::config {

using Keys = std::span<const std::string_view>;

struct Field {
  std::string key;
  YAML::Mark key_mark;
  YAML::Node value;
  YAML::Mark mark;  // of the value; of the key when the value is empty
};

struct MapFields {
  YAML::Mark mark;
  std::vector<Field> fields;

  const Field* find(std::string_view key) const;
};

// What differs between the kinds of file a Reader reads.
struct FileKind {
  // The loader's own error (mock::ConfigError, scenario::ScenarioError) for a
  // one-line message.
  std::exception_ptr (*make_error)(const std::string& message);
  // When YAML aliases expand the file beyond the budget (256 MiB).
  std::string_view expansion_message;
  // The longest duration accepted, and its words: "{what} {raw} is longer
  // than {max_duration_text}".
  double max_duration_us;
  std::string_view max_duration_text;
};

std::string join(Keys keys, std::string_view separator = ", ");
std::string join(const std::vector<std::string>& items, size_t max_items,
                 std::string_view separator = ", ");
// The closest candidate within a small edit distance, for "did you mean".
// Also knows the names other load testers use (capture -> extract, ...).
std::optional<std::string_view> closest(std::string_view word, Keys candidates);
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& names);
// " (did you mean \"x\"?)" or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& names);
// "a single value", "a list", "a map", "empty".
std::string_view kind_of(const YAML::Node& node);
std::string_view trim(std::string_view text);
// The whole text as a finite double, or nothing.
std::optional<double> parse_double(std::string_view text);
// 10000000 rather than 1e+07; fractions as %g.
std::string format_number(double value);
// [A-Za-z_][A-Za-z0-9_]*: names that templates can refer to.
bool is_identifier(std::string_view name);

// Reads up to `limit` bytes of a regular file into *out; returns 0 or an errno value.
int read_whole_file(const std::string& path, size_t limit, std::string* out);

class Reader {
 public:
  // `text` must outlive the reader: template and threshold errors point at
  // the exact column by looking at the source.
  Reader(std::string source_name, std::string_view text, const FileKind& kind);

  const std::string& source() const { return source_; }
  // "FILE:LINE:COL", or "FILE" without a position.
  std::string location(const YAML::Mark& mark) const;
  [[noreturn]] void fail(const YAML::Mark& mark, std::string_view message) const;
  // The position of byte `offset` of a scalar's value: exact when the scalar
  // is written on one line, plain or quoted without escapes; else its start.
  YAML::Mark mark_at(const YAML::Node& scalar, const YAML::Mark& start, size_t offset) const;

  // YAML aliases let a small file expand into a huge one; every entry and
  // string read is charged against a budget.
  void charge(size_t cost, const YAML::Mark& mark);
  // What the budget has left, for things read besides the YAML (body files).
  size_t budget_left() const;

  // An empty `allowed` accepts any key (header maps).
  MapFields read_map(const YAML::Node& node, const YAML::Mark& mark, std::string_view what,
                     Keys allowed);
  // A scalar's text; anything else fails with "<what> is a map; expected <expected>".
  std::string scalar(const Field& field, std::string_view expected);
  std::string scalar(const YAML::Node& node, const YAML::Mark& mark, std::string_view what,
                     std::string_view expected);
  // Microseconds, from "250us", "20ms", "1.5s", "2m", "1h"; a unit is required.
  int64_t duration_us(const Field& field);
  int64_t duration_us(std::string_view text, const YAML::Mark& mark, std::string_view what);
  // A number in [min, max]; `whole` rejects fractions.
  double number(const Field& field, double min, double max, bool whole);
  bool boolean(const Field& field);
  // 20ms | "1s..3s" (uniform) | {distribution: lognormal, median: 1s, p99: 5s} ...
  random::LatencyModel latency(const Field& field);

 private:
  std::string source_;
  std::string_view text_;
  const FileKind& kind_;
  size_t spent_ = 0;
};

// Parses one YAML document (a second one is an error), converting yaml-cpp's
// exceptions to the file kind's error.
YAML::Node load_document(const std::string& text, const std::string& source_name,
                         const FileKind& kind);

}  // namespace millstone::config
