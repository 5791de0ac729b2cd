#include "grpc/reflection.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <google/protobuf/compiler/parser.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "grpc/proto_catalog.h"
#include "grpc/status.h"

namespace millstone::grpc {

namespace pb = google::protobuf;

namespace {

// grpc/src/proto/grpc/reflection/v1/reflection.proto, comments left out;
// v1alpha is the same text under its own package.
constexpr std::string_view kReflectionProto = R"(
syntax = "proto3";
package PACKAGE;
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);
}
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    ExtensionRequest file_containing_extension = 5;
    string all_extension_numbers_of_type = 6;
    string list_services = 7;
  }
}
message ExtensionRequest {
  string containing_type = 1;
  int32 extension_number = 2;
}
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ExtensionNumberResponse all_extension_numbers_response = 5;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse {
  repeated bytes file_descriptor_proto = 1;
}
message ExtensionNumberResponse {
  string base_type_name = 1;
  repeated int32 extension_number = 2;
}
message ListServiceResponse {
  repeated ServiceResponse service = 1;
}
message ServiceResponse {
  string name = 1;
}
message ErrorResponse {
  int32 error_code = 1;
  string error_message = 2;
}
)";

// Our own text: a parse error is a bug, not input.
class TextErrors final : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    throw std::logic_error(
        fmt::format("reflection.proto:{}:{}: {}", line + 1, column + 1, message));
  }
};

pb::FileDescriptorProto parse_reflection_proto(std::string_view package) {
  std::string text(kReflectionProto);
  text.replace(text.find("PACKAGE"), 7, package);
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  TextErrors errors;
  pb::io::Tokenizer tokenizer(&input, &errors);
  pb::compiler::Parser parser;
  pb::FileDescriptorProto file;
  if (!parser.Parse(&tokenizer, &file)) throw std::logic_error("reflection.proto does not parse");
  std::string path(package);
  std::replace(path.begin(), path.end(), '.', '/');
  file.set_name(path + "/reflection.proto");
  return file;
}

// The message types, built once per process and never freed (workers and
// the mock's threads read them until exit).
struct Types {
  pb::DescriptorPool pool;
  pb::DynamicMessageFactory factory{&pool};
  std::vector<std::string> files;  // serialized FileDescriptorProtos, v1 then v1alpha
  const pb::Descriptor* request = nullptr;
  const pb::Descriptor* response = nullptr;

  Types() {
    for (const std::string_view package : {"grpc.reflection.v1", "grpc.reflection.v1alpha"}) {
      const pb::FileDescriptorProto file = parse_reflection_proto(package);
      if (pool.BuildFile(file) == nullptr)
        throw std::logic_error("reflection.proto does not build");
      files.push_back(file.SerializeAsString());
    }
    request = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest");
    response = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse");
  }
};

Types& types() {
  static Types* t = new Types();
  return *t;
}

const pb::FieldDescriptor& field(const pb::Descriptor& type, const char* name) {
  return *type.FindFieldByName(name);
}

void fill_request(const ReflectionRequest& in, pb::Message* m) {
  const pb::Descriptor& type = *m->GetDescriptor();
  const pb::Reflection& r = *m->GetReflection();
  if (!in.host.empty()) r.SetString(m, &field(type, "host"), in.host);
  switch (in.kind) {
    case ReflectionRequest::Kind::kFileByFilename:
      r.SetString(m, &field(type, "file_by_filename"), in.value);
      break;
    case ReflectionRequest::Kind::kFileContainingSymbol:
      r.SetString(m, &field(type, "file_containing_symbol"), in.value);
      break;
    case ReflectionRequest::Kind::kListServices:
      r.SetString(m, &field(type, "list_services"), in.value);
      break;
    case ReflectionRequest::Kind::kNone:
    case ReflectionRequest::Kind::kOther:
      break;
  }
}

