// The mock's gRPC routes (docs/mock.md#grpc): what the `grpc:` list compiles
// into, and the one-line errors for a bad .proto, method, response or status.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <string>

#include "grpc/framing.h"
#include "grpc/proto_catalog.h"
#include "mock/config.h"
#include "mock/h2_connection.h"

namespace millstone::mock {
namespace grpc_config_test {

const std::string kProtoDir = std::string(MILLSTONE_SOURCE_DIR) + "/tests/interop/protos";
// parse_mock_config resolves proto: against the folder of the source name.
const std::string kSource = kProtoDir + "/mock.yaml";

std::string error_of(const std::string& yaml) {
  try {
    parse_mock_config(yaml, kSource);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(MockGrpcConfig, RouteAnswersTheEncodedMessageWithItsStatus) {
  const MockConfig config = parse_mock_config(R"(
grpc:
  - proto: greeter.proto
    method: millstone.test.Greeter/SayHello
    response: {message: "hi", count: 7}
    latency: 5ms
    errors:
      - rate: 10%
        status: UNAVAILABLE
        message: try later
      - rate: 1%
        reset: true
  - proto: greeter.proto
    method: millstone.test.Greeter/Ping
    name: ping
    status: PERMISSION_DENIED
    message: no
routes:
  - path: /plain
)",
                                              kSource);
  ASSERT_EQ(config.routes.size(), 3u);
  const Route& hello = config.routes[0];
  EXPECT_EQ(hello.name, "grpc millstone.test.Greeter/SayHello");
  EXPECT_EQ(hello.method, "POST");
  EXPECT_EQ(hello.path, "/millstone.test.Greeter/SayHello");
  ASSERT_TRUE(hello.grpc.has_value());
  EXPECT_EQ(hello.grpc->status, 0u);
  grpc::ProtoCatalog catalog(kProtoDir + "/greeter.proto", {});
  const auto& type = *catalog.method("millstone.test.Greeter/SayHello").output_type();
  EXPECT_EQ(hello.body,
            grpc::frame_message(catalog.encode_json(type, R"({"message":"hi","count":7})")));
  ASSERT_EQ(hello.errors.size(), 2u);
  ASSERT_TRUE(hello.errors[0].grpc.has_value());
  EXPECT_EQ(hello.errors[0].grpc->status, 14u);
  EXPECT_EQ(hello.errors[0].grpc->message, "try later");
  EXPECT_EQ(hello.errors[1].kind, ErrorRule::kReset);
  EXPECT_EQ(config.routes[1].name, "ping");
  EXPECT_EQ(config.routes[1].grpc->status, 7u);

  // Over HTTP/2: OK is the message then trailers; not OK is trailers-only.
  const H2Response ok = make_grpc_response(*hello.grpc, hello.body);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, hello.body);
  ASSERT_EQ(ok.trailers.size(), 1u);
  EXPECT_EQ(ok.trailers[0], (std::pair<std::string, std::string>{"grpc-status", "0"}));
  const H2Response denied = make_grpc_response(GrpcAnswer{14, "try later\n"}, {});
  EXPECT_TRUE(denied.bodiless);
  EXPECT_TRUE(denied.trailers.empty());
  EXPECT_EQ(denied.headers.back(),
            (std::pair<std::string, std::string>{"grpc-message", "try later%0A"}));
}

TEST(MockGrpcConfig, StreamingMethodsAnswerOnceWithTheirReplies) {
  const MockConfig config = parse_mock_config(R"(
grpc:
  - proto: greeter.proto
    method: millstone.test.Greeter/Collect
    response: {message: "all"}
  - proto: greeter.proto
    method: millstone.test.Greeter/Updates
    response: {message: "u"}
    replies: 3
)",
                                              kSource);
  ASSERT_EQ(config.routes.size(), 2u);
  const H2Responses responses(config);
  // Client streaming: one message once the client half-closed.
  EXPECT_EQ(responses.routes[0].normal.body, grpc::frame_message(std::string("\x0a\x03"
                                                                             "all")));
  // Server streaming: `replies` messages.
  const std::string one = grpc::frame_message(std::string("\x0a\x01u"));
  EXPECT_EQ(responses.routes[1].normal.body, one + one + one);
  EXPECT_EQ(config.routes[1].grpc->replies, 3u);
  EXPECT_FALSE(config.routes[1].grpc->per_message);
}

TEST(MockGrpcConfig, ErrorsNameThePlace) {
  EXPECT_EQ(error_of("grpc:\n  - proto: nowhere.proto\n    method: a.B/C\n"),
            kSource + ":2:12: proto \"nowhere.proto\": --proto " + kProtoDir +
                "/nowhere.proto: no such file");
  EXPECT_EQ(error_of("grpc:\n  - proto: greeter.proto\n    method: millstone.test.Greeter/Nope\n"),
            kSource +
                ":3:13: method 'millstone.test.Greeter/Nope': millstone.test.Greeter has no "
                "method Nope; it has: SayHello, Ping, Updates, Collect");
  EXPECT_EQ(
      error_of("grpc:\n  - proto: greeter.proto\n    method: millstone.test.Greeter/SayHello\n"
               "    replies: 3\n"),
      kSource +
          ":4:5: replies applies to server-streaming and bidirectional methods; "
          "millstone.test.Greeter.SayHello answers one message");
  EXPECT_EQ(error_of("grpc:\n  - proto: greeter.proto\n    method: millstone.test.Greeter/Updates\n"
                     "    replies: per_message\n"),
            kSource +
                ":4:14: replies: per_message applies to bidirectional methods; "
                "millstone.test.Greeter.Updates takes one request message; expected a number");
  const std::string json = error_of(
      "grpc:\n  - proto: greeter.proto\n    method: millstone.test.Greeter/SayHello\n"
      "    response: {mesage: hi}\n");
  EXPECT_EQ(json.rfind(kSource + ":4:15: response: JSON does not fit millstone.test.HelloReply", 0),
            0u)
      << json;
  EXPECT_EQ(
      error_of("grpc:\n  - proto: greeter.proto\n    method: millstone.test.Greeter/SayHello\n"
               "    status: SORRY\n"),
      kSource +
          ":4:13: status \"SORRY\" is not a gRPC status; expected a name such as OK, "
          "UNAVAILABLE, DEADLINE_EXCEEDED or a code 0 to 16");
  EXPECT_EQ(
      error_of("grpc:\n  - proto: greeter.proto\n    method: millstone.test.Greeter/SayHello\n"
               "    errors: [{rate: 0.5, status: INTERNAL}, {rate: 0.6, reset: true}]\n"),
      kSource + ":4:13: error rates add up to 1.1; expected at most 1");
}

TEST(MockGrpcConfig, ABadProtoIsItsOwnFileAndLine) {
  // A .proto with a typo, written next to a config that names it.
  char dir_template[] = "/tmp/millstone-mock-grpc-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  FILE* f = fopen((dir + "/broken.proto").c_str(), "w");
  fputs("syntax = \"proto3\";\nmessage M {\n  int33 x = 1;\n}\n", f);
  fclose(f);
  try {
    parse_mock_config("grpc:\n  - proto: broken.proto\n    method: a.B/C\n", dir + "/mock.yaml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(
        std::string(e.what()).rfind(
            dir + "/mock.yaml:2:12: proto \"broken.proto\": " + dir + "/broken.proto:3:3: ", 0),
        0u)
        << e.what();
  }
}

}  // namespace grpc_config_test
}  // namespace millstone::mock
