#include "grpc/proto_catalog.h"

#include <sys/stat.h>

#include <google/protobuf/compiler/importer.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>

#include <fmt/format.h>

namespace millstone::grpc {

namespace pb = google::protobuf;

namespace {

bool is_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The first error, with the file as the user named it and 1-based positions.
class FirstError final : public pb::compiler::MultiFileErrorCollector {
 public:
  explicit FirstError(pb::compiler::DiskSourceTree& tree) : tree_(tree) {}
  void AddError(const std::string& filename, int line, int column,
                const std::string& message) override {
    if (!text_.empty()) return;
    std::string disk;
    if (!tree_.VirtualFileToDiskFile(filename, &disk)) disk = filename;
    if (line < 0) {
      text_ = fmt::format("{}: {}", disk, message);
    } else {
      text_ = fmt::format("{}:{}:{}: {}", disk, line + 1, column + 1, message);
    }
  }
  const std::string& text() const { return text_; }

 private:
  pb::compiler::DiskSourceTree& tree_;
  std::string text_;
};

std::string names_of_services(const pb::FileDescriptor& file) {
  std::string out;
  for (int i = 0; i < file.service_count(); ++i)
    out += fmt::format("{}{}", i ? ", " : "", file.service(i)->full_name());
  return out.empty() ? "none" : out;
}

}  // namespace

ProtoCatalog::ProtoCatalog(const std::string& proto_file,
                           const std::vector<std::string>& import_paths)
    : file_(proto_file),
      tree_(std::make_unique<pb::compiler::DiskSourceTree>()),
      factory_(std::make_unique<pb::DynamicMessageFactory>()) {
  if (!is_file(proto_file)) {
    throw ProtoError(fmt::format("--proto {}: no such file", proto_file));
  }
  for (const std::string& dir : import_paths) {
    if (!is_dir(dir)) throw ProtoError(fmt::format("--import-path {}: no such folder", dir));
    tree_->MapPath("", dir);
  }
  // The file's own name under an import path, as its imports will name it;
  // else its folder becomes one.
  std::string virtual_name;
  std::string shadowing;
  if (import_paths.empty() || tree_->DiskFileToVirtualFile(proto_file, &virtual_name, &shadowing) !=
                                  pb::compiler::DiskSourceTree::SUCCESS) {
    const size_t slash = proto_file.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : proto_file.substr(0, slash);
    tree_->MapPath("", dir);
    virtual_name = slash == std::string::npos ? proto_file : proto_file.substr(slash + 1);
  }
  // google/protobuf/empty.proto and the other well-known types.
  if (is_file("/usr/include/google/protobuf/descriptor.proto")) tree_->MapPath("", "/usr/include");
  FirstError errors(*tree_);
  importer_ = std::make_unique<pb::compiler::Importer>(tree_.get(), &errors);
  root_ = importer_->Import(virtual_name);
  if (root_ == nullptr) {
    throw ProtoError(errors.text().empty() ? fmt::format("{}: cannot be parsed", proto_file)
                                           : errors.text());
  }
}

ProtoCatalog::~ProtoCatalog() = default;

const pb::MethodDescriptor& ProtoCatalog::method(std::string_view call) const {
  std::string name(call);
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  size_t split = name.find('/');
  if (split == std::string::npos) split = name.find_last_of('.');
  if (split == std::string::npos || split == 0 || split + 1 >= name.size()) {
    throw ProtoError(fmt::format(
        "--call '{}': expected package.Service/Method, such as helloworld.Greeter/SayHello", call));
  }
  const std::string service_name = name.substr(0, split);
  const std::string method_name = name.substr(split + 1);
  const pb::DescriptorPool& pool = *importer_->pool();
  const pb::ServiceDescriptor* service = pool.FindServiceByName(service_name);
  if (service == nullptr) {
    // Say which services the file has: a missing package prefix is the usual slip.
    throw ProtoError(fmt::format("--call '{}': no service {} in {}; it has: {}", call, service_name,
                                 file_, names_of_services(*root_)));
  }
  const pb::MethodDescriptor* method = service->FindMethodByName(method_name);
  if (method == nullptr) {
    std::string methods;
    for (int i = 0; i < service->method_count(); ++i)
      methods += fmt::format("{}{}", i ? ", " : "", service->method(i)->name());
    throw ProtoError(fmt::format("--call '{}': {} has no method {}; it has: {}", call,
                                 service->full_name(), method_name,
                                 methods.empty() ? "none" : methods));
  }
  return *method;
}

const pb::Descriptor& ProtoCatalog::message_type(std::string_view name) const {
  const pb::Descriptor* type = importer_->pool()->FindMessageTypeByName(std::string(name));
  if (type == nullptr) throw ProtoError(fmt::format("no message type {} in {}", name, file_));
  return *type;
}

std::string ProtoCatalog::encode_json(const pb::Descriptor& type, std::string_view json) const {
  std::unique_ptr<pb::Message> message(factory_->GetPrototype(&type)->New());
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()),
                                                    message.get(), options);
  if (!status.ok()) {
    throw ProtoError(
        fmt::format("JSON does not fit {}: {}", type.full_name(), std::string(status.message())));
  }
  std::string bytes;
  if (!message->SerializeToString(&bytes)) {
    throw ProtoError(fmt::format("cannot serialize {}", type.full_name()));
  }
  return bytes;
}

std::string ProtoCatalog::decode_to_json(const pb::Descriptor& type, std::string_view bytes) const {
  std::unique_ptr<pb::Message> message(factory_->GetPrototype(&type)->New());
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw ProtoError(fmt::format("bytes are not a {}", type.full_name()));
  }
  std::string json;
  const auto status = pb::util::MessageToJsonString(*message, &json);
  if (!status.ok()) throw ProtoError(std::string(status.message()));
  return json;
}

std::string method_path(const pb::MethodDescriptor& method) {
  return fmt::format("/{}/{}", method.service()->full_name(), method.name());
}

}  // namespace millstone::grpc
