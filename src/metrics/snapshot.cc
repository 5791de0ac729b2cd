#include "metrics/snapshot.h"

#include <algorithm>

namespace millstone::metrics {

const char* error_cause_name(ErrorCause cause) {
  switch (cause) {
    case ErrorCause::kConnectRefused:
      return "connect_refused";
    case ErrorCause::kConnectTimeout:
      return "connect_timeout";
    case ErrorCause::kConnectOther:
      return "connect_error";
    case ErrorCause::kReset:
      return "reset";
    case ErrorCause::kClosed:
      return "closed";
    case ErrorCause::kTimeout:
      return "timeout";
    case ErrorCause::kMalformedStatus:
      return "malformed_status";
    case ErrorCause::kMalformedHeader:
      return "malformed_header";
    case ErrorCause::kHeaderTooLarge:
      return "header_too_large";
    case ErrorCause::kBadChunk:
      return "bad_chunk";
    case ErrorCause::kShortBody:
      return "short_body";
    case ErrorCause::kUnexpectedData:
      return "unexpected_data";
    case ErrorCause::kIoOther:
      return "io_error";
    case ErrorCause::kLocalPorts:
      return "local_ports_exhausted";
    case ErrorCause::kFdLimit:
      return "fd_limit";
    case ErrorCause::kWsHandshake:
      return "ws_handshake";
    case ErrorCause::kProtocolError:
      return "protocol_error";
    case ErrorCause::kTlsCertificateExpired:
      return "tls_certificate_expired";
    case ErrorCause::kTlsCertificateHostname:
      return "tls_certificate_hostname";
    case ErrorCause::kTlsCertificateUntrusted:
      return "tls_certificate_untrusted";
    case ErrorCause::kTlsCertificate:
      return "tls_certificate";
    case ErrorCause::kTlsProtocolVersion:
      return "tls_protocol_version";
    case ErrorCause::kTlsAlertReceived:
      return "tls_alert_received";
    case ErrorCause::kTlsHandshake:
      return "tls_handshake";
    case ErrorCause::kStreamReset:
      return "stream_reset";
    case ErrorCause::kGoaway:
      return "goaway";
    case ErrorCause::kGrpcHttpStatus:
      return "grpc_http_status";
    case ErrorCause::kGrpcContentType:
      return "grpc_content_type";
    case ErrorCause::kGrpcBadMessage:
      return "grpc_bad_message";
    case ErrorCause::kGrpcMissingStatus:
      return "grpc_missing_status";
    case ErrorCause::kGrpcBadRequest:
      return "grpc_bad_request";
    case ErrorCause::kMessageTimeout:
      return "message_timeout";
    case ErrorCause::kUnmatchedMessage:
      return "unmatched_message";
    case ErrorCause::kAmqpError:
      return "amqp_error";
    case ErrorCause::kPublishNacked:
      return "publish_nacked";
    case ErrorCause::kDuplicateMessage:
      return "duplicate_message";
    case ErrorCause::kOutOfOrderMessage:
      return "out_of_order_message";
    case ErrorCause::kPollTimeout:
      return "poll_timeout";
    case ErrorCause::kCount:
      break;
  }
  return "unknown";
}

const char* disconnect_cause_name(DisconnectCause cause) {
  switch (cause) {
    case DisconnectCause::kServerClose:
      return "server_close";
    case DisconnectCause::kReset:
      return "reset";
    case DisconnectCause::kTimeout:
      return "timeout";
    case DisconnectCause::kProtocolError:
      return "protocol_error";
    case DisconnectCause::kLocalClose:
      return "local_close";
    case DisconnectCause::kCount:
      break;
  }
  return "unknown";
}

void SocketStats::merge(const SocketStats& other) {
  connected += other.connected;
  messages_in += other.messages_in;
  messages_out += other.messages_out;
  bytes_in += other.bytes_in;
  bytes_out += other.bytes_out;
  unmatched += other.unmatched;
  unsolicited += other.unsolicited;
  for (size_t i = 0; i < kDisconnectCauseCount; ++i)
    disconnects[i] += other.disconnects[i];
  for (const auto& [code, count] : other.close_codes)
    close_codes[code] += count;
  open += other.open;
  connect_time.merge(other.connect_time);
  handshake_time.merge(other.handshake_time);
  first_message.merge(other.first_message);
  delivery.merge(other.delivery);
  delivery_invalid += other.delivery_invalid;
}

void SocketStats::clear() {
  connected = 0;
  messages_in = 0;
  messages_out = 0;
  bytes_in = 0;
  bytes_out = 0;
  unmatched = 0;
  unsolicited = 0;
  std::fill(std::begin(disconnects), std::end(disconnects), 0);
  close_codes.clear();
  open = 0;
  connect_time.reset();
  handshake_time.reset();
  first_message.reset();
  delivery.reset();
  delivery_invalid = 0;
}

void Snapshot::merge(const Snapshot& other) {
  interval_index = std::max(interval_index, other.interval_index);
  requests += other.requests;
  errors += other.errors;
  for (size_t i = 0; i < kErrorCauseCount; ++i)
    error_counts[i] += other.error_counts[i];
  for (const auto& [status, count] : other.status_counts)
    status_counts[status] += count;
  bytes_sent += other.bytes_sent;
  bytes_received += other.bytes_received;
  connections_opened += other.connections_opened;
  connections_established += other.connections_established;
  in_flight += other.in_flight;
  scheduled += other.scheduled;
  started_late += other.started_late;
  not_started += other.not_started;
  max_schedule_lag_us = std::max(max_schedule_lag_us, other.max_schedule_lag_us);
  latency.merge(other.latency);
  tls_handshakes += other.tls_handshakes;
  tls_resumed += other.tls_resumed;
  tls_handshake.merge(other.tls_handshake);
  for (const auto& [code, count] : other.h2_goaway)
    h2_goaway[code] += count;
  for (const auto& [code, count] : other.h2_rst_stream)
    h2_rst_stream[code] += count;
  for (const auto& [code, count] : other.grpc_status)
    grpc_status[code] += count;
  grpc_messages += other.grpc_messages;
  if (steps.size() < other.steps.size()) steps.resize(other.steps.size());
  for (size_t i = 0; i < other.steps.size(); ++i)
    steps[i].merge(other.steps[i]);
  if (checks.size() < other.checks.size()) checks.resize(other.checks.size());
  for (size_t i = 0; i < other.checks.size(); ++i)
    checks[i].merge(other.checks[i]);
  if (flows.size() < other.flows.size()) flows.resize(other.flows.size());
  for (size_t i = 0; i < other.flows.size(); ++i) {
    flows[i].iterations += other.flows[i].iterations;
    flows[i].aborted += other.flows[i].aborted;
  }
  dropped_iterations += other.dropped_iterations;
  vus += other.vus;
  peak_vus += other.peak_vus;
  if (other.sockets) {
    if (!sockets) sockets.emplace();
    sockets->merge(*other.sockets);
  }
  generator.merge(other.generator);
}

void GeneratorLoad::merge(const GeneratorLoad& other) {
  cpu_us += other.cpu_us;
  wall_us += other.wall_us;
  busy_us += other.busy_us;
  max_cpu_permille = std::max(max_cpu_permille, other.max_cpu_permille);
  max_busy_permille = std::max(max_busy_permille, other.max_busy_permille);
  max_loop_lag_us = std::max(max_loop_lag_us, other.max_loop_lag_us);
  saturated += other.saturated;
}

bool saturated(uint64_t cpu_permille, uint64_t busy_permille, uint64_t loop_lag_us) {
  return cpu_permille >= 900 || busy_permille >= 950 || loop_lag_us >= 100'000;
}

uint64_t Snapshot::http_failures() const {
  uint64_t n = 0;
  for (auto it = status_counts.lower_bound(400); it != status_counts.end(); ++it)
    n += it->second;
  return n;
}

uint64_t Snapshot::grpc_failures() const {
  uint64_t n = 0;
  for (const auto& [code, count] : grpc_status)
    n += code == 0 ? 0 : count;
  return n;
}

Failures Snapshot::failures() const {
  Failures f;
  f.http_failures = http_failures();
  f.grpc_failures = grpc_failures();
  if (steps.empty()) {
    f.transport_errors = errors;
    f.attempts = requests + errors;
    f.failed = errors + f.http_failures + f.grpc_failures;
    return f;
  }
  for (const StepStats& step : steps) {
    f.attempts += step.requests + step.errors;
    f.transport_errors += step.errors;
    f.failed += step.failed;
  }
  return f;
}

void StepStats::merge(const StepStats& other) {
  requests += other.requests;
  errors += other.errors;
  failed += other.failed;
  extract_failed += other.extract_failed;
  latency.merge(other.latency);
}

void StepStats::clear() {
  requests = 0;
  errors = 0;
  failed = 0;
  extract_failed = 0;
  latency.reset();
}

void CheckStats::merge(const CheckStats& other) {
  passed += other.passed;
  failed += other.failed;
  for (const std::string& sample : other.samples) {
    if (samples.size() >= kMaxSamples) break;
    samples.push_back(sample);
  }
}

void Snapshot::clear() {
  // Field by field rather than `*this = Snapshot()`, which would reallocate the
  // histogram's buckets every second.
  interval_index = 0;
  requests = 0;
  errors = 0;
  std::fill(std::begin(error_counts), std::end(error_counts), 0);
  status_counts.clear();
  bytes_sent = 0;
  bytes_received = 0;
  connections_opened = 0;
  connections_established = 0;
  in_flight = 0;
  scheduled = 0;
  started_late = 0;
  not_started = 0;
  max_schedule_lag_us = 0;
  latency.reset();
  tls_handshakes = 0;
  tls_resumed = 0;
  tls_handshake.reset();
  h2_goaway.clear();
  h2_rst_stream.clear();
  grpc_status.clear();
  grpc_messages = 0;
  // Keep the vectors' sizes (and the step histograms' buckets): the same
  // steps report every second.
  for (StepStats& step : steps)
    step.clear();
  for (CheckStats& check : checks) {
    check.passed = 0;
    check.failed = 0;
    check.samples.clear();
  }
  for (FlowStats& flow : flows)
    flow = FlowStats{};
  dropped_iterations = 0;
  vus = 0;
  peak_vus = 0;
  if (sockets) sockets->clear();  // kept: the same run reports sockets every second
  generator = GeneratorLoad{};
}

}  // namespace millstone::metrics
