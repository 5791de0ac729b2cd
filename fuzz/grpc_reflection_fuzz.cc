// Feeds arbitrary bytes to gRPC server reflection's message handling
// (grpc/reflection.h) as a server or a client could receive them. Byte 0
// picks the side and the resolver's mode; the rest is a sequence of
// [length byte][that many bytes] messages. As the mock: each message decoded
// as a ServerReflectionRequest and answered from the greeter-like index; the
// answer must decode back. As the client: each message decoded as a
// ServerReflectionResponse and given to the resolver, which must stop
// asking within its bounds; what it received must build a pool or fail with
// ProtoError, never crash.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/descriptor.pb.h>

#include "grpc/proto_catalog.h"
#include "grpc/reflection.h"

using millstone::grpc::ReflectionIndex;
using millstone::grpc::ReflectionRequest;
using millstone::grpc::ReflectionResolver;
using millstone::grpc::ReflectionResponse;

namespace {

// A file with a service and a message from an import, built from
// descriptors only (no .proto on disk).
const ReflectionIndex& index() {
  static const ReflectionIndex* built = [] {
    google::protobuf::FileDescriptorSet set;
    google::protobuf::FileDescriptorProto* e = set.add_file();
    e->set_name("e.proto");
    e->set_package("e");
    e->add_message_type()->set_name("E");
    google::protobuf::FileDescriptorProto* s = set.add_file();
    s->set_name("s.proto");
    s->set_package("s");
    s->add_dependency("e.proto");
    google::protobuf::MethodDescriptorProto* m = s->add_service()->add_method();
    s->mutable_service(0)->set_name("S");
    m->set_name("M");
    m->set_input_type(".e.E");
    m->set_output_type(".e.E");
    return new ReflectionIndex(set.SerializeAsString());
  }();
  return *built;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::vector<std::string_view> messages;
  for (size_t at = 1; at < size;) {
    const size_t length = data[at];
    const size_t take = std::min(length, size - at - 1);
    messages.emplace_back(reinterpret_cast<const char*>(data) + at + 1, take);
    at += 1 + take;
  }
  if (mode & 1) {
    // The mock's side.
    for (std::string_view bytes : messages) {
      ReflectionRequest request;
      if (!millstone::grpc::decode_reflection_request(bytes, &request)) continue;
      const ReflectionResponse answer = index().answer(request);
      ReflectionResponse back;
      if (!millstone::grpc::decode_reflection_response(
              millstone::grpc::encode_reflection_response(answer), &back)) {
        abort();
      }
      if (back.kind != answer.kind || back.files != answer.files ||
          back.services != answer.services || back.original.value != request.value) {
        abort();
      }
    }
    return 0;
  }
  // The client's side: a symbol, or list mode.
  ReflectionResolver resolver(mode & 2 ? std::vector<std::string>{}
                                       : std::vector<std::string>{"s.S"});
  size_t asked = 0;
  for (std::string_view bytes : messages) {
    if (!resolver.next()) break;
    ++asked;
    ReflectionResponse response;
    if (!millstone::grpc::decode_reflection_response(bytes, &response)) break;
    resolver.take(response);
  }
  if (resolver.failed() && resolver.next()) abort();  // a failed resolver asks nothing more
  if (asked > messages.size()) abort();
  try {
    millstone::grpc::ProtoCatalog::from_descriptor_set(resolver.descriptor_set(), "fuzz");
  } catch (const millstone::grpc::ProtoError&) {
  }
  return 0;
}
