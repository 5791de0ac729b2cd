#pragma once
// gRPC client session: calls over HTTP/2 streams (PROTOCOL-HTTP2.md), as an
// http2::Session with a hook that reads each stream as a call (no libgrpc++,
// whose threads would fight the event loop). The HTTP/2 session does all the
// nghttp2 wiring; this file is gRPC's part only: the length-prefixed
// messages, the status and what makes an answer not gRPC. A call is a POST
// of one length-prefixed message (prepared once, as an http2::Request); its
// outcome is the grpc-status of the trailers, or of a trailers-only response.
//
// A call that ends with a grpc-status is a response (ResponseInfo::grpc_status,
// OK or not: a non-OK status is a result classified by its code). An answer
// that is not valid gRPC fails the call with a counted cause, never more:
// an HTTP status other than 200 (kGrpcHttpStatus), a content-type other than
// application/grpc[+...] (kGrpcContentType), broken length-prefixed framing,
// a compressed message we did not ask for, or a unary OK with other than one
// message (kGrpcBadMessage), a stream that ended without grpc-status
// (kGrpcMissingStatus). Resets, GOAWAY and timeouts as in http2::Session.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grpc/framing.h"
#include "http/session.h"
#include "http/session_connection.h"
#include "http2/session.h"
#include "metrics/snapshot.h"

namespace millstone::grpc {

struct Settings {
  http2::Settings h2;
  // Unary calls expect exactly one response message with an OK status;
  // server streaming takes any number.
  bool unary = true;
  uint32_t max_message_bytes = kDefaultMaxMessageBytes;
};

// What a call's stream says, as the HTTP/2 session hands it over.
class CallHook : public http2::StreamHook {
 public:
  explicit CallHook(const Settings& settings);

  void on_submit(uint32_t slot) override;
  bool on_header(uint32_t slot, bool trailers, std::string_view name,
                 std::string_view value) override;
  void on_data(uint32_t slot, std::string_view data) override;
  std::optional<metrics::ErrorCause> on_complete(uint32_t slot,
                                                 http::ResponseInfo& response) override;

 private:
  struct Call {
    int32_t grpc_status = -1;
    bool content_type_ok = false;
    bool status_field_bad = false;  // a grpc-status that is not a number
    MessageReader messages;
  };
  bool unary_;
  std::vector<Call> calls_;  // per stream slot
};

// `request` given to submit() is an http2::Request: the call's POST, its
// message framed.
class Session final : private CallHook, public http2::Session {
 public:
  Session(const Settings& settings, http::RequestListener& listener, metrics::Snapshot& stats)
      : CallHook(settings),
        http2::Session(settings.h2, listener, stats, static_cast<CallHook*>(this)) {}
};

class SessionFactory final : public http::SessionFactory {
 public:
  SessionFactory(const Settings& settings, metrics::Snapshot& stats)
      : settings_(settings), stats_(stats) {}
  std::unique_ptr<http::Session> make(http::RequestListener& listener) override {
    return std::make_unique<Session>(settings_, listener, stats_);
  }
  std::string_view required_alpn() const override { return "h2"; }

 private:
  Settings settings_;
  metrics::Snapshot& stats_;
};

// A call whose whole response was captured (scenario steps, over an
// http2::Session with Settings::capture): the same judgement as CallHook's,
// made once on the gathered header fields and body, keeping what checks
// need. `unary`: an OK needs exactly one message (unary and client-streaming
// methods).
struct CapturedCall {
  int32_t grpc_status = -1;
  std::string grpc_message;  // percent-decoded; empty when absent
  bool has_grpc_message = false;
  std::vector<std::string_view> messages;  // into the captured body
};
std::optional<metrics::ErrorCause> judge_captured_call(int http_status,
                                                       const http::ResponseContent& content,
                                                       bool unary, uint32_t max_message_bytes,
                                                       CapturedCall* call);

// True for application/grpc and application/grpc+proto (any +suffix or
// ;parameters), case-insensitive: what a gRPC server may answer.
bool grpc_content_type(std::string_view value);

}  // namespace millstone::grpc
