// gRPC server reflection end to end on 127.0.0.1: `millstone grpc --reflect`
// and `--list`, and a scenario's grpc: {reflection: true}, against the
// mock's reflection service (docs/mock.md#grpc-reflection). The mock's own
// counts are the truth: its route rows for the calls, http2.reflection_calls
// and reflection_requests for the reflection conversation (asked once, by
// the coordinator, never by the workers). The failures are one line and an
// exit code before any load: no reflection service or an unknown symbol 3,
// unreachable 4, a certificate not trusted 8, --reflect with --proto 2.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include "socket_servers.h"
#include "support.h"

namespace millstone::testing {
namespace grpc_reflection_test {

const std::string kProto = MILLSTONE_SOURCE_DIR "/tests/interop/protos/greeter.proto";
const std::string kHello = "millstone.test.Greeter/SayHello";

std::string mock_yaml(const std::string& extra = "") {
  return "grpc:\n  - proto: " + kProto + "\n    method: " + kHello +
         "\n    response: {message: hi}\n" + extra;
}

std::string target(int port) {
  return "127.0.0.1:" + std::to_string(port);
}

uint64_t reflection_calls(const nlohmann::json& stats) {
  return stats["http2"]["reflection_calls"].get<uint64_t>();
}

uint64_t reflection_requests(const nlohmann::json& stats) {
  return stats["http2"]["reflection_requests"].get<uint64_t>();
}

TEST(GrpcReflection, ReflectRunCountsMatchTheMocksOwn) {
  MockServer mock(mock_yaml());
  const std::string out = temp_dir() + "/summary.json";
  const ProcessResult r = run_millstone(
      {"grpc", target(mock.port()), "--reflect", "--call", kHello, "-d",
       R"({"name":"ada","times":2})", "-z", "500ms", "--streams", "4", "-w", "1", "-o", out},
      30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("millstone.test.Greeter from server reflection (v1, 2 files in 1 answer)"),
            std::string::npos)
      << r.err;
  const nlohmann::json j = read_json(out);
  expect_valid_summary(out);
  const uint64_t ok = j["grpc"]["status"].value("OK", uint64_t{0});
  EXPECT_GT(ok, 0u);
  EXPECT_EQ(j["requests"].get<uint64_t>(), ok);
  const nlohmann::json stats = mock.stats();
  const nlohmann::json& route = stats["routes"][0];
  const uint64_t in_flight = j["in_flight"].get<uint64_t>();
  EXPECT_GE(route["requests"].get<uint64_t>(), ok);
  EXPECT_LE(route["requests"].get<uint64_t>(), ok + in_flight);
  // One conversation, one question: greeter.proto came with its import.
  EXPECT_EQ(reflection_calls(stats), 1u);
  EXPECT_EQ(reflection_requests(stats), 1u);
  EXPECT_EQ(stats["http2"]["streams_reset"].get<uint64_t>(), 0u);
}

TEST(GrpcReflection, ListPrintsServicesAndMethods) {
  MockServer mock(mock_yaml());
  const ProcessResult r = run_millstone({"grpc", target(mock.port()), "--list"}, 20);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "grpc.reflection.v1.ServerReflection\n"
            "grpc.reflection.v1alpha.ServerReflection\n"
            "millstone.test.Greeter\n"
            "  SayHello(millstone.test.HelloRequest) returns (millstone.test.HelloReply)\n"
            "  Ping(google.protobuf.Empty) returns (google.protobuf.Empty)\n"
            "  Updates(millstone.test.HelloRequest) returns (millstone.test.HelloReply)  (server "
            "streaming)\n"
            "  Collect(millstone.test.HelloRequest) returns (millstone.test.HelloReply)  (client "
            "streaming)\n");
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(reflection_calls(stats), 1u);
  EXPECT_EQ(reflection_requests(stats), 2u);  // list_services, then the Greeter's file
  EXPECT_EQ(stats["routes"][0]["requests"].get<uint64_t>(), 0u);
}

TEST(GrpcReflection, ScenarioResolvesOnceOnTheCoordinator) {
  MockServer mock(mock_yaml());
  const std::string scenario =
      write_temp_file("target: http://" + target(mock.port()) +
                          "\n"
                          "grpc: {reflection: true}\n"
                          "flows:\n"
                          "  hello:\n"
                          "    steps:\n"
                          "      - grpc: {call: " +
                          kHello +
                          ", message: {name: \"vu{{ vu }}\", tags: [a]}}\n"
                          "        check: {grpc_status: OK}\n"
                          "scenarios:\n"
                          "  main: {executor: iterations, vus: 2, iterations: 40}\n",
                      ".yaml");
  const std::string out = temp_dir() + "/scenario.json";
  const ProcessResult r = run_millstone({"run", scenario, "-q", "-w", "2", "-o", out}, 30);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const nlohmann::json j = read_json(out);
  EXPECT_EQ(j["grpc"]["status"].value("OK", uint64_t{0}), 40u) << j.dump();
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(stats["routes"][0]["requests"].get<uint64_t>(), 40u);
  // Two workers, one conversation: the descriptors travel with the plan.
  EXPECT_EQ(reflection_calls(stats), 1u);
  EXPECT_EQ(reflection_requests(stats), 1u);
}

TEST(GrpcReflection, NoReflectionServiceIsAConfigErrorNamingTargetAndSymbol) {
  MockServer mock(mock_yaml("grpc_reflection: false\n"));
  const ProcessResult r =
      run_millstone({"grpc", target(mock.port()), "--reflect", "--call", kHello, "-z", "1s"}, 20);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("millstone grpc: server reflection at http://" + target(mock.port()) +
                       " for millstone.test.Greeter: no reflection service: grpc.reflection.v1 "
                       "answered UNIMPLEMENTED"),
            std::string::npos)
      << r.err;
  const nlohmann::json stats = mock.stats();
  EXPECT_EQ(reflection_calls(stats), 2u);  // v1, then v1alpha
  EXPECT_EQ(reflection_requests(stats), 0u);
  EXPECT_EQ(stats["routes"][0]["requests"].get<uint64_t>(), 0u);  // no load

