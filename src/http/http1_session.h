#pragma once
// HTTP/1.1 as a Session (http/session.h): one request in flight, its bytes
// built once (RunPlan::request_bytes) and written with one send, the response
// parsed incrementally from the worker's shared read buffer. Quick mode runs
// it under http::SessionConnection like HTTP/2; scenarios and WebSocket/TCP
// still use http::ClientConnection's own HTTP/1.1 path.
#include <cstdint>
#include <memory>
#include <string>

#include "http/response_parser.h"
#include "http/session.h"
#include "http/session_connection.h"

namespace millstone::http {

class Http1Request final : public PreparedRequest {
 public:
  Http1Request(std::string bytes, bool head) : bytes_(std::move(bytes)), head_(head) {}
  const std::string& bytes() const { return bytes_; }
  bool head() const { return head_; }

 private:
  std::string bytes_;
  bool head_;
};

class Http1Session final : public Session {
 public:
  // `keepalive` false (--no-keepalive): the session ends after one response.
  Http1Session(RequestListener& listener, bool keepalive)
      : listener_(listener), keepalive_(keepalive) {}

  SessionStatus on_open(Output&) override { return {}; }
  SessionStatus on_read(std::span<const char> bytes, Output& out) override;
  SessionStatus on_end() override;
  uint32_t capacity() const override { return busy_ || draining() ? 0 : 1; }
  uint32_t in_flight() const override { return busy_ ? 1 : 0; }
  bool submit(const PreparedRequest& request, RequestToken token, int64_t now_ns,
              Output& out) override;
  SessionStatus on_writable(Output&) override { return {}; }
  void expire(int64_t now_ns, int64_t timeout_ns, Output& out) override;
  void fail_all(metrics::ErrorCause cause) override;
  bool draining() const override { return done_; }

 private:
  void complete(int64_t done_ns);

  RequestListener& listener_;
  ResponseParser parser_;
  RequestToken token_ = 0;
  int64_t sent_ns_ = 0;
  bool keepalive_;
  bool busy_ = false;
  bool done_ = false;  // no further request on this connection
};

class Http1SessionFactory final : public SessionFactory {
 public:
  explicit Http1SessionFactory(bool keepalive) : keepalive_(keepalive) {}
  std::unique_ptr<Session> make(RequestListener& listener) override {
    return std::make_unique<Http1Session>(listener, keepalive_);
  }

 private:
  bool keepalive_;
};

// The metrics cause of a response parser error.
metrics::ErrorCause parse_error_cause(ParseError error);

}  // namespace millstone::http
