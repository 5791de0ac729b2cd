#pragma once
// A compiled scenario file: immutable once loaded, shared by every virtual
// user of a worker. Nothing here is YAML: templates, JSON paths and regexes
// are compiled; names are resolved to indexes.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "amqp/codec.h"
#include "http/url.h"
#include "random/randomness.h"
#include "scenario/check.h"
#include "scenario/data_file.h"
#include "scenario/drills.h"
#include "scenario/extract.h"
#include "scenario/template.h"
#include "scenario/values.h"
#include "tls/options.h"

namespace re2 {
class RE2;
}
namespace google::protobuf {
class Descriptor;
}
namespace millstone::grpc {
class ProtoCatalog;
}

namespace millstone::scenario {

struct Extraction {
  uint32_t slot = 0;  // variable set
  Extractor extractor;
  std::optional<std::string> default_value;  // used when absent; without it, absence fails the step
};

struct NamedRegex {
  std::string pattern;
  std::shared_ptr<re2::RE2> regex;
};

struct NamedCheck {
  uint32_t check_index = 0;  // into Plan::check_names (results are per check)
  Check check;
};

// A grpc: step (docs/scenarios.md#grpc-steps): a call over the VU's HTTP/2
// connection, sent as a POST of length-prefixed messages. The descriptors
// belong to Plan::grpc's catalog.
struct GrpcCall {
  std::string method;  // "package.Service/Method", for messages
  const google::protobuf::Descriptor* request_type = nullptr;
  const google::protobuf::Descriptor* response_type = nullptr;
  bool client_streaming = false;
  bool server_streaming = false;
  // The request messages as JSON templates, sent in order, then the
  // client half-closes; one for unary and server-streaming methods.
  std::vector<Template> messages;
  // All messages framed once at load time when none has a template.
  std::optional<std::string> literal_body;
  std::vector<std::pair<std::string, Template>> metadata;  // rendered per call
  int64_t deadline_us = 0;                                 // grpc-timeout; 0 = none
  // A response is read as one message (unary, client streaming) or a list.
  bool single_response() const { return !server_streaming; }
};

// A request step with until: (docs/scenarios.md#polling-until-a-value-appears):
// the request is repeated every `interval_us` until the checks hold or
// `timeout_us` has passed since the first one was due.
struct Poll {
  std::vector<Check> until;  // every one must hold
  int64_t interval_us = 100'000;
  int64_t timeout_us = 0;  // 0 = the scenario's timeout
  uint32_t metric = 0;     // "<step> poll": the requests that did not satisfy it
};

struct HttpRequest {
  std::string method = "GET";
  Template target;  // path and query, e.g. "/items/{{ id }}?page=2"
  std::vector<std::pair<std::string, Template>> headers;  // rendered per request
  Template body;                                          // empty literal = no body
  std::string content_type;  // set from json:/form: bodies unless given in headers
  std::vector<Extraction> extractions;
  std::vector<NamedCheck> checks;
  int64_t timeout_us = 0;  // 0 = the scenario default
  // 2: over the VU's HTTP/2 connection (h2 by ALPN over TLS, prior
  // knowledge over cleartext); 1: HTTP/1.1. From the step's http: or defaults.
  uint8_t http_version = 1;
  // grpc: steps (always http_version 2); null for HTTP requests.
  std::shared_ptr<const GrpcCall> grpc;
  std::shared_ptr<const Poll> poll;  // until:; null for a plain request
};

// What a ws.expect / tcp.expect waits for. Every condition given must hold.
struct MessageMatch {
  std::optional<Template> equals;    // the whole message (rendered when the step starts)
  std::optional<Template> contains;  // a substring
  std::vector<NamedRegex> regexes;   // searched anywhere in the message
  std::vector<Check> json;           // JSON checks, as in check: json:
  bool any() const { return !equals && !contains && regexes.empty() && json.empty(); }
};

// WebSocket and raw TCP steps (docs/scenarios.md#websocket-steps). A VU holds
// at most one socket connection at a time, next to its HTTP connection.
struct SocketStep {
  enum class Kind : uint8_t {
    kWsConnect,
    kWsSend,
    kWsExpect,
    kWsHold,
    kWsClose,
    kTcpConnect,
    kTcpSend,
    kTcpExpect,
    kTcpHold,
    kTcpClose,
  };
  // How tcp.expect / tcp.hold cut the byte stream into messages.
  enum class Framing : uint8_t { kNone, kDelimiter, kLengthPrefix };
  enum class Unmatched : uint8_t { kSkip, kCount, kFail };

