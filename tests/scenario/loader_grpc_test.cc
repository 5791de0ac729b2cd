// grpc: and grpc steps: what the loader compiles (the call, its messages
// encoded once when literal, checks on grpc_status), how a worker rebuilds
// the same descriptors from what the coordinator sends, and every error
// with its FILE:LINE:COL. The .proto is written by the test beside the
// scenario file, as users name it (relative to the scenario).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include "grpc/framing.h"
#include "grpc/proto_catalog.h"
#include "scenario/loader.h"

namespace millstone::scenario {
namespace loader_grpc_test {

constexpr const char* kProto = R"(syntax = "proto3";
package shop.v1;
service Orders {
  rpc Get (GetOrder) returns (Order);
  rpc Upload (stream Line) returns (Order);
  rpc Watch (GetOrder) returns (stream Order);
}
enum Kind { KIND_UNSPECIFIED = 0; RETAIL = 1; }
message GetOrder { string id = 1; int32 page = 2; Kind kind = 3; repeated string tags = 4;
                   Line first = 5; map<string, Line> lines = 6; }
message Line { string sku = 1; int64 quantity_total = 2; }
message Order { string id = 1; }
)";

constexpr const char* kHead = R"(target: http://127.0.0.1:9
grpc:
  protos: [shop.proto]
flows:
  f:
    steps:
)";

class LoaderGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/millstone-loader-grpc-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    write("shop.proto", kProto);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << content;
  }
  // "" when it loads, else the message with the folder replaced by DIR.
  std::string error_of(const std::string& yaml) {
    write("s.yaml", yaml);
    try {
      plan_ = load_scenario_file(dir_ + "/s.yaml");
      return "";
    } catch (const ScenarioError& e) {
      std::string message = e.what();
      for (size_t at; (at = message.find(dir_)) != std::string::npos;)
        message.replace(at, dir_.size(), "DIR");
      return message;
    }
  }

  std::string dir_;
  std::unique_ptr<Plan> plan_;
};

TEST_F(LoaderGrpcTest, CompilesTheCallItsMessageAndChecks) {
  ASSERT_EQ(error_of(std::string(kHead) + R"(      - grpc:
          call: shop.v1.Orders/Get
          message: {id: A1, page: 2, kind: RETAIL, tags: [x], first: {sku: s, quantityTotal: 3}}
          metadata: {authorization: "Bearer {{ vu }}"}
          deadline: 250ms
        check: {grpc_status: [OK, NOT_FOUND], grpc_message: {not_contains: busy}}
        extract: {order: {json: $.id}}
)"),
            "");
  ASSERT_EQ(plan_->flows[0].requests.size(), 1u);
  const HttpRequest& request = plan_->flows[0].requests[0];
  ASSERT_NE(request.grpc, nullptr);
  EXPECT_EQ(request.http_version, 2);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target.source(), "/shop.v1.Orders/Get");
  EXPECT_EQ(plan_->step_names[0], "f/grpc shop.v1.Orders/Get");
  EXPECT_EQ(request.grpc->deadline_us, 250'000);
  ASSERT_EQ(request.grpc->metadata.size(), 1u);
  EXPECT_FALSE(request.grpc->client_streaming);
  // Literal: encoded once, framed; it decodes back to the same fields.
  ASSERT_TRUE(request.grpc->literal_body.has_value());
  std::vector<std::string_view> messages;
  ASSERT_EQ(
      grpc::split_messages(*request.grpc->literal_body, grpc::kDefaultMaxMessageBytes, &messages),
      grpc::FramingError::kNone);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(
      plan_->grpc.catalog->decode_to_json(*request.grpc->request_type, messages[0]),
      R"({"id":"A1","page":2,"kind":"RETAIL","tags":["x"],"first":{"sku":"s","quantityTotal":"3"}})");
  ASSERT_EQ(request.checks.size(), 2u);
  EXPECT_EQ(plan_->check_names[0], "f/grpc shop.v1.Orders/Get: grpc_status in [OK, NOT_FOUND]");
  EXPECT_EQ(plan_->check_names[1],
            "f/grpc shop.v1.Orders/Get: grpc_message does not contain \"busy\"");
}

