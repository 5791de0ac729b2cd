#include "http/syntax.h"

#include <gtest/gtest.h>

#include <string>

namespace millstone::http::syntax {
namespace syntax_test {

// The word-at-a-time check must agree with the byte table for every byte
// value at every position of a word, including in the tail.
TEST(SyntaxTest, FastFieldValueCheckMatchesTable) {
  for (size_t length : {1u, 7u, 8u, 9u, 16u, 23u}) {
    for (size_t at = 0; at < length; ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string s(length, 'a');
        s[at] = static_cast<char>(b);
        ASSERT_EQ(is_field_value_fast(s), is_field_value(s))
            << "byte " << b << " at " << at << " of " << length;
      }
    }
  }
  EXPECT_TRUE(is_field_value_fast(""));
  EXPECT_TRUE(is_field_value_fast("text/html;\tcharset=\xe4\xff"));
  EXPECT_FALSE(is_field_value_fast("0123456789abcdef\x7f"));
}

TEST(SyntaxTest, SplitHeaderLine) {
  std::string_view name, value;
  EXPECT_TRUE(split_header_line("Name:  va lue \t", &name, &value));
  EXPECT_EQ(name, "Name");
  EXPECT_EQ(value, "va lue");
  EXPECT_TRUE(split_header_line("X:", &name, &value));
  EXPECT_EQ(value, "");
  EXPECT_FALSE(split_header_line("", &name, &value));
  EXPECT_FALSE(split_header_line(":v", &name, &value));
  EXPECT_FALSE(split_header_line("Name", &name, &value));
  EXPECT_FALSE(split_header_line("Na me: v", &name, &value));
  EXPECT_FALSE(split_header_line(" Name: v", &name, &value));
  EXPECT_FALSE(split_header_line("Name: a\rb", &name, &value));
}

TEST(SyntaxTest, Lists) {
  EXPECT_TRUE(list_contains("keep-alive, Close", "close"));
  EXPECT_FALSE(list_contains("closed", "close"));
  EXPECT_FALSE(list_contains("", "close"));
  EXPECT_EQ(list_last("gzip, chunked"), "chunked");
  EXPECT_EQ(list_last("chunked, gzip ,"), "gzip");
  EXPECT_EQ(list_last(" , "), "");
}

TEST(SyntaxTest, ParseDecimal) {
  uint64_t v = 0;
  EXPECT_TRUE(parse_decimal("0", &v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(parse_decimal("18446744073709551615", &v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(parse_decimal("18446744073709551616", &v));
  EXPECT_FALSE(parse_decimal("", &v));
  EXPECT_FALSE(parse_decimal("-1", &v));
  EXPECT_FALSE(parse_decimal("1 ", &v));
}

TEST(SyntaxTest, ChunkSizeLine) {
  uint64_t size = 0;
  EXPECT_EQ(parse_chunk_size_line("1a", &size), ChunkLine::kOk);
  EXPECT_EQ(size, 26u);
  EXPECT_EQ(parse_chunk_size_line("FF ; a=b ; c", &size), ChunkLine::kOk);
  EXPECT_EQ(size, 255u);
  EXPECT_EQ(parse_chunk_size_line("0000000000000000000000000010", &size), ChunkLine::kOk);
  EXPECT_EQ(size, 16u);
  EXPECT_EQ(parse_chunk_size_line("FFFFFFFFFFFFFFF", &size), ChunkLine::kOk);
  EXPECT_EQ(size, kMaxChunkSize - 1);
  EXPECT_EQ(parse_chunk_size_line("1000000000000000", &size), ChunkLine::kBad);
  EXPECT_EQ(parse_chunk_size_line("", &size), ChunkLine::kBad);
  EXPECT_EQ(parse_chunk_size_line(";a", &size), ChunkLine::kBad);
  EXPECT_EQ(parse_chunk_size_line("0x10", &size), ChunkLine::kBad);
  EXPECT_EQ(parse_chunk_size_line("10 20", &size), ChunkLine::kBad);
}

}  // namespace syntax_test
}  // namespace millstone::http::syntax