  Kind kind = Kind::kWsConnect;
  bool websocket() const { return kind <= Kind::kWsClose; }

  // connect: where. `host` empty = the plan's target (the worker's resolved address).
  std::string host;
  uint16_t port = 0;
  std::string host_header;                                // ws: the Host header
  Template path;                                          // ws: path and query
  std::vector<std::pair<std::string, Template>> headers;  // ws: extra handshake headers
  std::string subprotocol;                                // ws: Sec-WebSocket-Protocol offered
  // TLS on this connection: wss://, or tcp.connect with tls: true. Options
  // from the plan's defaults: tls:.
  bool tls = false;
  // ws.connect given as a path: the target's host, port and scheme (TLS when
  // the target, as finally set by --target, is https://).
  bool follows_target = false;
  bool uses_tls(bool target_tls) const { return tls || (follows_target && target_tls); }
  int64_t timeout_us = 0;  // connect/expect: 0 = the scenario default

  // send: a template, or literal bytes (binary_hex/hex).
  Template payload;
  bool binary = false;  // ws: a binary frame (else text)

  // expect
  MessageMatch match;
  Unmatched unmatched = Unmatched::kSkip;
  std::vector<Extraction> extractions;  // json, regex, body
  // expect/hold: a JSON path to the message's send time (Unix epoch; values
  // below 1e14 are milliseconds, above are microseconds).
  std::optional<JsonPath> latency_from;

  // tcp expect/hold framing
  Framing framing = Framing::kNone;
  std::string delimiter;
  uint8_t length_prefix = 0;  // bytes, big-endian: 1, 2 or 4

  // hold
  int64_t duration_us = 0;

