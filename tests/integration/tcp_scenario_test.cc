// Scenario flows with raw TCP steps against in-test servers on 127.0.0.1:
// line echo, length-prefixed echo, and a server that sends garbage and closes.
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "socket_servers.h"
#include "support.h"

namespace millstone::testing {
namespace tcp_scenario_test {

nlohmann::json run_tcp(const std::string& yaml, int http_port, int tcp_port, ProcessResult* r) {
  std::string text = std::regex_replace(yaml, std::regex("HTTP_PORT"), std::to_string(http_port));
  text = std::regex_replace(text, std::regex("TCP_PORT"), std::to_string(tcp_port));
  std::string path = write_temp_file(text, ".yaml");
  std::string out = write_temp_file("", ".json");
  *r = run_millstone({"run", path, "-w", "1", "-q", "-o", out}, 60);
  return read_json(out);
}

TEST(TcpScenario, LineEchoAndLengthPrefixed) {
  SocketTestServer lines(SocketTestServer::Mode::kTcpLineEcho);
  SocketTestServer prefixed(SocketTestServer::Mode::kTcpLength32);
  std::string yaml = R"(
target: http://127.0.0.1:HTTP_PORT
flows:
  lines:
    steps:
      - tcp.connect: ":TCP_PORT"
      - tcp.send: "hello {{ vu }}\nsecond\n"
      - tcp.expect: {delimiter: "\n", regex: "^hello [0-9]+$", unmatched: fail, timeout: 2s}
      - tcp.expect: {delimiter: "\n", equals: second, unmatched: fail, timeout: 2s}
      - tcp.close: {}
  prefixed:
    steps:
      - tcp.connect: 127.0.0.1:PREFIXED
      - tcp.send: {hex: "00000004 70696e67"}
      - tcp.expect: {length_prefix: 4, equals: ping, unmatched: fail, timeout: 2s}
      - tcp.hold: 100ms
scenarios:
  main: {executor: constant-vus, vus: 2, duration: 2s}
thresholds:
  - error_rate < 1%
)";
  yaml = std::regex_replace(yaml, std::regex("PREFIXED"), std::to_string(prefixed.port()));
  ProcessResult r;
  nlohmann::json j = run_tcp(yaml, lines.port(), lines.port(), &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(j["thresholds_passed"].get<bool>());
  EXPECT_GE(count(step(j, "lines/tcp.expect"), "requests"), 3u);
  EXPECT_EQ(count(step(j, "lines/tcp.expect"), "failed"), 0u);
  EXPECT_GE(count(step(j, "lines/tcp.expect #2"), "requests"), 3u);
  EXPECT_EQ(count(step(j, "lines/tcp.expect #2"), "failed"), 0u);
  EXPECT_GE(count(step(j, "prefixed/tcp.expect"), "requests"), 3u);
  EXPECT_EQ(count(step(j, "prefixed/tcp.expect"), "failed"), 0u);
  EXPECT_GE(count(j["sockets"], "connected"), 6u);
  EXPECT_EQ(count(j["sockets"]["disconnects"], "server_close"), 0u);
}

TEST(TcpScenario, GarbageEarlyCloseAndRefusalAreClassified) {
  SocketTestServer garbage(SocketTestServer::Mode::kTcpGarbageClose);
  const int closed_port = free_port();  // nothing listens there
  std::string yaml = R"(
target: http://127.0.0.1:HTTP_PORT
flows:
  early:
    steps:
      - tcp.connect: ":TCP_PORT"
      - tcp.expect: {delimiter: "\n", timeout: 2s}
  refused:
    steps:
      - tcp.connect: 127.0.0.1:CLOSED
scenarios:
  a: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [early]}
  b: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [refused]}
)";
  yaml = std::regex_replace(yaml, std::regex("CLOSED"), std::to_string(closed_port));
  ProcessResult r;
  nlohmann::json j = run_tcp(yaml, garbage.port(), garbage.port(), &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(count(step(j, "early/tcp.expect"), "errors"), 1u);
  EXPECT_EQ(count(j["errors"], "closed"), 1u) << j["errors"].dump();
  EXPECT_EQ(count(j["errors"], "connect_refused"), 1u) << j["errors"].dump();
  EXPECT_EQ(count(j["sockets"]["disconnects"], "server_close"), 1u) << j["sockets"].dump();
  EXPECT_LT(j["duration_s"].get<double>(), 5.0);
}

