// The websockets: and tcp: sections of a mock config (docs/mock.md#websockets).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config_text.h"
#include "mock/config.h"

namespace millstone::mock {
namespace socket_config_test {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using config_text::error_of;
using config_text::parse;

TEST(SocketConfigTest, FullWebSocketSection) {
  const MockConfig config = parse(R"(
websockets:
  - path: /ws/echo
    echo: true
  - name: ticker
    path: /ws/ticker
    subprotocols: [ticker.v1, ticker.v2]
    push: {every: 1s, message: '{"seq":{{ counter }},"sent_us":{{ now_us }}}'}
    ping_every: 20s
    close_after: 30m
    close_code: 1001
    max_message_bytes: 4096
  - path: /ws/chat
    on_message:
      - match: {contains: '"subscribe"'}
        reply: '{"type":"subscribed"}'
        then_push: {every: 250ms, message: 'news'}
      - match: {regex: '^ping-[0-9]+$'}
        reply: pong
      - match: {equals: bye}
        reply: ciao
)");
  EXPECT_TRUE(config.routes.empty());
  ASSERT_EQ(config.websockets.size(), 3u);
  const SocketRoute& echo = config.websockets[0];
  EXPECT_EQ(echo.name, "ws /ws/echo");
  EXPECT_TRUE(echo.echo);
  EXPECT_FALSE(echo.push);
  EXPECT_EQ(echo.close_after_us, 0);
  EXPECT_EQ(echo.max_message_bytes, size_t{1} << 20);
  const SocketRoute& ticker = config.websockets[1];
  EXPECT_EQ(ticker.name, "ticker");
  EXPECT_EQ(ticker.subprotocols, (std::vector<std::string>{"ticker.v1", "ticker.v2"}));
  ASSERT_TRUE(ticker.push);
  EXPECT_EQ(ticker.push->every_us, 1'000'000);
  EXPECT_FALSE(ticker.push->message.is_literal());
  EXPECT_EQ(ticker.ping_every_us, 20'000'000);
  EXPECT_EQ(ticker.close_after_us, 1'800'000'000);
  EXPECT_EQ(ticker.close_code, 1001);
  EXPECT_EQ(ticker.max_message_bytes, 4096u);
  const SocketRoute& chat = config.websockets[2];
  ASSERT_EQ(chat.on_message.size(), 3u);
  EXPECT_EQ(chat.on_message[0].match, SocketReply::kContains);
  EXPECT_EQ(chat.on_message[0].pattern, "\"subscribe\"");
  ASSERT_TRUE(chat.on_message[0].then_push);
  EXPECT_EQ(chat.on_message[0].then_push->every_us, 250'000);
  EXPECT_EQ(chat.on_message[1].match, SocketReply::kRegex);
  ASSERT_TRUE(chat.on_message[1].regex);
  EXPECT_TRUE(re2::RE2::PartialMatch("ping-42", *chat.on_message[1].regex));
  EXPECT_FALSE(re2::RE2::PartialMatch("ping-x", *chat.on_message[1].regex));
  EXPECT_EQ(chat.on_message[2].match, SocketReply::kEquals);
  EXPECT_FALSE(chat.on_message[2].then_push);
}

TEST(SocketConfigTest, TcpSection) {
  const MockConfig config = parse(R"(
routes:
  - path: /hello
tcp:
  - listen: 127.0.0.1:9100
    framing: line
    echo: true
    push: {every: 1s, message: "tick {{ now_us }}\n"}
    close_after: 10s
  - listen: 127.0.0.1:9101
    framing: length32
    echo: true
  - listen: 127.0.0.1:0
    framing: raw
    on_message: [{match: {contains: hi}, reply: hello}]
)");
  ASSERT_EQ(config.routes.size(), 1u);
  ASSERT_EQ(config.tcp.size(), 3u);
  EXPECT_EQ(config.tcp[0].name, "tcp 127.0.0.1:9100");
  EXPECT_EQ(config.tcp[0].framing, SocketRoute::kLine);
  EXPECT_EQ(config.tcp[0].listen.to_string(), "127.0.0.1:9100");
  EXPECT_EQ(config.tcp[0].close_after_us, 10'000'000);
  EXPECT_EQ(config.tcp[1].framing, SocketRoute::kLength32);
  EXPECT_EQ(config.tcp[2].framing, SocketRoute::kRaw);
}

TEST(SocketConfigTest, UnknownKeysSuggest) {
  EXPECT_EQ(error_of("websockets:\n  - path: /ws\n    ecko: true\n"),
            "mock.yaml:3:5: unknown key \"ecko\" in websocket route (did you mean \"echo\"?); "
            "expected one of: name, path, subprotocols, echo, push, on_message, ping_every, "
            "close_after, close_code, max_message_bytes, amqp_push");
  EXPECT_THAT(error_of("tcp:\n  - listen: 127.0.0.1:1\n    echo: true\n    framming: line\n"),
              StartsWith("mock.yaml:4:5: unknown key \"framming\" in tcp listener (did you mean "
                         "\"framing\"?)"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    push: {evry: 1s, message: x}\n"),
              HasSubstr("(did you mean \"every\"?)"));
  EXPECT_THAT(error_of("websocket:\n  - path: /ws\n"),
              StartsWith("mock.yaml:1:1: unknown key \"websocket\" in the config (did you mean "
                         "\"websockets\"?)"));
}

TEST(SocketConfigTest, BadValues) {
  EXPECT_THAT(error_of("websockets:\n  - path: ws\n    echo: true\n"),
              StartsWith("mock.yaml:2:11: path \"ws\" is not a plain path; expected"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws/*\n    echo: true\n"),
              HasSubstr("is not a plain path"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    echo: yes please\n"),
              StartsWith("mock.yaml:3:11: echo \"yes please\" is not a boolean; expected true or "
                         "false"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    echo: true\n    close_code: 1005\n"),
              StartsWith("mock.yaml:4:17: close_code \"1005\" cannot be sent; expected"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    push: {every: 10, message: x}\n"),
              HasSubstr("has no unit"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    push: {every: 10us, message: x}\n"),
              HasSubstr("shorter than 1ms"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    push: {every: 1s}\n"),
              HasSubstr("push needs every and message"));
  EXPECT_THAT(
      error_of("websockets:\n  - path: /ws\n    push: {every: 1s, message: '{{ nope }}'}\n"),
      HasSubstr("unknown expression"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n"),
              StartsWith("mock.yaml:2:5: socket route does nothing"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    echo: true\n    subprotocols: [\"a b\"]\n"),
              HasSubstr("is not a token"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    on_message:\n      - match: {regex: '('}\n"
                       "        reply: x\n"),
              HasSubstr("does not compile"));
  EXPECT_THAT(error_of("websockets:\n  - path: /ws\n    on_message:\n"
                       "      - match: {contains: a, equals: b}\n        reply: x\n"),
              HasSubstr("expected exactly one of contains, equals or regex"));
  EXPECT_THAT(
      error_of("websockets:\n  - path: /ws\n    on_message:\n      - match: {contains: a}\n"),
      HasSubstr("on_message rule does nothing"));
  EXPECT_THAT(
      error_of("websockets:\n  - path: /ws\n    echo: true\n  - path: /ws\n    echo: true\n"),
      HasSubstr("websocket path \"/ws\" is declared twice"));
  EXPECT_THAT(error_of("tcp:\n  - listen: nowhere\n    echo: true\n"),
              StartsWith("mock.yaml:2:13: listen \"nowhere\" is not an address"));
  EXPECT_THAT(error_of("tcp:\n  - listen: 127.0.0.1:1\n    framing: lines\n    echo: true\n"),
              StartsWith("mock.yaml:3:14: framing \"lines\" is unknown (did you mean \"line\"?); "
                         "expected line, length32 or raw"));
  EXPECT_THAT(error_of("tcp:\n  - listen: 127.0.0.1:1\n    echo: true\n    max_message_bytes: 0\n"),
              HasSubstr("max_message_bytes \"0\" is out of range"));
  EXPECT_THAT(error_of("websockets: []\n"), HasSubstr("websockets is an empty list"));
  EXPECT_THAT(error_of("seed: 1\n"), HasSubstr("the config has no routes"));
}

TEST(SocketConfigTest, NowUsInTemplates) {
  const MockConfig config = parse(
      "routes:\n  - path: /t\n    body: '{{ now_us }} {{ now_ms }}'\n"
      "websockets:\n  - path: /ws\n    push: {every: 1s, message: '{{ now_us }}'}\n");
  ASSERT_TRUE(config.routes[0].templated);
  EXPECT_EQ(config.websockets[0].push->message.segments()[0].kind, Template::Segment::Kind::kNowUs);
}

TEST(SocketConfigTest, ExampleFileLoads) {
  const MockConfig config = load_mock_config_file(MILLSTONE_SOURCE_DIR "/examples/ws-mock.yaml");
  EXPECT_EQ(config.websockets.size(), 3u);
  EXPECT_EQ(config.tcp.size(), 1u);
}

}  // namespace socket_config_test
}  // namespace millstone::mock
