// Request steps with http: 2 (docs/scenarios.md#http2): each VU sends them
// over its own HTTP/2 connection (http::SessionConnection with an
// http2::Session that captures responses), one stream in flight as on its
// HTTP/1.1 connection, with the same per-step metrics, checks, extraction
// and cookies. h2 by ALPN over TLS, prior knowledge over cleartext.
#include <algorithm>
#include <ctime>

#include "http/syntax.h"
#include "net/clock.h"
#include "scenario/virtual_user.h"
#include "scenario/workload.h"

namespace millstone::scenario {

using http::syntax::iequals;
using metrics::ErrorCause;

namespace {

constexpr size_t kGrpcCaptureBytes = size_t{16} << 20;

}  // namespace

bool ScenarioWorkload::prepare_h2(std::string* error) {
  if (!plan_.uses_http_version(2)) return true;
  h2_context_.endpoint = context_.endpoint;
  h2_context_.sources = context_.sources;
  h2_context_.read_buffer.resize(context_.read_buffer.size());
  h2_context_.stats = &current_;
  if (plan_.target.tls()) {
    try {
      tls::TlsClientOptions options = plan_.tls;
      options.alpn = {"h2"};
      tls_h2_ = std::make_unique<tls::TlsClientContext>(options);
    } catch (const tls::TlsSetupError& e) {
      *error = e.what();  // the loader checked the same options: only out of memory gets here
      return false;
    }
    h2_context_.tls = tls_h2_.get();
    h2_context_.tls_target =
        &tls_h2_->target(plan_.tls_server_name.empty() ? plan_.target.host : plan_.tls_server_name,
                         plan_.target.port);
  }
  http2::Settings settings;
  settings.max_streams = 1;  // a VU has one request in flight
  settings.capture = true;
  settings.capture_body_bytes = plan_.max_body_capture;
  // A gRPC response is judged whole (every length prefix, the trailers):
  // captured up to this much in all, past it a grpc_bad_message.
  if (plan_.grpc.enabled()) {
    settings.capture_body_bytes = std::max<size_t>(settings.capture_body_bytes, kGrpcCaptureBytes);
  }
  h2_factory_ = std::make_unique<http2::SessionFactory>(settings, current_);
  return true;
}

void ScenarioWorkload::render_h2_request(VirtualUser& vu, const HttpRequest& request) {
  const RenderContext ctx = render_context(vu);

  http::RequestSpec spec;
  spec.method = request.method;
  spec.scheme = plan_.target.tls() ? "https" : "http";
  spec.authority = host_header_;
  spec.path.clear();
  request.target.render(ctx, &spec.path);
  request.body.render(ctx, &spec.body);
  // vu.request keeps "METHOD target" for the cookie path, as HTTP/1.1's text does.
  vu.request.assign(request.method);
  vu.request += ' ';
  vu.request += spec.path;
  const std::string_view path = std::string_view(spec.path).substr(0, spec.path.find('?'));
  scratch_.clear();
  vu.cookies.render(path, ctx.now_unix_ms / 1000, &scratch_);

  bool has_content_type = false;
  for (const auto& [name, value] : plan_.default_headers) {
    const bool overridden =
        std::any_of(request.headers.begin(), request.headers.end(),
                    [&, &name = name](const auto& h) { return iequals(h.first, name); });
    if (overridden) continue;
    has_content_type = has_content_type || iequals(name, "content-type");
    spec.headers.emplace_back(name, value);
  }
  for (const auto& [name, value] : request.headers) {
    has_content_type = has_content_type || iequals(name, "content-type");
    std::string rendered;
    value.render(ctx, &rendered);
    spec.headers.emplace_back(name, std::move(rendered));
  }
  if (!scratch_.empty()) spec.headers.emplace_back("cookie", scratch_);
  const bool method_has_body =
      request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
  if ((!spec.body.empty() || method_has_body) && !has_content_type &&
      !request.content_type.empty()) {
    spec.headers.emplace_back("content-type", request.content_type);
  }
  vu.h2_request = std::make_unique<http2::Request>(spec);
}

void ScenarioWorkload::send_h2_request(VirtualUser& vu, int64_t now) {
  // The first request of an arrival-rate iteration counts from when the
  // iteration was due, as over HTTP/1.1.
  vu.h2_intended_ns = vu.first_request ? std::min(vu.iteration_intended_ns, now) : now;
  request_due(vu, vu.h2_intended_ns);
  vu.first_request = false;
  if (!vu.h2) {
    vu.h2 = std::make_unique<http::SessionConnection>(loop_, *this, h2_context_, *h2_factory_,
                                                      vu.connection.index());
  }
  if (vu.h2->ready() && vu.h2->capacity() > 0) {
    submit_h2(vu, now);
    return;
  }
  vu.h2_waiting = true;
  if (!vu.h2->ready() && !vu.h2->opening()) vu.h2->connect(now);
}

void ScenarioWorkload::submit_h2(VirtualUser& vu, int64_t now) {
  vu.h2_waiting = false;
  if (!vu.h2->submit(*vu.h2_request, static_cast<http::RequestToken>(vu.h2_intended_ns), now)) {
    request_failed(vu, ErrorCause::kProtocolError);  // capacity() said yes: cannot happen
  }
}

void ScenarioWorkload::on_capacity(http::SessionConnection& connection) {
  VirtualUser& vu = *vus_[connection.index()];
  if (!vu.h2_waiting || connection.capacity() == 0) return;
  if (!running_ || !vu.in_iteration) {
    vu.h2_waiting = false;
    return;
  }
  submit_h2(vu, net::now_ns());
}

void ScenarioWorkload::on_response(http::SessionConnection& connection, http::RequestToken token,
                                   const http::ResponseInfo& response, int64_t done_ns) {
  VirtualUser& vu = *vus_[connection.index()];
  if (!running_ || !vu.in_iteration) return;
  const Flow& flow = plan_.flows[vu.flow];
  const HttpRequest& request = flow.requests[flow.program[vu.pc].arg];
  if (request.grpc) {
    grpc_response(vu, request, response, static_cast<int64_t>(token), done_ns);
    return;
  }
  ResponseView view;
  view.status = response.status;
  if (response.content != nullptr) {
    view.body = response.content->body;
    view.headers.reserve(response.content->headers.size());
    for (const auto& [name, value] : response.content->headers)
      view.headers.emplace_back(name, value);
  }
  std::string_view path(vu.request);
  path = path.substr(path.find(' ') + 1);
  path = path.substr(0, path.find('?'));
  process_response(vu, view, path, static_cast<int64_t>(token), done_ns);
}

void ScenarioWorkload::on_request_failed(http::SessionConnection& connection, http::RequestToken,
                                         ErrorCause cause) {
  request_failed(*vus_[connection.index()], cause);
}

void ScenarioWorkload::on_closed(http::SessionConnection& connection,
                                 std::optional<ErrorCause> cause) {
  VirtualUser& vu = *vus_[connection.index()];
  // A request in flight was charged already (on_request_failed); the next
  // request reconnects. One still waiting for this connection is lost with
  // it: refused, TLS, no h2 by ALPN, or a server that closed at once.
  if (!vu.h2_waiting) return;
  vu.h2_waiting = false;
  request_failed(vu, cause.value_or(ErrorCause::kClosed));
}

}  // namespace millstone::scenario
