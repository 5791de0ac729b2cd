// grpc: at the top level (the .proto files, or server reflection) and each grpc step's call
// (docs/scenarios.md#grpc-steps): the method found in the descriptors, the
// request messages checked field by field against its input type, with the
// line and column of what does not fit, and compiled into JSON templates.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>

#include "grpc/framing.h"
#include "grpc/proto_catalog.h"
#include "http/syntax.h"
#include "scenario/loader.h"
#include "scenario/loader_context.h"

namespace millstone::scenario::detail {
namespace {

namespace pb = google::protobuf;
using yaml::Field;
using yaml::MapFields;
using yaml::shown;

constexpr std::string_view kGrpcKeys[] = {"protos", "import_paths", "reflection"};
constexpr std::string_view kCallKeys[] = {"call", "message", "messages", "metadata", "deadline"};
constexpr size_t kMaxMessages = 10'000;

bool is_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string resolve(const std::string& base_dir, const std::string& name) {
  std::filesystem::path path(name);
  if (path.is_relative() && !base_dir.empty()) path = std::filesystem::path(base_dir) / path;
  return path.lexically_normal().string();
}

// One path or a list of them.
std::vector<std::pair<std::string, YAML::Mark>> paths_of(yaml::Reader& reader, const Field& field,
                                                         std::string_view what) {
  std::vector<std::pair<std::string, YAML::Mark>> out;
  if (field.value.IsSequence()) {
    for (const YAML::Node& item : field.value) {
      const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
      out.emplace_back(reader.scalar(item, mark, what, "a path"), mark);
    }
  } else {
    out.emplace_back(reader.scalar(field, "a path or a list of paths"), field.mark);
  }
  if (out.empty()) {
    reader.fail(field.mark, fmt::format("{} is an empty list; expected at least one path", what));
  }
  return out;
}

// Metadata gRPC itself sets, or that HTTP/2 forbids.
bool reserved_metadata(std::string_view name) {
  using http::syntax::iequals;
  return iequals(name, "content-type") || iequals(name, "te") || iequals(name, "grpc-timeout") ||
         iequals(name, "grpc-encoding") || iequals(name, "grpc-accept-encoding") ||
         iequals(name, "host") || iequals(name, "connection") ||
         iequals(name, "transfer-encoding") || iequals(name, "content-length");
}

// Checks a YAML message against its protobuf type before any load: every
// key a field, lists for repeated fields, maps for messages, and each
// literal scalar through protobuf's own JSON parser (a one-field message),
// so "times: many" is reported at its line and column. Values with {{ }}
// are checked when rendered (a call that does not fit is a grpc_bad_request).
class MessageChecker {
 public:
  MessageChecker(yaml::Reader& reader, const grpc::ProtoCatalog& catalog, const JsonText& json_text)
      : reader_(reader), catalog_(catalog), json_text_(json_text) {}

  void message(const YAML::Node& node, const YAML::Mark& mark, const pb::Descriptor& type,
               int depth) {
    // The well-known types (Timestamp, Duration, Struct, wrappers...) have
    // JSON forms of their own: protobuf's parser judges them when rendered.
    if (type.file()->package() == "google.protobuf") return;
    if (node.IsNull()) return;
    if (depth > 64) reader_.fail(mark, "message nests more than 64 levels; expected less");
    if (!node.IsMap()) {
      reader_.fail(mark, fmt::format("message of type {} is {}; expected a map of its fields",
                                     type.full_name(), yaml::kind_of(node)));
    }
    const MapFields map = reader_.read_map(node, mark, type.full_name(), {});
    for (const Field& field : map.fields) {
      const pb::FieldDescriptor* fd = type.FindFieldByName(field.key);
      for (int i = 0; i < type.field_count() && fd == nullptr; ++i) {
        if (type.field(i)->json_name() == field.key) fd = type.field(i);  // "userId" for user_id
      }
      if (fd == nullptr) {
        std::vector<std::string> names;
        std::string list;
        for (int i = 0; i < type.field_count(); ++i) {
          names.push_back(type.field(i)->name());
          list += fmt::format("{}{}", i ? ", " : "", type.field(i)->name());
        }
        reader_.fail(field.key_mark,
                     fmt::format("{} has no field {}{}; expected one of: {}", type.full_name(),
                                 shown(field.key), yaml::did_you_mean(field.key, names),
                                 list.empty() ? "none (the message is empty)" : list));
      }
      value(field.value, field.mark, *fd, type, depth);
    }
  }

