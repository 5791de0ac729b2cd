#include "grpc/status.h"

#include <gtest/gtest.h>

namespace millstone::grpc {
namespace status_test {

TEST(GrpcStatus, NamesAndCodes) {
  EXPECT_EQ(status_name(0), "OK");
  EXPECT_EQ(status_name(4), "DEADLINE_EXCEEDED");
  EXPECT_EQ(status_name(14), "UNAVAILABLE");
  EXPECT_EQ(status_name(16), "UNAUTHENTICATED");
  EXPECT_EQ(status_name(17), "CODE_17");
  for (uint32_t code = 0; code <= kLastStatus; ++code)
    EXPECT_EQ(status_from_text(status_name(code)), code);
  EXPECT_EQ(status_from_text("unavailable"), 14u);
  EXPECT_EQ(status_from_text("14"), 14u);
  EXPECT_EQ(status_from_text("NOPE"), std::nullopt);
  EXPECT_EQ(status_from_text(""), std::nullopt);
}

TEST(GrpcStatus, FieldIsDigitsOnly) {
  EXPECT_EQ(parse_status_field("0"), 0u);
  EXPECT_EQ(parse_status_field("14"), 14u);
  EXPECT_EQ(parse_status_field("123456789"), 123456789u);
  for (const char* bad : {"", " 0", "0 ", "-1", "+1", "1x", "OK", "1234567890"})
    EXPECT_EQ(parse_status_field(bad), std::nullopt) << bad;
}

TEST(GrpcStatus, TimeoutFieldRoundsUpToEightDigits) {
  EXPECT_EQ(timeout_field(0), "1u");
  EXPECT_EQ(timeout_field(250), "250u");
  EXPECT_EQ(timeout_field(99'999'999), "99999999u");
  EXPECT_EQ(timeout_field(100'000'000), "100000m");
  EXPECT_EQ(timeout_field(100'000'001), "100001m");  // never shorter than asked
  EXPECT_EQ(timeout_field(int64_t{200'000} * 1'000'000), "200000S");
  EXPECT_EQ(timeout_field(int64_t{100'000'000} * 1'000'000), "1666667M");
}

TEST(GrpcStatus, MessageFieldPercentEncoding) {
  EXPECT_EQ(decode_message_field("try%20again%0A"), "try again\n");
  EXPECT_EQ(decode_message_field("100%"), "100%");
  EXPECT_EQ(decode_message_field("%zz%4"), "%zz%4");
  EXPECT_EQ(encode_message_field("a%b\n\xc3\xa9"), "a%25b%0A%C3%A9");
  EXPECT_EQ(decode_message_field(encode_message_field("any\x01text%")), "any\x01text%");
}

}  // namespace status_test
}  // namespace millstone::grpc
