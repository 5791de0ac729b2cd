// Terminal tables: widths in columns as a terminal draws them, not bytes.
#include "results/text_table.h"

#include <sstream>

#include <gtest/gtest.h>

namespace millstone::results {
namespace text_table_test {

TEST(DisplayWidth, CountsColumnsNotBytes) {
  EXPECT_EQ(display_width(""), 0u);
  EXPECT_EQ(display_width("status in [200]"), 15u);
  EXPECT_EQ(display_width("caf\xc3\xa9"), 4u);               // café: 5 bytes
  EXPECT_EQ(display_width("\xe6\xb3\xa8\xe6\x96\x87"), 4u);  // 注文: two wide characters
  EXPECT_EQ(display_width("ok \xe2\x9c\x85"), 5u);           // ✅ is wide
  EXPECT_EQ(display_width("e\xcc\x81"), 1u);                 // e + combining acute
  EXPECT_EQ(display_width("\xf0\x9f\x9a\x80 go"), 5u);       // 🚀 is wide
  EXPECT_EQ(display_width("bad \xff\xfe"), 6u);              // invalid bytes: one each
  EXPECT_EQ(display_width("\xe6\xb3"), 2u);                  // cut short
  EXPECT_EQ(display_width("\xc0\xaf"), 2u);                  // overlong '/'
}

// Each line's width up to the end of a cell, in columns.
size_t column_end(const std::string& line, const std::string& cell) {
  size_t at = line.find(cell);
  return at == std::string::npos ? 0 : display_width(line.substr(0, at + cell.size()));
}

TEST(TextTable, AlignsMultibyteAndLongCellsByContent) {
  using Align = TextTable::Align;
  TextTable table({Align::kLeft, Align::kLeft, Align::kRight});
  table.add_row({"", "check", "passed"});
  table.add_row({"ok", "shop/\xe6\xb3\xa8\xe6\x96\x87: status in [200]", "1,204"});
  table.add_row({"FAIL", "shop/caf\xc3\xa9: body contains \"\xe2\x9c\x85\"", "7"});
  table.add_row({"ok", "a check whose name is longer than thirty-two columns", "12"});
  std::string text = table.render();
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << text;
  // The right-aligned numbers end in one column; the names start in one.
  size_t end = column_end(lines[0], "passed");
  EXPECT_EQ(column_end(lines[1], "1,204"), end) << text;
  EXPECT_EQ(column_end(lines[2], "7"), end) << text;
  EXPECT_EQ(column_end(lines[3], "12"), end) << text;
  EXPECT_EQ(lines[1].find("shop/"), lines[2].find("shop/")) << text;
  for (const std::string& line : lines) {
    EXPECT_EQ(line.rfind("  ", 0), 0u) << "indented";
    EXPECT_NE(line.back(), ' ') << "no trailing spaces";
  }
}

TEST(TextTable, MissingCellsAreEmpty) {
  TextTable table({TextTable::Align::kLeft, TextTable::Align::kLeft}, "", " ");
  table.add_row({"a"});
  table.add_row({"bb", "c"});
  EXPECT_EQ(table.render(), "a\nbb c\n");
}

}  // namespace text_table_test
}  // namespace millstone::results
