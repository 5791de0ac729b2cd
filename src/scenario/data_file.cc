#include "scenario/data_file.h"

#include <algorithm>
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
    }
  }

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
  size_t at_ = 0;
  size_t line_ = 1;
};

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

}  // namespace

DataTable parse_csv(std::string_view text, const std::string& display_path) {
  CsvReader reader(text, display_path);
  CsvRecord record;
  DataTable table;
  size_t header_line = 0;
  while (reader.next(&record)) {
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
    table.rows.push_back(std::move(record.fields));
  }
  if (header_line == 0) {
    fail(display_path, 0, "the file is empty; expected a header row, then one row per record");
  }
  if (table.rows.empty()) {
    fail(display_path, header_line, "the file has a header but no rows; expected at least one row");
  }
  return table;
}

DataTable parse_json_rows(std::string_view text, const std::string& display_path) {
  nlohmann::ordered_json document;
  try {
    document = nlohmann::ordered_json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based and points just past the offending character.
    const auto [line, column] = line_and_column(text, e.byte == 0 ? 0 : e.byte - 1);
    std::string what = e.what();
    const size_t colon = what.rfind(": ");
    what = colon == std::string::npos ? what : what.substr(colon + 2);
    // nlohmann's messages usually say what was expected already.
    const std::string_view hint =
        what.find("expected") == std::string::npos
            ? "; expected an array of objects such as [{\"name\": \"ann\"}]"
            : "";
    throw ScenarioError(
        fmt::format("{}:{}:{}: invalid JSON: {}{}", display_path, line, column, what, hint));
  }
  if (!document.is_array()) {
    fail(display_path, 0,
         fmt::format("the document is a JSON {}; expected an array of objects such as "
                     "[{{\"name\": \"ann\"}}]",
                     document.type_name()));
  }
  if (document.empty()) {
    fail(display_path, 0, "the array is empty; expected at least one object");
  }
  DataTable table;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < document.size(); ++i) {
    const auto& item = document[i];
    if (!item.is_object()) {
      fail(display_path, 0,
           fmt::format("item {} is a JSON {}; expected an object", i + 1, item.type_name()));
    }
    std::vector<std::string> row(table.columns.size());
    for (const auto& [key, value] : item.items()) {
      auto [it, added] = index.emplace(key, table.columns.size());
      if (added) {
        table.columns.push_back(key);
        row.emplace_back();
      }
      std::string& cell = row[it->second];
      if (value.is_string()) {
        cell = value.get<std::string>();
      } else if (value.is_number() || value.is_boolean()) {
        cell = value.dump();
      } else if (!value.is_null()) {
        fail(display_path, 0,
             fmt::format("item {} has {} as a JSON {}; expected flat objects (strings, numbers, "
                         "booleans)",
                         i + 1, shown(key), value.type_name()));
      }
    }
    table.rows.push_back(std::move(row));
  }
  check_columns(table.columns, display_path, 0);
  // Rows read before a later object added a column are padded: missing is "".
  for (auto& row : table.rows) {
    row.resize(table.columns.size());
  }
  return table;
}

}  // namespace millstone::scenario
