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
  explicit GrpcJsServer(int fail_every = 0, int delay_ms = 0)
      : count_port_(free_port()),
        process_({"node", MILLSTONE_SOURCE_DIR "/tests/interop/grpc_server.js", "0",
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
      {"grpc", target, "--proto", kProto, "--call", "millstone.test.Greeter/Collect"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("a client streaming method"), std::string::npos) << r.err;

  // Everything fine but the target: unreachable, after the .proto was read.
  r = run_millstone({"grpc", target, "--proto", kProto, "--call", kHello, "--no-history"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
}

}  // namespace grpc_test
}  // namespace millstone::testing
