// End-to-end `millstone grpc` on 127.0.0.1: against the mock's gRPC routes
// (the mock's own route counts are the truth), against a real peer, a tiny
// @grpc/grpc-js server (tests/interop/grpc_server.js, whose own call counter
// is the truth), and against HTTP/2 answers that are not gRPC (classified
// errors, never a crash). Bad input (a broken .proto, an unknown method,
// JSON that does not fit) is one line and an exit code before any load.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "socket_servers.h"
#include "support.h"

namespace millstone::testing {
namespace grpc_test {

const std::string kProto = MILLSTONE_SOURCE_DIR "/tests/interop/protos/greeter.proto";
const std::string kHello = "millstone.test.Greeter/SayHello";

bool have_grpc_js() {
  return system("node --version > /dev/null 2>&1") == 0 &&
         access(MILLSTONE_SOURCE_DIR "/tests/interop/node_modules/@grpc/grpc-js", F_OK) == 0;
}

// node tests/interop/grpc_server.js: cleartext gRPC, counts on a plain HTTP port.
class GrpcJsServer {
 public:
  // `reflect`: the server offers reflection too (@grpc/reflection).
  explicit GrpcJsServer(int fail_every = 0, int delay_ms = 0, bool reflect = false)
      : count_port_(free_port()),
        process_({"env", reflect ? "REFLECT=1" : "REFLECT=0", "node",
                  MILLSTONE_SOURCE_DIR "/tests/interop/grpc_server.js", "0",
                  std::to_string(count_port_), std::to_string(fail_every),
                  std::to_string(delay_ms)}) {
    const std::string line = process_.wait_for_line("listening ", 20);
    if (!line.empty()) port_ = std::stoi(line.substr(10));
    if (port_ != 0) wait_for_port(count_port_, 5);
  }
  int port() const { return port_; }
  // {"calls":N,"ok":M,"unavailable":U,"names":{...}}
  nlohmann::json counts() const {
    return nlohmann::json::parse(
        shell("curl -sS http://127.0.0.1:" + std::to_string(count_port_) + "/count"), nullptr,
        false);
  }