void read_request(const pb::Message& m, ReflectionRequest* out) {
  const pb::Descriptor& type = *m.GetDescriptor();
  const pb::Reflection& r = *m.GetReflection();
  *out = ReflectionRequest{};
  out->host = r.GetString(m, &field(type, "host"));
  const pb::FieldDescriptor* set =
      r.GetOneofFieldDescriptor(m, type.FindOneofByName("message_request"));
  if (set == nullptr) return;
  const std::string& name = set->name();
  if (name == "file_by_filename") {
    out->kind = ReflectionRequest::Kind::kFileByFilename;
  } else if (name == "file_containing_symbol") {
    out->kind = ReflectionRequest::Kind::kFileContainingSymbol;
  } else if (name == "list_services") {
    out->kind = ReflectionRequest::Kind::kListServices;
  } else {
    out->kind = ReflectionRequest::Kind::kOther;
    return;
  }
  out->value = r.GetString(m, set);
}

std::string request_text(const ReflectionRequest& request) {
  switch (request.kind) {
    case ReflectionRequest::Kind::kFileByFilename:
      return fmt::format("file_by_filename {}", request.value);
    case ReflectionRequest::Kind::kFileContainingSymbol:
      return fmt::format("file_containing_symbol {}", request.value);
    case ReflectionRequest::Kind::kListServices:
      return "list_services";
    default:
      return "a request";
  }
}

bool reflection_service(std::string_view name) {
  return name == kReflectionV1Service || name == kReflectionV1AlphaService;
}

}  // namespace

std::string encode_reflection_request(const ReflectionRequest& request) {
  Types& t = types();
  std::unique_ptr<pb::Message> m(t.factory.GetPrototype(t.request)->New());
  fill_request(request, m.get());
  return m->SerializeAsString();
}

