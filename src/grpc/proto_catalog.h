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
  ~ProtoCatalog();
  ProtoCatalog(const ProtoCatalog&) = delete;
  ProtoCatalog& operator=(const ProtoCatalog&) = delete;

  // "package.Service/Method" (also "/package.Service/Method" and
  // "package.Service.Method"). Throws ProtoError naming the services or
  // methods there are.
  const google::protobuf::MethodDescriptor& method(std::string_view call) const;
  // A message type by full name ("package.Message"); throws ProtoError.
  const google::protobuf::Descriptor& message_type(std::string_view name) const;
  // JSON (proto3's JSON mapping) -> the serialized message of `type`. Throws
  // ProtoError: "JSON does not fit package.Type: <protobuf's reason>".
  std::string encode_json(const google::protobuf::Descriptor& type, std::string_view json) const;
  // Serialized bytes of `type` -> JSON, for messages people read; throws ProtoError.
  std::string decode_to_json(const google::protobuf::Descriptor& type,
                             std::string_view bytes) const;

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::unique_ptr<google::protobuf::compiler::DiskSourceTree> tree_;
  std::unique_ptr<google::protobuf::compiler::Importer> importer_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
  const google::protobuf::FileDescriptor* root_ = nullptr;
};

// The HTTP/2 :path of a method: "/package.Service/Method".
std::string method_path(const google::protobuf::MethodDescriptor& method);

}  // namespace millstone::grpc
