// Configuration of `millstone mock`: the YAML format (docs/mock.md) and its
// validation. Loaded once at start-up; immutable afterwards and shared by all
// workers. Routing is in mock/router.h, response bytes in mock/response.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "config/error.h"
#include "mock/path_pattern.h"
#include "mock/template.h"
#include "net/socket.h"
#include "random/randomness.h"

namespace millstone::grpc {
class ReflectionIndex;
}  // namespace millstone::grpc

namespace millstone::mock {

using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;

// Start-up only. what() is one line: "FILE:LINE:COL: what was wrong; what was
// expected", or "FILE: ..." when there is no position (config::Error keeps
// the one-line promise).
class ConfigError : public config::Error {
 public:
  using config::Error::Error;
};

inline constexpr int64_t kStallForever = -1;

// A gRPC route's answer (docs/mock.md#grpc): the status its trailers carry.
struct GrpcAnswer {
  uint32_t status = 0;  // grpc-status; 0 = OK
  std::string message;  // grpc-message, as written (percent-encoded when sent)
  // An OK answer's response messages: `replies` copies of the response
  // (server streaming), or with per_message one per request message the
  // call sent (bidirectional). Unary and client streaming: one.
  uint32_t replies = 1;
  bool per_message = false;
};

struct ErrorRule {
  enum Kind { kStatus, kReset, kStall };

  double rate = 0;  // in [0, 1]; the rates of one route add up to at most 1
  Kind kind = kStatus;
  int status = 0;  // kStatus
  std::string body;
  Headers headers;
  int64_t stall_us = 0;  // kStall: silence before the normal answer, or kStallForever
  // kStatus with {{ }} in its body or a header value: rendered per request
  // (body and headers above then keep the template source).
  std::optional<ResponseTemplate> templated;
  // gRPC routes: a status rule answers with this grpc-status (trailers-only)
  // instead of an HTTP status.
  std::optional<GrpcAnswer> grpc;
};

// What a route publishes to the mock's broker after it answers
// (docs/mock.md#amqp): rendered from the request when it arrives, published
// after the answer's delay plus a draw from `latency`. A `fail` share goes to
// `retry_queue` instead (a queue with a message TTL that dead-letters to
// `retry_returns_to`, which the mock consumes), and is published from there.
struct RoutePublish {
  std::string exchange;  // "" is the default exchange
  Template routing_key;
  Template body;
  std::vector<std::pair<std::string, Template>> headers;  // string application headers
  std::optional<Template> correlation_id;
  std::optional<Template> message_id;
  std::string content_type;
  bool persistent = false;
  LatencyModel latency;
  double fail = 0;  // in [0, 1]
  std::string retry_queue;
  std::string retry_returns_to;
};

struct Route {
  std::string name;    // from the config, or "METHOD PATH"
  std::string method;  // "*" matches any method
  std::string path;    // without the trailing "*" when prefix is true
  bool prefix = false;
  // Non-empty when the path has parameters ("/orders/:id"); never with prefix.
  std::vector<PathSegment> pattern;
  int status = 200;
  Headers headers;
  std::string body;
  LatencyModel latency;
  std::vector<ErrorRule> errors;
  // Set when the body or a header value has {{ }} expressions: the response
  // is rendered per request (body and headers above then keep the template
  // source). Without it the response is prebuilt bytes, as fast as ever.
  std::optional<ResponseTemplate> templated;
  // A gRPC route (the `grpc:` list): POST /package.Service/Method answered
  // over HTTP/2 with `body` (one length-prefixed message, encoded at start-up
  // from the config's JSON) and trailers carrying this status. Over HTTP/1.1
  // it answers 426.
  std::optional<GrpcAnswer> grpc;
  std::optional<RoutePublish> publish;
};

// A message a socket route sends on a timer: rendered once per tick and
// written to every connection it applies to (docs/mock.md#websockets).
struct SocketPush {
  int64_t every_us = 0;
  Template message;
};

// on_message: when a received message matches, reply once and optionally
// subscribe the connection to a push of its own.
struct SocketReply {
  enum Match : uint8_t { kContains, kEquals, kRegex };
  Match match = kContains;
  std::string pattern;
  std::shared_ptr<const re2::RE2> regex;  // kRegex
  std::optional<Template> reply;
  std::optional<SocketPush> then_push;
};

// A WebSocket route's pushes of broker messages (docs/mock.md#amqp): each
// worker consumes a queue of its own bound to `exchange` with `routing_key`,
// and writes every message's body to the connections whose key (from the
// upgrade request) equals the message's; without a key, to every connection.
struct SocketAmqpPush {
  enum class KeyFrom : uint8_t { kNone, kQuery, kHeader };
  enum class Match : uint8_t { kNone, kJson, kHeader, kCorrelationId, kMessageId };
  std::string exchange;
  std::string routing_key;  // the binding key (topic patterns allowed)
  KeyFrom key_from = KeyFrom::kNone;
  std::string key_name;  // the query parameter or request header
  Match match = Match::kNone;
  std::string match_name;  // kJson: a JSON pointer ("/user"); kHeader: the header's name
};

// A WebSocket route (matched by exact path on an HTTP upgrade) or a raw TCP
// listener. Same behaviour keys for both.
struct SocketRoute {
  enum Framing : uint8_t { kLine, kLength32, kRaw };

