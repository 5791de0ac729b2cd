#pragma once
// Data files that feed virtual users one row at a time: CSV with a header row
// (RFC 4180 quoting, CRLF or LF) or JSON (an array of flat objects). Read once
// at start-up; errors throw ScenarioError naming "FILE:LINE: ...".
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace millstone::scenario {

// Rows are copied into every worker; beyond this a data set belongs in a
// database the target reads, not in the load generator.
inline constexpr size_t kMaxDataFileBytes = size_t{100} << 20;

struct DataTable {
  std::vector<std::string> columns;            // usable as "<source>.<column>" in templates
  std::vector<std::vector<std::string>> rows;  // rows[r][c]; never empty
};

// `display_path` names the file in messages.
DataTable parse_csv(std::string_view text, const std::string& display_path);
// Columns are the union of the objects' keys in first-seen order; a key an
// object lacks reads as "". Numbers and booleans keep their JSON text; null is "".
DataTable parse_json_rows(std::string_view text, const std::string& display_path);

}  // namespace millstone::scenario
