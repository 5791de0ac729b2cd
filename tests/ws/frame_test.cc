#include "ws/frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace millstone::ws {
namespace frame_test {

struct Seen {
  Event::Kind kind;
  std::string payload;
  uint16_t close_code;
  std::string close_reason;
  bool operator==(const Seen&) const = default;
};

class Recorder : public EventSink {
 public:
  bool on_event(const Event& e) override {
    seen.push_back({e.kind, std::string(e.payload), e.close_code, std::string(e.close_reason)});
    return !stop_after || seen.size() < stop_after;
  }
  std::vector<Seen> seen;
  size_t stop_after = 0;
};

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list)
    out.push_back(static_cast<char>(b));
  return out;
}

struct Outcome {
  std::vector<Seen> events;
  FrameError error = FrameError::kNone;
  size_t consumed = 0;  // total bytes consumed
};

// Feeds the stream the way a connection does: keep unconsumed bytes, append
// the next read, parse again. `chunk` 0 means all at once.
Outcome feed(FrameParser& parser, std::string stream, size_t chunk = 0) {
  Outcome out;
  Recorder sink;
  std::string pending;
  size_t at = 0;
  if (chunk == 0) chunk = stream.size() ? stream.size() : 1;
  while (at < stream.size()) {
    size_t n = std::min(chunk, stream.size() - at);
    pending.append(stream, at, n);
    at += n;
    auto r = parser.parse(pending.data(), pending.size(), sink);
    out.consumed += r.consumed;
    pending.erase(0, r.consumed);
    if (r.error != FrameError::kNone) {
      out.error = r.error;
      break;
    }
  }
  out.events = sink.seen;
  return out;
}

Outcome feed_server(std::string stream, size_t chunk = 0, size_t max = 16 * 1024 * 1024) {
  FrameParser parser(Role::kServer, max);
  return feed(parser, std::move(stream), chunk);
}
Outcome feed_client(std::string stream, size_t chunk = 0, size_t max = 16 * 1024 * 1024) {
  FrameParser parser(Role::kClient, max);
  return feed(parser, std::move(stream), chunk);
}

Seen text(std::string s) {
  return {Event::Kind::kText, std::move(s), kCloseNoStatus, ""};
}
Seen binary(std::string s) {
  return {Event::Kind::kBinary, std::move(s), kCloseNoStatus, ""};
}

constexpr uint32_t kKey = 0x37fa213d;  // the key of the RFC 6455 5.7 examples

// RFC 6455 section 5.7 examples, byte for byte.
TEST(FrameParser, Rfc6455SingleFrameUnmaskedText) {
  std::string wire = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  auto out = feed_client(wire);
  EXPECT_EQ(out.error, FrameError::kNone);
  EXPECT_EQ(out.events, std::vector<Seen>{text("Hello")});
  EXPECT_EQ(out.consumed, wire.size());
  std::string built;
  append_frame(&built, Opcode::kText, "Hello", true, std::nullopt);
  EXPECT_EQ(built, wire);
}

TEST(FrameParser, Rfc6455SingleFrameMaskedText) {
  std::string wire = bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  auto out = feed_server(wire);
  EXPECT_EQ(out.error, FrameError::kNone);
  EXPECT_EQ(out.events, std::vector<Seen>{text("Hello")});
  std::string built;
  append_frame(&built, Opcode::kText, "Hello", true, kKey);
  EXPECT_EQ(built, wire);
}

TEST(FrameParser, Rfc6455FragmentedUnmaskedText) {
  std::string wire = bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f});
  FrameParser parser(Role::kClient);
  auto out = feed(parser, wire);
  EXPECT_EQ(out.error, FrameError::kNone);
  EXPECT_EQ(out.events, std::vector<Seen>{text("Hello")});
  EXPECT_FALSE(parser.in_fragmented_message());
  std::string built;
  append_frame(&built, Opcode::kText, "Hel", false, std::nullopt);
  append_frame(&built, Opcode::kContinuation, "lo", true, std::nullopt);
  EXPECT_EQ(built, wire);
}