TEST_F(LoaderGrpcTest, TemplatedMessagesAreRenderedPerCall) {
  ASSERT_EQ(error_of(std::string(kHead) + R"(      - name: get
        grpc: {call: shop.v1.Orders/Get, message: {id: "o-{{ vu }}", page: "{{ iteration }}"}}
      - name: upload
        grpc: {call: shop.v1.Orders/Upload, messages: [{sku: a}, {sku: "{{ vu }}"}]}
)"),
            "");
  const auto& requests = plan_->flows[0].requests;
  EXPECT_FALSE(requests[0].grpc->literal_body.has_value());
  ASSERT_EQ(requests[1].grpc->messages.size(), 2u);
  EXPECT_TRUE(requests[1].grpc->client_streaming);
  EXPECT_TRUE(requests[1].grpc->single_response());
}

TEST_F(LoaderGrpcTest, AWorkerRebuildsTheDescriptorsItWasSent) {
  const std::string yaml = std::string(kHead) + R"(      - grpc: {call: shop.v1.Orders/Watch}
)";
  ASSERT_EQ(error_of(yaml), "");
  ASSERT_FALSE(plan_->grpc.descriptor_set.empty());
  // The worker reads no .proto: the folder is gone, the descriptors came with Start.
  const std::string descriptors = plan_->grpc.descriptor_set;
  std::filesystem::remove(dir_ + "/shop.proto");
  DataFileSet sent;
  sent[plan_->grpc.descriptor_key] = DataBytes::own(descriptors);
  auto worker = parse_scenario(yaml, "s.yaml", dir_, {}, {}, &sent);
  const HttpRequest& request = worker->flows[0].requests[0];
  ASSERT_NE(request.grpc, nullptr);
  EXPECT_TRUE(request.grpc->server_streaming);
  EXPECT_FALSE(request.grpc->single_response());
  EXPECT_EQ(request.grpc->response_type->full_name(), "shop.v1.Order");

  DataFileSet nothing;
  EXPECT_THROW(parse_scenario(yaml, "s.yaml", dir_, {}, {}, &nothing), ScenarioError);
}