 private:
  void value(const YAML::Node& node, const YAML::Mark& mark, const pb::FieldDescriptor& fd,
             const pb::Descriptor& owner, int depth) {
    if (node.IsNull()) return;
    if (fd.is_map()) {
      if (!node.IsMap()) {
        reader_.fail(mark, fmt::format("field {} of {} is a map; expected a map, not {}", fd.name(),
                                       owner.full_name(), yaml::kind_of(node)));
      }
      const pb::FieldDescriptor& entry_value = *fd.message_type()->map_value();
      for (const auto& entry : node) {
        const YAML::Mark at = entry.second.Mark().is_null() ? mark : entry.second.Mark();
        if (entry_value.type() == pb::FieldDescriptor::TYPE_MESSAGE) {
          message(entry.second, at, *entry_value.message_type(), depth + 1);
        }
      }
      return;
    }
    if (fd.is_repeated()) {
      if (!node.IsSequence()) {
        reader_.fail(mark, fmt::format("field {} of {} is repeated; expected a list such as [a, "
                                       "b], not {}",
                                       fd.name(), owner.full_name(), yaml::kind_of(node)));
      }
      for (const YAML::Node& item : node) {
        single(item, item.Mark().is_null() ? mark : item.Mark(), fd, owner, depth, true);
      }
      return;
    }
    single(node, mark, fd, owner, depth, false);
  }

  void single(const YAML::Node& node, const YAML::Mark& mark, const pb::FieldDescriptor& fd,
              const pb::Descriptor& owner, int depth, bool in_list) {
    if (fd.type() == pb::FieldDescriptor::TYPE_MESSAGE ||
        fd.type() == pb::FieldDescriptor::TYPE_GROUP) {
      message(node, mark, *fd.message_type(), depth + 1);
      return;
    }
    if (node.IsNull()) return;
    if (!node.IsScalar()) {
      reader_.fail(mark,
                   fmt::format("field {} of {} is a {}; expected a single value, not {}", fd.name(),
                               owner.full_name(), fd.type_name(), yaml::kind_of(node)));
    }
    if (node.Scalar().find("{{") != std::string::npos) return;  // judged when rendered
    const std::string value = json_text_(node, mark);
    const std::string probe = in_list ? fmt::format("{{\"{}\":[{}]}}", fd.json_name(), value)
                                      : fmt::format("{{\"{}\":{}}}", fd.json_name(), value);
    std::string bytes;
    std::string error;
    if (!catalog_.try_encode_json(owner, probe, &bytes, &error)) {
      reader_.fail(mark, fmt::format("{} is not a value of field {} ({} {}): {}; expected a {}",
                                     shown(node.Scalar()), fd.name(), owner.full_name(),
                                     fd.type_name(), error, expected_form(fd)));
    }
  }

  static std::string expected_form(const pb::FieldDescriptor& fd) {
    switch (fd.cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        return "true or false";
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        std::string names;
        const pb::EnumDescriptor& e = *fd.enum_type();
        for (int i = 0; i < e.value_count() && i < 20; ++i)
          names += fmt::format("{}{}", i ? ", " : "", e.value(i)->name());
        return "value name: " + names;
      }
      case pb::FieldDescriptor::CPPTYPE_STRING:
        return fd.type() == pb::FieldDescriptor::TYPE_BYTES ? "base64 text" : "text (quote it)";
      default:
        return "number";
    }
  }