TEST(FrameParser, Rfc6455PingAndMaskedPong) {
  std::string ping = bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  auto out = feed_client(ping);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, Event::Kind::kPing);
  EXPECT_EQ(out.events[0].payload, "Hello");
  std::string pong = bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  out = feed_server(pong);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, Event::Kind::kPong);
  EXPECT_EQ(out.events[0].payload, "Hello");
  std::string built;
  append_frame(&built, Opcode::kPong, "Hello", true, kKey);
  EXPECT_EQ(built, pong);
}

TEST(FrameParser, Rfc6455Binary256And64KiB) {
  std::string payload256(256, '\0');
  for (size_t i = 0; i < payload256.size(); ++i)
    payload256[i] = static_cast<char>(i);
  std::string wire;
  append_frame(&wire, Opcode::kBinary, payload256, true, std::nullopt);
  EXPECT_EQ(wire.substr(0, 4), bytes({0x82, 0x7E, 0x01, 0x00}));
  EXPECT_EQ(wire.size(), 4 + 256u);
  auto out = feed_client(wire);
  EXPECT_EQ(out.events, std::vector<Seen>{binary(payload256)});

  std::string payload64k(65536, 'x');
  wire.clear();
  append_frame(&wire, Opcode::kBinary, payload64k, true, std::nullopt);
  EXPECT_EQ(wire.substr(0, 10), bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  out = feed_client(wire);
  EXPECT_EQ(out.events, std::vector<Seen>{binary(payload64k)});

  // Masked, through the server role.
  wire.clear();
  append_frame(&wire, Opcode::kBinary, payload64k, true, 0xdeadbeef);
  EXPECT_EQ(wire.substr(0, 2), bytes({0x82, 0xFF}));
  out = feed_server(wire);
  EXPECT_EQ(out.events, std::vector<Seen>{binary(payload64k)});
}

TEST(FrameParser, UnmasksInPlaceAndDoesNotAllocateForSingleFrames) {
  std::string wire;
  append_frame(&wire, Opcode::kText, "in place", true, 0x01020304);
  FrameParser parser(Role::kServer);
  Recorder sink;
  auto r = parser.parse(wire.data(), wire.size(), sink);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(wire.substr(6), "in place");  // payload now unmasked in the caller's buffer
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, PingBetweenFragments) {
  std::string wire;
  append_frame(&wire, Opcode::kText, "frag", false, 0x11223344);
  append_frame(&wire, Opcode::kPing, "p", true, 0x55667788);
  append_frame(&wire, Opcode::kContinuation, "men", false, 0x99aabbcc);
  append_frame(&wire, Opcode::kPong, "", true, 0x01010101);
  append_frame(&wire, Opcode::kContinuation, "ted", true, 0x02020202);
  FrameParser parser(Role::kServer);
  auto out = feed(parser, wire);
  ASSERT_EQ(out.error, FrameError::kNone);
  ASSERT_EQ(out.events.size(), 3u);
  EXPECT_EQ(out.events[0].kind, Event::Kind::kPing);
  EXPECT_EQ(out.events[0].payload, "p");
  EXPECT_EQ(out.events[1].kind, Event::Kind::kPong);
  EXPECT_EQ(out.events[2], text("fragmented"));
  // The reassembly buffer is released once the message is out.
  Recorder sink;
  parser.parse(nullptr, 0, sink);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, BinaryFragmentedWithCloseBetween) {
  std::string wire;
  append_frame(&wire, Opcode::kBinary, std::string("\0\1", 2), false, std::nullopt);
  append_close(&wire, kCloseGoingAway, "bye", std::nullopt);
  append_frame(&wire, Opcode::kContinuation, std::string("\2", 1), true, std::nullopt);
  auto out = feed_client(wire);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].kind, Event::Kind::kClose);
  EXPECT_EQ(out.events[0].close_code, kCloseGoingAway);
  EXPECT_EQ(out.events[1], binary(std::string("\0\1\2", 3)));
}

