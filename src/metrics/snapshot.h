#pragma once
// What a worker reports about one interval (normally one second) of its run.
// Snapshots add up exactly: the coordinator merges them across workers and
// across seconds to print progress and the final summary.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "metrics/histogram.h"

namespace millstone::metrics {

// Scenario runs: one per request step ("shopper/login"), indexed like Plan::step_names.
struct StepStats {
  uint64_t requests = 0;        // complete responses
  uint64_t errors = 0;          // transport errors (no complete response)
  uint64_t failed = 0;          // transport errors plus responses with status >= 400
  uint64_t extract_failed = 0;  // a value to extract was absent (the iteration aborts)
  Histogram latency;
  void merge(const StepStats& other);
  void clear();
  friend bool operator==(const StepStats&, const StepStats&) = default;
};

// One per check, indexed like Plan::check_names.
struct CheckStats {
  static constexpr size_t kMaxSamples = 3;  // "why" texts kept per interval and worker
  uint64_t passed = 0;
  uint64_t failed = 0;
  std::vector<std::string> samples;
  void merge(const CheckStats& other);
  friend bool operator==(const CheckStats&, const CheckStats&) = default;
};

// One per flow, indexed like Plan::flows.
struct FlowStats {
  uint64_t iterations = 0;  // completed
  uint64_t aborted =
      0;  // ended early: transport error, failed extraction, or a failed check with abort
  friend bool operator==(const FlowStats&, const FlowStats&) = default;
};

// Why a request or connection failed. Stable names: they appear in JSON output.
enum class ErrorCause : uint8_t {
  kConnectRefused,
  kConnectTimeout,
  kConnectOther,     // unreachable network, no route...
  kReset,            // connection reset by peer
  kClosed,           // peer closed before a complete response
  kTimeout,          // no complete response within --timeout
  kMalformedStatus,  // bad status line
  kMalformedHeader,  // bad header line or bad Content-Length
  kHeaderTooLarge,
  kBadChunk,        // bad chunk size or chunk framing
  kShortBody,       // connection closed before Content-Length bytes arrived
  kUnexpectedData,  // bytes arrived while no request was in flight
  kIoOther,         // any other socket error
  kLocalPorts,      // no free local port (EADDRNOTAVAIL): more source addresses needed
  kFdLimit,         // no file descriptor (EMFILE/ENFILE): the open-file limit
  kWsHandshake,     // WebSocket upgrade refused or invalid (not 101, wrong accept key)
  kProtocolError,   // bad WebSocket frames, a TCP message over the size bound, or a
                    // broken TLS record after the handshake
  // TLS. A failed certificate check counts by what was wrong with it.
  kTlsCertificateExpired,    // the server's certificate (or its chain) is out of its validity
  kTlsCertificateHostname,   // the certificate does not name the host (SNI name) we asked for
  kTlsCertificateUntrusted,  // no trusted CA signed it (unknown CA, self-signed)
  kTlsCertificate,           // any other certificate verification failure
  kTlsProtocolVersion,       // no TLS version both sides accept
  kTlsAlertReceived,  // the peer ended the handshake with an alert (e.g. certificate_required)
  kTlsHandshake,  // the handshake broke: peer closed or reset midway, plaintext or garbage bytes
  // HTTP/2 (kProtocolError also covers a peer that broke HTTP/2 framing or is not HTTP/2).
  kStreamReset,  // the server reset the request's stream (RST_STREAM)
  kGoaway,       // the server's GOAWAY left the request unprocessed (stream id past its last)
  // gRPC: an answer that is not a valid gRPC response (a non-OK grpc-status
  // is a result, counted in Snapshot::grpc_status, not one of these).
  kGrpcHttpStatus,     // HTTP status other than 200
  kGrpcContentType,    // content-type not application/grpc
  kGrpcBadMessage,     // broken length prefix, truncated or unasked-for compressed message, or a
                       // unary OK without exactly one message
  kGrpcMissingStatus,  // the stream ended without a (numeric) grpc-status
  kGrpcBadRequest,     // a scenario's grpc step: its message, once rendered, did not fit the
                       // request type (nothing was sent)
  // AMQP steps of scenarios (docs/amqp.md#scenario-steps).
  kMessageTimeout,    // an amqp.expect's message did not arrive within its timeout (lost)
  kUnmatchedMessage,  // a delivery no VU claimed within the hold time (late or foreign)
  kAmqpError,         // the worker's AMQP connection failed or the broker closed it
  kPublishNacked,     // an amqp.publish with confirm: true that the broker nacked
  // Pipelines (docs/scenarios.md#end-to-end-latency).
  kDuplicateMessage,   // a delivery whose correlation value was matched (or is held) already
  kOutOfOrderMessage,  // a matched delivery whose origin is older than one matched before it
                       // on the same queue: counted, the step succeeds
  kPollTimeout,        // a request step's until: did not hold within its poll timeout (lost)
  kCount
};
// Stable snake_case name ("connect_refused"); "unknown" for out-of-range values.
const char* error_cause_name(ErrorCause cause);
inline constexpr size_t kErrorCauseCount = static_cast<size_t>(ErrorCause::kCount);

// Why a WebSocket or TCP connection of a scenario ended. Stable names.
enum class DisconnectCause : uint8_t {
  kServerClose,    // the server closed (a WebSocket close frame, or TCP FIN)
  kReset,          // connection reset by peer
  kTimeout,        // an expect, connect or handshake timed out
  kProtocolError,  // bad frames or a failed handshake: closed with 1002/1007/1009
  kLocalClose,     // ws.close / tcp.close, or the end of the iteration or run
  kCount
};
const char* disconnect_cause_name(DisconnectCause cause);
inline constexpr size_t kDisconnectCauseCount = static_cast<size_t>(DisconnectCause::kCount);

// Run-wide WebSocket and TCP figures of scenario runs with socket steps (the
// per-step ones are StepStats, like requests).
struct SocketStats {
  uint64_t connected = 0;  // connections established (WebSocket: handshake done)
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t bytes_in = 0;  // payload bytes (WebSocket) or stream bytes (TCP)
  uint64_t bytes_out = 0;
  uint64_t unmatched = 0;    // messages an expect did not match (unmatched: count or fail)
  uint64_t unsolicited = 0;  // arrived while no expect or hold waited: counted, discarded
  uint64_t disconnects[kDisconnectCauseCount] = {};
  std::map<uint16_t, uint64_t> close_codes;  // WebSocket close codes the servers sent
  uint64_t open = 0;                         // open at the end of the interval; adds across workers
  Histogram connect_time;                    // TCP connect, microseconds
  Histogram handshake_time;                  // WebSocket upgrade request to 101
  Histogram first_message;                   // connected to the first message received
  Histogram delivery;                        // latency_from: the message's send time to arrival
  // latency_from stamps that give no latency (not a positive number, in the
  // future, older than the histogram holds): counted, not recorded.
  uint64_t delivery_invalid = 0;
  void add_disconnect(DisconnectCause cause) { ++disconnects[static_cast<size_t>(cause)]; }
  void merge(const SocketStats& other);
  void clear();
  friend bool operator==(const SocketStats&, const SocketStats&) = default;
};

// The run's one definition of failure (docs/summary-json.md, "Errors"): a
// transport error is a request with no complete response (refused, reset,
// timed out, malformed...); an HTTP failure is a complete response with a
// status of 400 or more; `failed` is both together, plus socket steps that
// failed without a transport error (unmatched: fail, a failed extraction).
// The error rate is failed / attempts, attempts being complete responses plus
// transport errors. Failed checks are not in it: they have their own rate.
struct Failures {
  uint64_t attempts = 0;
  uint64_t transport_errors = 0;
  uint64_t http_failures = 0;
  uint64_t grpc_failures = 0;  // complete gRPC calls whose status was not OK
  uint64_t failed = 0;
  double rate() const {
    return attempts ? static_cast<double>(failed) / static_cast<double>(attempts) : 0;
  }
};

// The load generator watching itself (docs/monitoring.md#the-generator): what
// the reporting workers' processes spent in the interval. A worker that used
// most of a core, or whose event loop never waited or ran late, was the limit
// of the run rather than the target.
struct GeneratorLoad {
  uint64_t cpu_us = 0;             // user + system CPU time; adds across workers and seconds
  uint64_t wall_us = 0;            // the wall time that was measured over; adds likewise
  uint64_t busy_us = 0;            // of wall_us, the event loop was not waiting for events; adds
  uint64_t max_cpu_permille = 0;   // the busiest worker's share of one core (1000: all of it)
  uint64_t max_busy_permille = 0;  // the busiest worker's loop: share of time not waiting
  uint64_t max_loop_lag_us = 0;    // the most a worker's loop was late for a timer
  // Workers saturated in the interval (saturated() below); over seconds,
  // worker-seconds.
  uint64_t saturated = 0;
  void merge(const GeneratorLoad& other);
  friend bool operator==(const GeneratorLoad&, const GeneratorLoad&) = default;
};
// One worker's interval is saturated when it used 90% of a core or more,
// its loop waited for less than 5% of it, or a timer fired 100 ms late.
bool saturated(uint64_t cpu_permille, uint64_t busy_permille, uint64_t loop_lag_us);

struct Snapshot {
  uint64_t interval_index = 0;  // seconds since the worker started (0-based)
  uint64_t requests = 0;        // complete responses (any status)
  uint64_t errors = 0;          // sum of error_counts
  uint64_t error_counts[static_cast<size_t>(ErrorCause::kCount)] = {};
  std::map<uint16_t, uint64_t> status_counts;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t connections_opened = 0;       // connection attempts (socket created, connect started)
  uint64_t connections_established = 0;  // attempts whose TCP connect succeeded
  // Requests sent whose response had not completed when the run (or a
  // scenario's graceful stop) ended: neither results nor errors, but counted.
  uint64_t in_flight = 0;
  // Open model only.
  uint64_t scheduled = 0;            // requests whose intended start fell in this interval
  uint64_t started_late = 0;         // sent >= 1 ms after their intended start
  uint64_t not_started = 0;          // still waiting when the run ended
  uint64_t max_schedule_lag_us = 0;  // how late the generator itself woke up
  Histogram latency;                 // complete responses only, microseconds
  // https: TLS handshakes completed (after the TCP connect), how many resumed
  // an earlier session, and their duration apart from the TCP connect.
  uint64_t tls_handshakes = 0;
  uint64_t tls_resumed = 0;
  Histogram tls_handshake;  // microseconds
  // HTTP/2: GOAWAY and RST_STREAM frames the servers sent, by error code
  // (RFC 9113 section 7; http2::error_code_name gives the names).
  std::map<uint32_t, uint64_t> h2_goaway;
  std::map<uint32_t, uint64_t> h2_rst_stream;
  // gRPC: calls that ended with a grpc-status, by code (grpc::status_name
  // gives the names). Each is also a complete response in `requests`; the
  // non-OK ones are failures (grpc_failures()).
  std::map<uint32_t, uint64_t> grpc_status;
  uint64_t grpc_messages = 0;  // response messages of those calls (server streaming: many per call)
  // Scenario runs only (empty in quick mode).
  std::vector<StepStats> steps;
  std::vector<CheckStats> checks;
  std::vector<FlowStats> flows;
  uint64_t dropped_iterations = 0;  // arrival-rate executors: due, but every VU was busy
  uint64_t vus = 0;                 // VUs alive at the end of the interval; adds across workers
  // Most VUs alive at once during the interval. Adds across workers (their
  // peaks may not coincide, so the sum is an upper bound); over a run, the
  // peak is the largest interval's value, not a sum (the coordinator keeps that).
  uint64_t peak_vus = 0;
  // Only in scenario runs with socket steps: four histograms are not free.
  std::optional<SocketStats> sockets;
  GeneratorLoad generator;  // filled by the worker process, not the workload

  void add_error(ErrorCause cause, uint64_t n = 1) {
    error_counts[static_cast<size_t>(cause)] += n;
    errors += n;
  }
  // Merge serves two purposes: combining workers' snapshots of the same second,
  // and accumulating seconds into run totals. Counters add; the lag and the
  // interval index keep the maximum (the latest second seen), since neither
  // is a quantity that adds up.
  void merge(const Snapshot& other);
  void clear();
  // HTTP responses with a status of 400 or more.
  uint64_t http_failures() const;
  // gRPC calls that ended with a status other than OK.
  uint64_t grpc_failures() const;
  // Scenario runs count per step (socket steps included); URL runs the totals.
  Failures failures() const;

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

}  // namespace millstone::metrics