  yaml::Reader& reader_;
  const grpc::ProtoCatalog& catalog_;
  const JsonText& json_text_;
};

// The services grpc steps call, in file order, each once: what reflection is
// asked for. Steps nest in steps: (groups, loops) as the flow compiler reads
// them; what is not a well-formed step is left to it.
void collect_services(const YAML::Node& steps, int depth, std::vector<std::string>* out) {
  if (!steps.IsSequence() || depth > 64) return;
  for (const YAML::Node& step : steps) {
    if (!step.IsMap()) continue;
    for (const auto& entry : step) {
      if (!entry.first.IsScalar()) continue;
      const std::string& key = entry.first.Scalar();
      if (key == "steps") collect_services(entry.second, depth + 1, out);
      if (key != "grpc" || !entry.second.IsMap()) continue;
      const YAML::Node call = entry.second["call"];
      if (!call.IsDefined() || !call.IsScalar()) continue;
      const std::string service = grpc::service_of_call(call.Scalar());
      if (!service.empty() && std::find(out->begin(), out->end(), service) == out->end()) {
        out->push_back(service);
      }
    }
  }
}

Template message_template(LoadContext& ctx, const YAML::Mark& mark, const std::string& text) {
  std::string error;
  size_t offset = 0;
  std::optional<Template> compiled =
      Template::compile(text, ctx.plan.variables, false, &error, &offset);
  if (!compiled) {
    ctx.reader.fail(mark, fmt::format("message does not form a template ({}); expected plain "
                                      "values and {{{{ name }}}} expressions",
                                      error));
  }
  return std::move(*compiled);
}

// grpc: {reflection: true}: the services the steps call, from the target's
// reflection service (the coordinator, through ctx.reflector), from what the
// coordinator sent (a worker), or not yet (no reflector: validate, k8s render).
void compile_reflection(LoadContext& ctx, const Field& field, const Field& flows,
                        const DataFileSet* data_files) {
  yaml::Reader& reader = ctx.reader;
  GrpcSettings& grpc = ctx.plan.grpc;
  try {
    if (data_files != nullptr) {
      const auto sent = data_files->find(grpc.descriptor_key);
      if (sent == data_files->end()) {
        reader.fail(field.mark,
                    "the descriptors from server reflection were not sent with the run's "
                    "Start; expected the coordinator to send them");
      }
      grpc.catalog =
          grpc::ProtoCatalog::from_descriptor_set(sent->second->view(), "server reflection");
      return;
    }
    if (ctx.reflector == nullptr) return;  // calls checked for form only
    std::vector<std::string> services;
    if (flows.value.IsMap()) {
      for (const auto& flow : flows.value) {
        if (flow.second.IsMap()) collect_services(flow.second["steps"], 0, &services);
      }
    }
    std::string descriptors;
    if (!services.empty()) {
      GrpcReflection answer = (*ctx.reflector)(ctx.plan, services);
      if (answer.exit_code != 0) {
        throw GrpcReflectionError(
            fmt::format("{}: reflection: {}", reader.location(field.mark), answer.error),
            answer.exit_code);
      }
      descriptors = std::move(answer.descriptor_set);
    }
    auto catalog = grpc::ProtoCatalog::from_descriptor_set(descriptors, "server reflection");
    grpc.descriptor_set = catalog->descriptor_set();
    grpc.catalog = std::move(catalog);
  } catch (const grpc::ProtoError& e) {
    reader.fail(field.mark, fmt::format("reflection: {}", e.what()));
  }
}

}  // namespace

