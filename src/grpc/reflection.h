#pragma once
// gRPC server reflection (grpc/doc/server-reflection.md): the messages of
// grpc.reflection.v1 (and v1alpha, the same messages field for field under
// another package), the client's side of the conversation (which questions
// to ask, what the answers add up to: a FileDescriptorSet for ProtoCatalog)
// and the server's side (the mock's answers from the files it mocks).
//
// The messages are not generated code: reflection.proto is kept here as
// text, parsed once with protobuf's own parser and handled as dynamic
// messages, like every other .proto millstone reads. No libgrpc++.
// Everything here works on bytes and never throws for what a peer sent: a
// message that does not decode is a false return, an answer that does not
// fit is an error() naming what was asked.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace google::protobuf {
class DescriptorPool;
class FileDescriptorSet;
}  // namespace google::protobuf

namespace millstone::grpc {

// The bidirectional-streaming method of each version, as an HTTP/2 :path.
inline constexpr std::string_view kReflectionV1Path =
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
inline constexpr std::string_view kReflectionV1AlphaPath =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
inline constexpr std::string_view kReflectionV1Service = "grpc.reflection.v1.ServerReflection";
inline constexpr std::string_view kReflectionV1AlphaService =
    "grpc.reflection.v1alpha.ServerReflection";

// One ServerReflectionRequest: the oneof message_request as a kind and its
// text. Requests millstone neither sends nor answers (file_containing_extension,
// all_extension_numbers_of_type) decode as kOther.
struct ReflectionRequest {
  enum class Kind : uint8_t {
    kNone,  // no message_request set
    kFileByFilename,
    kFileContainingSymbol,
    kListServices,
    kOther,
  };
  Kind kind = Kind::kNone;
  std::string host;
  std::string value;  // the file name or symbol; list_services' (unused) text
};

// One ServerReflectionResponse, the parts millstone reads or sends.
struct ReflectionResponse {
  enum class Kind : uint8_t {
    kNone,      // no message_response set
    kFiles,     // file_descriptor_response
    kServices,  // list_services_response
    kError,     // error_response
    kOther,     // all_extension_numbers_response
  };
  Kind kind = Kind::kNone;
  std::vector<std::string> files;     // serialized FileDescriptorProtos
  std::vector<std::string> services;  // full names
  int32_t error_code = 0;             // a gRPC status code
  std::string error_message;
  ReflectionRequest original;  // original_request, as the server echoed it
};

std::string encode_reflection_request(const ReflectionRequest& request);
bool decode_reflection_request(std::string_view bytes, ReflectionRequest* out);
std::string encode_reflection_response(const ReflectionResponse& response);
bool decode_reflection_response(std::string_view bytes, ReflectionResponse* out);

// grpc/reflection/v1/reflection.proto and grpc/reflection/v1alpha/reflection.proto
// as serialized FileDescriptorProtos: the reflection service describes itself.
std::vector<std::string> reflection_service_files();

// The server's side: answers from a set of files (the mock's .proto files
// and the reflection service's own). Immutable once built: one per config,
// read by every worker.
class ReflectionIndex {
 public:
  // `descriptor_set`: a serialized FileDescriptorSet (ProtoCatalog::descriptor_set()),
  // or several concatenated (a FileDescriptorSet's only field repeats).
  // Throws ProtoError when a file does not build.
  explicit ReflectionIndex(std::string_view descriptor_set);
  ~ReflectionIndex();
  ReflectionIndex(const ReflectionIndex&) = delete;
  ReflectionIndex& operator=(const ReflectionIndex&) = delete;

  // The answer to one request: the file asked for (or declaring the symbol)
  // and every file it imports, transitively; the services; or NOT_FOUND /
  // UNIMPLEMENTED as an error_response. original_request is set.
  ReflectionResponse answer(const ReflectionRequest& request) const;
  const std::vector<std::string>& services() const { return services_; }

 private:
  void add_with_dependencies(const std::string& name, std::set<std::string>* seen,
                             std::vector<std::string>* out) const;

  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  std::map<std::string, std::string, std::less<>> files_;  // name -> serialized proto
  std::vector<std::string> services_;
};

// Adds to each file's `dependency` the files of the set that define the
// types it uses but does not import. grpc-js's @grpc/reflection (1.0) sends
// such files (a service whose method takes google.protobuf.Empty, without
// importing empty.proto's stand-in), which protobuf refuses to build;
// grpcurl's builder is as lenient. Fully qualified type names only.
void add_missing_dependencies(google::protobuf::FileDescriptorSet* set);

// The client's side, as a sequence of questions: next() says what to ask,
// take() reads the answer to it. Asks file_containing_symbol for each
// symbol (or, with none, list_services and then each service listed but
// reflection's own), then file_by_filename for every import not yet
// received, each file once. Bounded: at most kMaxFiles files and
// kMaxBytes of descriptors, so a server cannot keep it asking.
class ReflectionResolver {
 public:
  static constexpr size_t kMaxFiles = 10'000;
  static constexpr size_t kMaxBytes = size_t{64} << 20;

  // `symbols`: fully qualified services (or any symbol). Empty: every service.
  explicit ReflectionResolver(std::vector<std::string> symbols);

  // The next request, or nullopt when there is nothing left to ask (done()
  // or failed()). Every request next() gives needs a take() before the next one.
  std::optional<ReflectionRequest> next();
  // The answer to the last request. False once the resolution failed (error()).
  bool take(const ReflectionResponse& response);

  bool done() const { return !failed() && pending_.empty() && !asked_; }
  bool failed() const { return !error_.empty(); }
  // "no symbol pkg.Svc (NOT_FOUND: ...)": what went wrong, without the target.
  const std::string& error() const { return error_; }
  // list mode: the services the server named (reflection's own included).
  const std::vector<std::string>& services() const { return services_; }
  // Every file received, as one serialized FileDescriptorSet.
  std::string descriptor_set() const;
  size_t file_count() const { return files_.size(); }

 private:
  bool fail(std::string error);

  std::vector<ReflectionRequest> pending_;  // in the order they are asked
  std::optional<ReflectionRequest> asked_;
  std::map<std::string, std::string> files_;  // name -> serialized FileDescriptorProto
  std::set<std::string> asked_files_;
  std::vector<std::string> services_;
  size_t bytes_ = 0;
  std::string error_;
};

}  // namespace millstone::grpc