TEST_F(LoaderGrpcTest, BadInputNamesTheLineAndWhatWasExpected) {
  const std::string head(kHead);
  const std::pair<std::string, std::string> cases[] = {
      {head + "      - grpc: {call: shop.v1.Orders/Put}\n",
       "DIR/s.yaml:7:22: call \"shop.v1.Orders/Put\": shop.v1.Orders has no method Put; it has: "
       "Get, Upload, Watch"},
      {head + "      - grpc: {call: shop.Orders/Get}\n",
       "DIR/s.yaml:7:22: call \"shop.Orders/Get\": no service shop.Orders in DIR/shop.proto; it "
       "has: shop.v1.Orders"},
      {head + "      - grpc: {call: shop.v1.Orders/Get, message: {idd: x}}\n",
       "DIR/s.yaml:7:52: shop.v1.GetOrder has no field \"idd\" (did you mean \"id\"?); expected "
       "one of: id, page, kind, tags, first, lines"},
      {head + "      - grpc: {call: shop.v1.Orders/Get, message: {page: two}}\n",
       "DIR/s.yaml:7:58: \"two\" is not a value of field page (shop.v1.GetOrder int32): JSON does "
       "not fit shop.v1.GetOrder: (page): invalid value \"two\" for type TYPE_INT32; expected a "
       "number"},
      {head + "      - grpc: {call: shop.v1.Orders/Get, message: {tags: x}}\n",
       "DIR/s.yaml:7:58: field tags of shop.v1.GetOrder is repeated; expected a list such as [a, "
       "b], not a single value"},
      {head + "      - grpc: {call: shop.v1.Orders/Get, message: {first: {sku: s, bad: 2}}}\n",
       "DIR/s.yaml:7:68: shop.v1.Line has no field \"bad\"; expected one of: sku, "
       "quantity_total"},
      {head + "      - grpc: {call: shop.v1.Orders/Get, message: {first: x}}\n",
       "DIR/s.yaml:7:59: message of type shop.v1.Line is a single value; expected a map of its "
       "fields"},
      {head + "      - grpc: {call: shop.v1.Orders/Get, messages: [{id: a}]}\n",
       "DIR/s.yaml:7:42: messages: is for client-streaming and bidirectional methods; "
       "shop.v1.Orders/Get takes one request message: expected message:"},
      {head + "      - grpc: {call: shop.v1.Orders/Get, metadata: {grpc-timeout: 1S}}\n",
       "DIR/s.yaml:7:52: metadata \"grpc-timeout\" is set by gRPC itself; expected other "
       "metadata (the deadline is deadline:)"},
      {head + "      - grpc: {call: shop.v1.Orders/Get}\n        check: {status: 200}\n",
       "DIR/s.yaml:8:17: check status: applies to HTTP steps; expected grpc_status: (such as OK "
       "or [OK, NOT_FOUND]) in a grpc step"},
      {head + "      - grpc: {call: shop.v1.Orders/Get}\n        check: {grpc_status: FINE}\n",
       "DIR/s.yaml:8:30: grpc_status \"FINE\" is not a gRPC status; expected a name such as OK, "
       "NOT_FOUND or UNAVAILABLE, a code 0 to 16, or a list of them"},
      {head + "      - grpc: {call: shop.v1.Orders/Get}\n        http: 2\n",
       "DIR/s.yaml:8:9: http does not apply to a grpc step; expected name, check, extract, "
       "timeout (the call's settings go in grpc:)"},
      {"target: http://127.0.0.1:9\nflows:\n  f:\n    steps:\n"
       "      - grpc: {call: shop.v1.Orders/Get}\n",
       "DIR/s.yaml:5:9: grpc step, but the scenario has no grpc: section; expected grpc: "
       "{protos: [service.proto]} at the top level, naming the .proto files of the services "
       "called"},
      {"target: http://127.0.0.1:9\ngrpc: {protos: [nope.proto]}\nflows:\n  f:\n    steps:\n"
       "      - grpc: {call: shop.v1.Orders/Get}\n",
       "DIR/s.yaml:2:17: proto file \"DIR/nope.proto\" does not exist; expected a .proto file "
       "relative to the scenario file"},
      {"target: http://127.0.0.1:9\ngrpc: {protos: broken.proto}\nflows:\n  f:\n    steps:\n"
       "      - grpc: {call: shop.v1.Orders/Get}\n",
       "DIR/s.yaml:2:16: protos: DIR/broken.proto:2:13: \"strnig\" is not defined."},
  };
  write("broken.proto", "syntax = \"proto3\";\nmessage M { strnig name = 1; }\n");
  for (const auto& [yaml, expected] : cases) {
    EXPECT_EQ(error_of(yaml), expected) << yaml;
  }
}

constexpr const char* kReflectionYaml = R"(target: http://127.0.0.1:9
grpc: {reflection: true}
flows:
  f:
    steps:
      - group: g
        steps:
          - loop: 2
            steps:
              - grpc: {call: shop.v1.Orders/Get, message: {id: A1}}
      - grpc: {call: /shop.v1.Orders/Watch}
)";