void compile_grpc(LoadContext& ctx, const Field& field, const Field& flows,
                  const std::string& base_dir, const DataFileSet* data_files) {
  yaml::Reader& reader = ctx.reader;
  GrpcSettings& grpc = ctx.plan.grpc;
  grpc.location = reader.location(field.mark);
  grpc.descriptor_key = "grpc-descriptors";
  const MapFields map = reader.read_map(field.value, field.mark, "grpc", kGrpcKeys);
  const Field* protos = map.find("protos");
  const Field* reflection = map.find("reflection");
  if (reflection != nullptr) grpc.reflection = reader.boolean(*reflection);
  if (grpc.reflection) {
    if (protos != nullptr || map.find("import_paths") != nullptr) {
      reader.fail((protos != nullptr ? protos : map.find("import_paths"))->key_mark,
                  "grpc has reflection: true and .proto files; expected one (reflection: the "
                  "server describes its services, protos: the files do)");
    }
    compile_reflection(ctx, *reflection, flows, data_files);
    return;
  }
  if (protos == nullptr) {
    reader.fail(map.mark,
                "grpc has no protos; expected protos: with the .proto files of the "
                "services called, e.g. protos: [greeter.proto], or reflection: true to ask "
                "the target's server reflection");
  }
  std::vector<std::pair<std::string, YAML::Mark>> files;
  for (auto& [name, mark] : paths_of(reader, *protos, "protos")) {
    files.emplace_back(resolve(base_dir, name), mark);
    grpc.protos.push_back(files.back().first);
  }
  if (const Field* imports = map.find("import_paths")) {
    for (auto& [name, mark] : paths_of(reader, *imports, "import_paths")) {
      grpc.import_paths.push_back(resolve(base_dir, name));
      if (data_files == nullptr && !is_dir(grpc.import_paths.back())) {
        reader.fail(mark, fmt::format("import path {} is not a folder; expected a folder relative "
                                      "to the scenario file",
                                      shown(grpc.import_paths.back())));
      }
    }
  }
  try {
    if (data_files != nullptr) {
      // A worker: the coordinator parsed the files and sent their descriptors.
      const auto sent = data_files->find(grpc.descriptor_key);
      if (sent == data_files->end()) {
        reader.fail(field.mark,
                    "the .proto descriptors were not sent with the run's Start; "
                    "expected the coordinator to send them");
      }
      grpc.catalog = grpc::ProtoCatalog::from_descriptor_set(sent->second->view(), grpc.protos[0]);
      return;
    }
    for (const auto& [path, mark] : files) {
      if (!is_file(path)) {
        reader.fail(mark, fmt::format("proto file {} does not exist; expected a .proto file "
                                      "relative to the scenario file",
                                      shown(path)));
      }
    }
    auto catalog = std::make_shared<grpc::ProtoCatalog>(grpc.protos, grpc.import_paths);
    grpc.descriptor_set = catalog->descriptor_set();
    grpc.catalog = std::move(catalog);
  } catch (const grpc::ProtoError& e) {
    reader.fail(protos->mark, fmt::format("protos: {}", e.what()));
  }
}

