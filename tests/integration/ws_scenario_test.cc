// Scenario flows with WebSocket steps against real servers on 127.0.0.1: an
// in-test server (echo, pushes, pings, close, garbage, refusal), Debian's
// websocketd, and a server built on the `ws` npm package.
#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "socket_servers.h"
#include "support.h"
#include "ws/frame.h"

namespace millstone::testing {
namespace ws_scenario_test {

struct RunOutcome {
  ProcessResult result;
  nlohmann::json json;
};

RunOutcome run_scenario(const std::string& yaml, int port, double timeout_s = 60) {
  std::string text = std::regex_replace(yaml, std::regex("PORT"), std::to_string(port));
  std::string path = write_temp_file(text, ".yaml");
  std::string out = write_temp_file("", ".json");
  RunOutcome run;
  run.result = run_millstone({"run", path, "-w", "1", "-q", "-o", out}, timeout_s);
  run.json = read_json(out);
  return run;
}

TEST(WsScenario, EchoPushesPingsAndDeliveryLatency) {
  SocketTestServer server(SocketTestServer::Mode::kWsEcho);
  const char* yaml = R"(
target: http://127.0.0.1:PORT
flows:
  chat:
    steps:
      - ws.connect: /chat
        headers: {X-User: "u{{ vu }}"}
      - ws.send: {json: {op: hello, vu: "{{ vu }}"}}
      - name: hello back
        ws.expect:
          json: {"$.op": hello}
          extract: {me: {json: $.vu}}
          timeout: 2s
      - ws.send: "again {{ me }}"
      - ws.expect: {text: "again {{ me }}", timeout: 2s}
      - ws.hold: {duration: 700ms, latency_from: $.sent_us}
      - ws.close: {code: 1000}
scenarios:
  main: {executor: constant-vus, vus: 3, duration: 2s}
thresholds:
  - error_rate < 1%
)";
  RunOutcome run = run_scenario(yaml, server.port());
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  const nlohmann::json& j = run.json;
  EXPECT_TRUE(j["thresholds_passed"].get<bool>());
  const nlohmann::json& connect = step(j, "chat/ws.connect /chat");
  EXPECT_GE(count(connect, "requests"), 3u);
  EXPECT_EQ(count(connect, "failed"), 0u);
  EXPECT_GE(count(step(j, "chat/hello back"), "requests"), 3u);
  EXPECT_EQ(count(step(j, "chat/hello back"), "failed"), 0u);
  EXPECT_GE(count(step(j, "chat/ws.expect"), "requests"), 3u);
  EXPECT_GE(count(step(j, "chat/ws.close"), "requests"), 3u);
  ASSERT_TRUE(j.contains("sockets")) << j.dump();
  const nlohmann::json& s = j["sockets"];
  EXPECT_GE(count(s, "connected"), 3u);
  EXPECT_GE(count(s, "messages_out"), 6u);
  EXPECT_GT(count(s, "messages_in"), 6u + 3u * 4u);  // the echoes and ~7 pushes per hold
  EXPECT_GT(s["delivery_ms"]["count"].get<uint64_t>(), 3u * 4u);
  EXPECT_LT(s["delivery_ms"]["p50"].get<double>(), 500.0);
  EXPECT_GE(s["handshake_ms"]["count"].get<uint64_t>(), 3u);
  EXPECT_GE(s["first_message_ms"]["count"].get<uint64_t>(), 3u);
  EXPECT_EQ(count(s["disconnects"], "protocol_error"), 0u);
  EXPECT_NE(run.result.out.find("sockets"), std::string::npos) << run.result.out;
  EXPECT_NE(run.result.out.find("delivery"), std::string::npos) << run.result.out;
  // No HTTP step: the summary opens with the steps, not "requests 0".
  EXPECT_NE(run.result.out.find(" succeeded, 0 failed (socket steps"), std::string::npos)
      << run.result.out;
  EXPECT_EQ(run.result.out.find("no complete responses"), std::string::npos) << run.result.out;
  EXPECT_EQ(j["peak_vus"], 3) << "the most VUs alive at once";
}

TEST(WsScenario, ServerCloseIsCountedByCode) {
  SocketTestServer server(SocketTestServer::Mode::kWsCloseAfter);
  const char* yaml = R"(
target: http://127.0.0.1:PORT
flows:
  idle:
    steps:
      - ws.connect: /
      - ws.hold: 5s
scenarios:
  main: {executor: iterations, vus: 2, iterations: 2, max_duration: 10s}
)";
  RunOutcome run = run_scenario(yaml, server.port());
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  const nlohmann::json& s = run.json["sockets"];
  EXPECT_EQ(count(s["close_codes"], "4001"), 2u) << s.dump();
  EXPECT_EQ(count(s["disconnects"], "server_close"), 2u) << s.dump();
  // The hold was cut short: an error of the hold step.
  EXPECT_EQ(count(step(run.json, "idle/ws.hold"), "errors"), 2u);
  EXPECT_EQ(count(run.json["errors"], "closed"), 2u) << run.json["errors"].dump();
  EXPECT_LT(run.json["duration_s"].get<double>(), 4.0);
}