  // ws.close
  uint16_t close_code = 1000;
  std::string close_reason;
};

// amqp.publish and amqp.expect (docs/amqp.md#scenario-steps), over the
// worker's one AMQP connection (Plan::amqp).
struct AmqpStep {
  enum class Kind : uint8_t { kPublish, kExpect };
  Kind kind = Kind::kPublish;
  // publish
  std::string exchange;  // "" = the default exchange (routing key = queue name)
  Template routing_key;
  std::optional<Template> correlation_id;
  std::optional<Template> message_id;
  std::optional<Template> reply_to;
  std::string content_type;
  bool confirm = false;       // wait for the broker's publisher confirm (ack or nack)
  uint8_t delivery_mode = 0;  // 0 = not set, 1 transient, 2 persistent
  std::vector<std::pair<std::string, Template>> headers;  // string-valued application headers
  Template body;
  // expect
  uint32_t queue = 0;  // index into Plan::amqp.consumed
  Template key;        // the correlation value waited for (rendered when the step starts)
  std::optional<Template> contains;  // the matched message's body must contain this
  int64_t timeout_us = 0;            // 0 = the scenario default
  // With manual acknowledgements on the queue (Consumed::manual_ack): what
  // is done with the matched message.
  enum class Settle : uint8_t { kAck, kNack, kReject };
  Settle on_match = Settle::kAck;
  bool requeue = false;  // nack and reject: back to the queue, else dead-lettered or dropped
};

// amqp: (docs/amqp.md#scenario-steps): where the worker's connection goes,
// what it declares once connected, and the queues its expect steps consume.
struct AmqpSettings {
  bool enabled = false;
  std::string url_display;  // without the password
  std::string location;     // "FILE:LINE:COL" of amqp:, for messages
  bool tls = false;
  std::string host;
  uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  uint16_t heartbeat_s = 60;
  struct Exchange {
    std::string name;
    std::string type = "direct";
    bool durable = false;
  };
  struct Queue {
    std::string name;
    bool durable = false;
    bool auto_delete = false;
    std::string bind_exchange;  // "" = no binding
    std::string bind_key;
    // x-message-ttl, x-dead-letter-exchange, x-queue-type... as declared.
    amqp::FieldTable arguments;
  };
  std::vector<Exchange> exchanges;
  std::vector<Queue> queues;
  // How an expect finds the correlation value in a delivery. All expects on
  // one queue share it: the worker looks each delivery up once.
  struct Consumed {
    enum class By : uint8_t { kCorrelationId, kMessageId, kHeader, kJson };
    std::string queue;
    By by = By::kCorrelationId;
    std::string field;             // kHeader: the header's name
    std::optional<JsonPath> path;  // kJson
    std::string location;          // the first expect that named it
    // ack: manual (or on_match:): the consumer acknowledges each message,
    // with basic.qos prefetch (0 = unlimited); else no-ack.
    bool manual_ack = false;
    uint16_t prefetch = 0;
    bool ack_given = false;  // an expect on the queue said ack:/on_match:/prefetch:
  };
  std::vector<Consumed> consumed;
  // Queue names and binding keys may hold {{ worker }} (the worker's index):
  // a queue per worker, so a service answering to reply_to reaches the
  // worker whose VU waits. Replaced when a worker connects.
  static std::string for_worker(std::string_view name, uint32_t worker);
  bool queues_per_worker() const;
  // A message that arrives before its VU waits is held this long at most
  // (the longest expect timeout), then counted as unmatched.
  int64_t hold_us = 0;
  // Some amqp.publish has confirm: true: the channel is put in confirm mode.
  bool confirms = false;
};

// grpc: (docs/scenarios.md#grpc-steps): where the services of grpc steps
// come from. The coordinator parses the .proto files (or asks the target's
// server reflection); its workers rebuild
// the same descriptors from the FileDescriptorSet it sends as a data file
// named `descriptor_key`, and read no .proto.
struct GrpcSettings {
  std::vector<std::string> protos;        // resolved paths, for messages
  std::vector<std::string> import_paths;  // resolved
  std::string location;                   // "FILE:LINE:COL" of grpc:
  std::shared_ptr<const grpc::ProtoCatalog> catalog;
  std::string descriptor_key;  // the data file's name: "grpc-descriptors:" + the scenario path
  std::string descriptor_set;  // serialized FileDescriptorSet (the coordinator's copy)
  // reflection: true: from the target's server reflection instead of
  // protos. Loaded without a reflector (validate, k8s render) catalog stays
  // null and the steps are checked for form only.
  bool reflection = false;
  bool enabled() const { return catalog != nullptr || reflection; }
};

// A flow compiles to a flat program; loops become jumps, groups become name prefixes.
struct Instruction {
  enum class Op : uint8_t {
    kRequest,    // send requests[arg], wait for the response, record under step `metric`
    kThink,      // pause for think_times[arg]
    kLoopBegin,  // start a loop of `count` iterations; body follows; `jump` = index after kLoopEnd
    kLoopEnd,    // count down; jump back to `jump` (first body instruction) if more remain
    kSocket,     // run socket_steps[arg]; record under step `metric`
    kAmqp,       // run amqp_steps[arg]; record under step `metric`
  };
  Op op = Op::kRequest;
  uint32_t arg = 0;
  uint32_t metric = 0;  // kRequest: index into Plan::step_names
  uint32_t count = 0;   // kLoopBegin
  uint32_t jump = 0;
  // Where an expect's (or a poll's) latency counts from (from:,
  // docs/scenarios.md#end-to-end-latency). kDefault: the step's own rule
  // (ws/tcp: the last send or open; amqp: the last request or publish;
  // poll: its first request); kRequest: when the flow's last HTTP request or
  // amqp.publish was due; kStep: when step origin_slot's was due.
  enum class From : uint8_t { kDefault, kRequest, kStep };
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  From from = From::kDefault;
  uint32_t from_slot = 0;
  // A step some from: names: its due time in this iteration goes to the
  // VU's origins[mark_slot].
  uint32_t mark_slot = kNoSlot;
};

struct Flow {
  std::string name;
  double weight = 1;
  std::vector<Instruction> program;
  std::vector<HttpRequest> requests;
  std::vector<SocketStep> socket_steps;
  std::vector<AmqpStep> amqp_steps;
  std::vector<random::LatencyModel> think_times;
  bool abort_on_check_failure = false;  // end the iteration at the first failed check
  std::vector<uint32_t> data_sources;   // indexes into Plan::data, a row is taken per iteration
  uint32_t max_loop_depth = 0;
  uint32_t origin_slots = 0;  // steps named by a from: (Instruction::mark_slot)
};

struct DataSource {
  enum class Mode { kSequential, kRandom, kUnique, kPerVu };
  std::string name;
  std::string path;  // for messages
  Mode mode = Mode::kSequential;
  std::vector<uint32_t> column_slots;  // variable slot per column ("users.email")
  DataTable table;                     // compact: bytes shared by the workers, offsets per row
};

struct Stage {
  int64_t duration_us = 0;
  double target = 0;  // VUs, or iterations per second for arrival-rate executors
};

struct Executor {
  enum class Kind {
    kConstantVus,
    kRampingVus,
    kConstantArrivalRate,
    kRampingArrivalRate,
    kIterations
  };
  Kind kind = Kind::kConstantVus;
  uint32_t vus = 1;                // constant-vus, iterations; start VUs for ramping-vus
  int64_t duration_us = 0;         // constant-*; max duration for iterations
  std::vector<Stage> stages;       // ramping-*
  double rate = 0;                 // constant-arrival-rate: iterations per second
  double start_rate = 0;           // ramping-arrival-rate
  uint32_t pre_allocated_vus = 0;  // arrival-rate: VUs created at start
  uint32_t max_vus = 0;            // arrival-rate: upper bound; beyond it iterations are dropped
  uint64_t iterations = 0;         // iterations executor: total across all workers
  int64_t graceful_stop_us = 0;    // running iterations may finish within this after the end
};

struct ScenarioRun {
  std::string name;
  Executor executor;
  std::vector<uint32_t> flows;  // indexes into Plan::flows (weights come from the flows)
  int64_t start_us = 0;  // offset from the run's start (sequential scenarios are laid out here)
  // Total length including graceful stop; computed by the loader.
  int64_t end_us() const;
};

struct Threshold {
  std::string text;      // as written, for the report
  std::string location;  // "shop.yaml:42:7"
  enum class Metric {
    kLatency,        // percentile or statistic of request latency
    kErrorRate,      // metrics::Failures::rate(): failed / attempts (docs/scenarios.md)
    kCheckPassRate,  // passed checks / evaluated checks
    kRequests,       // count
    kRps,            // requests per second
    kIterations,     // completed iterations
    kDroppedIterations,
    kTarget,  // a monitored endpoint's series (docs/monitoring.md#thresholds-and-slos)
  };
  Metric metric = Metric::kLatency;
  std::string step;   // empty = all steps; else a name from Plan::step_names
  std::string flow;   // for kIterations; empty = all flows
  std::string check;  // for kCheckPassRate; empty = all checks
  enum class Statistic { kPercentile, kMin, kMax, kMean } statistic = Statistic::kPercentile;
  double percentile = 0;  // 0..100, kLatency with kPercentile
  enum class Op { kLt, kLe, kGt, kGe, kEq } op = Op::kLt;
  double value = 0;  // latency in microseconds; rates as fractions 0..1; counts as numbers
  // kTarget: which series, aggregated how over its per-second points (the
  // value is in the series' own unit: percent, bytes, bytes/s, as exposed).
  struct TargetSeries {
    enum class Kind { kCpu, kMemory, kNetworkRx, kNetworkTx, kSelected } kind = Kind::kCpu;
    std::string monitor;  // a monitor: name; empty = every endpoint
    std::string series;   // kSelected: "metric" (every label set) or "metric{a=\"b\"}" (exactly)
    enum class Aggregate { kMax, kMin, kAvg, kPercentile } aggregate = Aggregate::kMax;
    double percentile = 0;  // kPercentile: 0..100
  };
  TargetSeries target;
};

// One `slo:` line (docs/scenarios.md#slos-and-phases): a threshold judged per
// phase of a drill, over sliding windows and for recovery after each fault,
// rather than over the whole run. Windows are whole seconds: the judgment
// merges the run's per-second histograms.
struct Objective {
  Threshold threshold;
  int64_t window_s = 10;          // sliding window
  int64_t recovery_window_s = 5;  // held this long (every second) after a fault = recovered
  // An abort guard: judged live on each second; once it has failed for
  // guard_for_s seconds in a row, the run stops (exit 97).
  bool guard = false;
  int64_t guard_for_s = 0;
};

// How close to the 'before' phase a second must be to count as recovered
// after a fault (slo: tolerance:, docs/scenarios.md#phases-and-recovery).
struct RecoveryTolerance {
  double p99_ratio = 0.2;           // p99 at most 20% above the baseline's ...
  int64_t p99_slack_us = -1;        // ... or, when >= 0 (given as a duration), this much above it
  double error_rate_points = 0.01;  // error rate at most 1 percentage point above the baseline's
  int64_t window_s = 5;  // held on every second this long = recovered (slo: recovery_window)
};

// monitor: (docs/monitoring.md): a Prometheus text endpoint the coordinator
// scrapes every interval during the run; the workers ignore it.
struct MonitorEndpoint {
  std::string name;                  // unique in the file; default HOST:PORT
  std::string url;                   // http:// or https://
  std::vector<std::string> metrics;  // RE2 patterns matching whole metric names
  int64_t interval_us = 1'000'000;
  std::string location;  // "FILE:LINE:COL", for messages
};

struct Plan {
  std::string source_path;
  std::string name;
  http::Url target;  // base of every request
  std::vector<std::pair<std::string, std::string>> default_headers;
  // defaults: tls: (docs/scenarios.md#tls), for an https:// target, wss://
  // and tcp.connect with tls: true. The files' contents are read at load
  // time into the *_pem fields (the *_file names stay for messages).
  tls::TlsClientOptions tls;
  // defaults: tls: server_name: the name sent (SNI) and verified instead of
  // each connection's host; empty = the host.
  std::string tls_server_name;
  int64_t timeout_us = 10'000'000;
  uint8_t http_version = 1;             // defaults: http: (a step's http: overrides it)
  size_t max_body_capture = 64 * 1024;  // bytes of each response kept for checks/extraction
  uint64_t seed = 0;
  bool seed_given = false;
  VariableTable variables;
  std::vector<std::pair<uint32_t, std::string>> constants;  // vars: name -> value, set at VU start
  std::vector<Flow> flows;
  std::vector<DataSource> data;
  std::vector<ScenarioRun> scenarios;
  std::vector<Threshold> thresholds;
  std::vector<Objective> objectives;      // slo:
  RecoveryTolerance recovery_tolerance;   // slo: tolerance: and recovery_window:
  std::vector<Drill> drills;              // run by the coordinator (src/drill/), not the workers
  std::vector<RunProxy> proxies;          // proxies: the coordinator runs them for the run
  AmqpSettings amqp;                      // amqp:, for amqp.* steps
  GrpcSettings grpc;                      // grpc:, for grpc steps
  std::vector<MonitorEndpoint> monitors;  // monitor:, scraped by the coordinator (src/monitor/)
  std::vector<std::string> step_names;    // metric index -> "flow/group/step"
  std::vector<std::string> check_names;   // check index -> "flow/step: status in [200]"
  int64_t total_duration_us() const;      // end of the last scenario
  bool has_socket_steps() const;
  // Requests over HTTP/1.1, over HTTP/2: a VU holds a connection for each kind it sends.
  bool uses_http_version(uint8_t version) const;
  // An https:// target, a socket step with tls, or amqps://: a worker builds a TLS context.
  bool uses_tls() const;
  // Connections one VU can hold at once (for sizing workers to the fd limit).
  uint32_t connections_per_vu() const;
};

}  // namespace millstone::scenario
