#include "grpc/proto_catalog.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace millstone::grpc {
namespace proto_catalog_test {

const std::string kGreeter =
    std::string(MILLSTONE_SOURCE_DIR) + "/tests/interop/protos/greeter.proto";

std::string temp_proto(const std::string& name, const std::string& text) {
  static const std::string dir = [] {
    char pattern[] = "/tmp/millstone-proto-XXXXXX";
    return std::string(mkdtemp(pattern));
  }();
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ProtoError& e) {
    return e.what();
  }
  return "no error";
}

TEST(GrpcProtoCatalog, FindsMethodsAndEncodesJson) {
  ProtoCatalog catalog(kGreeter, {});
  const auto& method = catalog.method("millstone.test.Greeter/SayHello");
  EXPECT_EQ(method_path(method), "/millstone.test.Greeter/SayHello");
  EXPECT_EQ(&catalog.method("/millstone.test.Greeter/SayHello"), &method);
  EXPECT_EQ(&catalog.method("millstone.test.Greeter.SayHello"), &method);
  const std::string bytes =
      catalog.encode_json(*method.input_type(), R"({"name":"ada","times":3,"tags":["a","b"]})");
  // Field 1 (string "ada"), field 2 (varint 3), field 3 twice.
  EXPECT_EQ(bytes, std::string("\x0a\x03"
                               "ada"
                               "\x10\x03"
                               "\x1a\x01"
                               "a"
                               "\x1a\x01"
                               "b"));
  EXPECT_EQ(catalog.decode_to_json(*method.input_type(), bytes),
            R"({"name":"ada","times":3,"tags":["a","b"]})");
  // An import of a well-known type resolves from the system's include folder.
  EXPECT_EQ(catalog.method("millstone.test.Greeter/Ping").input_type()->full_name(),
            "google.protobuf.Empty");
  EXPECT_TRUE(catalog.method("millstone.test.Greeter/Updates").server_streaming());
}

TEST(GrpcProtoCatalog, UnknownServiceOrMethodNamesWhatThereIs) {
  ProtoCatalog catalog(kGreeter, {});
  EXPECT_EQ(error_of([&] { catalog.method("Greeter/SayHello"); }),
            "--call 'Greeter/SayHello': no service Greeter in " + kGreeter +
                "; it has: millstone.test.Greeter");
  EXPECT_EQ(error_of([&] { catalog.method("millstone.test.Greeter/SayBye"); }),
            "--call 'millstone.test.Greeter/SayBye': millstone.test.Greeter has no method SayBye; "
            "it has: SayHello, Ping, Updates, Collect");
  EXPECT_NE(error_of([&] { catalog.method("SayHello"); }).find("expected package.Service/Method"),
            std::string::npos);
}

TEST(GrpcProtoCatalog, JsonThatDoesNotFitTheTypeSaysWhy) {
  ProtoCatalog catalog(kGreeter, {});
  const auto& type = *catalog.method("millstone.test.Greeter/SayHello").input_type();
  const std::string unknown = error_of([&] { catalog.encode_json(type, R"({"nmae":"x"})"); });
  EXPECT_EQ(unknown.rfind("JSON does not fit millstone.test.HelloRequest: ", 0), 0u) << unknown;
  EXPECT_NE(unknown.find("nmae"), std::string::npos) << unknown;
  const std::string wrong = error_of([&] { catalog.encode_json(type, R"({"times":"many"})"); });
  EXPECT_NE(wrong.find("times"), std::string::npos) << wrong;
  const std::string broken = error_of([&] { catalog.encode_json(type, "{"); });
  EXPECT_EQ(broken.rfind("JSON does not fit", 0), 0u) << broken;
}

TEST(GrpcProtoCatalog, BadProtoIsFileLineColumn) {
  const std::string path = temp_proto("bad.proto",
                                      "syntax = \"proto3\";\n"
                                      "package p;\n"
                                      "message M {\n"
                                      "  strnig name = 1;\n"
                                      "}\n");
  const std::string error = error_of([&] { ProtoCatalog catalog(path, {}); });
  EXPECT_EQ(error.rfind(path + ":4:3: ", 0), 0u) << error;
  EXPECT_NE(error.find("strnig"), std::string::npos) << error;

  const std::string syntax = temp_proto("syntax.proto", "syntax = \"proto3\";\nmessage {\n");
  EXPECT_EQ(error_of([&] { ProtoCatalog catalog(syntax, {}); }).rfind(syntax + ":2:", 0), 0u);

  const std::string missing_import =
      temp_proto("imports.proto", "syntax = \"proto3\";\nimport \"nowhere/x.proto\";\n");
  const std::string import_error = error_of([&] { ProtoCatalog catalog(missing_import, {}); });
  EXPECT_NE(import_error.find("nowhere/x.proto"), std::string::npos) << import_error;

  EXPECT_EQ(error_of([] { ProtoCatalog catalog("/nonexistent/a.proto", {}); }),
            "--proto /nonexistent/a.proto: no such file");
  EXPECT_EQ(error_of([] { ProtoCatalog catalog(kGreeter, {"/nonexistent"}); }),
            "--import-path /nonexistent: no such folder");
}