bool decode_reflection_request(std::string_view bytes, ReflectionRequest* out) {
  Types& t = types();
  std::unique_ptr<pb::Message> m(t.factory.GetPrototype(t.request)->New());
  if (!m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  read_request(*m, out);
  return true;
}

std::string encode_reflection_response(const ReflectionResponse& response) {
  Types& t = types();
  std::unique_ptr<pb::Message> m(t.factory.GetPrototype(t.response)->New());
  const pb::Descriptor& type = *t.response;
  const pb::Reflection& r = *m->GetReflection();
  fill_request(response.original,
               r.MutableMessage(m.get(), &field(type, "original_request"), &t.factory));
  switch (response.kind) {
    case ReflectionResponse::Kind::kFiles: {
      pb::Message* files =
          r.MutableMessage(m.get(), &field(type, "file_descriptor_response"), &t.factory);
      const pb::FieldDescriptor& list = field(*files->GetDescriptor(), "file_descriptor_proto");
      for (const std::string& file : response.files)
        files->GetReflection()->AddString(files, &list, file);
      break;
    }
    case ReflectionResponse::Kind::kServices: {
      pb::Message* services =
          r.MutableMessage(m.get(), &field(type, "list_services_response"), &t.factory);
      const pb::FieldDescriptor& list = field(*services->GetDescriptor(), "service");
      for (const std::string& name : response.services) {
        pb::Message* one = services->GetReflection()->AddMessage(services, &list, &t.factory);
        one->GetReflection()->SetString(one, &field(*one->GetDescriptor(), "name"), name);
      }
      break;
    }
    case ReflectionResponse::Kind::kError: {
      pb::Message* error = r.MutableMessage(m.get(), &field(type, "error_response"), &t.factory);
      const pb::Descriptor& error_type = *error->GetDescriptor();
      error->GetReflection()->SetInt32(error, &field(error_type, "error_code"),
                                       response.error_code);
      error->GetReflection()->SetString(error, &field(error_type, "error_message"),
                                        response.error_message);
      break;
    }
    case ReflectionResponse::Kind::kNone:
    case ReflectionResponse::Kind::kOther:
      break;
  }
  return m->SerializeAsString();
}

bool decode_reflection_response(std::string_view bytes, ReflectionResponse* out) {
  Types& t = types();
  std::unique_ptr<pb::Message> m(t.factory.GetPrototype(t.response)->New());
  if (!m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  *out = ReflectionResponse{};
  const pb::Descriptor& type = *t.response;
  const pb::Reflection& r = *m->GetReflection();
  read_request(r.GetMessage(*m, &field(type, "original_request")), &out->original);
  const pb::FieldDescriptor* set =
      r.GetOneofFieldDescriptor(*m, type.FindOneofByName("message_response"));
  if (set == nullptr) return true;
  const pb::Message& inner = r.GetMessage(*m, set);
  const pb::Descriptor& inner_type = *inner.GetDescriptor();
  const pb::Reflection& ir = *inner.GetReflection();
  if (set->name() == "file_descriptor_response") {
    out->kind = ReflectionResponse::Kind::kFiles;
    const pb::FieldDescriptor& list = field(inner_type, "file_descriptor_proto");
    for (int i = 0; i < ir.FieldSize(inner, &list); ++i)
      out->files.push_back(ir.GetRepeatedString(inner, &list, i));
  } else if (set->name() == "list_services_response") {
    out->kind = ReflectionResponse::Kind::kServices;
    const pb::FieldDescriptor& list = field(inner_type, "service");
    for (int i = 0; i < ir.FieldSize(inner, &list); ++i) {
      const pb::Message& one = ir.GetRepeatedMessage(inner, &list, i);
      out->services.push_back(
          one.GetReflection()->GetString(one, &field(*one.GetDescriptor(), "name")));
    }
  } else if (set->name() == "error_response") {
    out->kind = ReflectionResponse::Kind::kError;
    out->error_code = ir.GetInt32(inner, &field(inner_type, "error_code"));
    out->error_message = ir.GetString(inner, &field(inner_type, "error_message"));
  } else {
    out->kind = ReflectionResponse::Kind::kOther;
  }
  return true;
}

std::vector<std::string> reflection_service_files() {
  return types().files;
}

// ---------------------------------------------------------------- server side

ReflectionIndex::ReflectionIndex(std::string_view descriptor_set)
    : pool_(std::make_unique<pb::DescriptorPool>()) {
  pb::FileDescriptorSet set;
  if (!set.ParseFromArray(descriptor_set.data(), static_cast<int>(descriptor_set.size()))) {
    throw ProtoError("the descriptors to serve by reflection are not a FileDescriptorSet");
  }
  for (const std::string& file : reflection_service_files()) {
    if (!set.add_file()->ParseFromString(file)) throw std::logic_error("reflection.proto");
  }
  // Each file once, after what it imports (the same file may come from
  // several catalogs).
  std::vector<const pb::FileDescriptorProto*> todo;
  for (const pb::FileDescriptorProto& file : set.file()) {
    if (files_.emplace(file.name(), file.SerializeAsString()).second) todo.push_back(&file);
  }
  while (!todo.empty()) {
    const size_t before = todo.size();
    for (auto it = todo.begin(); it != todo.end();) {
      const pb::FileDescriptorProto& file = **it;
      const bool ready = std::all_of(
          file.dependency().begin(), file.dependency().end(),
          [&](const std::string& name) { return pool_->FindFileByName(name) != nullptr; });
      if (!ready) {
        ++it;
        continue;
      }
      const pb::FileDescriptor* built = pool_->BuildFile(file);
      if (built == nullptr) throw ProtoError(fmt::format("{} does not build", file.name()));
      for (int i = 0; i < built->service_count(); ++i)
        services_.push_back(built->service(i)->full_name());
      it = todo.erase(it);
    }
    if (todo.size() == before) {
      throw ProtoError(fmt::format("{} imports a file that is missing", todo.front()->name()));
    }
  }
  std::sort(services_.begin(), services_.end());
}

ReflectionIndex::~ReflectionIndex() = default;

void ReflectionIndex::add_with_dependencies(const std::string& name, std::set<std::string>* seen,
                                            std::vector<std::string>* out) const {
  if (!seen->insert(name).second) return;
  const auto found = files_.find(name);
  if (found == files_.end()) return;
  out->push_back(found->second);  // the file asked for first, as gRPC's servers send it
  const pb::FileDescriptor* file = pool_->FindFileByName(name);
  for (int i = 0; file != nullptr && i < file->dependency_count(); ++i)
    add_with_dependencies(file->dependency(i)->name(), seen, out);
}

ReflectionResponse ReflectionIndex::answer(const ReflectionRequest& request) const {
  ReflectionResponse response;
  response.original = request;
  const auto not_found = [&](std::string message) {
    response.kind = ReflectionResponse::Kind::kError;
    response.error_code = 5;  // NOT_FOUND
    response.error_message = std::move(message);
    return response;
  };
  std::set<std::string> seen;
  switch (request.kind) {
    case ReflectionRequest::Kind::kListServices:
      response.kind = ReflectionResponse::Kind::kServices;
      response.services = services_;
      return response;
    case ReflectionRequest::Kind::kFileByFilename:
      if (files_.find(request.value) == files_.end()) {
        return not_found(fmt::format("file not found: {}", request.value));
      }
      response.kind = ReflectionResponse::Kind::kFiles;
      add_with_dependencies(request.value, &seen, &response.files);
      return response;
    case ReflectionRequest::Kind::kFileContainingSymbol: {
      const pb::FileDescriptor* file = pool_->FindFileContainingSymbol(request.value);
      if (file == nullptr) return not_found(fmt::format("symbol not found: {}", request.value));
      response.kind = ReflectionResponse::Kind::kFiles;
      add_with_dependencies(file->name(), &seen, &response.files);
      return response;
    }
    case ReflectionRequest::Kind::kNone:
    case ReflectionRequest::Kind::kOther:
      break;
  }
  response.kind = ReflectionResponse::Kind::kError;
  response.error_code = 12;  // UNIMPLEMENTED
  response.error_message = "answered: file_by_filename, file_containing_symbol and list_services";
  return response;
}

// ---------------------------------------------------------------- client side

ReflectionResolver::ReflectionResolver(std::vector<std::string> symbols) {
  if (symbols.empty()) {
    pending_.push_back({ReflectionRequest::Kind::kListServices, {}, "*"});
    return;
  }
  for (std::string& symbol : symbols) {
    if (std::none_of(pending_.begin(), pending_.end(),
                     [&](const ReflectionRequest& r) { return r.value == symbol; })) {
      pending_.push_back({ReflectionRequest::Kind::kFileContainingSymbol, {}, std::move(symbol)});
    }
  }
}

std::optional<ReflectionRequest> ReflectionResolver::next() {
  if (failed() || asked_ || pending_.empty()) return std::nullopt;
  asked_ = std::move(pending_.front());
  pending_.erase(pending_.begin());
  return asked_;
}

bool ReflectionResolver::fail(std::string error) {
  if (error_.empty()) error_ = std::move(error);
  pending_.clear();
  asked_.reset();
  return false;
}

bool ReflectionResolver::take(const ReflectionResponse& response) {
  if (failed()) return false;
  if (!asked_) return fail("an answer to a question not asked");
  const ReflectionRequest request = std::move(*asked_);
  asked_.reset();
  const std::string what = request_text(request);
  switch (response.kind) {
    case ReflectionResponse::Kind::kError: {
      const std::string status =
          fmt::format("{}{}{}", status_name(static_cast<uint32_t>(response.error_code)),
                      response.error_message.empty() ? "" : ": ", response.error_message);
      if (request.kind == ReflectionRequest::Kind::kFileContainingSymbol) {
        return fail(fmt::format("no symbol {} ({})", request.value, status));
      }
      if (request.kind == ReflectionRequest::Kind::kFileByFilename) {
        return fail(
            fmt::format("no file {}, which a file it sent imports ({})", request.value, status));
      }
      return fail(fmt::format("{} failed ({})", what, status));
    }
    case ReflectionResponse::Kind::kServices: {
      if (request.kind != ReflectionRequest::Kind::kListServices) {
        return fail(fmt::format("answered {} with a list of services", what));
      }
      if (response.services.size() > kMaxFiles) {
        return fail(fmt::format("listed {} services; expected at most {}", response.services.size(),
                                kMaxFiles));
      }
      services_ = response.services;
      for (const std::string& service : services_) {
        if (reflection_service(service) || service.empty()) continue;
        pending_.push_back({ReflectionRequest::Kind::kFileContainingSymbol, {}, service});
      }
      return true;
    }
    case ReflectionResponse::Kind::kFiles:
      break;
    case ReflectionResponse::Kind::kNone:
    case ReflectionResponse::Kind::kOther:
      return fail(fmt::format("answered {} with neither files nor an error", what));
  }
  if (request.kind == ReflectionRequest::Kind::kListServices) {
    return fail("answered list_services with files");
  }
  if (response.files.empty()) return fail(fmt::format("answered {} with no file", what));
  std::vector<std::string> imports;
  bool asked_file_came = request.kind != ReflectionRequest::Kind::kFileByFilename;
  for (const std::string& bytes : response.files) {
    bytes_ += bytes.size();
    if (bytes_ > kMaxBytes) {
      return fail(fmt::format("sent more than {} MiB of descriptors", kMaxBytes >> 20));
    }
    pb::FileDescriptorProto file;
    if (!file.ParseFromString(bytes) || file.name().empty()) {
      return fail(
          fmt::format("answered {} with a file_descriptor_proto that is not a "
                      "FileDescriptorProto",
                      what));
    }
    if (file.name() == request.value) asked_file_came = true;
    asked_files_.insert(file.name());
    if (files_.emplace(file.name(), bytes).second) {
      imports.insert(imports.end(), file.dependency().begin(), file.dependency().end());
    }
    if (files_.size() > kMaxFiles) {
      return fail(fmt::format("sent more than {} files", kMaxFiles));
    }
  }
  if (!asked_file_came) {
    return fail(fmt::format("answered {} with other files", what));
  }
  // Imports not received yet, each asked once.
  for (const std::string& name : imports) {
    if (files_.count(name) == 0 && asked_files_.insert(name).second) {
      pending_.push_back({ReflectionRequest::Kind::kFileByFilename, {}, name});
    }
  }
  return true;
}

namespace {

void index_messages(const std::string& scope, const pb::DescriptorProto& message,
                    const std::string& file, std::map<std::string, std::string>* defined) {
  const std::string name = scope + "." + message.name();
  (*defined)[name] = file;
  for (const pb::DescriptorProto& nested : message.nested_type())
    index_messages(name, nested, file, defined);
  for (const pb::EnumDescriptorProto& e : message.enum_type())
    (*defined)[name + "." + e.name()] = file;
}

void message_references(const pb::DescriptorProto& message, std::set<std::string>* used) {
  for (const pb::FieldDescriptorProto& field : message.field())
    used->insert(field.type_name());
  for (const pb::FieldDescriptorProto& field : message.extension()) {
    used->insert(field.type_name());
    used->insert(field.extendee());
  }
  for (const pb::DescriptorProto& nested : message.nested_type())
    message_references(nested, used);
}

}  // namespace

void add_missing_dependencies(pb::FileDescriptorSet* set) {
  std::map<std::string, std::string> defined;  // ".pkg.Type" -> the file defining it
  for (const pb::FileDescriptorProto& file : set->file()) {
    const std::string scope = file.package().empty() ? "" : "." + file.package();
    for (const pb::DescriptorProto& message : file.message_type())
      index_messages(scope, message, file.name(), &defined);
    for (const pb::EnumDescriptorProto& e : file.enum_type())
      defined[scope + "." + e.name()] = file.name();
  }
  for (pb::FileDescriptorProto& file : *set->mutable_file()) {
    std::set<std::string> used;
    for (const pb::DescriptorProto& message : file.message_type())
      message_references(message, &used);
    for (const pb::FieldDescriptorProto& field : file.extension()) {
      used.insert(field.type_name());
      used.insert(field.extendee());
    }
    for (const pb::ServiceDescriptorProto& service : file.service()) {
      for (const pb::MethodDescriptorProto& method : service.method()) {
        used.insert(method.input_type());
        used.insert(method.output_type());
      }
    }
    std::set<std::string> imports(file.dependency().begin(), file.dependency().end());
    for (const std::string& name : used) {
      // Only fully qualified names: a relative one is resolved by scope, and
      // servers that leave out imports write their names in full.
      if (name.empty() || name[0] != '.') continue;
      auto it = defined.find(name);
      if (it == defined.end() || it->second == file.name()) continue;
      if (imports.insert(it->second).second) file.add_dependency(it->second);
    }
  }
}

std::string ReflectionResolver::descriptor_set() const {
  pb::FileDescriptorSet set;
  for (const auto& [name, bytes] : files_) {
    set.add_file()->ParseFromString(bytes);
  }
  add_missing_dependencies(&set);
  return set.SerializeAsString();
}

}  // namespace millstone::grpc