TEST(WsScenario, ExpectTimeoutUnmatchedFailAndProtocolErrors) {
  SocketTestServer echo(SocketTestServer::Mode::kWsEcho);
  SocketTestServer garbage(SocketTestServer::Mode::kWsGarbage);
  SocketTestServer refuse(SocketTestServer::Mode::kWsRefuse);
  std::string yaml = R"(
target: http://127.0.0.1:PORT
flows:
  waits:
    steps:
      - ws.connect: /
      - ws.expect: {text: never, timeout: 300ms}
  strict:
    steps:
      - ws.connect: /
      - ws.expect: {json: {"$.type": nothing}, unmatched: fail, timeout: 2s}
  bad:
    steps:
      - ws.connect: ws://127.0.0.1:GARBAGE/
      - ws.expect: {timeout: 2s}
  refused:
    steps:
      - ws.connect: ws://127.0.0.1:REFUSE/
scenarios:
  a: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [waits]}
  b: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [strict]}
  c: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [bad]}
  d: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [refused]}
)";
  yaml = std::regex_replace(yaml, std::regex("GARBAGE"), std::to_string(garbage.port()));
  yaml = std::regex_replace(yaml, std::regex("REFUSE"), std::to_string(refuse.port()));
  RunOutcome run = run_scenario(yaml, echo.port());
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  const nlohmann::json& j = run.json;
  EXPECT_EQ(count(step(j, "waits/ws.expect"), "errors"), 1u);
  EXPECT_EQ(count(step(j, "strict/ws.expect"), "failed"), 1u);
  EXPECT_EQ(count(step(j, "strict/ws.expect"), "errors"), 0u);
  EXPECT_EQ(count(step(j, "bad/ws.expect"), "errors"), 1u);
  EXPECT_EQ(
      count(step(j, "refused/ws.connect ws://127.0.0.1:" + std::to_string(refuse.port()) + "/"),
            "errors"),
      1u);
  EXPECT_EQ(count(j["errors"], "timeout"), 1u) << j["errors"].dump();
  EXPECT_EQ(count(j["errors"], "protocol_error"), 1u) << j["errors"].dump();
  EXPECT_EQ(count(j["errors"], "ws_handshake"), 1u) << j["errors"].dump();
  const nlohmann::json& s = j["sockets"];
  EXPECT_EQ(count(s, "unmatched"), 1u) << s.dump();
  EXPECT_EQ(count(s["disconnects"], "timeout"), 1u) << s.dump();
  EXPECT_EQ(count(s["disconnects"], "protocol_error"), 1u) << s.dump();
}

TEST(WsScenario, AgainstWebsocketd) {
  const int port = free_port();
  ChildProcess server({"websocketd", "--port=" + std::to_string(port), "--address=127.0.0.1",
                       "--loglevel=fatal", "cat"});
  ASSERT_TRUE(wait_for_port(port, 10)) << "websocketd did not start";
  const char* yaml = R"(
target: http://127.0.0.1:PORT
flows:
  echo:
    steps:
      - ws.connect: /
      - ws.send: "line {{ vu }}-{{ iteration }}"
      - ws.expect: {text: "line {{ vu }}-{{ iteration }}", unmatched: fail, timeout: 3s}
      - ws.close: {}
scenarios:
  main: {executor: constant-vus, vus: 2, duration: 2s}
thresholds:
  - error_rate < 1%
  - requests{step=echo/ws.expect} > 1
)";
  RunOutcome run = run_scenario(yaml, port);
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  EXPECT_TRUE(run.json["thresholds_passed"].get<bool>());
  const nlohmann::json& expect = step(run.json, "echo/ws.expect");
  EXPECT_GE(count(expect, "requests"), 2u);
  EXPECT_EQ(count(expect, "failed"), 0u);
  EXPECT_EQ(count(run.json["sockets"], "unmatched"), 0u);
}