TEST(GrpcProtoCatalog, ImportsResolveUnderImportPaths) {
  const std::string common = temp_proto("common.proto",
                                        "syntax = \"proto3\";\npackage c;\n"
                                        "message Id { int64 id = 1; }\n");
  const std::string dir = common.substr(0, common.find_last_of('/'));
  const std::string service = temp_proto("svc.proto",
                                         "syntax = \"proto3\";\npackage s;\n"
                                         "import \"common.proto\";\n"
                                         "service Users { rpc Get (c.Id) returns (c.Id); }\n");
  ProtoCatalog catalog(service, {dir});
  const auto& method = catalog.method("s.Users/Get");
  EXPECT_EQ(catalog.encode_json(*method.input_type(), R"({"id":"300"})"),
            std::string("\x08\xac\x02", 3));
}

TEST(GrpcProtoCatalog, DescriptorSetRebuildsTheSameServicesWithoutFiles) {
  const std::string other = temp_proto("other.proto",
                                       "syntax = \"proto3\";\npackage other;\n"
                                       "import \"google/protobuf/empty.proto\";\n"
                                       "service Clock { rpc Now (google.protobuf.Empty) returns "
                                       "(Time); }\nmessage Time { int64 ms = 1; }\n");
  ProtoCatalog parsed(std::vector<std::string>{kGreeter, other}, {});
  const std::string set = parsed.descriptor_set();
  const auto rebuilt = ProtoCatalog::from_descriptor_set(set, "sent");
  // Both files' services, and the well-known import they share.
  const auto& hello = rebuilt->method("millstone.test.Greeter/SayHello");
  EXPECT_EQ(hello.input_type()->full_name(), "millstone.test.HelloRequest");
  const auto& now = rebuilt->method("other.Clock/Now");
  EXPECT_EQ(now.input_type()->full_name(), "google.protobuf.Empty");
  const std::string bytes = rebuilt->encode_json(*hello.input_type(), R"({"name":"ada"})");
  EXPECT_EQ(bytes, parsed.encode_json(parsed.message_type("millstone.test.HelloRequest"),
                                      R"({"name":"ada"})"));
  std::string json;
  ASSERT_TRUE(rebuilt->try_decode_to_json(*hello.input_type(), bytes, &json));
  EXPECT_EQ(json, R"({"name":"ada"})");
  EXPECT_FALSE(rebuilt->try_decode_to_json(*hello.input_type(), "\xff\xff", &json));

  std::string error;
  EXPECT_EQ(rebuilt->find_method("other.Clock/Later", &error), nullptr);
  EXPECT_EQ(error, "other.Clock has no method Later; it has: Now");
  EXPECT_FALSE(rebuilt->try_encode_json(*hello.input_type(), R"({"nope":1})", &json, &error));
  EXPECT_NE(error.find("JSON does not fit millstone.test.HelloRequest"), std::string::npos);
}

TEST(GrpcProtoCatalog, DescriptorSetInAnyOrderOrIncompleteIsJudged) {
  ProtoCatalog parsed(kGreeter, {});
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(parsed.descriptor_set()));
  ASSERT_EQ(set.file_size(), 2);  // empty.proto, then greeter.proto
  // Reflection answers with the asked-for file first: build it after its import.
  set.mutable_file()->SwapElements(0, 1);
  EXPECT_NO_THROW(ProtoCatalog::from_descriptor_set(set.SerializeAsString(), "swapped"));
  set.mutable_file()->RemoveLast();  // without empty.proto
  EXPECT_EQ(error_of([&] { ProtoCatalog::from_descriptor_set(set.SerializeAsString(), "sent"); }),
            "sent: greeter.proto imports google/protobuf/empty.proto, which is missing");
  EXPECT_EQ(error_of([] { ProtoCatalog::from_descriptor_set("\x0a\xff", "junk"); }),
            "junk: not a FileDescriptorSet");
}

}  // namespace proto_catalog_test
}  // namespace millstone::grpc