// A stream with every kind of event and every length form, fed in every
// possible chunk size: split reads must never change the outcome.
std::string mixed_stream(bool masked) {
  std::optional<uint32_t> key;
  if (masked) key = 0xa1b2c3d4;
  std::string wire;
  append_frame(&wire, Opcode::kText, "Hello", true, key);
  append_frame(&wire, Opcode::kBinary, std::string(300, 'b'), true, key);
  append_frame(&wire, Opcode::kText, "h\xc3", false, key);  // é split across fragments
  append_frame(&wire, Opcode::kPing, "mid", true, key);
  append_frame(&wire, Opcode::kContinuation, "\xa9llo", true, key);
  append_frame(&wire, Opcode::kBinary, std::string(70000, 'z'), true, key);
  append_frame(&wire, Opcode::kText, "", true, key);
  append_close(&wire, kCloseNormal, "done", key);
  return wire;
}

TEST(FrameParser, SplitPointsNeverChangeEvents) {
  for (bool masked : {false, true}) {
    const std::string wire = mixed_stream(masked);
    const Role role = masked ? Role::kServer : Role::kClient;
    FrameParser whole_parser(role);
    auto whole = feed(whole_parser, wire);
    ASSERT_EQ(whole.error, FrameError::kNone);
    ASSERT_EQ(whole.events.size(), 7u);
    EXPECT_EQ(whole.events[2].payload, "mid");
    EXPECT_EQ(whole.events[3], text("h\xc3\xa9llo"));
    EXPECT_EQ(whole.events[6].close_code, kCloseNormal);
    EXPECT_EQ(whole.events[6].close_reason, "done");
    EXPECT_EQ(whole.consumed, wire.size());
    for (size_t chunk : {1, 2, 3, 5, 7, 13, 127, 1000, 4096}) {
      FrameParser parser(role);
      auto split = feed(parser, wire, chunk);
      EXPECT_EQ(split.events, whole.events) << "chunk " << chunk << " masked " << masked;
      EXPECT_EQ(split.consumed, wire.size());
      EXPECT_EQ(split.error, FrameError::kNone);
    }
  }
}

TEST(FrameParser, IncompleteFrameConsumesNothing) {
  std::string wire;
  append_frame(&wire, Opcode::kText, "abcdef", true, 0x01020304);
  FrameParser parser(Role::kServer);
  Recorder sink;
  for (size_t n = 0; n < wire.size(); ++n) {
    std::string copy = wire.substr(0, n);
    auto r = parser.parse(copy.data(), copy.size(), sink);
    EXPECT_EQ(r.consumed, 0u) << n;
    EXPECT_EQ(r.error, FrameError::kNone) << n;
  }
  EXPECT_TRUE(sink.seen.empty());
}

TEST(FrameParser, SinkCanStop) {
  std::string wire;
  append_frame(&wire, Opcode::kText, "one", true, std::nullopt);
  append_frame(&wire, Opcode::kText, "two", true, std::nullopt);
  FrameParser parser(Role::kClient);
  Recorder sink;
  sink.stop_after = 1;
  auto r = parser.parse(wire.data(), wire.size(), sink);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.consumed, 5u);
  EXPECT_EQ(sink.seen.size(), 1u);
}

// Every FrameError value, from the bytes that cause it.
TEST(FrameParser, ReservedBits) {
  for (int bit : {0x40, 0x20, 0x10}) {
    auto out = feed_client(bytes({0x81 | bit, 0x00}));
    EXPECT_EQ(out.error, FrameError::kReservedBits);
  }
}

TEST(FrameParser, BadOpcodes) {
  for (int op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    EXPECT_EQ(feed_client(bytes({0x80 | op, 0x00})).error, FrameError::kBadOpcode) << op;
  }
}

TEST(FrameParser, ControlFrameRules) {
  EXPECT_EQ(feed_client(bytes({0x89, 126, 0, 126})).error, FrameError::kControlTooLong);
  std::string ok;
  append_frame(&ok, Opcode::kPing, std::string(125, 'p'), true, std::nullopt);
  EXPECT_EQ(feed_client(ok).error, FrameError::kNone);
  EXPECT_EQ(feed_client(bytes({0x09, 0x00})).error, FrameError::kControlFragmented);
  EXPECT_EQ(feed_client(bytes({0x08, 0x00})).error, FrameError::kControlFragmented);
}

TEST(FrameParser, MaskingRules) {
  std::string masked;
  append_frame(&masked, Opcode::kText, "x", true, 0x01020304);
  EXPECT_EQ(feed_client(masked).error, FrameError::kMaskUnexpected);
  std::string plain;
  append_frame(&plain, Opcode::kText, "x", true, std::nullopt);
  EXPECT_EQ(feed_server(plain).error, FrameError::kMaskMissing);
}