TEST(WsScenario, AgainstNodeWsPackage) {
  ChildProcess server({"node", MILLSTONE_SOURCE_DIR "/tests/interop/ws_server.js", "0"});
  const std::string line = server.wait_for_line("listening ", 20);
  ASSERT_FALSE(line.empty()) << "node ws_server.js did not start";
  const int port = std::stoi(line.substr(10));
  const char* yaml = R"(
target: http://127.0.0.1:PORT
flows:
  feed:
    steps:
      - ws.connect: /feed
        subprotocol: chat.v1
      - ws.expect: {json: {"$.type": welcome}, timeout: 3s}
      - ws.send: {binary_hex: "00ff10"}
      - ws.send: '{"type":"mine","n":{{ vu }}}'
      - ws.expect: {json: {"$.type": mine}, timeout: 3s}
      - ws.hold: {duration: 1s, latency_from: $.sent_us}
scenarios:
  main: {executor: constant-vus, vus: 2, duration: 2s}
thresholds:
  - error_rate < 1%
)";
  RunOutcome run = run_scenario(yaml, port);
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  EXPECT_TRUE(run.json["thresholds_passed"].get<bool>());
  EXPECT_GE(count(step(run.json, "feed/ws.expect #2"), "requests"), 2u);
  const nlohmann::json& s = run.json["sockets"];
  EXPECT_GE(s["delivery_ms"]["count"].get<uint64_t>(), 2u * 3u) << s.dump();
  EXPECT_LT(s["delivery_ms"]["p50"].get<double>(), 200.0) << s.dump();
}

// millstone's own mock: subscribe, then pushes with a send time; echo; and a
// server-side close after a while.
TEST(WsScenario, AgainstMillstoneMock) {
  MockServer mock(R"(
routes:
  - path: /health
    body: ok
websockets:
  - path: /ws/echo
    echo: true
  - path: /ws/chat
    on_message:
      - match: {contains: '"subscribe"'}
        reply: '{"type":"subscribed"}'
        then_push:
          every: 100ms
          message: '{"type":"news","seq":{{ counter }},"sent_us":{{ now_us }}}'
  - path: /ws/short
    close_after: 300ms
    close_code: 4002
)");
  const char* yaml = R"(
target: http://127.0.0.1:PORT
flows:
  chat:
    steps:
      - ws.connect: /ws/chat
      - ws.send: {json: {op: subscribe, room: lobby}}
      - ws.expect: {json: {"$.type": subscribed}, timeout: 2s}
      - ws.hold: {duration: 800ms, latency_from: $.sent_us}
      - ws.connect: /ws/echo
      - ws.send: "echo {{ vu }}"
      - ws.expect: {text: "echo {{ vu }}", unmatched: fail, timeout: 2s}
      - ws.send: "at {{ now }}"
      - ws.expect: {regex: "^at 1[7-9][0-9]{8}$", unmatched: fail, timeout: 2s}
  short:
    steps:
      - ws.connect: /ws/short
      - ws.hold: 3s
scenarios:
  a: {executor: iterations, vus: 2, iterations: 2, max_duration: 10s, flows: [chat]}
  b: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [short]}
)";
  RunOutcome run = run_scenario(yaml, mock.port());
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  const nlohmann::json& j = run.json;
  EXPECT_EQ(count(step(j, "chat/ws.expect"), "requests"), 2u);
  EXPECT_EQ(count(step(j, "chat/ws.hold"), "requests"), 2u);
  EXPECT_EQ(count(step(j, "chat/ws.expect #2"), "requests"), 2u);
  // {{ now }} in a message is the time it was rendered, not 0.
  EXPECT_EQ(count(step(j, "chat/ws.expect #3"), "requests"), 2u);
  EXPECT_EQ(count(step(j, "chat/ws.expect #3"), "failed"), 0u) << step(j, "chat/ws.expect #3");
  EXPECT_EQ(count(step(j, "short/ws.hold"), "errors"), 1u);
  const nlohmann::json& s = j["sockets"];
  EXPECT_GE(s["delivery_ms"]["count"].get<uint64_t>(), 2u * 5u) << s.dump();
  // Every connection but the short one (which only gets a close) had a message.
  EXPECT_EQ(s["first_message_ms"]["count"].get<uint64_t>(), 4u) << s.dump();
  EXPECT_EQ(count(s["close_codes"], "4002"), 1u) << s.dump();
  EXPECT_EQ(count(s["disconnects"], "server_close"), 1u) << s.dump();
  EXPECT_EQ(count(s, "connected"), 5u);
}

