#pragma once
// The services and messages of .proto files, read at start-up with protobuf's
// own parser (compiler::Importer) into runtime descriptors: no protoc step,
// no generated code. Request messages are built from JSON with
// DynamicMessageFactory and util::JsonStringToMessage and serialized once.
// Start-up only: failures throw ProtoError, one line naming the file and
// line, the method, or the JSON field that did not fit.
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace google::protobuf {
class Descriptor;
class DescriptorPool;
class DynamicMessageFactory;
class FileDescriptor;
class MethodDescriptor;
class ServiceDescriptor;
namespace compiler {
class DiskSourceTree;
class Importer;
}  // namespace compiler
}  // namespace google::protobuf

namespace millstone::grpc {

class ProtoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ProtoCatalog {
 public:
  // Parses `proto_file` and what it imports, found under `import_paths`
  // (then the file's own folder, then the system's include folder for
  // google/protobuf/*.proto). Throws ProtoError: "FILE:LINE:COL: message".
  ProtoCatalog(const std::string& proto_file, const std::vector<std::string>& import_paths);
  // Several files into one pool (a scenario's grpc: protos), each found as above.
  ProtoCatalog(const std::vector<std::string>& proto_files,
               const std::vector<std::string>& import_paths);
  // From a serialized google.protobuf.FileDescriptorSet (descriptor_set(),
  // or what server reflection sent): no file is read. `name` stands for the
  // source in messages. Throws ProtoError when a file does not build.
  static std::unique_ptr<ProtoCatalog> from_descriptor_set(std::string_view bytes,
                                                           const std::string& name);
  ~ProtoCatalog();
  ProtoCatalog(const ProtoCatalog&) = delete;
  ProtoCatalog& operator=(const ProtoCatalog&) = delete;

  // "package.Service/Method" (also "/package.Service/Method" and
  // "package.Service.Method"). Throws ProtoError naming the services or
  // methods there are.
  const google::protobuf::MethodDescriptor& method(std::string_view call) const;
  // The same without exceptions: null and *error (without the --call prefix:
  // "helloworld.Greeter has no method Hi; it has: SayHello").
  const google::protobuf::MethodDescriptor* find_method(std::string_view call,
                                                        std::string* error) const;
  // A service by full name ("package.Service"); null when the pool has none.
  const google::protobuf::ServiceDescriptor* service(std::string_view name) const;
  // A message type by full name ("package.Message"); throws ProtoError.
  const google::protobuf::Descriptor& message_type(std::string_view name) const;
  // JSON (proto3's JSON mapping) -> the serialized message of `type`. Throws
  // ProtoError: "JSON does not fit package.Type: <protobuf's reason>".
  std::string encode_json(const google::protobuf::Descriptor& type, std::string_view json) const;
  // Serialized bytes of `type` -> JSON, for messages people read; throws ProtoError.
  std::string decode_to_json(const google::protobuf::Descriptor& type,
                             std::string_view bytes) const;
  // The data plane's versions (scenario steps, per call): no exception.
  // encode: false and *error when the JSON does not fit `type`; decode:
  // false when the bytes are not a `type`.
  bool try_encode_json(const google::protobuf::Descriptor& type, std::string_view json,
                       std::string* out, std::string* error) const;
  bool try_decode_to_json(const google::protobuf::Descriptor& type, std::string_view bytes,
                          std::string* out) const;

  // Every file of the pool that the roots need, dependencies first, as a
  // serialized FileDescriptorSet: what a worker rebuilds the catalog from.
  std::string descriptor_set() const;

  const std::string& file() const { return file_; }

 private:
  ProtoCatalog();
  const google::protobuf::DescriptorPool& pool() const;

  std::string file_;
  std::unique_ptr<google::protobuf::compiler::DiskSourceTree> tree_;
  std::unique_ptr<google::protobuf::compiler::Importer> importer_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
  std::unique_ptr<google::protobuf::DescriptorPool> own_pool_;  // from_descriptor_set
  std::vector<const google::protobuf::FileDescriptor*> roots_;
};

// The service of "package.Service/Method" (also "/package.Service/Method"
// and "package.Service.Method"), as find_method() reads it; empty when the
// text has no such form.
std::string service_of_call(std::string_view call);

// The HTTP/2 :path of a method: "/package.Service/Method".
std::string method_path(const google::protobuf::MethodDescriptor& method);

}  // namespace millstone::grpc