TEST(TcpScenario, AgainstMillstoneMock) {
  const int line_port = free_port();
  const int length_port = free_port();
  MockServer mock("routes:\n  - path: /health\n    body: ok\ntcp:\n  - listen: 127.0.0.1:" +
                  std::to_string(line_port) +
                  "\n    framing: line\n    echo: true\n    push: {every: 100ms, message: "
                  "\"tick {{ now_us }}\"}\n  - listen: 127.0.0.1:" +
                  std::to_string(length_port) + "\n    framing: length32\n    echo: true\n");
  std::string yaml = R"(
target: http://127.0.0.1:HTTP_PORT
flows:
  lines:
    steps:
      - tcp.connect: ":TCP_PORT"
      - tcp.send: "hi {{ vu }}\n"
      - tcp.expect: {delimiter: "\n", regex: "^hi [0-9]+$", timeout: 2s}
      - tcp.hold: {duration: 600ms, delimiter: "\n"}
  framed:
    steps:
      - tcp.connect: ":LENGTH_PORT"
      - tcp.send: {hex: "00000003 616263"}
      - tcp.expect: {length_prefix: 4, equals: abc, unmatched: fail, timeout: 2s}
scenarios:
  a: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [lines]}
  b: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s, flows: [framed]}
)";
  yaml = std::regex_replace(yaml, std::regex("LENGTH_PORT"), std::to_string(length_port));
  ProcessResult r;
  nlohmann::json j = run_tcp(yaml, mock.port(), line_port, &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(count(step(j, "lines/tcp.expect"), "requests"), 1u);
  EXPECT_EQ(count(step(j, "lines/tcp.hold"), "requests"), 1u);
  EXPECT_EQ(count(step(j, "framed/tcp.expect"), "requests"), 1u);
  EXPECT_GE(count(j["sockets"], "messages_in"), 1u + 1u + 4u);  // echo, framed echo, ticks
}

// A server that does not read: tcp.send waits once 256 KiB are unsent instead
// of queueing everything, and fails at the timeout.
TEST(TcpScenario, SendsWaitForASlowReader) {
  SocketTestServer slow(SocketTestServer::Mode::kTcpNoRead);
  std::string yaml = R"(
target: http://127.0.0.1:HTTP_PORT
defaults: {timeout: 1s}
flows:
  flood:
    steps:
      - tcp.connect: ":TCP_PORT"
      - loop: 400
        steps:
          - tcp.send: "BIG"
scenarios:
  main: {executor: iterations, vus: 1, iterations: 1, max_duration: 20s}
)";
  yaml = std::regex_replace(yaml, std::regex("BIG"), std::string(64 * 1024, 'a'));
  ProcessResult r;
  nlohmann::json j = run_tcp(yaml, slow.port(), slow.port(), &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json& send = step(j, "flood/tcp.send");
  EXPECT_EQ(count(send, "errors"), 1u) << send.dump();
  EXPECT_EQ(count(j["errors"], "timeout"), 1u) << j["errors"].dump();
  // 25 MiB were to be sent; far less was taken before the wait timed out.
  EXPECT_LT(count(send, "requests"), 300u) << send.dump();
}

// Source addresses chosen for an IPv4 target do not apply to a socket step
// towards IPv6: the kernel picks the source instead of the bind failing.
TEST(TcpScenario, SourceAddressesOnlyWhereTheySuit) {
  SocketTestServer v6(SocketTestServer::Mode::kTcpLineEcho, true);
  if (v6.port() == 0) GTEST_SKIP() << "no IPv6 loopback";
  SocketTestServer v4(SocketTestServer::Mode::kTcpLineEcho);
  std::string yaml = R"(
target: http://127.0.0.1:HTTP_PORT
flows:
  lines:
    steps:
      - tcp.connect: "[::1]:TCP_PORT"
      - tcp.send: "six\n"
      - tcp.expect: {delimiter: "\n", equals: six, unmatched: fail, timeout: 2s}
      - tcp.connect: ":HTTP_PORT"
      - tcp.send: "four\n"
      - tcp.expect: {delimiter: "\n", equals: four, unmatched: fail, timeout: 2s}
scenarios:
  main: {executor: iterations, vus: 1, iterations: 1, max_duration: 10s}
)";
  yaml = std::regex_replace(yaml, std::regex("HTTP_PORT"), std::to_string(v4.port()));
  yaml = std::regex_replace(yaml, std::regex("TCP_PORT"), std::to_string(v6.port()));
  std::string path = write_temp_file(yaml, ".yaml");
  std::string out = write_temp_file("", ".json");
  ProcessResult r =
      run_millstone({"run", path, "-w", "1", "-q", "-o", out, "--source-address", "127.0.0.1"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  nlohmann::json j = read_json(out);
  EXPECT_EQ(count(step(j, "lines/tcp.expect"), "requests"), 1u) << j.dump();
  EXPECT_EQ(count(step(j, "lines/tcp.expect #2"), "requests"), 1u) << j.dump();
  EXPECT_EQ(j["errors"].size(), 0u) << j["errors"].dump();
}

}  // namespace tcp_scenario_test
}  // namespace millstone::testing
