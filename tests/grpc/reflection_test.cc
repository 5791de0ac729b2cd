// gRPC server reflection's messages (grpc/reflection.h): the wire form both
// ways, the mock's answers (ReflectionIndex) and the client's questions
// (ReflectionResolver) played against each other and against answers a
// broken server could give, and the pool built from what was received.
#include "grpc/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "grpc/proto_catalog.h"

namespace millstone::grpc {
namespace reflection_test {

const std::string kGreeter =
    std::string(MILLSTONE_SOURCE_DIR) + "/tests/interop/protos/greeter.proto";

using Kind = ReflectionRequest::Kind;

// The greeter's files as the mock serves them.
const ReflectionIndex& greeter_index() {
  static const ReflectionIndex index(ProtoCatalog(kGreeter, {}).descriptor_set());
  return index;
}

// Plays the resolver against the index until it stops; the questions asked.
std::vector<ReflectionRequest> converse(ReflectionResolver& resolver,
                                        const ReflectionIndex& index) {
  std::vector<ReflectionRequest> asked;
  while (auto request = resolver.next()) {
    asked.push_back(*request);
    // Through the wire form, as the mock and the client see them.
    ReflectionRequest received;
    EXPECT_TRUE(decode_reflection_request(encode_reflection_request(*request), &received));
    ReflectionResponse response;
    EXPECT_TRUE(
        decode_reflection_response(encode_reflection_response(index.answer(received)), &response));
    resolver.take(response);
    if (asked.size() > 100) break;
  }
  return asked;
}

std::string file_named(const std::string& name, const std::vector<std::string>& imports = {}) {
  google::protobuf::FileDescriptorProto file;
  file.set_name(name);
  file.set_syntax("proto3");
  for (const std::string& i : imports)
    file.add_dependency(i);
  return file.SerializeAsString();
}

// As grpc-js's @grpc/reflection sends them: the service's file uses
// google.protobuf.Empty from another file it sent without importing it.
TEST(GrpcReflectionMessages, MissingImportsAreAddedFromTheFilesThatDefineTheTypes) {
  google::protobuf::FileDescriptorSet set;
  google::protobuf::FileDescriptorProto* empty = set.add_file();
  empty->set_name("google_protobuf.proto");
  empty->set_package("google.protobuf");
  empty->add_message_type()->set_name("Empty");
  google::protobuf::FileDescriptorProto* svc = set.add_file();
  svc->set_name("svc.proto");
  svc->set_package("t");
  google::protobuf::DescriptorProto* req = svc->add_message_type();
  req->set_name("Req");
  google::protobuf::FieldDescriptorProto* field = req->add_field();
  field->set_name("e");
  field->set_number(1);
  field->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  field->set_type(google::protobuf::FieldDescriptorProto::TYPE_MESSAGE);
  field->set_type_name(".google.protobuf.Empty");
  google::protobuf::MethodDescriptorProto* method = svc->add_service()->add_method();
  svc->mutable_service(0)->set_name("S");
  method->set_name("M");
  method->set_input_type(".t.Req");
  method->set_output_type(".google.protobuf.Empty");

  google::protobuf::DescriptorPool before;
  ASSERT_NE(before.BuildFile(*empty), nullptr);
  EXPECT_EQ(before.BuildFile(*svc), nullptr);  // protobuf refuses the file as sent

  add_missing_dependencies(&set);
  ASSERT_EQ(set.file(1).dependency_size(), 1);  // once, though used twice
  EXPECT_EQ(set.file(1).dependency(0), "google_protobuf.proto");
  EXPECT_EQ(set.file(0).dependency_size(), 0);
  google::protobuf::DescriptorPool after;
  ASSERT_NE(after.BuildFile(set.file(0)), nullptr);
  EXPECT_NE(after.BuildFile(set.file(1)), nullptr);
}

TEST(GrpcReflectionMessages, RequestsKeepTheirKindAndText) {
  for (const Kind kind :
       {Kind::kFileByFilename, Kind::kFileContainingSymbol, Kind::kListServices}) {
    const ReflectionRequest sent{kind, "example.com", "pkg.Svc"};
    ReflectionRequest got;
    ASSERT_TRUE(decode_reflection_request(encode_reflection_request(sent), &got));
    EXPECT_EQ(got.kind, kind);
    EXPECT_EQ(got.host, "example.com");
    EXPECT_EQ(got.value, "pkg.Svc");
  }
  // list_services with empty text still says which question it is.
  ReflectionRequest got;
  ASSERT_TRUE(
      decode_reflection_request(encode_reflection_request({Kind::kListServices, {}, {}}), &got));
  EXPECT_EQ(got.kind, Kind::kListServices);
  ASSERT_TRUE(decode_reflection_request("", &got));
  EXPECT_EQ(got.kind, Kind::kNone);
  // Field 5 (file_containing_extension), a question the mock does not answer.
  ASSERT_TRUE(decode_reflection_request(std::string("\x2a\x00", 2), &got));
  EXPECT_EQ(got.kind, Kind::kOther);
  EXPECT_FALSE(decode_reflection_request("\xff\xff\xff", &got));
}

TEST(GrpcReflectionMessages, ResponsesKeepFilesServicesAndErrors) {
  ReflectionResponse sent;
  sent.kind = ReflectionResponse::Kind::kFiles;
  sent.files = {file_named("a.proto"), std::string("\0\x01", 2)};
  sent.original = {Kind::kFileByFilename, {}, "a.proto"};
  ReflectionResponse got;
  ASSERT_TRUE(decode_reflection_response(encode_reflection_response(sent), &got));
  EXPECT_EQ(got.kind, ReflectionResponse::Kind::kFiles);
  EXPECT_EQ(got.files, sent.files);
  EXPECT_EQ(got.original.kind, Kind::kFileByFilename);
  EXPECT_EQ(got.original.value, "a.proto");

  sent = ReflectionResponse{};
  sent.kind = ReflectionResponse::Kind::kServices;
  sent.services = {"a.B", "c.D"};
  ASSERT_TRUE(decode_reflection_response(encode_reflection_response(sent), &got));
  EXPECT_EQ(got.kind, ReflectionResponse::Kind::kServices);
  EXPECT_EQ(got.services, sent.services);

  sent = ReflectionResponse{};
  sent.kind = ReflectionResponse::Kind::kError;
  sent.error_code = 5;
  sent.error_message = "symbol not found";
  ASSERT_TRUE(decode_reflection_response(encode_reflection_response(sent), &got));
  EXPECT_EQ(got.kind, ReflectionResponse::Kind::kError);
  EXPECT_EQ(got.error_code, 5);
  EXPECT_EQ(got.error_message, "symbol not found");
  EXPECT_FALSE(decode_reflection_response("\x22\x05\x0a", &got));
}

TEST(GrpcReflectionMessages, SymbolResolvesWithItsImportsIntoAPool) {
  ReflectionResolver resolver({"millstone.test.Greeter"});
  const auto asked = converse(resolver, greeter_index());
  ASSERT_TRUE(resolver.done()) << resolver.error();
  // The index sends the file and what it imports: one question is enough.
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].kind, Kind::kFileContainingSymbol);
  EXPECT_EQ(resolver.file_count(), 2u);  // greeter.proto, google/protobuf/empty.proto
  auto catalog = ProtoCatalog::from_descriptor_set(resolver.descriptor_set(), "reflection");
  const auto& method = catalog->method("millstone.test.Greeter/Collect");
  EXPECT_TRUE(method.client_streaming());
  EXPECT_EQ(catalog->decode_to_json(*method.output_type(),
                                    catalog->encode_json(*method.output_type(), R"({"count":3})")),
            R"({"count":3})");
}