std::shared_ptr<const GrpcCall> compile_grpc_call(LoadContext& ctx, const Field& action,
                                                  const JsonText& json_text,
                                                  std::string* method_name) {
  yaml::Reader& reader = ctx.reader;
  const GrpcSettings& settings = ctx.plan.grpc;
  if (!settings.enabled()) {
    reader.fail(action.key_mark,
                "grpc step, but the scenario has no grpc: section; expected "
                "grpc: {protos: [service.proto]} at the top level, naming the "
                ".proto files of the services called");
  }
  const MapFields map = reader.read_map(action.value, action.mark, "grpc", kCallKeys);
  const Field* call_field = map.find("call");
  if (call_field == nullptr) {
    reader.fail(map.mark, "grpc step has no call; expected call: package.Service/Method");
  }
  auto call = std::make_shared<GrpcCall>();
  const std::string call_text = reader.scalar(*call_field, "package.Service/Method");
  std::string error;
  const bool checked = settings.catalog != nullptr;
  if (checked) {
    const pb::MethodDescriptor* method = settings.catalog->find_method(call_text, &error);
    if (method == nullptr) {
      reader.fail(call_field->mark, fmt::format("call {}: {}", shown(call_text), error));
    }
    call->method = fmt::format("{}/{}", method->service()->full_name(), method->name());
    call->request_type = method->input_type();
    call->response_type = method->output_type();
    call->client_streaming = method->client_streaming();
    call->server_streaming = method->server_streaming();
  } else {
    // reflection: true, not asked here: the form only (no run is made of this plan).
    const std::string service = grpc::service_of_call(call_text);
    if (service.empty()) {
      reader.fail(call_field->mark, fmt::format("call {}: expected package.Service/Method, such as "
                                                "helloworld.Greeter/SayHello",
                                                shown(call_text)));
    }
    call->method =
        fmt::format("{}/{}", service, call_text.substr(call_text.find_last_of("/.") + 1));
    call->client_streaming = map.find("messages") != nullptr;
  }
  *method_name = call->method;

  const Field* message = map.find("message");
  const Field* messages = map.find("messages");
  if (message != nullptr && messages != nullptr) {
    reader.fail(messages->key_mark,
                "grpc step has both message and messages; expected one "
                "(messages: a list, for client-streaming methods)");
  }
  if (messages != nullptr && !call->client_streaming) {
    reader.fail(messages->key_mark,
                fmt::format("messages: is for client-streaming and bidirectional methods; {} "
                            "takes one request message: expected message:",
                            call->method));
  }
  std::optional<MessageChecker> checker;
  if (checked) checker.emplace(reader, *settings.catalog, json_text);
  std::vector<std::pair<YAML::Node, YAML::Mark>> nodes;
  if (message != nullptr) {
    nodes.emplace_back(message->value, message->mark);
  } else if (messages != nullptr) {
    if (!messages->value.IsSequence()) {
      reader.fail(messages->mark,
                  fmt::format("messages is {}; expected a list of messages, each a map",
                              yaml::kind_of(messages->value)));
    }
    for (const YAML::Node& item : messages->value) {
      nodes.emplace_back(item, item.Mark().is_null() ? messages->mark : item.Mark());
    }
    if (nodes.size() > kMaxMessages) {
      reader.fail(messages->mark,
                  fmt::format("{} messages; expected at most {}", nodes.size(), kMaxMessages));
    }
  }
  if (nodes.empty() && !call->client_streaming) nodes.emplace_back(YAML::Node(), action.mark);
  bool literal = true;
  for (const auto& [node, mark] : nodes) {
    if (checker) checker->message(node, mark, *call->request_type, 0);
    const std::string text = node.IsNull() ? std::string("{}") : json_text(node, mark);
    call->messages.push_back(message_template(ctx, mark, text));
    literal = literal && call->messages.back().is_literal();
  }
  if (literal && checked) {
    // Encoded once; this also judges what the field checks leave to protobuf.
    std::string body;
    std::string bytes;
    RenderContext none;
    for (size_t i = 0; i < call->messages.size(); ++i) {
      std::string json;
      call->messages[i].render(none, &json);
      if (!settings.catalog->try_encode_json(*call->request_type, json, &bytes, &error)) {
        reader.fail(nodes[i].second, fmt::format("message: {}", error));
      }
      grpc::append_message(&body, bytes);
    }
    call->literal_body = std::move(body);
  }

  if (const Field* metadata = map.find("metadata")) {
    for (auto& [name, value] : compile_headers(ctx, *metadata)) {
      if (reserved_metadata(name) || name.starts_with(':')) {
        reader.fail(metadata->mark, fmt::format("metadata {} is set by gRPC itself; expected "
                                                "other metadata (the deadline is deadline:)",
                                                shown(name)));
      }
      call->metadata.emplace_back(std::move(name), std::move(value));
    }
  }
  if (const Field* deadline = map.find("deadline")) {
    call->deadline_us = reader.duration_us(*deadline);
    if (call->deadline_us <= 0) {
      reader.fail(deadline->mark, "deadline is 0; expected a duration above 0, such as 500ms");
    }
  }
  return call;
}

}  // namespace millstone::scenario::detail
