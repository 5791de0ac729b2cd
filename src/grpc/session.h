#pragma once
// gRPC client session: calls over HTTP/2 streams (PROTOCOL-HTTP2.md) through
// libnghttp2 on millstone's own event loop, as http2::Session does for plain
// HTTP/2 (no libgrpc++, whose threads would fight the event loop). A call is
// a POST of one length-prefixed message (prepared once, as an
// http2::Request); its outcome is the grpc-status of the trailers, or of a
// trailers-only response.
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
#include <string>
#include <vector>

#include "grpc/framing.h"
#include "http/session.h"
#include "http/session_connection.h"
#include "http2/session.h"
#include "metrics/snapshot.h"

#include <nghttp2/nghttp2.h>

namespace millstone::grpc {

struct Settings {
  http2::Settings h2;
  // Unary calls expect exactly one response message with an OK status;
  // server streaming takes any number.
  bool unary = true;
  uint32_t max_message_bytes = kDefaultMaxMessageBytes;
};

class Session final : public http::Session {
 public:
  Session(const Settings& settings, http::RequestListener& listener, metrics::Snapshot& stats);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  http::SessionStatus on_open(http::Output& out) override;
  http::SessionStatus on_read(std::span<const char> bytes, http::Output& out) override;
  uint32_t capacity() const override;
  uint32_t in_flight() const override { return in_flight_; }
  // `request` is an http2::Request: the call's POST, its message framed.
  bool submit(const http::PreparedRequest& request, http::RequestToken token, int64_t now_ns,
              http::Output& out) override;
  http::SessionStatus on_writable(http::Output& out) override;
  void expire(int64_t now_ns, int64_t timeout_ns, http::Output& out) override;
  void fail_all(metrics::ErrorCause cause) override;
  bool draining() const override;

 private:
  struct Call {
    http::RequestToken token = 0;
    int64_t sent_ns = 0;
    int32_t id = -1;  // -1: free
    int http_status = 0;
    int32_t grpc_status = -1;
    uint32_t header_blocks = 0;  // 1: response headers seen; 2: trailers
    bool content_type_ok = false;
    bool status_field_bad = false;  // a grpc-status that is not a number
    MessageReader messages;
    const std::string* body = nullptr;  // request body being sent
    size_t body_offset = 0;
    bool ended = false;
    bool reset = false;
    bool timed_out = false;
  };
  struct Outcome {
    http::RequestToken token;
    bool ok;
    http::ResponseInfo response;
    metrics::ErrorCause cause;
  };

  http::SessionStatus flush(http::Output& out);
  void deliver();
  Call* call_of(int32_t stream_id);
  void release(Call& call);
  Outcome judge(const Call& call, uint32_t error_code) const;

  friend struct CallCallbacks;
  int on_frame_recv(const void* frame);
  int on_header(const void* frame, std::string_view name, std::string_view value);
  int on_data_chunk(int32_t stream_id, std::string_view data);
  int on_stream_close(int32_t stream_id, uint32_t error_code);
  long read_body(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* data_flags);

  Settings settings_;
  http::RequestListener& listener_;
  metrics::Snapshot& stats_;
  nghttp2_session* session_ = nullptr;
  std::vector<Call> calls_;
  std::vector<uint32_t> free_;
  std::vector<Outcome> outcomes_;
  std::string pending_;
  uint32_t in_flight_ = 0;
  int64_t now_ns_ = 0;
  bool goaway_ = false;
  bool broken_ = false;
  bool delivering_ = false;
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

// True for application/grpc and application/grpc+proto (any +suffix or
// ;parameters), case-insensitive: what a gRPC server may answer.
bool grpc_content_type(std::string_view value);

}  // namespace millstone::grpc