TEST(GrpcReflectionMessages, MissingImportsAreAskedOnceEach) {
  ReflectionResolver resolver({"a.Svc"});
  ASSERT_TRUE(resolver.next());
  // A server that sends the file alone: its imports are asked by name.
  ReflectionResponse response;
  response.kind = ReflectionResponse::Kind::kFiles;
  response.files = {file_named("a.proto", {"b.proto", "c.proto"})};
  ASSERT_TRUE(resolver.take(response));
  std::vector<std::string> asked;
  while (auto request = resolver.next()) {
    EXPECT_EQ(request->kind, Kind::kFileByFilename);
    asked.push_back(request->value);
    // b imports c (asked already) and a (received): nothing new.
    response.files = {request->value == "b.proto" ? file_named("b.proto", {"c.proto", "a.proto"})
                                                  : file_named("c.proto", {"b.proto"})};
    ASSERT_TRUE(resolver.take(response)) << resolver.error();
  }
  EXPECT_EQ(asked, (std::vector<std::string>{"b.proto", "c.proto"}));
  EXPECT_TRUE(resolver.done());
  EXPECT_EQ(resolver.file_count(), 3u);
}

TEST(GrpcReflectionMessages, ListModeAsksForEveryServiceButReflections) {
  ReflectionResolver resolver({});
  const auto asked = converse(resolver, greeter_index());
  ASSERT_TRUE(resolver.done()) << resolver.error();
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].kind, Kind::kListServices);
  EXPECT_EQ(asked[1].value, "millstone.test.Greeter");
  EXPECT_EQ(resolver.services(),
            (std::vector<std::string>{"grpc.reflection.v1.ServerReflection",
                                      "grpc.reflection.v1alpha.ServerReflection",
                                      "millstone.test.Greeter"}));
}

