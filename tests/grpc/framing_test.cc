#include "grpc/framing.h"

#include <gtest/gtest.h>

#include <string>

namespace millstone::grpc {
namespace framing_test {

TEST(GrpcFraming, PrefixIsFlagAndBigEndianLength) {
  const std::string framed = frame_message(std::string(300, 'x'));
  ASSERT_EQ(framed.size(), 305u);
  EXPECT_EQ(framed.substr(0, 5), std::string("\x00\x00\x00\x01\x2c", 5));
  EXPECT_EQ(frame_message(""), std::string(5, '\0'));
}

TEST(GrpcFraming, ReadsMessagesSplitAtEveryByte) {
  std::string stream = frame_message("hello") + frame_message("") + frame_message("world!");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    MessageReader reader(1024, true);
    ASSERT_TRUE(reader.feed(std::string_view(stream).substr(0, cut)));
    ASSERT_TRUE(reader.feed(std::string_view(stream).substr(cut)));
    EXPECT_TRUE(reader.finish());
    EXPECT_EQ(reader.messages(), 3u);
    EXPECT_EQ(reader.message_bytes(), 11u);
    EXPECT_EQ(reader.last_message(), "world!");
  }
  MessageReader one_by_one(1024, true);
  for (char c : stream)
    ASSERT_TRUE(one_by_one.feed(std::string_view(&c, 1)));
  EXPECT_TRUE(one_by_one.finish());
  EXPECT_EQ(one_by_one.messages(), 3u);
}

TEST(GrpcFraming, BadFlagCompressedAndOversizeAreErrors) {
  MessageReader bad;
  EXPECT_FALSE(bad.feed(std::string("\x02\x00\x00\x00\x01x", 6)));
  EXPECT_EQ(bad.error(), FramingError::kBadFlag);
  EXPECT_FALSE(bad.feed("more"));  // stays in error
  EXPECT_FALSE(bad.finish());

  MessageReader compressed;
  EXPECT_FALSE(compressed.feed(std::string("\x01\x00\x00\x00\x01x", 6)));
  EXPECT_EQ(compressed.error(), FramingError::kCompressed);

  MessageReader small(16);
  EXPECT_TRUE(small.feed(frame_message(std::string(16, 'a'))));
  EXPECT_FALSE(small.feed(std::string("\x00\x00\x00\x00\x11", 5)));
  EXPECT_EQ(small.error(), FramingError::kTooLarge);
  EXPECT_STREQ(framing_error_name(small.error()), "too_large");
}

TEST(GrpcFraming, StreamEndingInsideAMessageIsTruncated) {
  const std::string framed = frame_message("hello");
  for (size_t cut = 1; cut < framed.size(); ++cut) {
    MessageReader reader;
    EXPECT_TRUE(reader.feed(framed.substr(0, cut)));
    EXPECT_FALSE(reader.finish()) << cut;
    EXPECT_EQ(reader.error(), FramingError::kTruncated);
  }
  MessageReader empty;
  EXPECT_TRUE(empty.finish());
  EXPECT_EQ(empty.messages(), 0u);
}

TEST(GrpcFraming, ResetForgetsEverything) {
  MessageReader reader;
  EXPECT_FALSE(reader.feed(std::string("\x07", 1) + "xxxx"));
  reader.reset();
  EXPECT_TRUE(reader.feed(frame_message("ok")));
  EXPECT_TRUE(reader.finish());
  EXPECT_EQ(reader.messages(), 1u);
}

TEST(GrpcFraming, SplitsAGatheredStreamLikeTheReader) {
  std::string body;
  append_message(&body, "one");
  append_message(&body, "");
  append_message(&body, "three");
  std::vector<std::string_view> messages;
  ASSERT_EQ(split_messages(body, kDefaultMaxMessageBytes, &messages), FramingError::kNone);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0], "one");
  EXPECT_EQ(messages[1], "");
  EXPECT_EQ(messages[2], "three");
  EXPECT_EQ(split_messages("", kDefaultMaxMessageBytes, &messages), FramingError::kNone);
  EXPECT_TRUE(messages.empty());
  EXPECT_EQ(split_messages(body.substr(0, body.size() - 1), kDefaultMaxMessageBytes, &messages),
            FramingError::kTruncated);
  EXPECT_EQ(messages.size(), 2u);  // those before the error
  EXPECT_EQ(split_messages(std::string("\0\0\0", 3), kDefaultMaxMessageBytes, &messages),
            FramingError::kTruncated);
  EXPECT_EQ(split_messages(std::string("\x02\0\0\0\0", 5), kDefaultMaxMessageBytes, &messages),
            FramingError::kBadFlag);
  EXPECT_EQ(split_messages(std::string("\x01\0\0\0\0", 5), kDefaultMaxMessageBytes, &messages),
            FramingError::kCompressed);
  EXPECT_EQ(split_messages(frame_message("12345"), 4, &messages), FramingError::kTooLarge);
}

}  // namespace framing_test
}  // namespace millstone::grpc
