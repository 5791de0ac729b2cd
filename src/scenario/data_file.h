#pragma once
// Data files that feed virtual users one row at a time: CSV with a header row
// (RFC 4180 quoting, CRLF or LF) or JSON (an array of flat objects). Read once
// at start-up; errors throw ScenarioError naming "FILE:LINE: ...".
//
// A table is compact: the file's bytes plus one offset per row. A CSV file is
// mapped read-only, so every worker of a machine shares its pages through the
// page cache and holds privately only the row offsets (4 bytes a row); a
// row's cells are decoded when a virtual user takes it. JSON is transcoded
// once into the same CSV form (owned by the process). The bytes are also what
// a coordinator would send to a remote agent that cannot read its files
// (docs/architecture.md#data-files).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace millstone::scenario {

// Every worker indexes the whole file; beyond this a data set belongs in a
// database the target reads, not in the load generator.
inline constexpr size_t kMaxDataFileBytes = size_t{100} << 20;

// The bytes a table indexes: a read-only file mapping or an owned buffer.
class DataBytes {
 public:
  virtual ~DataBytes() = default;
  virtual std::string_view view() const = 0;
  // Bytes this process holds privately for them (0 for a shared mapping).
  virtual size_t private_bytes() const = 0;

  // Maps `path` (a regular file of at most `limit` bytes) read-only. Returns
  // nullptr with *error = errno (EFBIG when over `limit`).
  static std::shared_ptr<const DataBytes> map_file(const std::string& path, size_t limit,
                                                   int* error);
  static std::shared_ptr<const DataBytes> own(std::string bytes);
};

// Data files as a coordinator sent them to a worker, by the path the loader
// resolves (base_dir + name, lexically normal): the worker reads no file.
using DataFileSet = std::map<std::string, std::shared_ptr<const DataBytes>>;

class DataTable {
 public:
  std::vector<std::string> columns;  // usable as "<source>.<column>" in templates

  size_t row_count() const { return row_starts_.size(); }
  // Writes row `row`'s cells into (*cells)[0 .. columns.size()), reusing the
  // strings' capacity; cells a row lacks read as "". Never throws: the rows
  // were checked when the table was built.
  void read_row(size_t row, std::vector<std::string>* cells) const;
  // Every row decoded; for tests and tools, not for the data plane.
  std::vector<std::vector<std::string>> rows() const;
  // Memory this process holds privately for the table (the row index and
  // owned bytes; a mapped file's pages are shared and not counted).
  size_t private_bytes() const;

 private:
  friend DataTable parse_csv(std::shared_ptr<const DataBytes> bytes,
                             const std::string& display_path);
  friend DataTable parse_json_rows(std::string_view text, const std::string& display_path);

  std::shared_ptr<const DataBytes> bytes_;
  std::vector<uint32_t> row_starts_;  // offset of each row's first byte in bytes_ (never empty)
};

// `display_path` names the file in messages.
DataTable parse_csv(std::shared_ptr<const DataBytes> bytes, const std::string& display_path);
inline DataTable parse_csv(std::string_view text, const std::string& display_path) {
  return parse_csv(DataBytes::own(std::string(text)), display_path);
}
// Columns are the union of the objects' keys in first-seen order; a key an
// object lacks reads as "". Numbers and booleans keep their JSON text; null is "".
DataTable parse_json_rows(std::string_view text, const std::string& display_path);

}  // namespace millstone::scenario
