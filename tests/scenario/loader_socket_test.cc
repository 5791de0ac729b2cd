// WebSocket and TCP steps: what they compile to, and every error path.
#include <re2/re2.h>

#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scenario/loader.h"
#include "scenario_text.h"

namespace millstone::scenario {
namespace loader_socket_test {

using scenario_text::error_of;
using scenario_text::load;

TEST(LoaderSocketTest, ChatFlowCompiles) {
  auto plan = load(R"yaml(target: http://127.0.0.1:8080
vars: {room: lobby}
flows:
  chat:
    steps:
      - ws.connect: /ws/chat?room={{ room }}
        headers: {Authorization: "Bearer {{ room }}"}
        subprotocol: chat.v1
        timeout: 3s
      - ws.send: '{"op":"subscribe","room":"{{ room }}"}'
      - ws.send: {json: {op: ping, n: 1}}
      - ws.send: {binary_hex: "0a 0B:ff"}
      - ws.expect:
          json: {"$.type": subscribed}
          contains: "{{ room }}"
          regex: '"room"'
          timeout: 5s
          unmatched: count
          extract: {room_id: {json: $.room}, raw: {body: true}}
          latency_from: $.sent_us
      - ws.hold: 30s
      - ws.hold: {duration: 1m, latency_from: $.sent_ms}
      - name: bye
        ws.close: {code: 4000, reason: done}
  raw:
    steps:
      - tcp.connect: 127.0.0.1:9100
      - tcp.send: "hello {{ vu }}\n"
      - tcp.send: {hex: "0a0b"}
      - tcp.expect: {delimiter: "\n", regex: "^hello", timeout: 2s}
      - tcp.expect: {length_prefix: 4, equals: pong}
      - tcp.hold: {duration: 10s, delimiter: "\n"}
      - tcp.close: {}
      - tcp.connect: ":9200"
      - tcp.close:
)yaml");
  ASSERT_TRUE(plan->has_socket_steps());
  // No flow sends HTTP requests: a VU holds its socket only.
  EXPECT_EQ(plan->connections_per_vu(), 1u);
  const Flow& chat = plan->flows[0];
  ASSERT_EQ(chat.socket_steps.size(), 8u);
  ASSERT_EQ(chat.program.size(), 8u);
  EXPECT_EQ(chat.program[0].op, Instruction::Op::kSocket);
  const SocketStep& connect = chat.socket_steps[0];
  EXPECT_EQ(connect.kind, SocketStep::Kind::kWsConnect);
  EXPECT_TRUE(connect.host.empty());  // the target's host and port
  EXPECT_EQ(connect.path.source(), "/ws/chat?room={{ room }}");
  ASSERT_EQ(connect.headers.size(), 1u);
  EXPECT_EQ(connect.headers[0].first, "Authorization");
  EXPECT_EQ(connect.subprotocol, "chat.v1");
  EXPECT_EQ(connect.timeout_us, 3'000'000);
  EXPECT_EQ(chat.socket_steps[1].payload.source(), R"({"op":"subscribe","room":"{{ room }}"})");
  EXPECT_FALSE(chat.socket_steps[1].binary);
  EXPECT_NE(chat.socket_steps[2].payload.source().find(R"("op":"ping")"), std::string::npos);
  RenderContext ctx;
  EXPECT_EQ(chat.socket_steps[3].payload.render(ctx), std::string("\x0a\x0b\xff"));
  EXPECT_TRUE(chat.socket_steps[3].binary);
  const SocketStep& expect = chat.socket_steps[4];
  EXPECT_EQ(expect.kind, SocketStep::Kind::kWsExpect);
  EXPECT_EQ(expect.match.json.size(), 1u);
  EXPECT_TRUE(expect.match.contains.has_value());
  EXPECT_EQ(expect.match.regexes.size(), 1u);
  EXPECT_EQ(expect.timeout_us, 5'000'000);
  EXPECT_EQ(expect.unmatched, SocketStep::Unmatched::kCount);
  EXPECT_EQ(expect.extractions.size(), 2u);
  ASSERT_TRUE(expect.latency_from.has_value());
  EXPECT_EQ(expect.latency_from->source(), "$.sent_us");
  EXPECT_EQ(chat.socket_steps[5].duration_us, 30'000'000);
  EXPECT_EQ(chat.socket_steps[6].duration_us, 60'000'000);
  EXPECT_TRUE(chat.socket_steps[6].latency_from.has_value());
  EXPECT_EQ(chat.socket_steps[7].close_code, 4000);
  EXPECT_EQ(chat.socket_steps[7].close_reason, "done");
  // Unnamed repeats are numbered; given names are kept.
  EXPECT_EQ(plan->step_names[0], "chat/ws.connect /ws/chat?room={{ room }}");
  EXPECT_EQ(plan->step_names[1], "chat/ws.send");
  EXPECT_EQ(plan->step_names[2], "chat/ws.send #2");
  EXPECT_EQ(plan->step_names[3], "chat/ws.send #3");
  EXPECT_EQ(plan->step_names[7], "chat/bye");

  const Flow& raw = plan->flows[1];
  ASSERT_EQ(raw.socket_steps.size(), 9u);
  EXPECT_EQ(raw.socket_steps[0].host, "127.0.0.1");
  EXPECT_EQ(raw.socket_steps[0].port, 9100);
  EXPECT_EQ(raw.socket_steps[2].payload.render(ctx), "\x0a\x0b");
  EXPECT_EQ(raw.socket_steps[3].framing, SocketStep::Framing::kDelimiter);
  EXPECT_EQ(raw.socket_steps[3].delimiter, "\n");
  EXPECT_EQ(raw.socket_steps[4].framing, SocketStep::Framing::kLengthPrefix);
  EXPECT_EQ(raw.socket_steps[4].length_prefix, 4);
  ASSERT_TRUE(raw.socket_steps[4].match.equals.has_value());
  EXPECT_EQ(raw.socket_steps[5].framing, SocketStep::Framing::kDelimiter);
  EXPECT_TRUE(raw.socket_steps[7].host.empty());
  EXPECT_EQ(raw.socket_steps[7].port, 9200);
}

TEST(LoaderSocketTest, FullWsUrlAndExtractedNamesAreKnownEverywhere) {
  auto plan = load(R"yaml(target: http://127.0.0.1:8080
flows:
  a:
    steps:
      - ws.connect: ws://localhost:9001/feed
      - ws.expect: {extract: {token: {regex: 'token=(\w+)'}}}
      - get: /use/{{ token }}
      - ws.expect:
)yaml");
  const SocketStep& connect = plan->flows[0].socket_steps[0];
  EXPECT_EQ(connect.host, "localhost");
  EXPECT_EQ(connect.port, 9001);
  EXPECT_EQ(connect.host_header, "localhost:9001");
  EXPECT_EQ(connect.path.source(), "/feed");
  EXPECT_TRUE(plan->flows[0].socket_steps[2].match.any());
  EXPECT_FALSE(load(R"yaml(target: http://127.0.0.1:8080
flows: {a: {steps: [{get: /}]}}
)yaml")
                   ->has_socket_steps());
}

struct ErrorCase {
  const char* name;
  std::string_view steps;    // the steps of flow a, one per line, indented by 6
  std::string_view message;  // the whole message
};

// clang-format off
const ErrorCase kCases[] = {
    {"SendBeforeConnect", "- ws.send: hi",
     "s.yaml:5:9: ws.send comes before any ws.connect in flow \"a\"; expected a ws.connect step first"},
    {"TcpAfterWs", "- ws.connect: /x\n      - tcp.send: hi",
     "s.yaml:6:9: tcp.send follows a ws.connect; expected tcp.connect first (a VU holds one socket at a time)"},
    {"WssBadPort", "- ws.connect: wss://h:99999/x",
     ""},  // checked by prefix below
    {"OtherScheme", "- ws.connect: http://h/x",
     "s.yaml:5:21: ws.connect \"http://h/x\" is not a ws:// or wss:// URL; expected a path such as /ws/chat or ws://HOST:PORT/PATH"},
    {"TlsOnWsConnect", "- ws.connect: /x\n        tls: true",
     "s.yaml:6:9: tls does not apply to a ws.connect step; expected name, headers, subprotocol, timeout"},
    {"TlsNotBoolean", "- tcp.connect: :1\n        tls: maybe",
     ""},
    {"NoSlash", "- ws.connect: chat",
     "s.yaml:5:21: ws.connect \"chat\" does not start with /; expected a path such as /ws/chat or ws://HOST:PORT/PATH"},
    {"Fragment", "- ws.connect: /chat#x",
     "s.yaml:5:21: ws.connect path \"/chat#x\" contains '#'; expected no fragment (#) or control characters"},
    {"BadWsPort", "- ws.connect: ws://h:99999/x",
     ""},  // checked by prefix below
    {"HandshakeHeader", "- ws.connect: /x\n        headers: {Sec-WebSocket-Key: abc}",
     "s.yaml:6:18: header Sec-WebSocket-Key is part of the WebSocket handshake, which millstone writes; expected other headers (subprotocol: sets Sec-WebSocket-Protocol)"},
    {"BadSubprotocol", "- ws.connect: /x\n        subprotocol: \"a b\"",
     "s.yaml:6:22: subprotocol \"a b\" is not a token; expected letters, digits and !#$%&'*+-.^_`|~, e.g. chat.v1"},
    {"KeyOnWrongStep", "- ws.connect: /x\n      - ws.send: hi\n        timeout: 1s",
     "s.yaml:7:9: timeout does not apply to a ws.send step; expected name (the step's settings go in its value)"},
    {"SubprotocolOnTcp", "- tcp.connect: :1\n        subprotocol: x",
     "s.yaml:6:9: subprotocol does not apply to a tcp.connect step; expected name, timeout, tls"},
    {"TwoActions", "- ws.connect: /x\n        tcp.connect: :1",
     "s.yaml:6:9: step has both ws.connect and tcp.connect; expected one action per step (make two steps)"},
    {"TcpNoPort", "- tcp.connect: localhost",
     "s.yaml:5:22: tcp.connect \"localhost\" has no port; expected HOST:PORT or :PORT (the target's host), e.g. 127.0.0.1:9100"},
    {"ConnectTimeoutZero", "- tcp.connect: :1\n        timeout: 0s",
     "s.yaml:6:18: timeout is 0; expected a duration above 0, such as 5s"},
    {"SendTwoKinds", "- ws.connect: /x\n      - ws.send: {text: a, binary_hex: 0a}",
     "s.yaml:6:18: ws.send has several messages; expected one of text, json or binary_hex"},
    {"SendNothing", "- ws.connect: /x\n      - ws.send: {}",
     "s.yaml:6:18: ws.send has nothing to send; expected one of text, json or binary_hex"},
    {"SendUnknownKey", "- ws.connect: /x\n      - ws.send: {hex: 0a}",
     ""},  // "unknown key" with a list
    {"OddHex", "- tcp.connect: :1\n      - tcp.send: {hex: 0a0}",
     "s.yaml:6:28: hex \"0a0\" has an odd number of digits; expected two per byte"},
    {"BadHex", "- tcp.connect: :1\n      - tcp.send: {hex: 0g}",
     "s.yaml:6:26: hex \"0g\" contains \"g\"; expected hexadecimal digits, two per byte, e.g. 0a0b"},
    {"JsonScalar", "- ws.connect: /x\n      - ws.send: {json: 3}",
     "s.yaml:6:25: json is a single value; expected a map or a list"},
    {"TextAndEquals", "- ws.connect: /x\n      - ws.expect: {text: a, equals: b}",
     "s.yaml:6:30: expect has both text and equals; expected one (they are the same)"},
    {"BadRegex", "- ws.connect: /x\n      - ws.expect: {regex: '(('}",
     ""},
    {"BadUnmatched", "- ws.connect: /x\n      - ws.expect: {unmatched: ignore}",
     "s.yaml:6:32: unmatched \"ignore\" is not a policy; expected skip (wait for the next message), count or fail"},
    {"ExtractHeader", "- ws.connect: /x\n      - ws.expect: {extract: {h: {header: X}}}",
     "s.yaml:6:30: extract h reads a header X, which messages do not have; expected json, regex or body"},
    {"BadLatencyPath", "- ws.connect: /x\n      - ws.expect: {latency_from: sent}",
     ""},
    {"ExpectZeroTimeout", "- ws.connect: /x\n      - ws.expect: {timeout: 0s}",
     "s.yaml:6:30: timeout is 0; expected a duration above 0, such as 5s"},
    {"WsExpectDelimiter", "- ws.connect: /x\n      - ws.expect: {delimiter: x}",
     ""},
    {"TwoFramings", "- tcp.connect: :1\n      - tcp.expect: {delimiter: x, length_prefix: 4}",
     "s.yaml:6:36: step has both delimiter and length_prefix; expected one framing"},
    {"EmptyDelimiter", "- tcp.connect: :1\n      - tcp.expect: {delimiter: ''}",
     "s.yaml:6:33: delimiter is empty; expected e.g. \"\\n\" (double quotes)"},
    {"BadPrefix", "- tcp.connect: :1\n      - tcp.expect: {length_prefix: 3}",
     "s.yaml:6:37: length_prefix 3 is not a size; expected 1, 2 or 4 (bytes of a big-endian length)"},
    {"HoldNoDuration", "- ws.connect: /x\n      - ws.hold: {latency_from: $.t}",
     "s.yaml:6:18: ws.hold has no duration; expected e.g. {duration: 30s}"},
    {"HoldZero", "- ws.connect: /x\n      - ws.hold: 0s",
     "s.yaml:6:18: duration is 0; expected a duration above 0, such as 30s"},
    {"HoldBare", "- ws.connect: /x\n      - ws.hold: 30",
     ""},
    {"CloseBadCode", "- ws.connect: /x\n      - ws.close: {code: 1005}",
     "s.yaml:6:26: close code 1005 may not be sent; expected 1000-1003, 1007-1014 or 3000-4999"},
    {"CloseLongReason", "- ws.connect: /x\n      - ws.close: {reason: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}",
     "s.yaml:6:28: reason is longer than 123 bytes; expected a shorter text (a close frame holds 125 bytes)"},
    {"TcpCloseSettings", "- tcp.connect: :1\n      - tcp.close: {code: 1}",
     "s.yaml:6:21: tcp.close takes no settings; expected tcp.close: {}"},
    {"DuplicateName", "- ws.connect: /x\n        name: c\n      - ws.connect: /y\n        name: c",
     "s.yaml:8:15: step name \"a/c\" is already used at line 6; expected unique step names within a flow (give one of them a name:)"},
    {"UnknownVariable", "- ws.connect: /x/{{ nope }}",
     ""},
};
// clang-format on

class LoaderSocketErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(LoaderSocketErrors, Message) {
  const ErrorCase& c = GetParam();
  const std::string yaml =
      std::string("target: http://127.0.0.1:8080\nflows:\n  a:\n    steps:\n      ") +
      std::string(c.steps) + "\n";
  const std::string error = error_of(yaml);
  ASSERT_NE(error, "(loaded)");
  if (!c.message.empty()) {
    EXPECT_EQ(error, c.message);
  } else {
    EXPECT_TRUE(error.starts_with("s.yaml:")) << error;
    EXPECT_NE(error.find("expected"), std::string::npos) << error;
  }
}

INSTANTIATE_TEST_SUITE_P(All, LoaderSocketErrors, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LoaderSocketTest, UnknownKeysSuggest) {
  EXPECT_THAT(error_of("target: http://127.0.0.1:8080\nflows: {a: {steps: [{ws.conect: /x}]}}\n"),
              ::testing::HasSubstr("(did you mean \"ws.connect\"?)"));
  EXPECT_THAT(error_of("target: http://127.0.0.1:8080\nflows: {a: {steps: [{ws.connect: /x}, "
                       "{ws.expect: {timout: 1s}}]}}\n"),
              ::testing::HasSubstr("(did you mean \"timeout\"?)"));
  EXPECT_THAT(error_of("target: http://127.0.0.1:8080\nflows: {a: {steps: [{ws.connect: /x}, "
                       "{ws.expect: {regex: '(('}}]}}\n"),
              ::testing::HasSubstr("does not compile"));
  EXPECT_THAT(error_of("target: http://127.0.0.1:8080\nflows: {a: {steps: [{ws.connect: /x}, "
                       "{ws.expect: {latency_from: sent}}]}}\n"),
              ::testing::HasSubstr("latency_from \"sent\""));
}

}  // namespace loader_socket_test
}  // namespace millstone::scenario