  std::string name;  // from the config, or "ws PATH" / "tcp ADDRESS"
  // WebSocket only.
  std::string path;
  std::vector<std::string> subprotocols;
  int64_t ping_every_us = 0;  // 0: no server pings
  // TCP only.
  net::Endpoint listen{};
  std::string listen_text;
  Framing framing = kLine;
  // tls: true (the --tls certificate, else a self-signed one) or {cert, key}.
  bool tls = false;
  std::string tls_cert_file;  // resolved against the config's folder; empty: not given
  std::string tls_key_file;

  bool echo = false;
  std::optional<SocketPush> push;
  std::vector<SocketReply> on_message;
  int64_t close_after_us = 0;  // 0: never
  uint16_t close_code = 1000;  // WebSocket close code used by close_after
  size_t max_message_bytes = 1 << 20;
  std::optional<SocketAmqpPush> amqp_push;  // websockets only
};

// The broker of `amqp:` (docs/mock.md#amqp) and what the mock declares on it
// once connected, in this order: exchanges, queues, their bindings.
struct MockAmqp {
  struct Exchange {
    std::string name;
    std::string type = "direct";
    bool durable = false;
  };
  struct Binding {
    std::string exchange;
    std::string routing_key;
  };
  struct Queue {
    std::string name;
    bool durable = false;
    bool auto_delete = false;
    int64_t message_ttl_ms = -1;  // -1: none
    std::optional<std::string> dead_letter_exchange;
    std::optional<std::string> dead_letter_routing_key;
    std::vector<Binding> bind;
  };
  std::string url_display;  // without the password
  std::string host;
  uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  uint16_t heartbeat_s = 30;
  std::vector<Exchange> exchanges;
  std::vector<Queue> queues;
};

struct MockConfig {
  uint64_t seed = 0;
  bool seed_given = false;
  std::vector<Route> routes;  // in match order
  std::vector<SocketRoute> websockets;
  std::vector<SocketRoute> tcp;
  // {{ counter.NAME }} names, in order of first use; Template segments index
  // into this. Each route's own {{ counter }} needs no name.
  std::vector<std::string> counter_names;
  // gRPC server reflection (v1 and v1alpha) of the grpc list's .proto files
  // (docs/mock.md#grpc-reflection); null with grpc_reflection: false or no grpc list.
  std::shared_ptr<const grpc::ReflectionIndex> grpc_reflection;
  std::optional<MockAmqp> amqp;
};

// Larger inputs are rejected before parsing: a mock config is small, and
// yaml-cpp's cost and recursion grow with the input (big bodies belong in
// body_file).
inline constexpr size_t kMaxConfigBytes = size_t{1} << 20;

MockConfig load_mock_config_file(const std::string& path);

// Runtime patches (docs/mock.md#control-api): a JSON (or YAML) map of the
// behaviour keys a route has in the file, read by the same code with the
// same error texts. A null value leaves the field as *route has it (the
// control API starts from the file's route, so null means "back to the file").
inline constexpr std::string_view kRoutePatchKeys[] = {"status", "latency", "errors"};
inline constexpr std::string_view kSocketPatchKeys[] = {"push"};  // push: {every: DURATION}
inline constexpr size_t kMaxPatchBytes = 64 * 1024;

struct PatchError {
  std::string field;    // the key at fault ("push.every"), "" when the body is not a map
  std::string message;  // one line: "SOURCE:LINE:COL: what was wrong; what was expected"
};

// Apply a patch onto *route (an HTTP route of `config`, whose counter names
// it may use) or *socket_route. On failure returns false with *error set;
// *route may then be partly changed. Never throws.
bool patch_route(std::string_view text, const std::string& source, const MockConfig& config,
                 Route* route, PatchError* error);
bool patch_socket_route(std::string_view text, const std::string& source, SocketRoute* route,
                        PatchError* error);
// source_name prefixes error messages; body_file paths resolve against its folder.
MockConfig parse_mock_config(std::string_view yaml_text, const std::string& source_name);

}  // namespace millstone::mock