// Sends complete synchronously; a long loop of them must neither nest a stack
// frame chain per step (it overflowed) nor starve the event loop.
TEST(WsScenario, LongLoopOfSynchronousSends) {
  SocketTestServer server(SocketTestServer::Mode::kWsEcho);
  const char* yaml = R"(
target: http://127.0.0.1:PORT
flows:
  flood:
    steps:
      - ws.connect: /
      - loop: 100000
        steps:
          - ws.send: "x"
      - ws.close: {}
scenarios:
  main: {executor: iterations, vus: 1, iterations: 1, max_duration: 30s}
)";
  RunOutcome run = run_scenario(yaml, server.port());
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  EXPECT_EQ(count(step(run.json, "flood/ws.send"), "requests"), 100000u);
  EXPECT_EQ(count(step(run.json, "flood/ws.send"), "failed"), 0u);
  EXPECT_EQ(count(step(run.json, "flood/ws.close"), "requests"), 1u);
  EXPECT_EQ(count(run.json["sockets"], "messages_out"), 100000u);
}

// A keep-alive answer other than 101 leaves the connection speaking HTTP: the
// client closes it without writing a WebSocket close frame to that server.
TEST(WsScenario, RefusedUpgradeOnKeepAliveSendsNoCloseFrame) {
  SocketTestServer server(SocketTestServer::Mode::kWsRefuseKeepAlive);
  const char* yaml = R"(
target: http://127.0.0.1:PORT
flows:
  refused:
    steps:
      - ws.connect: /
scenarios:
  main: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s}
)";
  RunOutcome run = run_scenario(yaml, server.port());
  // Its only step failed: the run measured nothing (exit 6), and says why.
  ASSERT_EQ(run.result.exit_code, 6) << run.result.out << run.result.err;
  EXPECT_NE(run.result.out.find("not one socket step succeeded"), std::string::npos)
      << run.result.out;
  EXPECT_EQ(count(run.json["errors"], "ws_handshake"), 1u) << run.json["errors"].dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server's last read
  EXPECT_EQ(server.bytes_after_answer(), 0u);
}

const char* kConnectOnce = R"(
target: http://127.0.0.1:PORT
flows:
  handshake:
    steps:
      - ws.connect: /SUBPROTOCOL
scenarios:
  main: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s}
)";

// Runs kConnectOnce against a server answering `answer`; `subprotocol` is the
// ws.connect step's own line ("" for none).
RunOutcome connect_once(SocketTestServer& server, const std::string& subprotocol) {
  std::string yaml =
      std::regex_replace(kConnectOnce, std::regex("/SUBPROTOCOL"),
                         subprotocol.empty() ? "/" : "/\n        subprotocol: " + subprotocol);
  return run_scenario(yaml, server.port());
}

// The only step failed: nothing was measured (docs/exit-codes.md).
constexpr int kExitMeasuredNothing = 6;

const std::string kValid101 =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: {accept}\r\n";