TEST(FrameParser, NonMinimalLengths) {
  // 16-bit form for 125 bytes, 64-bit form for 65535 bytes, 64-bit MSB set.
  EXPECT_EQ(feed_client(bytes({0x82, 126, 0x00, 125})).error, FrameError::kNonMinimalLength);
  EXPECT_EQ(feed_client(bytes({0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF})).error,
            FrameError::kNonMinimalLength);
  EXPECT_EQ(feed_client(bytes({0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0})).error,
            FrameError::kNonMinimalLength);
  // Smallest lengths of each form are fine (header only; payload incomplete).
  EXPECT_EQ(feed_client(bytes({0x82, 126, 0x00, 126})).error, FrameError::kNone);
  EXPECT_EQ(feed_client(bytes({0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0})).error, FrameError::kNone);
}

TEST(FrameParser, TooLarge) {
  // Detected from the header alone: nothing waits for a huge payload.
  EXPECT_EQ(feed_client(bytes({0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})).error,
            FrameError::kTooLarge);
  std::string wire;
  append_frame(&wire, Opcode::kBinary, std::string(101, 'a'), true, std::nullopt);
  EXPECT_EQ(feed_client(wire, 0, 100).error, FrameError::kTooLarge);
  EXPECT_EQ(feed_client(wire, 0, 101).error, FrameError::kNone);
  // Fragments that together exceed the limit.
  wire.clear();
  append_frame(&wire, Opcode::kText, std::string(60, 'a'), false, std::nullopt);
  append_frame(&wire, Opcode::kContinuation, std::string(60, 'a'), true, std::nullopt);
  auto out = feed_client(wire, 0, 100);
  EXPECT_EQ(out.error, FrameError::kTooLarge);
  EXPECT_EQ(out.consumed, 62u);
  EXPECT_EQ(close_code_for(FrameError::kTooLarge), kCloseTooBig);
}

TEST(FrameParser, ContinuationRules) {
  std::string wire;
  append_frame(&wire, Opcode::kContinuation, "x", true, std::nullopt);
  EXPECT_EQ(feed_client(wire).error, FrameError::kUnexpectedContinuation);
  wire.clear();
  append_frame(&wire, Opcode::kText, "a", false, std::nullopt);
  append_frame(&wire, Opcode::kText, "b", true, std::nullopt);
  EXPECT_EQ(feed_client(wire).error, FrameError::kExpectedContinuation);
  wire.clear();
  append_frame(&wire, Opcode::kBinary, "a", false, std::nullopt);
  append_frame(&wire, Opcode::kBinary, "b", false, std::nullopt);
  EXPECT_EQ(feed_client(wire).error, FrameError::kExpectedContinuation);
}

TEST(FrameParser, InvalidUtf8) {
  std::string wire;
  append_frame(&wire, Opcode::kText, "\xff", true, std::nullopt);
  EXPECT_EQ(feed_client(wire).error, FrameError::kInvalidUtf8);
  EXPECT_EQ(close_code_for(FrameError::kInvalidUtf8), kCloseInvalidPayload);
  // Binary frames are not checked.
  wire.clear();
  append_frame(&wire, Opcode::kBinary, "\xff", true, std::nullopt);
  EXPECT_EQ(feed_client(wire).error, FrameError::kNone);
  // Surrogates and overlong forms are invalid.
  for (std::string bad : {"\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80"}) {
    wire.clear();
    append_frame(&wire, Opcode::kText, bad, true, std::nullopt);
    EXPECT_EQ(feed_client(wire).error, FrameError::kInvalidUtf8);
  }
}

