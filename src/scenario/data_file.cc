#include "scenario/data_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/yaml_fields.h"
#include "scenario/loader.h"

namespace millstone::scenario {
namespace {

namespace yaml = config;
using yaml::shown;

[[noreturn]] void fail(const std::string& path, size_t line, std::string_view message) {
  if (line == 0) {
    throw ScenarioError(fmt::format("{}: {}", path, message));
  }
  throw ScenarioError(fmt::format("{}:{}: {}", path, line, message));
}

// Column names become template variables ("users.email"), so they must be
// names a template can spell.
void check_columns(const std::vector<std::string>& columns, const std::string& path, size_t line) {
  std::unordered_set<std::string_view> seen;
  for (const std::string& column : columns) {
    if (!yaml::is_identifier(column)) {
      fail(path, line,
           fmt::format("column {} is not usable in templates; expected a name of letters, digits "
                       "and _ (rename it in the {})",
                       shown(column), line > 0 ? "header row" : "objects"));
    }
    if (!seen.insert(column).second) {
      fail(path, line,
           fmt::format("column {} appears twice; expected unique column names", shown(column)));
    }
  }
}

// One record of a CSV file: its fields and the line it starts on.
struct CsvRecord {
  std::vector<std::string> fields;
  size_t line = 0;
  bool blank = false;  // an empty line, skipped
};

class CsvReader {
 public:
  CsvReader(std::string_view text, const std::string& path) : text_(text), path_(path) {
    if (text_.starts_with("\xef\xbb\xbf")) {
      text_.remove_prefix(3);  // spreadsheet programs write a UTF-8 byte order mark
      skipped_ = 3;
    }
  }

  // Offset of the next record in the text given (a byte order mark included).
  size_t offset() const { return skipped_ + at_; }

  bool next(CsvRecord* record) {
    if (at_ >= text_.size()) {
      return false;
    }
    record->fields.clear();
    record->line = line_;
    bool quoted_any = false;
    while (true) {
      std::string field;
      if (at_ < text_.size() && text_[at_] == '"') {
        quoted_any = true;
        read_quoted(&field);
      } else {
        read_plain(&field);
      }
      record->fields.push_back(std::move(field));
      if (at_ < text_.size() && text_[at_] == ',') {
        ++at_;
        continue;
      }
      skip_line_end();
      break;
    }
    record->blank = !quoted_any && record->fields.size() == 1 && record->fields[0].empty();
    return true;
  }

 private:
  void read_plain(std::string* field) {
    const size_t start = at_;
    while (at_ < text_.size() && text_[at_] != ',' && text_[at_] != '\n' && text_[at_] != '\r') {
      if (text_[at_] == '"') {
        fail(path_, line_,
             "a quote inside an unquoted field; expected the whole field in quotes, with quotes "
             "inside it doubled (\"say \"\"hi\"\"\")");
      }
      ++at_;
    }
    field->assign(text_.substr(start, at_ - start));
  }

  void read_quoted(std::string* field) {
    const size_t opened_on = line_;
    ++at_;  // the opening quote
    while (true) {
      if (at_ >= text_.size()) {
        fail(path_, opened_on,
             "a quoted field is not closed; expected a closing quote (quotes inside a field are "
             "doubled: \"\")");
      }
      const char c = text_[at_++];
      if (c == '"') {
        if (at_ < text_.size() && text_[at_] == '"') {
          field->push_back('"');
          ++at_;
          continue;
        }
        break;
      }
      if (c == '\n') {
        ++line_;
      }
      field->push_back(c);
    }
    if (at_ < text_.size() && text_[at_] != ',' && text_[at_] != '\n' && text_[at_] != '\r') {
      fail(path_, line_,
           fmt::format("{} after a closing quote; expected a comma or the end of the line "
                       "(quotes inside a field are doubled: \"\")",
                       shown(text_.substr(at_, 1))));
    }
  }

  void skip_line_end() {
    if (at_ < text_.size() && text_[at_] == '\r') {
      ++at_;
    }
    if (at_ < text_.size() && text_[at_] == '\n') {
      ++at_;
    }
    ++line_;
  }

