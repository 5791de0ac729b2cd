#pragma once
// Plain-text tables for the terminal (`millstone show`, `compare`): each
// column as wide as its widest cell, measured as a terminal shows it, not in
// bytes: "ok ✓" is 4 columns and 6 bytes, "注文" 4 columns and 6 bytes.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace millstone::results {

// Terminal columns of UTF-8 text: one per code point, two for East Asian
// wide and fullwidth characters and emoji, none for combining marks and
// zero-width characters. A byte that is not valid UTF-8 counts as one column
// (terminals show a replacement character for it).
size_t display_width(std::string_view utf8);

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  // One entry per column; `indent` starts each line, `gap` separates columns.
  explicit TextTable(std::vector<Align> columns, std::string indent = "  ", std::string gap = "  ");
  // Missing cells are empty; extra cells are dropped.
  void add_row(std::vector<std::string> cells);
  // Every row, aligned, each ending in '\n', no trailing spaces.
  std::string render() const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<Align> columns_;
  std::string indent_;
  std::string gap_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace millstone::results