TEST_F(LoaderGrpcTest, ReflectionAsksForTheServicesTheStepsCall) {
  std::vector<std::vector<std::string>> asked;
  const std::string descriptors = grpc::ProtoCatalog(dir_ + "/shop.proto", {}).descriptor_set();
  const GrpcReflector reflector = [&](const Plan& plan, const std::vector<std::string>& services) {
    EXPECT_EQ(plan.target.port, 9);  // compiled before grpc:
    asked.push_back(services);
    return GrpcReflection{descriptors, "", 0};
  };
  auto plan = parse_scenario(kReflectionYaml, "s.yaml", dir_, {}, {}, nullptr, &reflector);
  ASSERT_EQ(asked, (std::vector<std::vector<std::string>>{{"shop.v1.Orders"}}));
  ASSERT_NE(plan->grpc.catalog, nullptr);
  EXPECT_FALSE(plan->grpc.descriptor_set.empty());
  const auto& requests = plan->flows[0].requests;
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].grpc->request_type->full_name(), "shop.v1.GetOrder");
  EXPECT_TRUE(requests[0].grpc->literal_body.has_value());
  EXPECT_TRUE(requests[1].grpc->server_streaming);

  // Messages are checked against what the server described.
  std::string bad = kReflectionYaml;
  bad.replace(bad.find("id: A1"), 6, "idd: 1");
  try {
    parse_scenario(bad, "s.yaml", dir_, {}, {}, nullptr, &reflector);
    ADD_FAILURE() << "loaded";
  } catch (const ScenarioError& e) {
    EXPECT_THAT(e.what(),
                ::testing::StartsWith("s.yaml:10:60: shop.v1.GetOrder has no field \"idd\""));
  }

  // A worker rebuilds them from what was sent, and asks nothing.
  const size_t questions = asked.size();
  DataFileSet sent;
  sent[plan->grpc.descriptor_key] = DataBytes::own(plan->grpc.descriptor_set);
  auto worker = parse_scenario(kReflectionYaml, "s.yaml", dir_, {}, {}, &sent, &reflector);
  EXPECT_EQ(asked.size(), questions);
  EXPECT_EQ(worker->flows[0].requests[0].grpc->request_type->full_name(), "shop.v1.GetOrder");
}

TEST_F(LoaderGrpcTest, ReflectionFailuresKeepTheirExitCode) {
  const GrpcReflector unreachable = [](const Plan&, const std::vector<std::string>&) {
    return GrpcReflection{"", "http://127.0.0.1:9 is unreachable: refused", 4};
  };
  try {
    parse_scenario(kReflectionYaml, "s.yaml", dir_, {}, {}, nullptr, &unreachable);
    ADD_FAILURE() << "loaded";
  } catch (const GrpcReflectionError& e) {
    EXPECT_EQ(e.exit_code(), 4);
    EXPECT_STREQ(e.what(), "s.yaml:2:20: reflection: http://127.0.0.1:9 is unreachable: refused");
  }
  // Descriptors that do not build are the file's config error, at reflection:.
  const GrpcReflector garbage = [](const Plan&, const std::vector<std::string>&) {
    return GrpcReflection{"\x0a\x03\x0a\x01", "", 0};
  };
  try {
    parse_scenario(kReflectionYaml, "s.yaml", dir_, {}, {}, nullptr, &garbage);
    ADD_FAILURE() << "loaded";
  } catch (const GrpcReflectionError&) {
    ADD_FAILURE() << "not a reflection failure";
  } catch (const ScenarioError& e) {
    EXPECT_THAT(e.what(), ::testing::StartsWith("s.yaml:2:20: reflection: server reflection: "));
  }
}

TEST_F(LoaderGrpcTest, WithoutAReflectorStepsAreCheckedForFormOnly) {
  // validate and k8s render: no network; the run's coordinator asks.
  ASSERT_EQ(error_of(kReflectionYaml), "");
  EXPECT_TRUE(plan_->grpc.reflection);
  EXPECT_EQ(plan_->grpc.catalog, nullptr);
  EXPECT_EQ(plan_->step_names[0], "f/g/grpc shop.v1.Orders/Get");
  EXPECT_EQ(plan_->flows[0].requests[1].target.source(), "/shop.v1.Orders/Watch");
  std::string bad = kReflectionYaml;
  bad.replace(bad.find("/shop.v1.Orders/Watch"), 21, "Watch");
  EXPECT_EQ(error_of(bad),
            "DIR/s.yaml:11:22: call \"Watch\": expected package.Service/Method, such as "
            "helloworld.Greeter/SayHello");
  std::string both = kReflectionYaml;
  both.replace(both.find("{reflection: true}"), 18, "{reflection: true, protos: [shop.proto]}");
  EXPECT_EQ(error_of(both),
            "DIR/s.yaml:2:26: grpc has reflection: true and .proto files; expected one "
            "(reflection: the server describes its services, protos: the files do)");
}

}  // namespace loader_grpc_test
}  // namespace millstone::scenario
