// The AMQP 0-9-1 codec against byte vectors written out from the
// specification's frame layout and method table.
#include <gtest/gtest.h>

#include <string>

#include "amqp/codec.h"
#include "amqp/methods.h"

namespace millstone::amqp {
namespace codec_test {

using namespace std::string_literals;

TEST(AmqpCodec, CutsAFrameAndSaysWhenMoreIsNeeded) {
  // Method frame, channel 1, 4-byte payload (basic.qos-ok = 60, 11), frame end.
  const std::string bytes = "\x01\x00\x01\x00\x00\x00\x04\x00\x3c\x00\x0b\xce"s;
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(cut_frame(std::string_view(bytes).substr(0, n), 4096).status,
              CutResult::Status::kNeedMore)
        << n;
  }
  const std::string with_next = bytes + "\x08";  // the next frame's first byte
  const CutResult cut = cut_frame(with_next, 4096);
  ASSERT_EQ(cut.status, CutResult::Status::kFrame);
  EXPECT_EQ(cut.frame.type, FrameType::kMethod);
  EXPECT_EQ(cut.frame.channel, 1);
  EXPECT_EQ(cut.frame.payload, "\x00\x3c\x00\x0b"s);
  EXPECT_EQ(cut.consumed, bytes.size());
}

TEST(AmqpCodec, ClassifiesBadFrames) {
  EXPECT_EQ(cut_frame("\x05\x00\x00\x00\x00\x00\x00\xce"s, 4096).error, FrameError::kBadType);
  EXPECT_EQ(cut_frame("\x08\x00\x00\x00\x00\x00\x00\xcd"s, 4096).error, FrameError::kBadFrameEnd);
  // 4089 + 8 = 4097 bytes: one over frame_max.
  EXPECT_EQ(cut_frame("\x03\x00\x01\x00\x00\x0f\xf9"s, 4096).error, FrameError::kTooLarge);
  EXPECT_EQ(cut_frame("AMQP\x00\x00\x09\x01"s, 4096).error, FrameError::kNotAmqp);
}

TEST(AmqpCodec, HeartbeatFrameIsTheSpecsEightBytes) {
  std::string out;
  append_frame(out, FrameType::kHeartbeat, 0, "");
  EXPECT_EQ(out, std::string(kHeartbeatFrame));
  EXPECT_EQ(out, "\x08\x00\x00\x00\x00\x00\x00\xce"s);
}

TEST(AmqpCodec, EncodesMethodsAsTheMethodTableSays) {
  std::string out;
  append_tune_ok(out, 2047, 131072, 60);
  // type 1, channel 0, size 12: class 10, method 31, short 2047, long 131072, short 60.
  EXPECT_EQ(out,
            "\x01\x00\x00\x00\x00\x00\x0c\x00\x0a\x00\x1f\x07\xff\x00\x02\x00\x00\x00\x3c\xce"s);
  out.clear();
  append_basic_ack(out, 1, 5, true);
  EXPECT_EQ(
      out, "\x01\x00\x01\x00\x00\x00\x0d\x00\x3c\x00\x50\x00\x00\x00\x00\x00\x00\x00\x05\x01\xce"s);
  out.clear();
  append_connection_open(out, "/");
  EXPECT_EQ(out, "\x01\x00\x00\x00\x00\x00\x08\x00\x0a\x00\x28\x01/\x00\x00\xce"s);
  out.clear();
  QueueDeclare declare;
  declare.queue = "q";
  declare.durable = true;
  declare.auto_delete = true;
  append_queue_declare(out, 1, declare);
  // ticket 0, "q", bits passive=0 durable=1 exclusive=0 auto-delete=1 no-wait=0, empty table.
  EXPECT_EQ(out,
            "\x01\x00\x01\x00\x00\x00\x0d\x00\x32\x00\x0a\x00\x00\x01q\x0a\x00\x00\x00\x00\xce"s);
}

TEST(AmqpCodec, FieldTableRoundTripsEveryType) {
  FieldTable table = {{"b", FieldValue::of_bool(true)},
                      {"l", FieldValue::of_long(-5)},
                      {"i", FieldValue::of_int(7)},
                      {"s", FieldValue::of_string("text")},
                      {"t", FieldValue::of_timestamp(1700000000)},
                      {"n", FieldValue::of_table({{"x", FieldValue::of_bool(false)}})}};
  FieldValue array;
  array.kind = FieldValue::Kind::kArray;
  array.letter = 'A';
  array.array = {FieldValue::of_int(1), FieldValue::of_string("two")};
  table.emplace_back("a", array);
  FieldValue d;
  d.kind = FieldValue::Kind::kDouble;
  d.letter = 'd';
  d.real = 2.5;
  table.emplace_back("d", d);
  table.emplace_back("v", FieldValue{});
  std::string bytes;
  Writer(bytes).table(table);
  FieldTable back;
  Reader reader(bytes);
  ASSERT_TRUE(reader.table(&back));
  EXPECT_TRUE(reader.at_end());
  EXPECT_EQ(back, table);
}

TEST(AmqpCodec, FieldTableBytes) {
  // {"x-message-ttl": I 60000}: size 19, name, 'I', 0x0000ea60.
  std::string bytes;
  Writer(bytes).table({{"x-message-ttl", FieldValue::of_int(60000)}});
  EXPECT_EQ(bytes, "\x00\x00\x00\x13\x0dx-message-ttlI\x00\x00\xea\x60"s);
}

TEST(AmqpCodec, RejectsBadTables) {
  FieldTable out;
  // Unknown type letter 'Z'.
  const std::string unknown_bytes = "\x00\x00\x00\x03\x01kZ"s;
  Reader unknown(unknown_bytes);
  EXPECT_FALSE(unknown.table(&out));
  // Announces 10 bytes, has 3.
  const std::string truncated_bytes = "\x00\x00\x00\x0a\x01kt"s;
  Reader truncated(truncated_bytes);
  EXPECT_FALSE(truncated.table(&out));
  // Tables nested past the depth limit.
  std::string nested = "\x00\x00\x00\x00"s;
  for (int i = 0; i < Reader::kMaxTableDepth + 2; ++i) {
    std::string outer = "\x01nF"s + nested;
    const uint32_t size = static_cast<uint32_t>(outer.size());
    nested = std::string{static_cast<char>(size >> 24), static_cast<char>(size >> 16),
                         static_cast<char>(size >> 8), static_cast<char>(size)} +
             outer;
  }
  Reader deep(nested);
  EXPECT_FALSE(deep.table(&out));
}

TEST(AmqpCodec, ContentHeaderRoundTripsAndMatchesTheLayout) {
  BasicProperties p;
  p.content_type = "application/json";
  p.delivery_mode = 2;
  p.headers = FieldTable{{"corr", FieldValue::of_string("42")}};
  p.timestamp = 1700000000;
  std::string payload;
  append_content_header(payload, 300, p);
  // class 60, weight 0, body size 300, flags: content-type, headers, delivery-mode, timestamp.
  EXPECT_EQ(payload.substr(0, 14), "\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x01\x2c\xb0\x40"s);
  ContentHeader back;
  ASSERT_TRUE(parse_content_header(payload, &back));
  EXPECT_EQ(back.body_size, 300u);
  EXPECT_EQ(back.properties, p);
  EXPECT_FALSE(parse_content_header(payload.substr(0, payload.size() - 1), &back));
}

TEST(AmqpCodec, PublishSplitsTheBodyAtFrameMax) {
  std::string out;
  const std::string body(10000, 'x');
  append_publish(out, 1, "ex", "rk", false, {}, body, 4096);
  size_t at = 0;
  std::vector<std::pair<FrameType, size_t>> frames;
  while (at < out.size()) {
    const CutResult cut = cut_frame(std::string_view(out).substr(at), 4096);
    ASSERT_EQ(cut.status, CutResult::Status::kFrame);
    frames.emplace_back(cut.frame.type, cut.frame.payload.size());
    at += cut.consumed;
  }
  ASSERT_EQ(frames.size(), 5u);  // method, header, 4088 + 4088 + 1824
  EXPECT_EQ(frames[1].first, FrameType::kHeader);
  EXPECT_EQ(frames[2], std::make_pair(FrameType::kBody, size_t{4088}));
  EXPECT_EQ(frames[4], std::make_pair(FrameType::kBody, size_t{1824}));
}

TEST(AmqpCodec, DecodesServerMethods) {
  // basic.deliver: tag "ctag", delivery tag 9, redelivered, exchange "ex", key "rk".
  const std::string payload =
      "\x00\x3c\x00\x3c\x04"
      "ctag\x00\x00\x00\x00\x00\x00\x00\x09\x01\x02"
      "ex\x02rk"s;
  ServerMethod m;
  ASSERT_TRUE(parse_server_method(payload, &m));
  EXPECT_EQ(m.key, method::kBasicDeliver);
  EXPECT_EQ(m.consumer_tag, "ctag");
  EXPECT_EQ(m.delivery_tag, 9u);
  EXPECT_TRUE(m.redelivered);
  EXPECT_EQ(m.routing_key, "rk");
  // Trailing bytes, truncation and client-only methods are refused.
  EXPECT_FALSE(parse_server_method(payload + "x", &m));
  EXPECT_FALSE(parse_server_method(payload.substr(0, 10), &m));
  EXPECT_FALSE(parse_server_method("\x00\x3c\x00\x28"s, &m));  // basic.publish
  EXPECT_EQ(method_name(m.key), "basic.publish");
}

}  // namespace codec_test
}  // namespace millstone::amqp
