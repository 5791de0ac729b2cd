// The client session against a scripted broker: the handshake's bytes, the
// negotiation, deliveries assembled from their frames, confirms, and garbage
// or refusals from the broker ending the session with a classified failure.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "amqp/codec.h"
#include "amqp/methods.h"
#include "amqp/session.h"

namespace millstone::amqp {
namespace session_test {

using namespace std::string_literals;

struct Recorder : SessionListener {
  int opened = 0;
  std::vector<uint32_t> replies;
  std::vector<std::string> confirms;
  std::vector<std::string> bodies;
  Failure failure = Failure::kNone;
  uint16_t code = 0;
  int closed = 0;
  void on_open(Session&) override { ++opened; }
  void on_reply(Session&, const ServerMethod& m) override { replies.push_back(m.key); }
  void on_confirm(Session&, uint64_t tag, bool multiple, bool ack) override {
    confirms.push_back(std::to_string(tag) + (multiple ? "+" : "") + (ack ? "a" : "n"));
  }
  void on_delivery(Session&, const Delivery& d) override { bodies.emplace_back(d.body); }
  void on_return(Session&, const ServerMethod&) override {}
  void on_blocked(Session&, bool) override {}
  void on_failed(Session&, Failure f, uint16_t c, std::string_view) override {
    failure = f;
    code = c;
  }
  void on_closed(Session&) override { ++closed; }
};

// One method frame from the broker: class, method, then argument bytes.
std::string method_frame(uint16_t channel, uint32_t key, const std::string& args) {
  std::string payload;
  Writer w(payload);
  w.short_uint(static_cast<uint16_t>(key >> 16));
  w.short_uint(static_cast<uint16_t>(key & 0xffff));
  payload += args;
  std::string out;
  append_frame(out, FrameType::kMethod, channel, payload);
  return out;
}

std::string start_frame(const std::string& mechanisms = "PLAIN AMQPLAIN") {
  std::string args = "\x00\x09"s;
  Writer w(args);
  w.table({{"product", FieldValue::of_string("RabbitMQ")}});
  w.long_string(mechanisms);
  w.long_string("en_US");
  return method_frame(0, method::kConnectionStart, args);
}

std::string tune_frame(uint16_t channel_max, uint32_t frame_max, uint16_t heartbeat) {
  std::string args;
  Writer w(args);
  w.short_uint(channel_max);
  w.long_uint(frame_max);
  w.short_uint(heartbeat);
  return method_frame(0, method::kConnectionTune, args);
}

std::string close_frame(uint16_t channel, uint32_t key, uint16_t code, const std::string& text) {
  std::string args;
  Writer w(args);
  w.short_uint(code);
  w.short_string(text);
  w.short_uint(0);
  w.short_uint(0);
  return method_frame(channel, key, args);
}

struct Fixture {
  SessionOptions options;
  Recorder recorder;
  Session session{options, recorder};
  int64_t now = 1'000'000'000;