// RFC 6455 4.1: a subprotocol the client did not ask for fails the
// connection; it was never established, so no close frame is written.
TEST(WsScenario, UnofferedSubprotocolFailsTheHandshake) {
  SocketTestServer none_offered(kValid101 + "Sec-WebSocket-Protocol: chat\r\n\r\n");
  RunOutcome run = connect_once(none_offered, "");
  ASSERT_EQ(run.result.exit_code, kExitMeasuredNothing) << run.result.out << run.result.err;
  EXPECT_EQ(count(run.json["errors"], "ws_handshake"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(count(run.json["sockets"], "connected"), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server's last read
  EXPECT_EQ(none_offered.bytes_after_answer(), 0u);

  SocketTestServer other_chosen(kValid101 + "Sec-WebSocket-Protocol: chat\r\n\r\n");
  run = connect_once(other_chosen, "v2.chat");
  ASSERT_EQ(run.result.exit_code, kExitMeasuredNothing) << run.result.out << run.result.err;
  EXPECT_EQ(count(run.json["errors"], "ws_handshake"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(count(run.json["sockets"], "connected"), 0u);

  SocketTestServer offered_chosen(kValid101 + "Sec-WebSocket-Protocol: v2.chat\r\n\r\n");
  run = connect_once(offered_chosen, "v2.chat");
  ASSERT_EQ(run.result.exit_code, 0) << run.result.out << run.result.err;
  EXPECT_EQ(count(run.json["errors"], "ws_handshake"), 0u) << run.json["errors"].dump();
  EXPECT_EQ(count(run.json["sockets"], "connected"), 1u);
}

// A 101 with a wrong Sec-WebSocket-Accept is refused: the connection is
// closed without a close frame, since it never became a WebSocket.
TEST(WsScenario, RefusedHandshakeSendsNoCloseFrame) {
  SocketTestServer server(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  RunOutcome run = connect_once(server, "");
  ASSERT_EQ(run.result.exit_code, kExitMeasuredNothing) << run.result.out << run.result.err;
  EXPECT_EQ(count(run.json["errors"], "ws_handshake"), 1u) << run.json["errors"].dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(server.bytes_after_answer(), 0u);
}

// Bytes that are no HTTP response where the 101 should be are a failed
// handshake (ws_handshake, as documented), not an HTTP malformed_status.
TEST(WsScenario, GarbageInsteadOfTheHandshakeIsWsHandshake) {
  SocketTestServer server("SSH-2.0-OpenSSH_9.2p1\r\n\r\n");
  RunOutcome run = connect_once(server, "");
  ASSERT_EQ(run.result.exit_code, kExitMeasuredNothing) << run.result.out << run.result.err;
  EXPECT_EQ(count(run.json["errors"], "ws_handshake"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(count(run.json["errors"], "malformed_status"), 0u) << run.json["errors"].dump();
}

std::string text_frame(const std::string& payload) {
  std::string out;
  ws::append_frame(&out, ws::Opcode::kText, payload, true, std::nullopt);
  return out;
}

// latency_from stamps in the future or older than the histogram holds are
// counted as invalid, not recorded as 0 ms or a clamped 68719 s.
TEST(WsScenario, InvalidLatencyStampsAreCountedNotRecorded) {
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  SocketTestServer server(
      kValid101 + "\r\n{pause}" +
      text_frame("{\"sent_us\":" + std::to_string(now_us + 3'600'000'000) + "}") +  // an hour ahead
      text_frame("{\"sent_us\":1000000}") +                                         // 1970
      text_frame("{\"sent_us\":\"soon\"}") +                                        // no number
      text_frame("{\"sent_us\":" + std::to_string(now_us - 5000) + "}") +           // valid
      text_frame("{\"other\":1}"));                                                 // no stamp
  const char* yaml = R"(
target: http://127.0.0.1:PORT
flows:
  listen:
    steps:
      - ws.connect: /
      - ws.hold: {duration: 500ms, latency_from: $.sent_us}
scenarios:
  main: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s}
)";
  std::string path = write_temp_file(
      std::regex_replace(yaml, std::regex("PORT"), std::to_string(server.port())), ".yaml");
  std::string out = write_temp_file("", ".json");
  ProcessResult result = run_millstone({"run", path, "-w", "1", "-o", out}, 60);
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  nlohmann::json j = read_json(out);
  const nlohmann::json& s = j["sockets"];
  EXPECT_EQ(count(s, "messages_in"), 5u) << s.dump();
  EXPECT_EQ(count(s, "delivery_invalid"), 3u) << s.dump();
  EXPECT_EQ(s["delivery_ms"]["count"].get<uint64_t>(), 1u) << s.dump();
  EXPECT_GE(s["delivery_ms"]["max"].get<double>(), 5.0) << s.dump();
  EXPECT_LT(s["delivery_ms"]["max"].get<double>(), 60'000.0) << s.dump();
  EXPECT_NE(result.out.find("invalid stamps  3 messages"), std::string::npos) << result.out;
}

}  // namespace ws_scenario_test
}  // namespace millstone::testing
