#include "grpc/proto_catalog.h"

#include <sys/stat.h>

#include <functional>
#include <set>

#include <google/protobuf/compiler/importer.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
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

ProtoCatalog::ProtoCatalog()
    : tree_(std::make_unique<pb::compiler::DiskSourceTree>()),
      factory_(std::make_unique<pb::DynamicMessageFactory>()) {}

ProtoCatalog::ProtoCatalog(const std::string& proto_file,
                           const std::vector<std::string>& import_paths)
    : ProtoCatalog(std::vector<std::string>{proto_file}, import_paths) {}

ProtoCatalog::ProtoCatalog(const std::vector<std::string>& proto_files,
                           const std::vector<std::string>& import_paths)
    : ProtoCatalog() {
  for (const std::string& proto_file : proto_files) {
    if (!is_file(proto_file)) {
      throw ProtoError(fmt::format("--proto {}: no such file", proto_file));
    }
  }
  file_ = proto_files.empty() ? std::string() : proto_files.front();
  for (const std::string& dir : import_paths) {
    if (!is_dir(dir)) throw ProtoError(fmt::format("--import-path {}: no such folder", dir));
    tree_->MapPath("", dir);
  }
  // Each file's own name under an import path, as its imports will name it;
  // else its folder becomes one.
  std::vector<std::string> virtual_names;
  for (const std::string& proto_file : proto_files) {
    std::string virtual_name;
    std::string shadowing;
    if (import_paths.empty() ||
        tree_->DiskFileToVirtualFile(proto_file, &virtual_name, &shadowing) !=
            pb::compiler::DiskSourceTree::SUCCESS) {
      const size_t slash = proto_file.find_last_of('/');
      const std::string dir = slash == std::string::npos ? "." : proto_file.substr(0, slash);
      tree_->MapPath("", dir);
      virtual_name = slash == std::string::npos ? proto_file : proto_file.substr(slash + 1);
    }
    virtual_names.push_back(std::move(virtual_name));
  }
  // google/protobuf/empty.proto and the other well-known types.
  if (is_file("/usr/include/google/protobuf/descriptor.proto")) tree_->MapPath("", "/usr/include");
  FirstError errors(*tree_);
  importer_ = std::make_unique<pb::compiler::Importer>(tree_.get(), &errors);
  for (size_t i = 0; i < virtual_names.size(); ++i) {
    const pb::FileDescriptor* root = importer_->Import(virtual_names[i]);
    if (root == nullptr) {
      throw ProtoError(errors.text().empty() ? fmt::format("{}: cannot be parsed", proto_files[i])
                                             : errors.text());
    }
    roots_.push_back(root);
  }
}

std::unique_ptr<ProtoCatalog> ProtoCatalog::from_descriptor_set(std::string_view bytes,
                                                                const std::string& name) {
  pb::FileDescriptorSet set;
  if (!set.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw ProtoError(fmt::format("{}: not a FileDescriptorSet", name));
  }
  std::unique_ptr<ProtoCatalog> catalog(new ProtoCatalog());
  catalog->file_ = name;
  catalog->own_pool_ = std::make_unique<pb::DescriptorPool>();
  // Dependencies may come in any order (reflection sends the asked-for file
  // first): build each file once all it imports is built.
  std::vector<bool> built(static_cast<size_t>(set.file_size()), false);
  for (size_t done = 0; done < built.size();) {
    size_t progress = 0;
    for (int i = 0; i < set.file_size(); ++i) {
      if (built[static_cast<size_t>(i)]) continue;
      const pb::FileDescriptorProto& file = set.file(i);
      bool ready = true;
      for (const std::string& dependency : file.dependency()) {
        ready = ready && catalog->own_pool_->FindFileByName(dependency) != nullptr;
      }
      if (!ready) continue;
      const pb::FileDescriptor* built_file = catalog->own_pool_->BuildFile(file);
      if (built_file == nullptr) {
        throw ProtoError(fmt::format("{}: {} does not build", name, file.name()));
      }
      catalog->roots_.push_back(built_file);
      built[static_cast<size_t>(i)] = true;
      ++progress;
    }
    if (progress == 0) {
      for (int i = 0; i < set.file_size(); ++i) {
        if (built[static_cast<size_t>(i)]) continue;
        for (const std::string& dependency : set.file(i).dependency()) {
          if (catalog->own_pool_->FindFileByName(dependency) == nullptr) {
            throw ProtoError(fmt::format("{}: {} imports {}, which is missing", name,
                                         set.file(i).name(), dependency));
          }
        }
      }
    }
    done += progress;
  }
  return catalog;
}

const pb::DescriptorPool& ProtoCatalog::pool() const {
  return own_pool_ ? *own_pool_ : *importer_->pool();
}

