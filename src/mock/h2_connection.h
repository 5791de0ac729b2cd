#pragma once
// HTTP/2 in the mock server (docs/mock.md#http2): one H2Connection per client
// connection that speaks HTTP/2, server side, through libnghttp2. It works on
// bytes only: the owner (the worker's Connection in server.cc) reads the
// socket or TLS stream, gives what arrived to receive(), and writes what
// send() produces. Routes answer exactly as over HTTP/1.1 (same router,
// latency draws, error rules, templates and counters); each stream's answer
// waits for its own due time, so a slow stream never holds up the others.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/request_parser.h"
#include "mock/config.h"
#include "mock/router.h"
#include "mock/template.h"
#include "net/event_loop.h"

struct nghttp2_session;

namespace millstone::mock {

// The first bytes of every HTTP/2 connection (RFC 9113 3.4). A cleartext
// connection whose first bytes start with kH2PrefaceStart is HTTP/2 with
// prior knowledge (h2c); anything else is HTTP/1.1.
inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
inline constexpr std::string_view kH2PrefaceStart = "PRI * HTTP/2.0";

struct H2Options {
  bool enabled = true;  // --no-http2 turns it off: TLS offers only http/1.1, no h2c
  // SETTINGS_MAX_CONCURRENT_STREAMS; a client that opens more loses the
  // connection (GOAWAY with PROTOCOL_ERROR) or the extra stream (REFUSED_STREAM).
  uint32_t max_concurrent_streams = 100;
  // SETTINGS_MAX_HEADER_LIST_SIZE, and enforced: a request whose header block
  // (names + values + 32 per field, as RFC 9113 counts) is larger is answered
  // 400 (counted as malformed), like an oversized HTTP/1.1 request.
  uint32_t max_header_list_bytes = 64 * 1024;
  // A request body that grows past this is answered 400 at once, then its
  // stream is reset with NO_ERROR (RFC 9113 8.1): the rest is not waited for.
  uint32_t max_body_bytes = 1024 * 1024;
  // Request bytes (fields and bodies) one connection keeps for requests not
  // yet answered, over all its streams. A stream whose bytes would pass it is
  // reset with REFUSED_STREAM, so that 100 streams of 1 MiB bodies cannot hold
  // 100 MB per connection.
  uint32_t max_buffered_bytes = 4 * 1024 * 1024;
};

// What HTTP/2 did in one worker. Only that worker writes (relaxed stores);
// readers sum (or take the max of) the rows of all workers.
struct H2Counters {
  std::atomic<uint64_t> connections{0};       // every connection on the HTTP listener
  std::atomic<uint64_t> open_connections{0};  // of which not yet closed and released
  std::atomic<uint64_t> h2_connections{0};    // of which spoke HTTP/2
  std::atomic<uint64_t> h2_requests{0};       // requests answered (or reset/stalled) over HTTP/2
  std::atomic<uint64_t> max_concurrent_streams{0};  // most open streams seen on one connection
  std::atomic<uint64_t> protocol_errors{0};         // GOAWAY sent with an error code (bad client)
  std::atomic<uint64_t> goaways{0};                 // GOAWAY frames sent, for any reason
  std::atomic<uint64_t> streams_reset{0};           // RST_STREAM frames sent (injected or refused)
  // gRPC server reflection (docs/mock.md#grpc-reflection): calls to
  // ServerReflectionInfo (v1 or v1alpha, answered or not), and the questions
  // answered on them.
  std::atomic<uint64_t> reflection_calls{0};
  std::atomic<uint64_t> reflection_requests{0};
  // The HTTP listener's connections reset at once while every worker was
  // out of descriptors (FdLimit in socket_routes.h).
  std::atomic<uint64_t> refused_at_fd_limit{0};
  // 1 while this worker is at its descriptor limit (read by the other workers).
  std::atomic<uint64_t> at_fd_limit{0};
};

// One H2Counters row per worker in shared memory, like the route counters.
class SharedH2Counters {
 public:
  explicit SharedH2Counters(uint32_t workers);
  ~SharedH2Counters();
  SharedH2Counters(const SharedH2Counters&) = delete;
  SharedH2Counters& operator=(const SharedH2Counters&) = delete;