 private:
  int count_port_;
  ChildProcess process_;
  int port_ = 0;
};

std::vector<std::string> grpc_args(int port, const std::string& out,
                                   std::vector<std::string> extra) {
  std::vector<std::string> args = {
      "grpc", "127.0.0.1:" + std::to_string(port), "--proto", kProto, "--call", kHello, "-q", "-o",
      out};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

uint64_t status_count(const nlohmann::json& summary, const std::string& name) {
  return summary["grpc"]["status"].value(name, uint64_t{0});
}

TEST(GrpcIntegration, MockRouteCountsMatchTheMocksOwn) {
  MockServer mock(
      "grpc:\n"
      "  - proto: " +
      kProto +
      "\n"
      "    method: " +
      kHello +
      "\n"
      "    response: {message: hi}\n"
      "    errors: [{rate: 25%, status: UNAVAILABLE, message: busy}]\n");
  const std::string out = temp_dir() + "/summary.json";
  const ProcessResult r =
      run_millstone(grpc_args(mock.port(), out,
                              {"-d", R"({"name":"ada"})", "-z", "1s", "-c", "2", "--streams", "8"}),
                    30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  expect_valid_summary(out);
  const uint64_t ok = status_count(j, "OK");
  const uint64_t unavailable = status_count(j, "UNAVAILABLE");
  EXPECT_GT(ok, 0u);
  EXPECT_GT(unavailable, 0u);
  EXPECT_EQ(j["grpc"]["calls"].get<uint64_t>(), ok + unavailable);
  EXPECT_EQ(j["grpc"]["failed"].get<uint64_t>(), unavailable);
  EXPECT_EQ(j["grpc"]["messages"].get<uint64_t>(), ok);  // one per OK unary call
  EXPECT_EQ(j["failed"].get<uint64_t>(), unavailable);
  EXPECT_EQ(j["transport_errors"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["requests"].get<uint64_t>(), ok + unavailable);
  // The mock's route row: every call it answered, plus at most what was
  // still in flight when the run ended.
  const nlohmann::json stats = mock.stats();
  const nlohmann::json& route = stats["routes"][0];
  ASSERT_EQ(route["name"], "grpc " + kHello);
  const uint64_t in_flight = j["in_flight"].get<uint64_t>();
  EXPECT_GE(route["requests"].get<uint64_t>(), ok + unavailable);
  EXPECT_LE(route["requests"].get<uint64_t>(), ok + unavailable + in_flight);
  EXPECT_GE(route["error_status"].get<uint64_t>(), unavailable);
  EXPECT_LE(route["error_status"].get<uint64_t>(), unavailable + in_flight);
  EXPECT_NE(r.out.find("calls by status: OK "), std::string::npos) << r.out;
}

// The service comes from a real peer's reflection service (grpc-js with
// @grpc/reflection), not from a .proto: the calls it counts are the ones
// millstone reports, and reflection itself is no call of the service.
TEST(GrpcIntegration, ReflectionFromAGrpcJsServer) {
  if (!have_grpc_js() ||
      access(MILLSTONE_SOURCE_DIR "/tests/interop/node_modules/@grpc/reflection", F_OK) != 0)
    GTEST_SKIP() << "node or tests/interop/node_modules/@grpc/reflection is missing";
  GrpcJsServer server(/*fail_every=*/0, /*delay_ms=*/0, /*reflect=*/true);
  ASSERT_NE(server.port(), 0) << "node grpc_server.js did not start";
  const std::string target = "127.0.0.1:" + std::to_string(server.port());
  const ProcessResult list = run_millstone({"grpc", target, "--reflect", "--list"}, 30);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("millstone.test.Greeter"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("SayHello"), std::string::npos) << list.out;

  const std::string out = temp_dir() + "/summary.json";
  const ProcessResult r =
      run_millstone({"grpc", target, "--reflect", "--call", kHello, "-d", R"({"name":"ada"})", "-z",
                     "500ms", "--rate", "200", "-q", "-o", out},
                    30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  const nlohmann::json counts = server.counts();
  ASSERT_TRUE(counts.is_object());
  EXPECT_GT(counts["calls"].get<uint64_t>(), 50u);
  EXPECT_EQ(counts["calls"], counts["names"]["ada"]);  // the JSON was encoded from reflection
  EXPECT_EQ(status_count(j, "OK"), counts["ok"].get<uint64_t>());
}

TEST(GrpcIntegration, GrpcJsServerCountIsTheTruth) {
  if (!have_grpc_js()) GTEST_SKIP() << "node or tests/interop/node_modules/@grpc is missing";
  GrpcJsServer server(/*fail_every=*/5);
  ASSERT_NE(server.port(), 0) << "node grpc_server.js did not start";
  const std::string out = temp_dir() + "/summary.json";
  // Open model: 300 calls due over 1 s, each at its own time.
  const ProcessResult r = run_millstone(grpc_args(server.port(), out,
                                                  {"-d", R"({"name":"grace","tags":["a"]})", "-z",
                                                   "1s", "--rate", "300", "--streams", "4"}),
                                        30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  expect_valid_summary(out);
  const nlohmann::json counts = server.counts();
  ASSERT_TRUE(counts.is_object());
  const uint64_t ok = status_count(j, "OK");
  const uint64_t unavailable = status_count(j, "UNAVAILABLE");
  const uint64_t in_flight = j["in_flight"].get<uint64_t>();
  EXPECT_EQ(j["errors"].size(), 0u) << j["errors"];
  // Every call the server counted was sent with the JSON's name.
  EXPECT_EQ(counts["names"]["grace"].get<uint64_t>(), counts["calls"].get<uint64_t>());
  EXPECT_GE(counts["calls"].get<uint64_t>(), ok + unavailable);
  EXPECT_LE(counts["calls"].get<uint64_t>(), ok + unavailable + in_flight);
  EXPECT_GE(counts["unavailable"].get<uint64_t>(), unavailable);
  EXPECT_LE(counts["unavailable"].get<uint64_t>(), unavailable + in_flight);
  EXPECT_GT(unavailable, 0u);
  EXPECT_EQ(j["schedule"]["scheduled"].get<uint64_t>(), 300u);
}

TEST(GrpcIntegration, DeadlineIsSentAsGrpcTimeout) {
  if (!have_grpc_js()) GTEST_SKIP() << "node or tests/interop/node_modules/@grpc is missing";
  GrpcJsServer server(/*fail_every=*/0, /*delay_ms=*/300);
  ASSERT_NE(server.port(), 0) << "node grpc_server.js did not start";
  const std::string out = temp_dir() + "/summary.json";
  const ProcessResult r = run_millstone(
      grpc_args(server.port(), out, {"-z", "1s", "--deadline", "50ms", "--streams", "4"}), 30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  // grpc-js ended the calls itself when their deadline passed.
  EXPECT_GT(status_count(j, "DEADLINE_EXCEEDED"), 0u) << j["grpc"];
  EXPECT_EQ(status_count(j, "OK"), 0u) << j["grpc"];
  EXPECT_LE(j["latency_ms"]["p50"].get<double>(), 250.0);
}

TEST(GrpcIntegration, ServerStreamingCallsTakeEveryMessage) {
  if (!have_grpc_js()) GTEST_SKIP() << "node or tests/interop/node_modules/@grpc is missing";
  GrpcJsServer server;
  ASSERT_NE(server.port(), 0) << "node grpc_server.js did not start";
  const std::string out = temp_dir() + "/summary.json";
  // Updates streams `times` messages per call.
  const ProcessResult r =
      run_millstone({"grpc", "127.0.0.1:" + std::to_string(server.port()), "--proto", kProto,
                     "--call", "millstone.test.Greeter/Updates", "-d", R"({"times":3})", "--rate",
                     "100", "-z", "1s", "--streams", "4", "-q", "-o", out},
                    30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  expect_valid_summary(out);
  const uint64_t ok = status_count(j, "OK");
  EXPECT_GT(ok, 0u);
  EXPECT_EQ(j["errors"].size(), 0u) << j["errors"];
  EXPECT_EQ(j["grpc"]["messages"].get<uint64_t>(), 3 * ok);
  const uint64_t calls = server.counts()["calls"].get<uint64_t>();
  EXPECT_GE(calls, ok);
  EXPECT_LE(calls, ok + j["in_flight"].get<uint64_t>());
}

TEST(GrpcIntegration, AnswersThatAreNotGrpcAreCountedByCause) {
  // An ordinary HTTP/2 route at the method's path, answering four kinds of
  // not-gRPC: another HTTP status, another content-type, a length prefix
  // past the body's end, and a message with no grpc-status after it.
  MockServer mock(
      "routes:\n"
      "  - path: /" +
      kHello +
      "\n"
      "    method: POST\n"
      "    headers: {content-type: text/html}\n"
      "    body: <html></html>\n"
      "    errors:\n"
      "      - {rate: 25%, status: 503, body: busy}\n"
      "      - {rate: 25%, status: 200, headers: {content-type: application/grpc},\n"
      "         body: \"\\0\\0\\0\\0\\x09hi\"}\n"
      "      - {rate: 25%, status: 200, headers: {content-type: application/grpc},\n"
      "         body: \"\\0\\0\\0\\0\\x02hi\"}\n");
  const std::string out = temp_dir() + "/summary.json";
  const ProcessResult r = run_millstone(grpc_args(mock.port(), out, {"-z", "1s"}), 30);
  EXPECT_EQ(r.exit_code, 6) << r.err;  // not one call was gRPC: nothing measured
  const nlohmann::json j = read_json(out);
  expect_valid_summary(out);
  for (const char* cause :
       {"grpc_http_status", "grpc_content_type", "grpc_bad_message", "grpc_missing_status"}) {
    EXPECT_GT(j["errors"].value(cause, uint64_t{0}), 0u) << cause << ": " << j["errors"];
  }
  EXPECT_EQ(j["errors"].size(), 4u) << j["errors"];
  EXPECT_EQ(j["grpc"]["calls"].get<uint64_t>(), 0u);
  const uint64_t served = mock.stats()["routes"][0]["requests"].get<uint64_t>();
  EXPECT_GE(served, j["error_total"].get<uint64_t>());
  EXPECT_LE(served, j["error_total"].get<uint64_t>() + j["in_flight"].get<uint64_t>());
}

TEST(GrpcIntegration, BadInputIsOneLineBeforeAnyLoad) {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/bad.proto") << "syntax = \"proto3\";\npackage p;\nmessage M {\n"
                                    << "  strnig name = 1;\n}\n";
  // Port 9 (discard) on loopback: nothing listens, and nothing is reached.
  const std::string target = "127.0.0.1:9";
  ProcessResult r = run_millstone(
      {"grpc", target, "--proto", dir + "/bad.proto", "--call", "p.S/M", "--no-history"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err.rfind("millstone grpc: " + dir + "/bad.proto:4:3: ", 0), 0u) << r.err;

  r = run_millstone({"grpc", target, "--proto", kProto, "--call", "millstone.test.Greeter/Hi"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "millstone grpc: --call 'millstone.test.Greeter/Hi': millstone.test.Greeter has no "
            "method Hi; it has: SayHello, Ping, Updates, Collect\n");

  r = run_millstone({"grpc", target, "--proto", kProto, "--call", kHello, "-d", R"({"nam":"x"})"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(
      r.err.rfind("millstone grpc: -d/--data: JSON does not fit millstone.test.HelloRequest: ", 0),
      0u)
      << r.err;
  EXPECT_NE(r.err.find("nam"), std::string::npos) << r.err;

  r = run_millstone({"grpc", target, "--proto", kProto, "--call", kHello, "-d", "10s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("(the run's length is --duration, not -d)"), std::string::npos) << r.err;

  r = run_millstone({"grpc", target, "--proto", kProto, "--call", kHello, "-H", "te: x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("set by millstone"), std::string::npos) << r.err;

  r = run_millstone(
      {"grpc", target, "--proto", kProto, "--call", "millstone.test.Greeter/Collect", "-d", "7"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is a client streaming method; expected a JSON list of its request "
                       "messages"),
            std::string::npos)
      << r.err;

  // Everything fine but the target: unreachable, after the .proto was read.
  r = run_millstone({"grpc", target, "--proto", kProto, "--call", kHello, "--no-history"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
}

TEST(GrpcIntegration, ScenarioStepsCountAsTheMockCountsThem) {
  // A grpc step whose answer's message is extracted into the next step's
  // path: the mock's own counts say how many calls it answered, how many
  // with UNAVAILABLE, and how many times the extracted word came back.
  MockServer mock(
      "grpc:\n"
      "  - proto: " +
      kProto +
      "\n"
      "    method: " +
      kHello +
      "\n"
      "    response: {message: hello, count: 3}\n"
      "    errors: [{rate: 25%, status: UNAVAILABLE, message: busy}]\n"
      "routes:\n"
      "  - {path: /after/hello, body: ok}\n"
      "  - {path: '/after/*', status: 404}\n");
  const std::string dir = temp_dir();
  std::ofstream(dir + "/s.yaml") << "target: http://127.0.0.1:" << mock.port() << "\n"
                                 << "grpc: {protos: [" << kProto << "]}\n"
                                 << R"(flows:
  greet:
    steps:
      - name: hello
        grpc:
          call: millstone.test.Greeter/SayHello
          message: {name: "vu {{ vu }}", times: "{{ iteration }}", tags: [a]}
          metadata: {x-request-id: "{{ uuid }}"}
          deadline: 2s
        check:
          grpc_status: OK
          json: {$.count: 3}
        extract:
          word: {json: $.message}
      - get: /after/{{ word }}
scenarios:
  s: {executor: iterations, vus: 2, iterations: 120}
)";
  const std::string out = dir + "/summary.json";
  const ProcessResult r =
      run_millstone({"run", dir + "/s.yaml", "-w", "2", "-q", "--no-history", "-o", out}, 30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_valid_summary(out);
  const nlohmann::json j = read_json(out);
  const nlohmann::json stats = mock.stats();
  const nlohmann::json& route = stats["routes"][0];
  ASSERT_EQ(route["name"], "grpc " + kHello);
  const uint64_t ok = status_count(j, "OK");
  const uint64_t unavailable = status_count(j, "UNAVAILABLE");
  // Every iteration ran to its end: nothing in flight, nothing lost.
  EXPECT_EQ(ok + unavailable, 120u);
  EXPECT_EQ(route["requests"].get<uint64_t>(), 120u);
  EXPECT_EQ(route["error_status"].get<uint64_t>(), unavailable);
  EXPECT_GT(unavailable, 0u);
  EXPECT_EQ(j["grpc"]["failed"].get<uint64_t>(), unavailable);
  EXPECT_EQ(j["grpc"]["messages"].get<uint64_t>(), ok);
  EXPECT_EQ(j["errors"].size(), 0u) << j["errors"];
  // The extracted message made the next path, once per OK call.
  EXPECT_EQ(stats["routes"][1]["requests"].get<uint64_t>(), ok);
  EXPECT_EQ(stats["routes"][2]["requests"].get<uint64_t>(), 0u);
  // One HTTP/2 connection per VU, every call on it.
  EXPECT_EQ(stats["http2"]["connections"].get<uint64_t>(), 2u);
  EXPECT_EQ(stats["http2"]["requests"].get<uint64_t>(), 120u);
  // Per step: calls, failures by grpc-status, the checks.
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][0]["name"], "greet/hello");
  EXPECT_EQ(j["steps"][0]["requests"].get<uint64_t>(), 120u);
  EXPECT_EQ(j["steps"][0]["failed"].get<uint64_t>(), unavailable);
  EXPECT_EQ(j["steps"][1]["requests"].get<uint64_t>(), ok);
  EXPECT_EQ(j["failed"].get<uint64_t>(), unavailable);
  EXPECT_NE(r.out.find("grpc         calls by status: OK "), std::string::npos) << r.out;
}

TEST(GrpcIntegration, ScenarioStreamingStepsAgainstGrpcJs) {
  // Client streaming (messages: sent in order, then half-closed) and server
  // streaming (every message, as a JSON list) against a real gRPC server,
  // whose own call counter is the truth.
  if (!have_grpc_js()) GTEST_SKIP() << "node or tests/interop/node_modules/@grpc is missing";
  GrpcJsServer server;
  ASSERT_NE(server.port(), 0) << "node grpc_server.js did not start";
  const std::string dir = temp_dir();
  std::ofstream(dir + "/s.yaml") << "target: http://127.0.0.1:" << server.port() << "\n"
                                 << "grpc: {protos: [" << kProto << "]}\n"
                                 << R"(flows:
  f:
    steps:
      - name: collect
        grpc:
          call: millstone.test.Greeter/Collect
          messages: [{name: a}, {name: "{{ vu }}"}, {name: c}]
        check: {grpc_status: OK, json: {$.count: 3, $.message: collected}}
        extract: {n: {json: $.count}}
      - name: updates
        grpc: {call: millstone.test.Greeter/Updates, message: {times: "{{ n }}"}}
        check: {grpc_status: OK, json: {$: {length: 3}, "$[2].message": update 2}}
scenarios:
  s: {executor: iterations, vus: 2, iterations: 10}
)";
  const std::string out = dir + "/summary.json";
  const ProcessResult r =
      run_millstone({"run", dir + "/s.yaml", "-w", "1", "-q", "--no-history", "-o", out}, 30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  EXPECT_EQ(j["errors"].size(), 0u) << j["errors"];
  EXPECT_EQ(status_count(j, "OK"), 20u) << j["grpc"];
  EXPECT_EQ(j["grpc"]["messages"].get<uint64_t>(), 10u + 30u);  // one per Collect, 3 per Updates
  EXPECT_EQ(server.counts()["calls"].get<uint64_t>(), 20u);
  for (const auto& check : j["checks"]) {
    EXPECT_EQ(check["failed"].get<uint64_t>(), 0u) << check;
  }
}

TEST(GrpcIntegration, ScenarioStreamingStepsAgainstTheMock) {
  // Every kind of method the mock answers: client streaming once after the
  // half-close, server streaming `replies` messages, bidirectional one per
  // request message. The mock counts the calls; the messages are counted
  // by what the steps' checks saw.
  const std::string dir = temp_dir();
  std::ofstream(dir + "/chat.proto") << R"(syntax = "proto3";
package chat;
service Room {
  rpc Say (stream Line) returns (Line);
  rpc Listen (Line) returns (stream Line);
  rpc Talk (stream Line) returns (stream Line);
}
message Line { string text = 1; }
)";
  const std::string proto = dir + "/chat.proto";
  const std::string yaml =
      "grpc:\n"
      "  - {proto: " +
      proto +
      ", method: chat.Room/Say, response: {text: heard}}\n"
      "  - {proto: " +
      proto +
      ", method: chat.Room/Listen, response: {text: news}, replies: 3}\n"
      "  - {proto: " +
      proto +
      ", method: chat.Room/Talk, response: {text: echo},\n"
      "     replies: per_message}\n";
  MockServer mock(yaml);
  std::ofstream(dir + "/s.yaml") << "target: http://127.0.0.1:" << mock.port() << "\n"
                                 << R"(grpc: {protos: chat.proto}
flows:
  f:
    steps:
      - grpc: {call: chat.Room/Say, messages: [{text: a}, {text: b}]}
        check: {grpc_status: OK, json: {$.text: heard}}
      - grpc: {call: chat.Room/Listen, message: {text: "{{ vu }}"}}
        check: {json: {$: {length: 3}, "$[2].text": news}}
      - grpc: {call: chat.Room/Talk, messages: [{text: x}, {text: y}, {text: z}, {text: w}]}
        check: {json: {$: {length: 4}}}
scenarios:
  s: {executor: iterations, vus: 1, iterations: 5}
)";
  const std::string out = dir + "/summary.json";
  const ProcessResult r =
      run_millstone({"run", dir + "/s.yaml", "-w", "1", "-q", "--no-history", "-o", out}, 30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  EXPECT_EQ(j["errors"].size(), 0u) << j["errors"];
  EXPECT_EQ(status_count(j, "OK"), 15u) << j["grpc"];
  EXPECT_EQ(j["grpc"]["messages"].get<uint64_t>(), 5u * (1 + 3 + 4));
  const nlohmann::json stats = mock.stats();
  for (int route = 0; route < 3; ++route) {
    EXPECT_EQ(stats["routes"][route]["requests"].get<uint64_t>(), 5u) << stats["routes"][route];
  }
  for (const auto& check : j["checks"]) {
    EXPECT_EQ(check["failed"].get<uint64_t>(), 0u) << check;
  }
}

TEST(GrpcIntegration, QuickModeClientStreamingSendsTheListInOrder) {
  // -d takes a list for a client-streaming method; the mock answers each
  // call once, after the half-close, and counts it.
  MockServer mock("grpc:\n  - proto: " + kProto +
                  "\n    method: millstone.test.Greeter/Collect\n    response: {count: 2}\n");
  const std::string out = temp_dir() + "/summary.json";
  const ProcessResult r = run_millstone(
      {"grpc", "127.0.0.1:" + std::to_string(mock.port()), "--proto", kProto, "--call",
       "millstone.test.Greeter/Collect", "-d", R"([{"name":"a"},{"name":"b"}])", "-z", "500ms",
       "--streams", "4", "-q", "-o", out},
      30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  const uint64_t ok = status_count(j, "OK");
  EXPECT_GT(ok, 0u);
  EXPECT_EQ(j["errors"].size(), 0u) << j["errors"];
  EXPECT_EQ(j["grpc"]["messages"].get<uint64_t>(), ok);  // one answer per call
  const uint64_t served = mock.stats()["routes"][0]["requests"].get<uint64_t>();
  EXPECT_GE(served, ok);
  EXPECT_LE(served, ok + j["in_flight"].get<uint64_t>());
}

TEST(GrpcIntegration, ScenarioBadInputIsFileLineAndExit3) {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/s.yaml") << "target: http://127.0.0.1:9\n"
                                 << "grpc: {protos: [" << kProto << "]}\n"
                                 << "flows:\n  f:\n    steps:\n"
                                 << "      - grpc: {call: millstone.test.Greeter/SayHello, "
                                    "message: {times: many}}\n";
  const ProcessResult r = run_millstone({"run", dir + "/s.yaml", "--no-history"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err.rfind("millstone run: " + dir +
                            "/s.yaml:6:72: \"many\" is not a value of field times "
                            "(millstone.test.HelloRequest int32): ",
                        0),
            0u)
      << r.err;
}

}  // namespace grpc_test
}  // namespace millstone::testing
