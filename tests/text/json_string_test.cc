#include "text/json_string.h"

#include <gtest/gtest.h>

#include <string>

namespace millstone::text {
namespace json_string_test {

TEST(JsonString, EscapesQuotesBackslashesAndControlsAndKeepsUtf8) {
  EXPECT_EQ(json_escaped("plain"), "plain");
  EXPECT_EQ(json_escaped("say \"hi\"\\"), "say \\\"hi\\\"\\\\");
  EXPECT_EQ(json_escaped(std::string("\n\r\t\b\f\x01\x1f\0", 8)),
            "\\n\\r\\t\\b\\f\\u0001\\u001F\\u0000");
  EXPECT_EQ(json_escaped("\x7f caf\xC3\xA9 /"), "\x7f caf\xC3\xA9 /");
}

TEST(JsonString, QuotedIsAStringLiteralAndAppendAppends) {
  EXPECT_EQ(json_quoted("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(json_quoted(""), "\"\"");
  std::string out = "x=";
  append_json_escaped("1\n", &out);
  EXPECT_EQ(out, "x=1\\n");
}

}  // namespace json_string_test
}  // namespace millstone::text