  size_t feed(const std::string& bytes) { return session.on_read(bytes, now); }
  void open() {
    session.start(now);
    feed(start_frame());
    feed(tune_frame(2047, 131072, 60));
    feed(method_frame(0, method::kConnectionOpenOk, "\x00"s));
    feed(method_frame(1, method::kChannelOpenOk, "\x00\x00\x00\x00"s));
    session.output().clear();
  }
};

TEST(AmqpSession, HandshakeSendsHeaderStartOkTuneOkOpenAndChannelOpen) {
  Fixture f;
  f.options.user = "u";
  f.options.password = "p";
  f.options.vhost = "v";
  f.options.heartbeat_s = 10;
  f.session.start(f.now);
  EXPECT_EQ(f.session.output(), std::string(kProtocolHeader));
  f.session.output().clear();
  f.feed(start_frame());
  // start-ok carries PLAIN and "\0u\0p".
  EXPECT_NE(f.session.output().find("\x05PLAIN\x00\x00\x00\x04\x00u\x00p"s), std::string::npos);
  f.session.output().clear();
  f.feed(tune_frame(0, 65536, 60));
  std::string expected;
  append_tune_ok(expected, 2047, 65536, 10);  // lower frame_max, our lower heartbeat
  append_connection_open(expected, "v");
  EXPECT_EQ(f.session.output(), expected);
  EXPECT_EQ(f.session.frame_max(), 65536u);
  EXPECT_EQ(f.session.heartbeat_s(), 10);
  f.session.output().clear();
  f.feed(method_frame(0, method::kConnectionOpenOk, "\x00"s));
  expected.clear();
  append_channel_open(expected, 1);
  EXPECT_EQ(f.session.output(), expected);
  EXPECT_EQ(f.recorder.opened, 0);
  f.feed(method_frame(1, method::kChannelOpenOk, "\x00\x00\x00\x00"s));
  EXPECT_EQ(f.recorder.opened, 1);
  EXPECT_TRUE(f.session.open());
}

TEST(AmqpSession, CallsGoOneAtATime) {
  Fixture f;
  f.open();
  f.session.declare_queue({.queue = "q"});
  f.session.qos(10);
  std::string first;
  append_queue_declare(first, 1, {.queue = "q"});
  EXPECT_EQ(f.session.output(), first);  // qos waits for declare-ok
  f.session.output().clear();
  std::string args;
  Writer w(args);
  w.short_string("q");
  w.long_uint(3);
  w.long_uint(0);
  f.feed(method_frame(1, method::kQueueDeclareOk, args));
  std::string second;
  append_basic_qos(second, 1, 10);
  EXPECT_EQ(f.session.output(), second);
  f.feed(method_frame(1, method::kBasicQosOk, ""));
  EXPECT_EQ(f.recorder.replies,
            (std::vector<uint32_t>{method::kQueueDeclareOk, method::kBasicQosOk}));
  EXPECT_EQ(f.session.pending_calls(), 0u);
}

TEST(AmqpSession, AssemblesDeliveriesFromSplitFramesAndBytes) {
  Fixture f;
  f.open();
  std::string args;
  Writer w(args);
  w.short_string("ctag");
  w.longlong_uint(1);
  w.octet(0);
  w.short_string("ex");
  w.short_string("rk");
  std::string bytes = method_frame(1, method::kBasicDeliver, args);
  std::string header;
  append_content_header(header, 11, {});
  append_frame(bytes, FrameType::kHeader, 1, header);
  append_frame(bytes, FrameType::kBody, 1, "hello ");
  append_frame(bytes, FrameType::kBody, 1, "world");
  // Fed one byte at a time, keeping what was not consumed, as the connection does.
  std::string kept;
  for (char c : bytes) {
    kept.push_back(c);
    kept.erase(0, f.feed(kept));
  }
  EXPECT_TRUE(kept.empty());
  EXPECT_EQ(f.recorder.bodies, std::vector<std::string>{"hello world"});
}

TEST(AmqpSession, ConfirmsAfterSelectOk) {
  Fixture f;
  f.open();
  f.session.confirm_select();
  f.feed(method_frame(1, method::kConfirmSelectOk, ""));
  EXPECT_EQ(f.session.publish("", "q", false, {}, "a"), 1u);
  EXPECT_EQ(f.session.publish("", "q", false, {}, "b"), 2u);
  std::string args = "\x00\x00\x00\x00\x00\x00\x00\x02\x01"s;  // tag 2, multiple
  f.feed(method_frame(1, method::kBasicAck, args));
  EXPECT_EQ(f.recorder.confirms, std::vector<std::string>{"2+a"});
}

TEST(AmqpSession, RefusedLoginIsAuthFailed) {
  Fixture f;
  f.session.start(f.now);
  f.feed(start_frame());
  f.feed(close_frame(0, method::kConnectionClose, 403, "ACCESS_REFUSED - Login was refused"));
  EXPECT_EQ(f.recorder.failure, Failure::kAuthFailed);
  EXPECT_EQ(f.recorder.code, 403);
  // It answered with close-ok.
  std::string close_ok;
  append_connection_close_ok(close_ok);
  EXPECT_NE(f.session.output().find(close_ok), std::string::npos);
}

TEST(AmqpSession, ChannelCloseIsClassifiedByItsCode) {
  Fixture f;
  f.open();
  f.feed(close_frame(1, method::kChannelClose, 404, "NOT_FOUND - no queue 'x'"));
  EXPECT_EQ(f.recorder.failure, Failure::kNotFound);
  EXPECT_EQ(f.session.state(), Session::State::kClosed);
}

TEST(AmqpSession, GarbageIsAProtocolErrorNotACrash) {
  for (const std::string& garbage :
       {"HTTP/1.1 400 Bad Request\r\n\r\n"s, "AMQP\x00\x00\x08\x00"s,
        "\x01\x00\x00\x00\x00\x00\x02\x00\x0a\xce"s,          // method frame too short
        "\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x0a\xce"s,  // connection.start without args
        "\x03\x00\x01\x00\x00\x00\x01x\xce"s,                 // body frame with no header
        "\x08\x00\x00\x00\x00\x00\x00\x00"s}) {               // bad frame end
    Fixture f;
    f.session.start(f.now);
    EXPECT_EQ(f.feed(garbage), garbage.size());
    EXPECT_TRUE(f.recorder.failure == Failure::kProtocolError ||
                f.recorder.failure == Failure::kProtocolVersion)
        << failure_name(f.recorder.failure);
    EXPECT_EQ(f.session.state(), Session::State::kClosed);
  }
}

TEST(AmqpSession, SilentBrokerIsAHeartbeatTimeout) {
  Fixture f;
  f.open();
  ASSERT_EQ(f.session.heartbeat_s(), 60);
  f.session.tick(f.now + 31'000'000'000);
  EXPECT_EQ(f.session.output(), std::string(kHeartbeatFrame));  // ours, every half interval
  EXPECT_EQ(f.recorder.failure, Failure::kNone);
  f.session.tick(f.now + 121'000'000'000);
  EXPECT_EQ(f.recorder.failure, Failure::kHeartbeatTimeout);
}

TEST(AmqpSession, CloseCompletesOnCloseOk) {
  Fixture f;
  f.open();
  f.session.close();
  f.feed(method_frame(0, method::kConnectionCloseOk, ""));
  EXPECT_EQ(f.recorder.closed, 1);
  EXPECT_EQ(f.recorder.failure, Failure::kNone);
}

}  // namespace session_test
}  // namespace millstone::amqp