std::string ProtoCatalog::descriptor_set() const {
  pb::FileDescriptorSet set;
  std::set<std::string> added;
  // Depth first: a file after everything it imports.
  std::function<void(const pb::FileDescriptor&)> add = [&](const pb::FileDescriptor& file) {
    if (!added.insert(file.name()).second) return;
    for (int i = 0; i < file.dependency_count(); ++i)
      add(*file.dependency(i));
    file.CopyTo(set.add_file());
  };
  for (const pb::FileDescriptor* root : roots_)
    add(*root);
  return set.SerializeAsString();
}

ProtoCatalog::~ProtoCatalog() {
  // The factory's prototypes point into the pool's descriptors: they go
  // first (own_pool_ is declared after factory_, so would be destroyed first).
  factory_.reset();
}

const pb::MethodDescriptor& ProtoCatalog::method(std::string_view call) const {
  std::string error;
  const pb::MethodDescriptor* found = find_method(call, &error);
  if (found == nullptr) throw ProtoError(fmt::format("--call '{}': {}", call, error));
  return *found;
}

const pb::MethodDescriptor* ProtoCatalog::find_method(std::string_view call,
                                                      std::string* error) const {
  std::string name(call);
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  size_t split = name.find('/');
  if (split == std::string::npos) split = name.find_last_of('.');
  if (split == std::string::npos || split == 0 || split + 1 >= name.size()) {
    *error = "expected package.Service/Method, such as helloworld.Greeter/SayHello";
    return nullptr;
  }
  const std::string service_name = name.substr(0, split);
  const std::string method_name = name.substr(split + 1);
  const pb::ServiceDescriptor* service = pool().FindServiceByName(service_name);
  if (service == nullptr) {
    // Say which services the files have: a missing package prefix is the usual slip.
    std::string services;
    for (const pb::FileDescriptor* root : roots_) {
      const std::string more = names_of_services(*root);
      if (more == "none") continue;
      services += services.empty() ? more : ", " + more;
    }
    *error = fmt::format("no service {} in {}; it has: {}", service_name, file_,
                         services.empty() ? "none" : services);
    return nullptr;
  }
  const pb::MethodDescriptor* method = service->FindMethodByName(method_name);
  if (method == nullptr) {
    std::string methods;
    for (int i = 0; i < service->method_count(); ++i)
      methods += fmt::format("{}{}", i ? ", " : "", service->method(i)->name());
    *error = fmt::format("{} has no method {}; it has: {}", service->full_name(), method_name,
                         methods.empty() ? "none" : methods);
    return nullptr;
  }
  return method;
}

const pb::ServiceDescriptor* ProtoCatalog::service(std::string_view name) const {
  return pool().FindServiceByName(std::string(name));
}

const pb::Descriptor& ProtoCatalog::message_type(std::string_view name) const {
  const pb::Descriptor* type = pool().FindMessageTypeByName(std::string(name));
  if (type == nullptr) throw ProtoError(fmt::format("no message type {} in {}", name, file_));
  return *type;
}

std::string ProtoCatalog::encode_json(const pb::Descriptor& type, std::string_view json) const {
  std::string bytes;
  std::string error;
  if (!try_encode_json(type, json, &bytes, &error)) throw ProtoError(error);
  return bytes;
}

bool ProtoCatalog::try_encode_json(const pb::Descriptor& type, std::string_view json,
                                   std::string* out, std::string* error) const {
  std::unique_ptr<pb::Message> message(factory_->GetPrototype(&type)->New());
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()),
                                                    message.get(), options);
  if (!status.ok()) {
    *error =
        fmt::format("JSON does not fit {}: {}", type.full_name(), std::string(status.message()));
    return false;
  }
  out->clear();
  if (!message->SerializeToString(out)) {
    *error = fmt::format("cannot serialize {}", type.full_name());
    return false;
  }
  return true;
}

std::string ProtoCatalog::decode_to_json(const pb::Descriptor& type, std::string_view bytes) const {
  std::string json;
  if (!try_decode_to_json(type, bytes, &json)) {
    throw ProtoError(fmt::format("bytes are not a {}", type.full_name()));
  }
  return json;
}

bool ProtoCatalog::try_decode_to_json(const pb::Descriptor& type, std::string_view bytes,
                                      std::string* out) const {
  std::unique_ptr<pb::Message> message(factory_->GetPrototype(&type)->New());
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  out->clear();
  return pb::util::MessageToJsonString(*message, out).ok();
}

std::string service_of_call(std::string_view call) {
  std::string name(call);
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  size_t split = name.find('/');
  if (split == std::string::npos) split = name.find_last_of('.');
  if (split == std::string::npos || split == 0 || split + 1 >= name.size()) return {};
  return name.substr(0, split);
}

std::string method_path(const pb::MethodDescriptor& method) {
  return fmt::format("/{}/{}", method.service()->full_name(), method.name());
}

}  // namespace millstone::grpc