TEST(GrpcReflectionMessages, IndexDescribesTheReflectionServiceItself) {
  for (const char* symbol :
       {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflectionRequest"}) {
    ReflectionResolver resolver({symbol});
    converse(resolver, greeter_index());
    ASSERT_TRUE(resolver.done()) << resolver.error();
    auto catalog = ProtoCatalog::from_descriptor_set(resolver.descriptor_set(), "reflection");
    EXPECT_TRUE(catalog
                    ->method(std::string(symbol).find("v1alpha") != std::string::npos
                                 ? "grpc.reflection.v1alpha.ServerReflection/"
                                   "ServerReflectionInfo"
                                 : "grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                    .server_streaming());
  }
  // Unknown names and questions are errors, not empty answers.
  const ReflectionResponse none = greeter_index().answer({Kind::kFileByFilename, {}, "x.proto"});
  EXPECT_EQ(none.kind, ReflectionResponse::Kind::kError);
  EXPECT_EQ(none.error_code, 5);
  EXPECT_EQ(greeter_index().answer({Kind::kOther, {}, {}}).error_code, 12);
}

TEST(GrpcReflectionMessages, AnUnknownSymbolFailsNamingIt) {
  ReflectionResolver resolver({"nope.Svc"});
  converse(resolver, greeter_index());
  EXPECT_TRUE(resolver.failed());
  EXPECT_FALSE(resolver.done());
  EXPECT_EQ(resolver.error(), "no symbol nope.Svc (NOT_FOUND: symbol not found: nope.Svc)");
  EXPECT_FALSE(resolver.next());
}

TEST(GrpcReflectionMessages, BrokenAnswersFailTheResolution) {
  const auto fails_with = [](ReflectionResponse response, const std::string& expected) {
    ReflectionResolver resolver({"a.Svc"});
    EXPECT_TRUE(resolver.next());
    EXPECT_FALSE(resolver.take(response));
    EXPECT_NE(resolver.error().find(expected), std::string::npos) << resolver.error();
  };
  ReflectionResponse r;
  r.kind = ReflectionResponse::Kind::kFiles;
  r.files = {"\xff\xff\xff"};
  fails_with(r, "is not a FileDescriptorProto");
  r.files = {};
  fails_with(r, "with no file");
  r.kind = ReflectionResponse::Kind::kServices;
  fails_with(r, "with a list of services");
  r.kind = ReflectionResponse::Kind::kNone;
  fails_with(r, "neither files nor an error");
  // An answer nobody asked for.
  ReflectionResolver resolver({"a.Svc"});
  EXPECT_FALSE(resolver.take(r));
  EXPECT_TRUE(resolver.failed());
  // file_by_filename answered with another file.
  ReflectionResolver other({"a.Svc"});
  ASSERT_TRUE(other.next());
  r.kind = ReflectionResponse::Kind::kFiles;
  r.files = {file_named("a.proto", {"b.proto"})};
  ASSERT_TRUE(other.take(r));
  ASSERT_TRUE(other.next());
  r.files = {file_named("z.proto")};
  EXPECT_FALSE(other.take(r));
  EXPECT_NE(other.error().find("file_by_filename b.proto with other files"), std::string::npos)
      << other.error();
}

}  // namespace reflection_test
}  // namespace millstone::grpc