  // The same from a scenario, at the file's grpc: position.
  const std::string scenario = write_temp_file("target: http://" + target(mock.port()) +
                                                   "\n"
                                                   "grpc: {reflection: true}\n"
                                                   "flows: {f: {steps: [{grpc: {call: " +
                                                   kHello + "}}]}}\n",
                                               ".yaml");
  const ProcessResult s = run_millstone({"run", scenario, "-q"}, 20);
  EXPECT_EQ(s.exit_code, 3) << s.err;
  EXPECT_NE(s.err.find(scenario + ":2:20: reflection: server reflection at http://"),
            std::string::npos)
      << s.err;
}

TEST(GrpcReflection, UnknownSymbolUnreachableAndFlagMisuse) {
  MockServer mock(mock_yaml());
  ProcessResult r = run_millstone(
      {"grpc", target(mock.port()), "--reflect", "--call", "shop.v1.Orders/Get", "-z", "1s"}, 20);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("no symbol shop.v1.Orders (NOT_FOUND"), std::string::npos) << r.err;
  EXPECT_EQ(reflection_calls(mock.stats()), 1u);

  const int closed = free_port();
  r = run_millstone({"grpc", target(closed), "--reflect", "--call", kHello, "-z", "1s"}, 20);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("http://" + target(closed) + " is unreachable"), std::string::npos) << r.err;

  r = run_millstone({"grpc", target(mock.port()), "--reflect", "--proto", kProto, "--call", kHello},
                    20);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_millstone({"grpc", target(mock.port()), "--call", kHello}, 20);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("expected --proto FILE"), std::string::npos) << r.err;
}

TEST(GrpcReflection, ValidateAndK8sRenderDoNotAsk) {
  MockServer mock(mock_yaml());
  const std::string scenario = write_temp_file("target: http://" + target(mock.port()) +
                                                   "\n"
                                                   "grpc: {reflection: true}\n"
                                                   "flows: {f: {steps: [{grpc: {call: " +
                                                   kHello + ", message: {name: a}}}]}}\n",
                                               ".yaml");
  ProcessResult r = run_millstone({"validate", scenario}, 20);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_millstone({"k8s", "render", scenario, "--agents", "2"}, 20);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("reflection: true"), std::string::npos);  // the file travels as written
  EXPECT_EQ(reflection_calls(mock.stats()), 0u);
}

TEST(GrpcReflection, GarbageOrSilenceIsAConfigErrorInBoundedTime) {
  // Bytes that are not HTTP/2, then a close.
  SocketTestServer garbage(SocketTestServer::Mode::kTcpGarbageClose);
  ProcessResult r =
      run_millstone({"grpc", target(garbage.port()), "--reflect", "--call", kHello}, 20);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("server reflection at http://" + target(garbage.port())), std::string::npos)
      << r.err;
  // Accepted, never answered: --timeout ends the wait.
  SocketTestServer silent(SocketTestServer::Mode::kTcpNoRead);
  r = run_millstone(
      {"grpc", target(silent.port()), "--reflect", "--call", kHello, "--timeout", "300ms"}, 20);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("no answer in time (--timeout)"), std::string::npos) << r.err;
}

TEST(GrpcReflection, OverTlsWithTheRunsTlsFlags) {
  const std::string config = write_temp_file(mock_yaml(), ".yaml");
  const std::string cert = temp_dir() + "/reflection-served.pem";
  Process mock({"mock", "--config", config, "--listen", "127.0.0.1:0", "--workers", "1", "--tls",
                "--tls-cert-out", cert});
  int port = 0;
  const std::regex listening(R"(listening on https://127\.0\.0\.1:(\d+))");
  for (int i = 0; i < 500 && port == 0; ++i) {
    std::smatch m;
    const std::string out = mock.stdout_so_far();
    if (std::regex_search(out, m, listening) && out.find("SHA-256") != std::string::npos) {
      port = std::stoi(m[1]);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_NE(port, 0) << mock.stdout_so_far();
  const std::string url = "https://" + target(port);
  // Not trusted: the pre-flight's exit code, before any load.
  ProcessResult r = run_millstone({"grpc", url, "--reflect", "--call", kHello, "-z", "1s"}, 20);
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("TLS handshake failed"), std::string::npos) << r.err;
  r = run_millstone({"grpc", url, "--cacert", cert, "--list"}, 20);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  SayHello(millstone.test.HelloRequest)"), std::string::npos) << r.out;
  const std::string out = temp_dir() + "/tls-summary.json";
  r = run_millstone({"grpc", url, "--cacert", cert, "--reflect", "--call", kHello, "-z", "300ms",
                     "-w", "1", "-q", "-o", out},
                    20);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  EXPECT_GT(j["grpc"]["status"].value("OK", uint64_t{0}), 0u) << j.dump();
  const nlohmann::json stats = nlohmann::json::parse(
      shell("curl -sS --cacert " + cert + " " + url + "/__millstone/stats"), nullptr, false);
  EXPECT_EQ(stats["http2"]["reflection_calls"], 2) << stats.dump();
  mock.signal(SIGTERM);
  mock.wait(10);
}

}  // namespace grpc_reflection_test
}  // namespace millstone::testing
