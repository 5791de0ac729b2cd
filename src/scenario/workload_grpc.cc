// grpc steps (docs/scenarios.md#grpc-steps): a call over the VU's HTTP/2
// connection (the one http: 2 steps use, workload_h2.cc), one in flight.
// The request messages are rendered from their JSON templates and encoded
// with the plan's descriptors per call (once at load when literal); the
// captured response is judged as gRPC (grpc::judge_captured_call, the same
// rules as quick mode's) and its messages decoded to JSON for the checks
// and extraction that JSON bodies have. Latency runs to the trailers.
#include "grpc/framing.h"
#include "grpc/proto_catalog.h"
#include "grpc/session.h"
#include "grpc/status.h"
#include "scenario/virtual_user.h"
#include "scenario/workload.h"

namespace millstone::scenario {

using metrics::ErrorCause;

bool ScenarioWorkload::render_grpc_request(VirtualUser& vu, const HttpRequest& request) {
  const GrpcCall& call = *request.grpc;
  const grpc::ProtoCatalog& catalog = *plan_.grpc.catalog;
  http::RequestSpec spec;
  spec.method = "POST";
  spec.scheme = plan_.target.tls() ? "https" : "http";
  spec.authority = host_header_;
  spec.path = "/" + call.method;
  const RenderContext ctx = render_context(vu);
  if (call.literal_body) {
    spec.body = *call.literal_body;
  } else {
    for (const Template& message : call.messages) {
      grpc_json_.clear();
      message.render(ctx, &grpc_json_);
      if (!catalog.try_encode_json(*call.request_type, grpc_json_, &grpc_bytes_, &scratch_)) {
        // A value that, rendered, does not fit its field: nothing is sent.
        return false;
      }
      grpc::append_message(&spec.body, grpc_bytes_);
    }
  }
  spec.headers.emplace_back("content-type", "application/grpc");
  spec.headers.emplace_back("te", "trailers");
  spec.headers.emplace_back("user-agent", "millstone/" MILLSTONE_VERSION);
  if (call.deadline_us > 0) {
    spec.headers.emplace_back("grpc-timeout", grpc::timeout_field(call.deadline_us));
  }
  for (const auto& [name, value] : call.metadata) {
    std::string rendered;
    value.render(ctx, &rendered);
    spec.headers.emplace_back(name, std::move(rendered));
  }
  vu.request.assign("POST ");
  vu.request += spec.path;
  vu.h2_request = std::make_unique<http2::Request>(spec);
  return true;
}

void ScenarioWorkload::grpc_response(VirtualUser& vu, const HttpRequest& request,
                                     const http::ResponseInfo& response, int64_t intended_ns,
                                     int64_t done_ns) {
  static const http::ResponseContent kNothing;
  const http::ResponseContent& content = response.content ? *response.content : kNothing;
  const GrpcCall& call = *request.grpc;
  if (const auto cause = grpc::judge_captured_call(response.status, content, call.single_response(),
                                                   grpc::kDefaultMaxMessageBytes, &grpc_call_)) {
    request_failed(vu, *cause);
    return;
  }
  // What body checks and extraction see: the response message as JSON, or
  // the list of them for a server stream. Decoded only when something reads it.
  grpc_json_.clear();
  if (!request.checks.empty() || !request.extractions.empty()) {
    const bool list = !call.single_response();
    if (list) grpc_json_ += '[';
    for (size_t i = 0; i < grpc_call_.messages.size(); ++i) {
      if (!plan_.grpc.catalog->try_decode_to_json(*call.response_type, grpc_call_.messages[i],
                                                  &grpc_bytes_)) {
        request_failed(vu, ErrorCause::kGrpcBadMessage);  // bytes that are not its type
        return;
      }
      if (i > 0) grpc_json_ += ',';
      grpc_json_ += grpc_bytes_;
    }
    if (list) grpc_json_ += ']';
  }
  ++current_.grpc_status[static_cast<uint32_t>(grpc_call_.grpc_status)];
  current_.grpc_messages += grpc_call_.messages.size();
  ResponseView view;
  view.status = response.status;
  view.body = grpc_json_;
  view.headers.reserve(content.headers.size());
  for (const auto& [name, value] : content.headers)
    view.headers.emplace_back(name, value);
  view.grpc_status = grpc_call_.grpc_status;
  view.has_grpc_message = grpc_call_.has_grpc_message;
  view.grpc_message = grpc_call_.grpc_message;
  process_response(vu, view, std::string_view(vu.request).substr(5), intended_ns, done_ns);
}

}  // namespace millstone::scenario
