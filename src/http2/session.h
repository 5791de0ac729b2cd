#pragma once
// HTTP/2 client session (RFC 9113) through libnghttp2, on millstone's own
// event loop: nghttp2 only frames. Bytes in come from on_read (mem_recv),
// bytes out go to an Output (mem_send); nghttp2 has no socket, no thread and
// no timer here. One Session per connection, up to `max_streams` requests in
// flight on it (h2load's -m), fewer if the server's
// SETTINGS_MAX_CONCURRENT_STREAMS says so.
//
// What the server does to us is counted: every GOAWAY and RST_STREAM it
// sends by error code (metrics::Snapshot::h2_goaway / h2_rst_stream). A
// request fails with kStreamReset when the server reset its stream, with
// kGoaway when a GOAWAY left it unprocessed, with kProtocolError when the
// peer broke the protocol (or is not HTTP/2 at all), kTimeout from expire().
//
// A protocol carried on HTTP/2 streams (gRPC), or an owner that wants whole
// responses (scenarios), plugs in a StreamHook: it sees each stream's header
// fields and data and judges the stream when it ends cleanly; the session
// keeps all of the nghttp2 wiring (settings, flow control, batching, GOAWAY,
// RST_STREAM, timeouts).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_spec.h"
#include "http/session.h"
#include "http/session_connection.h"
#include "metrics/snapshot.h"

#include <nghttp2/nghttp2.h>

namespace millstone::http2 {

struct Settings {
  uint32_t max_streams = 1;            // requests in flight per connection
  uint32_t initial_window = 65'535;    // SETTINGS_INITIAL_WINDOW_SIZE, per stream
  uint32_t header_table_size = 4'096;  // SETTINGS_HEADER_TABLE_SIZE: our HPACK decoder's table
  // Keep each response's header fields and the first `capture_body_bytes`
  // of its body (ResponseInfo::content), for scenario checks; quick mode
  // only counts.
  bool capture = false;
  size_t capture_body_bytes = 0;
};

// A RequestSpec as nghttp2 takes it: the pseudo-headers and headers as one
// name/value array (lower-case names), built once, and the body.
class Request final : public http::PreparedRequest {
 public:
  explicit Request(const http::RequestSpec& spec);
  ~Request() override;
  const nghttp2_nv* headers() const;
  size_t header_count() const { return names_.size(); }
  const std::string& body() const { return body_; }

 private:
  std::vector<std::string> names_;
  std::vector<std::string> values_;
  std::vector<nghttp2_nv> nv_;  // points into names_ and values_
  std::string body_;
};

// What a stream's response looks like to a StreamHook. Streams are named by
// their slot (0 .. max_streams - 1): a slot is taken at submit() and given
// back only after its outcome was delivered, so a hook may keep per-slot
// state that is still there when the listener hears the outcome.
class StreamHook {
 public:
  virtual ~StreamHook() = default;
  // A request was submitted on `slot`: its state starts afresh.
  virtual void on_submit(uint32_t slot) = 0;
  // A response header field other than :status; `trailers`: it belongs to
  // the header block after the final response headers. False resets the
  // stream (a field the protocol cannot take).
  virtual bool on_header(uint32_t slot, bool trailers, std::string_view name,
                         std::string_view value) = 0;
  virtual void on_data(uint32_t slot, std::string_view data) = 0;
  // The stream ended cleanly (END_STREAM, no error code). `response` holds
  // the :status and the body's byte count; the hook completes it and returns
  // nothing for a response, or the cause the request fails with.
  virtual std::optional<metrics::ErrorCause> on_complete(uint32_t slot,
                                                         http::ResponseInfo& response) = 0;
};

class Session : public http::Session {
 public:
  // `stats` gets the GOAWAY and RST_STREAM counts; it outlives the session,
  // as does `hook` when given (null: plain HTTP/2, a response is a :status
  // and an END_STREAM, or with Settings::capture, a captured one).
  Session(const Settings& settings, http::RequestListener& listener, metrics::Snapshot& stats,
          StreamHook* hook = nullptr);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  http::SessionStatus on_open(http::Output& out) override;
  http::SessionStatus on_read(std::span<const char> bytes, http::Output& out) override;
  uint32_t capacity() const override;
  uint32_t in_flight() const override { return in_flight_; }
  bool submit(const http::PreparedRequest& request, http::RequestToken token, int64_t now_ns,
              http::Output& out) override;
  http::SessionStatus on_writable(http::Output& out) override;
  void expire(int64_t now_ns, int64_t timeout_ns, http::Output& out) override;
  void fail_all(metrics::ErrorCause cause) override;
  bool draining() const override;

 private:
  struct Stream {
    http::RequestToken token = 0;
    int64_t sent_ns = 0;
    int32_t id = -1;  // -1: free
    int status = 0;
    uint64_t body_bytes = 0;
    const std::string* body = nullptr;  // request body being sent
    size_t body_offset = 0;
    uint32_t header_blocks = 0;  // final header blocks received (1: response, 2: trailers)
    bool ended = false;          // the response's END_STREAM arrived
    bool reset = false;          // the server sent RST_STREAM
    bool timed_out = false;      // reported already (kTimeout); its close is silent
  };
  struct Outcome {
    http::RequestToken token;
    bool ok;
    http::ResponseInfo response;
    metrics::ErrorCause cause;
    int32_t slot;  // given back once delivered; -1: given back already
  };

  http::SessionStatus flush(http::Output& out);
  void deliver();
  Stream* stream_of(int32_t stream_id);
  void release(uint32_t slot);
  Outcome judge(Stream& stream, uint32_t error_code);

  // nghttp2 callbacks (C linkage through static trampolines in session.cc).
  friend struct Callbacks;
  int on_frame_recv(const void* frame);
  int on_header(int32_t stream_id, std::string_view name, std::string_view value);
  int on_data_chunk(int32_t stream_id, std::string_view data);
  int on_stream_close(int32_t stream_id, uint32_t error_code);
  long read_body(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* data_flags);

  Settings settings_;
  http::RequestListener& listener_;
  metrics::Snapshot& stats_;
  std::unique_ptr<StreamHook> capture_;  // Settings::capture without a hook of the owner's
  StreamHook* hook_;
  nghttp2_session* session_ = nullptr;
  std::vector<Stream> streams_;  // max_streams slots
  std::vector<uint32_t> free_;   // indexes of free slots
  std::vector<Outcome> outcomes_;
  std::string pending_;  // frames gathered by flush() for one write
  uint32_t in_flight_ = 0;
  int64_t now_ns_ = 0;
  bool goaway_ = false;  // the server sent GOAWAY
  bool broken_ = false;
  bool delivering_ = false;
};

// A Session per connection, with the run's settings; requires ALPN h2 over TLS.
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

// Stable snake_case name of an HTTP/2 error code ("refused_stream"); codes
// past the RFC's list as "0x1f".
std::string error_code_name(uint32_t code);

}  // namespace millstone::http2
