// `millstone grpc`: load a gRPC method (docs/grpc.md). The .proto file is
// parsed here, once (or the server's reflection asked, --reflect), and the request message encoded
// once from JSON; the workers get an HTTP/2 plan whose body is that length-prefixed message and
// judge each answer as gRPC (grpc/session.h). Workers read no .proto.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/run_execute.h"
#include "grpc/framing.h"
#include "grpc/proto_catalog.h"
#include "grpc/reflection_client.h"
#include "grpc/status.h"
#include "http/request_builder.h"
#include "http/url.h"
#include "text/printable.h"

namespace millstone::cli {

namespace {

int grpc_usage(const std::string& message) {
  fmt::print(stderr, "millstone grpc: {}\n", text::printable(message));
  return kExitUsage;
}

int grpc_config_error(const std::string& message) {
  fmt::print(stderr, "millstone grpc: {}\n", text::printable(message));
  return kExitConfig;
}

// Names gRPC and HTTP/2 reserve for themselves: metadata must not set them.
bool reserved_metadata(std::string_view lower_name) {
  return lower_name.empty() || lower_name.front() == ':' || lower_name == "content-type" ||
         lower_name == "te" || lower_name == "grpc-timeout" || lower_name == "content-length" ||
         lower_name == "grpc-encoding" || lower_name == "grpc-accept-encoding";
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// --list: each service the server lists, and the methods of those it described.
int print_services(const grpc::ProtoCatalog& catalog, const std::vector<std::string>& services) {
  for (const std::string& name : services) {
    fmt::print("{}\n", text::printable(name));
    const google::protobuf::ServiceDescriptor* service = catalog.service(name);
    for (int i = 0; service != nullptr && i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor& m = *service->method(i);
      const char* kind =
          m.client_streaming()
              ? (m.server_streaming() ? "  (bidirectional streaming)" : "  (client streaming)")
              : (m.server_streaming() ? "  (server streaming)" : "");
      fmt::print("  {}({}) returns ({}){}\n", m.name(), m.input_type()->full_name(),
                 m.output_type()->full_name(), kind);
    }
  }
  return kExitOk;
}

}  // namespace

int grpc_command(RunOptions run, const GrpcOptions& grpc) {
  if (!check_run_outputs(run)) return kExitUsage;
  // HOST:PORT is cleartext HTTP/2 (prior knowledge); URLs say which.
  std::string target = run.url;
  if (target.find("://") == std::string::npos) target = "http://" + target;
  std::string error;
  auto url = http::parse_url(target, &error);
  if (!url) {
    return grpc_usage(fmt::format(
        "bad target '{}': {}; expected HOST:PORT, http://HOST:PORT or https://HOST:PORT", run.url,
        error));
  }
  if (url->target != "/") {
    return grpc_usage(fmt::format(
        "target '{}': expected HOST:PORT without a path; the path comes from --call", run.url));
  }
  if (!grpc.data.empty() && !grpc.data_file.empty()) {
    return grpc_usage("-d/--data and --data-file cannot both be given");
  }
  std::string json = grpc.data.empty() ? "{}" : grpc.data;
  if (!grpc.data_file.empty()) {
    std::ifstream in(grpc.data_file, std::ios::binary);
    if (!in) {
      return grpc_config_error(
          fmt::format("--data-file {}: cannot read: {}", grpc.data_file, strerror(errno)));
    }
    std::ostringstream content;
    content << in.rdbuf();
    json = content.str();
  }

  const bool reflection = grpc.reflect || grpc.list;
  if (reflection && !grpc.proto.empty()) {
    return grpc_usage(fmt::format(
        "{} and --proto: give one (--reflect asks the server for the service, --proto reads it "
        "from a file)",
        grpc.list ? "--list" : "--reflect"));
  }
  if (reflection && !grpc.import_paths.empty()) {
    return grpc_usage("--import-path is for --proto; with --reflect the server sends the imports");
  }
  if (!reflection && grpc.proto.empty()) {
    return grpc_usage(
        "expected --proto FILE (the service's .proto) or --reflect (ask the server's reflection "
        "service)");
  }
  if (!grpc.list && grpc.call.empty()) {
    return grpc_usage(
        "expected --call package.Service/Method, such as helloworld.Greeter/SayHello");
  }
  std::vector<std::pair<std::string, std::string>> metadata;
  for (const std::string& h : grpc.metadata) {
    std::pair<std::string, std::string> field;
    if (!http::parse_header_arg(h, &field, &error)) {
      return grpc_usage(fmt::format("-H '{}': {}", h, error));
    }
    if (reserved_metadata(lower(field.first))) {
      return grpc_usage(
          fmt::format("-H '{}': {} is set by millstone for every call; expected other metadata", h,
                      field.first));
    }
    metadata.push_back(std::move(field));
  }
  engine::RunPlan plan;
  run.http2 = true;  // TLS offers ALPN h2 alone
  if (const int code = prepare_run_tls(run, *url, &plan); code != 0) return code;

  std::unique_ptr<grpc::ProtoCatalog> catalog;
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::string message;
  if (reflection) {
    // Before the run and outside its measurement: the descriptors, once.
    std::vector<std::string> symbols;
    if (!grpc.list) {
      const std::string service = grpc::service_of_call(grpc.call);
      if (service.empty()) {
        return grpc_usage(fmt::format(
            "--call '{}': expected package.Service/Method, such as helloworld.Greeter/SayHello",
            grpc.call));
      }
      symbols.push_back(service);
    }
    const std::string where = fmt::format("{}://{}", url->scheme, url->host_header());
    grpc::ReflectionTarget target;
    target.host = url->host;
    target.port = url->port;
    target.authority = url->host_header();
    if (plan.tls) {
      target.tls = *plan.tls;
      target.server_name = plan.tls_server_name;
    }
    target.metadata = metadata;
    target.connect_timeout_us = run.connect_timeout_us;
    target.timeout_us = run.timeout_us;
    const grpc::ReflectionResult result = grpc::reflect(target, symbols);
    switch (result.failure) {
      case grpc::ReflectionFailure::kNone:
        break;
      case grpc::ReflectionFailure::kUnreachable:
        fmt::print(stderr, "millstone grpc: {} is unreachable: {}\n", text::printable(where),
                   text::printable(result.error));
        return kExitUnreachable;
      case grpc::ReflectionFailure::kTls:
        fmt::print(stderr, "millstone grpc: {}: {}\n", text::printable(where),
                   text::printable(result.error));
        return kExitTls;
      case grpc::ReflectionFailure::kReflection:
        return grpc_config_error(fmt::format(
            "server reflection at {}{}: {}; expected the server to describe {} (or give its "
            ".proto with --proto)",
            where, grpc.list ? "" : " for " + symbols.front(), result.error,
            grpc.list ? "its services" : symbols.front()));
    }
    try {
      catalog = grpc::ProtoCatalog::from_descriptor_set(result.descriptor_set,
                                                        "server reflection at " + where);
    } catch (const grpc::ProtoError& e) {
      return grpc_config_error(e.what());  // the server sent descriptors that do not build
    }
    if (grpc.list) return print_services(*catalog, result.services);
    if (!run.quiet) {
      const auto count = [](size_t n, const char* one, const char* many) {
        return fmt::format("{} {}", n, n == 1 ? one : many);
      };
      fmt::print(stderr, "millstone grpc: {} from server reflection ({}, {} in {})\n",
                 symbols.front(), result.version, count(result.files, "file", "files"),
                 count(result.questions, "answer", "answers"));
    }
  } else {
    try {
      catalog = std::make_unique<grpc::ProtoCatalog>(grpc.proto, grpc.import_paths);
    } catch (const grpc::ProtoError& e) {
      return grpc_config_error(e.what());  // FILE:LINE:COL: what protobuf's parser said
    }
  }
  try {
    method = &catalog->method(grpc.call);
  } catch (const grpc::ProtoError& e) {
    return grpc_usage(e.what());
  }
  // Client-streaming and bidirectional methods take a JSON list: each
  // element one message, sent in order, then the call is half-closed.
  std::vector<std::string> messages_json;
  if (method->client_streaming()) {
    const nlohmann::json list = nlohmann::json::parse(json, nullptr, false);
    if (list.is_array()) {
      for (const nlohmann::json& item : list)
        messages_json.push_back(item.dump());
    } else if (list.is_object()) {
      messages_json.push_back(json);
    } else {
      return grpc_usage(fmt::format(
          "{}: {} is a {} method; expected a JSON list of its request messages, such as "
          "[{{...}}, {{...}}]",
          grpc.data_file.empty() ? "-d/--data" : "--data-file " + grpc.data_file,
          method->full_name(),
          method->server_streaming() ? "bidirectional streaming" : "client streaming"));
    }
  } else {
    messages_json.push_back(json);
  }
  std::string body;
  for (const std::string& one : messages_json) {
    try {
      message = catalog->encode_json(*method->input_type(), one);
    } catch (const grpc::ProtoError& e) {
      return grpc_usage(fmt::format(
          "{}: {}{}", grpc.data_file.empty() ? "-d/--data" : "--data-file " + grpc.data_file,
          e.what(),
          grpc.data_file.empty() && !json.empty() && json.front() != '{' && json.front() != '['
              ? " (the run's length is --duration, not -d)"
              : ""));
    }
    grpc::append_message(&body, message);
  }

  plan.url = target;
  plan.connections = run.connections;
  plan.rate = run.rate;
  plan.duration_ms = static_cast<uint64_t>(std::max<int64_t>(1, run.duration_us / 1000));
  plan.timeout_ms = static_cast<uint64_t>(std::max<int64_t>(1, run.timeout_us / 1000));
  plan.connect_timeout_ms =
      static_cast<uint64_t>(std::max<int64_t>(1, run.connect_timeout_us / 1000));
  plan.http2 = true;
  plan.grpc = true;
  plan.grpc_server_streaming = method->server_streaming();
  plan.streams = run.streams;
  plan.h2_window = run.h2_window;
  plan.h2_header_table = run.h2_header_table;
  http::RequestSpec& request = plan.request;
  request.method = "POST";
  request.scheme = url->tls() ? "https" : "http";
  request.authority = url->host_header();
  request.path = grpc::method_path(*method);
  request.headers = {{"content-type", "application/grpc"},
                     {"te", "trailers"},
                     {"user-agent", std::string("millstone/") + MILLSTONE_VERSION}};
  if (grpc.deadline_us > 0) {
    request.headers.emplace_back("grpc-timeout", grpc::timeout_field(grpc.deadline_us));
  }
  for (auto& field : metadata)
    request.headers.push_back(std::move(field));
  request.body = std::move(body);  // the messages, framed once

  const std::string call = fmt::format("{}/{}", method->service()->full_name(), method->name());
  RunDescription description;
  description.url = fmt::format("{}://{}/{}", url->scheme, url->host_header(), call);
  description.method = "gRPC";
  description.connections = run.connections;
  description.rate = run.rate;
  description.duration_ms = plan.duration_ms;
  description.percentiles = run.percentiles;
  description.streams = plan.streams;
  description.grpc_call = call;
  return execute_run(run, std::move(plan), *url, std::move(description));
}

}  // namespace millstone::cli