  bool ok() const { return base_ != nullptr; }
  uint32_t workers() const { return workers_; }
  H2Counters& at(uint32_t worker) { return base_[worker]; }
  uint64_t sum(std::atomic<uint64_t> H2Counters::*field) const;
  uint64_t max(std::atomic<uint64_t> H2Counters::*field) const;
  // ,"connections":N,"http2":{...} for the stats JSON.
  std::string json() const;
  // One line for the exit summary.
  std::string summary_line() const;

 private:
  uint32_t workers_;
  size_t bytes_ = 0;
  H2Counters* base_ = nullptr;
};

// What an HTTP/2 connection asks of its worker: the route counters (kept in
// server.cc's shared memory) and the stats page.
class H2Host {
 public:
  enum class Count : uint8_t { kRequest, kErrorStatus, kErrorReset, kErrorStall };
  static constexpr int kUnmatched = -1;  // the implicit 404
  static constexpr int kMalformed = -2;  // the 400s
  virtual ~H2Host() = default;
  virtual void count(int route, Count what) = 0;
  virtual std::string stats_json() = 0;
  // The control API (mock/control.h) for a path under /__millstone/: the
  // status and JSON body, or false when the path is not a control path.
  virtual bool control(std::string_view /*method*/, std::string_view /*target*/,
                       std::string_view /*authorization*/, std::string_view /*body*/,
                       int* /*status*/, std::string* /*json*/) {
    return false;
  }
  // A route's publish (docs/mock.md#amqp) for the request the worker's
  // renderer was begun with, due answer_delay_us plus its own latency from now.
  virtual void publish(const RoutePublish& /*publish*/, int64_t /*answer_delay_us*/) {}
  // True when target is a WebSocket route's path (no RFC 8441 here: answered 426).
  virtual bool websocket_path(std::string_view target) = 0;
};

// A response as HTTP/2 sends it: lower-case header names, no connection-specific
// fields, content-length added (not for 1xx/204/304).
struct H2Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // without :status
  std::string body;
  bool bodiless = false;
  // Sent in a HEADERS frame after the body (gRPC's grpc-status); empty: none.
  std::vector<std::pair<std::string, std::string>> trailers;
};
H2Response make_h2_response(int status, const Headers& headers, std::string_view body);
// A gRPC answer (docs/mock.md#grpc): 200, application/grpc, `message` (one
// length-prefixed message) then trailers with the status; a status other than
// OK is trailers-only (one HEADERS frame, no message), as gRPC servers send it.
H2Response make_grpc_response(const GrpcAnswer& answer, std::string_view message);

// Every prebuilt HTTP/2 answer of one worker, built once like server.cc's Responses.
struct H2Responses {
  struct PerRoute {
    H2Response normal;
    std::vector<H2Response> errors;  // per error rule (status kind, not templated)
  };
  std::vector<PerRoute> routes;
  H2Response not_found;
  H2Response bad_request;
  H2Response upgrade_required;
  H2Response
      grpc_unsupported_media;   // a call to a gRPC route without content-type application/grpc
  H2Response grpc_bad_message;  // a call whose body is not length-prefixed messages: INTERNAL
  explicit H2Responses(const MockConfig& config);
};