  std::string_view text_;
  const std::string& path_;
  size_t skipped_ = 0;
  size_t at_ = 0;
  size_t line_ = 1;
};

// Decodes the record starting at `at` (already validated by CsvReader) into
// cells[0 .. columns); the data plane's half of the CSV reader.
void decode_record(std::string_view text, size_t at, size_t columns,
                   std::vector<std::string>* cells) {
  if (cells->size() < columns) cells->resize(columns);
  size_t c = 0;
  while (c < columns) {
    std::string& out = (*cells)[c++];
    out.clear();
    if (at < text.size() && text[at] == '"') {
      ++at;
      while (at < text.size()) {
        const size_t quote = text.find('"', at);
        if (quote == std::string_view::npos) {
          at = text.size();  // cannot happen in a checked table
          break;
        }
        out.append(text.substr(at, quote - at));
        at = quote + 1;
        if (at < text.size() && text[at] == '"') {
          out.push_back('"');
          ++at;
          continue;
        }
        break;
      }
    } else {
      const size_t start = at;
      while (at < text.size() && text[at] != ',' && text[at] != '\n' && text[at] != '\r')
        ++at;
      out.assign(text.substr(start, at - start));
    }
    if (at >= text.size() || text[at] != ',') break;
    ++at;
  }
  for (; c < columns; ++c)
    (*cells)[c].clear();
}

class MappedBytes final : public DataBytes {
 public:
  MappedBytes(void* address, size_t size) : address_(address), size_(size) {}
  ~MappedBytes() override {
    if (address_ != nullptr) ::munmap(address_, size_);
  }
  MappedBytes(const MappedBytes&) = delete;
  MappedBytes& operator=(const MappedBytes&) = delete;
  std::string_view view() const override { return {static_cast<const char*>(address_), size_}; }
  size_t private_bytes() const override { return 0; }

 private:
  void* address_;
  size_t size_;
};

class OwnedBytes final : public DataBytes {
 public:
  explicit OwnedBytes(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string_view view() const override { return bytes_; }
  size_t private_bytes() const override { return bytes_.capacity(); }

 private:
  std::string bytes_;
};

// Appends `value` as one CSV field, quoted when it must be.
void append_csv_field(std::string_view value, std::string* out) {
  if (value.find_first_of(",\"\r\n") == std::string_view::npos && !value.empty()) {
    out->append(value);
    return;
  }
  out->push_back('"');
  for (char c : value) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

// 1-based line and column of a byte offset, for JSON parse errors.
std::pair<size_t, size_t> line_and_column(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  const size_t line =
      1 + static_cast<size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
  const size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  const size_t column =
      line_start == std::string_view::npos || offset == 0 ? offset + 1 : offset - line_start;
  return {line, column};
}

// Streams a JSON array of flat objects into CSV rows, without building a
// document: a document of a 50 MB file would cost several times its size.
class JsonRowsReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  JsonRowsReader(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  std::vector<std::string> columns;
  std::string csv;                   // one record per object, cells in column order
  std::vector<uint32_t> row_starts;  // offsets into csv

  bool null() override { return value("null", std::string_view()); }
  bool boolean(bool v) override { return value("boolean", v ? "true" : "false"); }
  bool number_integer(number_integer_t v) override {
    return value("number", nlohmann::json(v).dump());
  }
  bool number_unsigned(number_unsigned_t v) override {
    return value("number", nlohmann::json(v).dump());
  }
  bool number_float(number_float_t v, const string_t&) override {
    return value("number", nlohmann::json(v).dump());
  }
  bool string(string_t& v) override { return value("string", v); }
  bool binary(binary_t&) override { return value("binary", std::string_view()); }
  bool start_object(std::size_t) override {
    if (depth_ == 1) {
      cells_.clear();
      cells_.resize(columns.size());
    } else {
      nested_or_top("object");
    }
    ++depth_;
    return true;
  }
  bool key(string_t& k) override {
    auto [it, added] = index_.emplace(k, columns.size());
    if (added) {
      columns.push_back(k);
      cells_.emplace_back();
    }
    key_ = k;
    column_ = it->second;
    return true;
  }
  bool end_object() override {
    --depth_;
    row_starts.push_back(static_cast<uint32_t>(csv.size()));
    for (size_t c = 0; c < cells_.size(); ++c) {
      if (c > 0) csv.push_back(',');
      append_csv_field(cells_[c], &csv);
    }
    csv.push_back('\n');
    ++items_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ != 0) nested_or_top("array");
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& error) override {
    // The byte is 1-based and points just past the offending character.
    size_t byte = 0;
    if (const auto* parse = dynamic_cast<const nlohmann::json::parse_error*>(&error)) {
      byte = parse->byte;
    }
    const auto [line, column] = line_and_column(text_, byte == 0 ? 0 : byte - 1);
    std::string what = error.what();
    const size_t colon = what.rfind(": ");
    what = colon == std::string::npos ? what : what.substr(colon + 2);
    // nlohmann's messages usually say what was expected already.
    const std::string_view hint =
        what.find("expected") == std::string::npos
            ? "; expected an array of objects such as [{\"name\": \"ann\"}]"
            : "";
    throw ScenarioError(
        fmt::format("{}:{}:{}: invalid JSON: {}{}", path_, line, column, what, hint));
  }

  size_t items() const { return items_; }

 private:
  bool value(std::string_view type, std::string_view text) {
    if (depth_ != 2) nested_or_top(type);
    if (type != "null") cells_[column_].assign(text);
    return true;
  }

  // A value where a flat object's member is not: the document, an item, or a nested value.
  [[noreturn]] void nested_or_top(std::string_view type) {
    if (depth_ == 0) {
      fail(path_, 0,
           fmt::format("the document is a JSON {}; expected an array of objects such as "
                       "[{{\"name\": \"ann\"}}]",
                       type));
    }
    if (depth_ == 1) {
      fail(path_, 0, fmt::format("item {} is a JSON {}; expected an object", items_ + 1, type));
    }
    fail(path_, 0,
         fmt::format("item {} has {} as a JSON {}; expected flat objects (strings, numbers, "
                     "booleans)",
                     items_ + 1, shown(key_), type));
  }

  std::string_view text_;
  const std::string& path_;
  size_t depth_ = 0;  // 1 inside the array, 2 inside an item
  size_t items_ = 0;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::string> cells_;
  std::string key_;
  size_t column_ = 0;
};

}  // namespace

std::shared_ptr<const DataBytes> DataBytes::map_file(const std::string& path, size_t limit,
                                                     int* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = errno;
    return nullptr;
  }
  // Only regular files: a FIFO or /dev/zero would block or never end.
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    *error = S_ISDIR(info.st_mode) ? EISDIR : EINVAL;
    ::close(fd);
    return nullptr;
  }
  const auto size = static_cast<size_t>(info.st_size);
  if (size > limit) {
    ::close(fd);
    *error = EFBIG;
    return nullptr;
  }
  if (size == 0) {
    ::close(fd);
    return own(std::string());
  }
  void* address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd);  // the mapping keeps the file open
  if (address == MAP_FAILED) {
    *error = map_error;
    return nullptr;
  }
  return std::make_shared<MappedBytes>(address, size);
}