TEST(FrameParser, Utf8ValidatedOverTheWholeFragmentedMessage) {
  // "€" (e2 82 ac) split over three fragments: each alone is invalid.
  std::string wire;
  append_frame(&wire, Opcode::kText, "\xe2", false, 0x0badf00d);
  append_frame(&wire, Opcode::kContinuation, "\x82", false, 0x0badf00d);
  append_frame(&wire, Opcode::kContinuation, "\xac!", true, 0x0badf00d);
  auto out = feed_server(wire);
  EXPECT_EQ(out.error, FrameError::kNone);
  EXPECT_EQ(out.events, std::vector<Seen>{text("\xe2\x82\xac!")});
  // Truncated sequence at the end of the message.
  wire.clear();
  append_frame(&wire, Opcode::kText, "ok\xe2", false, 0x0badf00d);
  append_frame(&wire, Opcode::kContinuation, "\x82", true, 0x0badf00d);
  EXPECT_EQ(feed_server(wire).error, FrameError::kInvalidUtf8);
  // Bad continuation byte in the second fragment.
  wire.clear();
  append_frame(&wire, Opcode::kText, "\xe2", false, 0x0badf00d);
  append_frame(&wire, Opcode::kContinuation, "A\xac", true, 0x0badf00d);
  EXPECT_EQ(feed_server(wire, 1).error, FrameError::kInvalidUtf8);
}

TEST(FrameParser, ClosePayloads) {
  // Empty: no status.
  auto out = feed_client(bytes({0x88, 0x00}));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].close_code, kCloseNoStatus);
  EXPECT_EQ(out.events[0].close_reason, "");
  // Code only, and code with reason.
  std::string wire;
  append_close(&wire, 1000, "", std::nullopt);
  EXPECT_EQ(wire, bytes({0x88, 0x02, 0x03, 0xE8}));
  out = feed_client(wire);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].close_code, 1000);
  wire.clear();
  append_close(&wire, 4000, "caf\xc3\xa9", 0x12345678);
  out = feed_server(wire);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].close_code, 4000);
  EXPECT_EQ(out.events[0].close_reason, "caf\xc3\xa9");
  // One byte payload.
  EXPECT_EQ(feed_client(bytes({0x88, 0x01, 0x03})).error, FrameError::kBadClosePayload);
  // Codes that must not be on the wire.
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
    EXPECT_EQ(feed_client(bytes({0x88, 0x02, code >> 8, code & 0xFF})).error,
              FrameError::kBadCloseCode)
        << code;
  }
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 3000, 4999}) {
    EXPECT_EQ(feed_client(bytes({0x88, 0x02, code >> 8, code & 0xFF})).error, FrameError::kNone)
        << code;
  }
  // Reason that is not UTF-8.
  EXPECT_EQ(feed_client(bytes({0x88, 0x03, 0x03, 0xE8, 0xFF})).error, FrameError::kInvalidUtf8);
}

TEST(FrameParser, AppendCloseTruncatesReasonOnACharacterBoundary) {
  std::string reason;
  for (int i = 0; i < 70; ++i)
    reason += "\xc3\xa9";  // 140 bytes
  std::string wire;
  append_close(&wire, 1001, reason, std::nullopt);
  ASSERT_LE(wire.size(), 2u + 125u);
  auto out = feed_client(wire);
  ASSERT_EQ(out.error, FrameError::kNone);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].close_reason.size(), 122u);  // 61 whole characters
  wire.clear();
  append_close(&wire, kCloseNoStatus, "ignored", std::nullopt);
  EXPECT_EQ(wire, bytes({0x88, 0x00}));
}

TEST(FrameParser, ErrorNamesAreDistinct) {
  std::vector<std::string> names;
  for (int e = 0; e <= static_cast<int>(FrameError::kBadCloseCode); ++e)
    names.push_back(frame_error_name(static_cast<FrameError>(e)));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
  EXPECT_STREQ(frame_error_name(FrameError::kInvalidUtf8), "invalid_utf8");
  EXPECT_EQ(close_code_for(FrameError::kBadOpcode), kCloseProtocolError);
}

TEST(FrameParser, ErrorAfterGoodFramesReportsTheirConsumption) {
  std::string wire;
  append_frame(&wire, Opcode::kText, "good", true, std::nullopt);
  const size_t good = wire.size();
  wire += bytes({0x83, 0x00});
  for (size_t chunk : {0, 1, 3}) {
    auto out = feed_client(wire, chunk);
    EXPECT_EQ(out.error, FrameError::kBadOpcode);
    EXPECT_EQ(out.events, std::vector<Seen>{text("good")});
    EXPECT_EQ(out.consumed, good);
  }
}

}  // namespace frame_test
}  // namespace millstone::ws