// Keeps a worker's route table (the routes in force and their prebuilt
// answers) alive while a delayed answer or an open stream points into it:
// the control API may swap in a new table meanwhile (mock/control.h). Not
// atomic: a worker is one thread.
class TablePin {
 public:
  TablePin() = default;
  explicit TablePin(size_t* pins) : pins_(pins) {
    if (pins_) ++*pins_;
  }
  TablePin(TablePin&& other) noexcept : pins_(std::exchange(other.pins_, nullptr)) {}
  TablePin& operator=(TablePin&& other) noexcept {
    if (this != &other) {
      release();
      pins_ = std::exchange(other.pins_, nullptr);
    }
    return *this;
  }
  TablePin(const TablePin&) = delete;
  TablePin& operator=(const TablePin&) = delete;
  ~TablePin() { release(); }
  void release() {
    if (pins_) --*pins_;
    pins_ = nullptr;
  }

 private:
  size_t* pins_ = nullptr;
};

// What every HTTP/2 connection of a worker shares; outlives them all.
// `config`, `responses` and `table_pins` are the worker's current route
// table: the worker repoints them when the control API swaps it.
struct H2Context {
  const MockConfig* config;
  const Router& router;
  TemplateRenderer& renderer;
  Prng& prng;
  net::EventLoop& loop;
  H2Host& host;
  H2Counters& counters;
  const H2Options& options;
  const H2Responses* responses;
  http::RequestParser scratch_parser{};  // a request re-read as HTTP/1.1 for templates
  std::string scratch_request{};
  size_t* table_pins = nullptr;  // null: the table never changes (tests)
};

// Told when delayed answers became ready to send, outside any receive().
class H2Owner {
 public:
  virtual ~H2Owner() = default;
  virtual void h2_wants_write() = 0;
};

class H2Connection {
 public:
  H2Connection(H2Context& context, H2Owner& owner);
  ~H2Connection();
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Bytes from the client. A client that breaks the protocol gets a GOAWAY
  // (queued for send()) and the connection finishes once it is written.
  void receive(std::string_view bytes);
  // Appends frames to *out until it holds `limit` bytes or nothing is left
  // to send (flow control and stream state permitting).
  void send(std::string* out, size_t limit);
  // Nothing more to read or write: close the connection once out is written.
  bool finished() const;
  // Shutdown: GOAWAY (NO_ERROR) with the last stream id. Streams already
  // open are still answered (delays included); finished() turns true once
  // they all are and the GOAWAY is sent. The worker waits for that, up to
  // its drain deadline (docs/mock.md#http2, Shutdown).
  void goaway();

  // For nghttp2's callbacks (h2_connection.cc).
  struct Stream;
  struct Callbacks;

 private:
  void dispatch(Stream& stream);
  // gRPC server reflection: a call answered question by question as its
  // request messages arrive, not once the client half-closes.
  void start_reflection(Stream& stream);
  void reflection_input(Stream& stream);
  // `client_ended`: the client half-closed; else the stream is reset (NO_ERROR)
  // once the trailers are out.
  void end_reflection(Stream& stream, uint32_t status, std::string_view message,
                      bool client_ended = false);
  void answer(Stream& stream, const H2Response& response);
  // The request written out as HTTP/1.1 and parsed (templates read it that
  // way); null when the parser refuses it at its own limits.
  const http::RequestParser* as_http1(Stream& s);
  void answer_templated(Stream& stream, const ResponseTemplate& response, int route,
                        const PathParams& params);
  void submit(Stream& stream);
  void schedule(Stream& stream, int64_t delay_us);
  void on_timer();
  void fail(int error_code);
  // Counts bytes a stream keeps against max_buffered_bytes; false (and the
  // stream reset with REFUSED_STREAM) when they do not fit.
  bool keep(Stream& stream, size_t bytes);
  void release(Stream& stream);

  H2Context& context_;
  H2Owner& owner_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  // Delayed answers by due time; entries for streams closed meanwhile are skipped.
  using Due = std::pair<int64_t, int32_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  net::Timer timer_;
  bool failed_ = false;  // a fatal nghttp2 error: nothing more is read or sent
  size_t buffered_ = 0;  // request bytes kept over all streams (max_buffered_bytes)
};

}  // namespace millstone::mock