std::shared_ptr<const DataBytes> DataBytes::own(std::string bytes) {
  return std::make_shared<OwnedBytes>(std::move(bytes));
}

void DataTable::read_row(size_t row, std::vector<std::string>* cells) const {
  decode_record(bytes_->view(), row_starts_[row], columns.size(), cells);
}

std::vector<std::vector<std::string>> DataTable::rows() const {
  std::vector<std::vector<std::string>> all(row_count());
  for (size_t r = 0; r < all.size(); ++r) {
    read_row(r, &all[r]);
  }
  return all;
}

size_t DataTable::private_bytes() const {
  size_t bytes = row_starts_.capacity() * sizeof(uint32_t) + (bytes_ ? bytes_->private_bytes() : 0);
  for (const std::string& column : columns)
    bytes += column.capacity();
  return bytes;
}

DataTable parse_csv(std::shared_ptr<const DataBytes> bytes, const std::string& display_path) {
  const std::string_view text = bytes->view();
  CsvReader reader(text, display_path);
  CsvRecord record;
  DataTable table;
  size_t header_line = 0;
  size_t offset = reader.offset();
  while (reader.next(&record)) {
    const size_t record_start = offset;
    offset = reader.offset();
    if (record.blank) {
      continue;  // blank lines, typically at the end, are not rows
    }
    if (header_line == 0) {
      header_line = record.line;
      for (std::string& name : record.fields) {
        table.columns.emplace_back(yaml::trim(name));
      }
      check_columns(table.columns, display_path, header_line);
      continue;
    }
    if (record.fields.size() != table.columns.size()) {
      fail(display_path, record.line,
           fmt::format("row has {} field{}; expected {}, as in the header (quote fields that "
                       "contain commas)",
                       record.fields.size(), record.fields.size() == 1 ? "" : "s",
                       table.columns.size()));
    }
    table.row_starts_.push_back(static_cast<uint32_t>(record_start));
  }
  if (header_line == 0) {
    fail(display_path, 0, "the file is empty; expected a header row, then one row per record");
  }
  if (table.row_starts_.empty()) {
    fail(display_path, header_line, "the file has a header but no rows; expected at least one row");
  }
  table.row_starts_.shrink_to_fit();
  table.bytes_ = std::move(bytes);
  return table;
}

DataTable parse_json_rows(std::string_view text, const std::string& display_path) {
  JsonRowsReader reader(text, display_path);
  nlohmann::json::sax_parse(text.begin(), text.end(), &reader);
  if (reader.items() == 0) {
    fail(display_path, 0, "the array is empty; expected at least one object");
  }
  check_columns(reader.columns, display_path, 0);
  if (reader.csv.size() > UINT32_MAX) {
    fail(display_path, 0, "the rows are larger than 4 GiB as text; expected a smaller file");
  }
  DataTable table;
  table.columns = std::move(reader.columns);
  table.row_starts_ = std::move(reader.row_starts);
  table.row_starts_.shrink_to_fit();
  reader.csv.shrink_to_fit();
  table.bytes_ = DataBytes::own(std::move(reader.csv));
  return table;
}

}  // namespace millstone::scenario
