#include "text/printable.h"

#include <gtest/gtest.h>

namespace millstone::text {
namespace printable_test {

using namespace std::string_literals;

TEST(Printable, PrintableTextIsKept) {
  EXPECT_EQ(printable("status 500, body: {\"error\":\"boom\"} \\ ok"),
            "status 500, body: {\"error\":\"boom\"} \\ ok");
  EXPECT_EQ(printable("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD");
  EXPECT_EQ(printable(""), "");
}

TEST(Printable, ControlBytesAreWrittenOut) {
  EXPECT_EQ(printable("\x1b[31mred\x1b]0;title\x07"), "\\x1b[31mred\\x1b]0;title\\x07");
  EXPECT_EQ(printable("a\0b"s), "a\\x00b");
  EXPECT_EQ(printable("line\nnext\r\tend\x7f"), "line\\nnext\\r\\tend\\x7f");
}

TEST(Printable, C1ControlsAndDisplayReorderingAreWrittenOut) {
  EXPECT_EQ(printable("\xC2\x9B"
                      "2J"),
            "\\u009b2J");  // CSI as a C1 control
  EXPECT_EQ(printable("\xC2\x85"), "\\u0085");
  EXPECT_EQ(printable("\xC2\xA0"), "\xC2\xA0");         // no-break space is printable
  EXPECT_EQ(printable("x\xE2\x80\xAEy"), "x\\u202ey");  // right-to-left override
}

TEST(Printable, InvalidUtf8IsReplaced) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(printable("a\xFF"
                      "b"),
            "a" + r + "b");
  EXPECT_EQ(printable("\xC3"), r);                          // cut short
  EXPECT_EQ(printable("\xC0\xAF"), r + r);                  // overlong
  EXPECT_EQ(printable("\xED\xA0\x80"), r + r + r);          // a surrogate
  EXPECT_EQ(printable("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(printable("ok\xE2\x82"), "ok" + r + r);         // truncated at the end
}

}  // namespace printable_test
}  // namespace millstone::text
