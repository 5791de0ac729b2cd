#include "http/chunked.h"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace millstone::http {
namespace chunked_test {

using Expect = ChunkedDecoder::Expect;
using Status = ChunkedDecoder::Status;

// Feeds a chunked body the way the parsers do, with size lines already split
// off at "\n"; returns the payload, or "ERROR" on the first failure.
std::string decode(std::string_view body, uint64_t allowance = UINT64_MAX) {
  ChunkedDecoder chunks;
  chunks.reset();
  std::string payload;
  size_t pos = 0;
  while (chunks.expect() != Expect::kTrailers) {
    if (pos == body.size()) return "SHORT";
    switch (chunks.expect()) {
      case Expect::kSizeLine: {
        size_t lf = body.find('\n', pos);
        if (lf == std::string_view::npos) return "SHORT";
        std::string_view line = body.substr(pos, lf - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (chunks.on_size_line(line, allowance - payload.size()) != Status::kOk) return "ERROR";
        pos = lf + 1;
        break;
      }
      case Expect::kData: {
        const size_t n = chunks.take_data(body.size() - pos);
        payload.append(body.substr(pos, n));
        pos += n;
        break;
      }
      case Expect::kDataEnd:
        if (chunks.on_data_end(body[pos++]) != Status::kOk) return "ERROR";
        break;
      case Expect::kTrailers:
        break;
    }
  }
  return payload;
}

TEST(ChunkedDecoderTest, DecodesChunksUpToTheLastOne) {
  EXPECT_EQ(decode("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n"), "hello world");
  EXPECT_EQ(decode("3\nabc\n0\n"), "abc");  // bare LF, as the parsers accept
  EXPECT_EQ(decode("0\r\n"), "");
}

TEST(ChunkedDecoderTest, RejectsBadFraming) {
  EXPECT_EQ(decode("5\r\nhelloX\r\n0\r\n"), "ERROR");   // data longer than its size
  EXPECT_EQ(decode("5\r\nhello\r\r\n0\r\n"), "ERROR");  // two CRs
  EXPECT_EQ(decode("zz\r\n"), "ERROR");
  EXPECT_EQ(decode("\r\n"), "ERROR");
}

TEST(ChunkedDecoderTest, AllowanceLimitsThePayload) {
  ChunkedDecoder chunks;
  chunks.reset();
  EXPECT_EQ(chunks.on_size_line("10", 15), Status::kTooLarge);
  EXPECT_EQ(chunks.on_size_line("10", 16), Status::kOk);
  EXPECT_EQ(chunks.expect(), Expect::kData);
  EXPECT_EQ(chunks.take_data(100), 16u);
  EXPECT_EQ(chunks.expect(), Expect::kDataEnd);
}

}  // namespace chunked_test
}  // namespace millstone::http
