#include "cluster/wire.h"

#include <sys/resource.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace millstone::cluster {

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::kHello:
      return "hello";
    case MessageType::kStart:
      return "start";
    case MessageType::kStop:
      return "stop";
    case MessageType::kSnapshot:
      return "snapshot";
    case MessageType::kError:
      return "error";
    case MessageType::kDone:
      return "done";
    case MessageType::kAck:
      return "ack";
    case MessageType::kProof:
      return "proof";
    case MessageType::kPing:
      return "ping";
    case MessageType::kPong:
      return "pong";
  }
  return "unknown";
}

bool is_known_message_type(uint8_t type) {
  return type >= static_cast<uint8_t>(MessageType::kHello) &&
         type <= static_cast<uint8_t>(MessageType::kPong);
}

// ---- Encoder ----

void Encoder::put_u8(uint8_t v) {
  out_->push_back(static_cast<char>(v));
}

void Encoder::put_u32(uint32_t v) {
  for (int i = 0; i < 4; ++i)
    put_u8(static_cast<uint8_t>(v >> (8 * i)));
}

void Encoder::put_u64(uint64_t v) {
  for (int i = 0; i < 8; ++i)
    put_u8(static_cast<uint8_t>(v >> (8 * i)));
}

void Encoder::put_varint(uint64_t v) {
  while (v >= 0x80) {
    put_u8(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  put_u8(static_cast<uint8_t>(v));
}

void Encoder::put_bool(bool v) {
  put_u8(v ? 1 : 0);
}

void Encoder::put_double(double v) {
  put_u64(std::bit_cast<uint64_t>(v));
}

void Encoder::put_string(std::string_view v) {
  put_varint(v.size());
  out_->append(v);
}

// ---- Decoder ----

bool Decoder::read_u8(uint8_t* out) {
  if (remaining() < 1) return false;
  *out = static_cast<uint8_t>(data_[pos_++]);
  return true;
}

bool Decoder::read_u32(uint32_t* out) {
  if (remaining() < 4) return false;
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= uint32_t{static_cast<uint8_t>(data_[pos_++])} << (8 * i);
  *out = v;
  return true;
}

bool Decoder::read_u64(uint64_t* out) {
  if (remaining() < 8) return false;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t{static_cast<uint8_t>(data_[pos_++])} << (8 * i);
  *out = v;
  return true;
}

bool Decoder::read_varint(uint64_t* out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t byte = 0;
    if (!read_u8(&byte)) return false;
    // The tenth byte carries only bit 63; anything more would be lost.
    if (shift == 63 && byte > 1) return false;
    v |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;  // more than ten bytes
}

bool Decoder::read_varint32(uint32_t* out) {
  uint64_t v = 0;
  if (!read_varint(&v) || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool Decoder::read_varint16(uint16_t* out) {
  uint64_t v = 0;
  if (!read_varint(&v) || v > UINT16_MAX) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

bool Decoder::read_bool(bool* out) {
  uint8_t v = 0;
  if (!read_u8(&v) || v > 1) return false;
  *out = v == 1;
  return true;
}

bool Decoder::read_double(double* out) {
  uint64_t bits = 0;
  if (!read_u64(&bits)) return false;
  *out = std::bit_cast<double>(bits);
  return true;
}

bool Decoder::read_string(std::string* out) {
  uint64_t size = 0;
  // Checked against what is left before allocating anything.
  if (!read_varint(&size) || size > remaining()) return false;
  out->assign(data_.substr(pos_, size));
  pos_ += size;
  return true;
}

// ---- Messages ----

std::string encode_frame(MessageType type, std::string_view payload) {
  std::string frame;
  if (payload.size() > kMaxPayloadSize) return frame;
  frame.reserve(kFrameHeaderSize + payload.size());
  Encoder e(&frame);
  e.put_u32(static_cast<uint32_t>(payload.size()));
  e.put_u8(static_cast<uint8_t>(type));
  frame.append(payload);
  return frame;
}

Hello local_hello(uint32_t worker_index) {
  Hello hello;
  hello.build_version = MILLSTONE_VERSION;
  hello.worker_index = worker_index;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) hello.host = host;
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  hello.cores = cores > 0 ? static_cast<uint32_t>(cores) : 1;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) hello.fd_limit = limit.rlim_cur;
  hello.pid = static_cast<uint64_t>(getpid());
  return hello;
}

std::string encode_hello(const Hello& hello) {
  std::string out;
  Encoder e(&out);
  // Fixed prefix: any future version can still read these two.
  e.put_u32(hello.protocol_version);
  e.put_string(hello.build_version);
  e.put_varint(hello.worker_index);
  e.put_string(hello.host);
  e.put_varint(hello.cores);
  e.put_varint(hello.fd_limit);
  e.put_varint(hello.pid);
  return out;
}

bool decode_hello(std::string_view payload, Hello* out) {
  Decoder d(payload);
  Hello h;
  if (!d.read_u32(&h.protocol_version) || !d.read_string(&h.build_version) ||
      !d.read_varint32(&h.worker_index) || !d.read_string(&h.host) || !d.read_varint32(&h.cores) ||
      !d.read_varint(&h.fd_limit) || !d.read_varint(&h.pid) || !d.at_end()) {
    return false;
  }
  *out = std::move(h);
  return true;
}

bool decode_hello_versions(std::string_view payload, uint32_t* protocol, std::string* build) {
  Decoder d(payload);
  uint32_t version = 0;
  if (!d.read_u32(&version)) return false;
  *protocol = version;
  // Versions 1-3 sent a u32 worker index here, not a string.
  std::string text;
  if (version >= 4 && d.read_string(&text)) *build = std::move(text);
  return true;
}

std::string encode_start(const Start& start) {
  std::string out;
  Encoder e(&out);
  e.put_u64(static_cast<uint64_t>(start.start_ns));
  e.put_string(encode_run_plan(start.plan));
  e.put_varint(start.data_files.size());
  for (const DataFile& file : start.data_files) {
    e.put_string(file.path);
    e.put_string(file.bytes);
  }
  e.put_varint(start.local_workers);
  return out;
}

bool decode_start(std::string_view payload, Start* out) {
  Decoder d(payload);
  Start s;
  uint64_t start_ns = 0;
  std::string plan;
  uint64_t files = 0;
  if (!d.read_u64(&start_ns) || !d.read_string(&plan) || !decode_run_plan(plan, &s.plan) ||
      !d.read_varint(&files) || files > kMaxDataFiles || files > d.remaining() / 2) {
    return false;
  }
  s.start_ns = static_cast<int64_t>(start_ns);
  s.data_files.resize(files);
  for (DataFile& file : s.data_files) {
    if (!d.read_string(&file.path) || !d.read_string(&file.bytes)) return false;
    for (const DataFile& before : s.data_files) {
      if (&before == &file) break;
      if (before.path == file.path) return false;
    }
  }
  if (!d.read_varint32(&s.local_workers) || !d.at_end()) return false;
  if (s.local_workers > static_cast<uint64_t>(s.plan.worker_count) - s.plan.worker_index) {
    return false;
  }
  *out = std::move(s);
  return true;
}

std::string encode_ack(const Ack& ack) {
  std::string out;
  Encoder(&out).put_u64(static_cast<uint64_t>(ack.ready_ns));
  return out;
}

bool decode_ack(std::string_view payload, Ack* out) {
  Decoder d(payload);
  uint64_t ready = 0;
  if (!d.read_u64(&ready) || !d.at_end()) return false;
  out->ready_ns = static_cast<int64_t>(ready);
  return true;
}

std::string encode_done(const Done& done) {
  std::string out;
  Encoder e(&out);
  e.put_varint(done.snapshots_coalesced);
  e.put_varint(done.outbox_peak_bytes);
  e.put_varint(done.worker_failures.size());
  for (const std::string& failure : done.worker_failures)
    e.put_string(failure);
  return out;
}

bool decode_done(std::string_view payload, Done* out) {
  Decoder d(payload);
  Done done;
  uint64_t failures = 0;
  if (!d.read_varint(&done.snapshots_coalesced) || !d.read_varint(&done.outbox_peak_bytes) ||
      !d.read_varint(&failures) || failures > kMaxWorkerFailures || failures > d.remaining()) {
    return false;
  }
  done.worker_failures.resize(failures);
  for (std::string& failure : done.worker_failures) {
    if (!d.read_string(&failure)) return false;
  }
  if (!d.at_end()) return false;
  *out = std::move(done);
  return true;
}

std::string encode_proof(std::string_view mac) {
  return std::string(mac);
}

bool decode_proof(std::string_view payload, std::string* mac) {
  if (payload.size() != kProofSize) return false;
  mac->assign(payload);
  return true;
}

std::string encode_ping(const Ping& ping) {
  std::string out;
  Encoder e(&out);
  e.put_u64(static_cast<uint64_t>(ping.sent_ns));
  e.put_bool(ping.has_offset);
  if (ping.has_offset) {
    e.put_u64(static_cast<uint64_t>(ping.offset_ns));
    e.put_u64(static_cast<uint64_t>(ping.rtt_ns));
  }
  return out;
}

bool decode_ping(std::string_view payload, Ping* out) {
  Decoder d(payload);
  Ping p;
  uint64_t sent = 0;
  if (!d.read_u64(&sent) || !d.read_bool(&p.has_offset)) return false;
  p.sent_ns = static_cast<int64_t>(sent);
  if (p.has_offset) {
    uint64_t offset = 0;
    uint64_t rtt = 0;
    if (!d.read_u64(&offset) || !d.read_u64(&rtt) || rtt > uint64_t{INT64_MAX}) return false;
    p.offset_ns = static_cast<int64_t>(offset);
    p.rtt_ns = static_cast<int64_t>(rtt);
  }
  if (!d.at_end()) return false;
  *out = p;
  return true;
}

std::string encode_pong(const Pong& pong) {
  std::string out;
  Encoder e(&out);
  e.put_u64(static_cast<uint64_t>(pong.ping_sent_ns));
  e.put_u64(static_cast<uint64_t>(pong.received_ns));
  e.put_u64(static_cast<uint64_t>(pong.sent_ns));
  return out;
}

bool decode_pong(std::string_view payload, Pong* out) {
  Decoder d(payload);
  uint64_t t1 = 0;
  uint64_t t2 = 0;
  uint64_t t3 = 0;
  if (!d.read_u64(&t1) || !d.read_u64(&t2) || !d.read_u64(&t3) || !d.at_end()) return false;
  *out = Pong{static_cast<int64_t>(t1), static_cast<int64_t>(t2), static_cast<int64_t>(t3)};
  return true;
}

std::string encode_error(std::string_view text) {
  std::string out;
  Encoder(&out).put_string(text);
  return out;
}

bool decode_error(std::string_view payload, std::string* text) {
  Decoder d(payload);
  std::string t;
  if (!d.read_string(&t) || !d.at_end()) return false;
  *text = std::move(t);
  return true;
}

std::string encode_run_plan(const engine::RunPlan& plan) {
  std::string out;
  out.reserve(64 + plan.address.size() + plan.url.size() + plan.request_bytes.size());
  Encoder e(&out);
  e.put_string(plan.address);
  e.put_varint(plan.port);
  e.put_string(plan.url);
  e.put_string(plan.request_bytes);
  e.put_bool(plan.head_request);
  e.put_varint(plan.connections);
  e.put_double(plan.rate);
  e.put_varint(plan.duration_ms);
  e.put_varint(plan.timeout_ms);
  e.put_varint(plan.connect_timeout_ms);
  e.put_varint(plan.worker_index);
  e.put_varint(plan.worker_count);
  e.put_string(plan.scenario_path);
  e.put_string(plan.scenario_source);
  e.put_string(plan.scenario_base_dir);
  e.put_string(plan.target_override);
  e.put_varint(plan.source_addresses.size());
  for (const std::string& source : plan.source_addresses)
    e.put_string(source);
  e.put_varint(plan.scenario_parameters.size());
  for (const auto& [name, value] : plan.scenario_parameters) {
    e.put_string(name);
    e.put_string(value);
  }
  e.put_varint(plan.scenario_vus);
  e.put_varint(plan.scenario_duration_us);
  e.put_double(plan.scenario_rate);
  e.put_bool(plan.tls.has_value());
  if (plan.tls) {
    const tls::TlsClientOptions& t = *plan.tls;
    e.put_string(plan.tls_server_name);
    e.put_bool(t.insecure);
    e.put_string(t.ca_file);
    e.put_string(t.ca_pem);
    e.put_string(t.cert_file);
    e.put_string(t.cert_pem);
    e.put_string(t.key_file);
    e.put_string(t.key_pem);
    e.put_varint(static_cast<uint64_t>(t.min_version));
    e.put_varint(static_cast<uint64_t>(t.max_version));
    e.put_varint(t.alpn.size());
    for (const std::string& protocol : t.alpn)
      e.put_string(protocol);
    e.put_bool(t.resume_sessions);
  }
  e.put_bool(plan.keepalive);
  e.put_bool(plan.http2);
  if (plan.http2) {
    const http::RequestSpec& r = plan.request;
    e.put_varint(plan.streams);
    e.put_varint(plan.h2_window);
    e.put_varint(plan.h2_header_table);
    e.put_string(r.method);
    e.put_string(r.scheme);
    e.put_string(r.authority);
    e.put_string(r.path);
    e.put_varint(r.headers.size());
    for (const auto& [name, value] : r.headers) {
      e.put_string(name);
      e.put_string(value);
    }
    e.put_string(r.body);
    e.put_bool(plan.grpc);
    e.put_bool(plan.grpc_server_streaming);
  }
  e.put_varint(static_cast<uint64_t>(plan.io_backend));
  return out;
}

bool decode_run_plan(std::string_view payload, engine::RunPlan* out) {
  Decoder d(payload);
  engine::RunPlan p;
  const bool read = d.read_string(&p.address) && d.read_varint16(&p.port) &&
                    d.read_string(&p.url) && d.read_string(&p.request_bytes) &&
                    d.read_bool(&p.head_request) && d.read_varint32(&p.connections) &&
                    d.read_double(&p.rate) && d.read_varint(&p.duration_ms) &&
                    d.read_varint(&p.timeout_ms) && d.read_varint(&p.connect_timeout_ms) &&
                    d.read_varint32(&p.worker_index) && d.read_varint32(&p.worker_count) &&
                    d.read_string(&p.scenario_path) && d.read_string(&p.scenario_source) &&
                    d.read_string(&p.scenario_base_dir) && d.read_string(&p.target_override);
  if (!read) return false;
  uint64_t sources = 0;
  if (!d.read_varint(&sources) || sources > kMaxSourceAddresses) return false;
  p.source_addresses.resize(sources);
  for (std::string& source : p.source_addresses) {
    if (!d.read_string(&source)) return false;
  }
  uint64_t parameters = 0;
  if (!d.read_varint(&parameters) || parameters > kMaxScenarioParameters) return false;
  p.scenario_parameters.resize(parameters);
  for (auto& [name, value] : p.scenario_parameters) {
    if (!d.read_string(&name) || !d.read_string(&value)) return false;
  }
  if (!d.read_varint32(&p.scenario_vus) || !d.read_varint(&p.scenario_duration_us) ||
      !d.read_double(&p.scenario_rate)) {
    return false;
  }
  bool has_tls = false;
  if (!d.read_bool(&has_tls)) return false;
  if (has_tls) {
    tls::TlsClientOptions& t = p.tls.emplace();
    uint64_t min_version = 0;
    uint64_t max_version = 0;
    uint64_t protocols = 0;
    if (!d.read_string(&p.tls_server_name) || !d.read_bool(&t.insecure) ||
        !d.read_string(&t.ca_file) || !d.read_string(&t.ca_pem) || !d.read_string(&t.cert_file) ||
        !d.read_string(&t.cert_pem) || !d.read_string(&t.key_file) || !d.read_string(&t.key_pem) ||
        !d.read_varint(&min_version) || !d.read_varint(&max_version) || min_version > 1 ||
        max_version > 1 || !d.read_varint(&protocols) || protocols > d.remaining()) {
      return false;
    }
    t.min_version = static_cast<tls::TlsVersion>(min_version);
    t.max_version = static_cast<tls::TlsVersion>(max_version);
    t.alpn.resize(protocols);
    for (std::string& protocol : t.alpn) {
      if (!d.read_string(&protocol)) return false;
    }
    if (!d.read_bool(&t.resume_sessions)) return false;
  }
  if (!d.read_bool(&p.keepalive) || !d.read_bool(&p.http2)) return false;
  if (p.http2) {
    http::RequestSpec& r = p.request;
    uint64_t headers = 0;
    if (!d.read_varint32(&p.streams) || p.streams == 0 || !d.read_varint32(&p.h2_window) ||
        !d.read_varint32(&p.h2_header_table) || !d.read_string(&r.method) ||
        !d.read_string(&r.scheme) || !d.read_string(&r.authority) || !d.read_string(&r.path) ||
        !d.read_varint(&headers) || headers > d.remaining() / 2) {
      return false;
    }
    r.headers.resize(headers);
    for (auto& [name, value] : r.headers) {
      if (!d.read_string(&name) || !d.read_string(&value)) return false;
    }
    if (!d.read_string(&r.body) || !d.read_bool(&p.grpc) ||
        !d.read_bool(&p.grpc_server_streaming)) {
      return false;
    }
  }
  uint64_t io_backend = 0;
  if (!d.read_varint(&io_backend) || io_backend > 1) return false;
  p.io_backend = static_cast<net::IoBackend>(io_backend);
  if (!d.at_end()) return false;
  if (!std::isfinite(p.scenario_rate) || p.scenario_rate < 0.0) return false;
  if (!std::isfinite(p.rate) || p.rate < 0.0) return false;
  if (p.worker_count == 0 || p.worker_index >= p.worker_count) return false;
  *out = std::move(p);
  return true;
}

namespace {

void encode_histogram(Encoder* encoder, const metrics::Histogram& h) {
  Encoder& e = *encoder;
  // Sparse histogram: totals, then (gap, count) pairs where the gap to the
  // previous non-empty bucket keeps indexes small and strictly increasing.
  const std::vector<metrics::Histogram::Bucket> buckets = h.nonzero_buckets();
  e.put_varint(h.min());
  e.put_varint(h.max());
  e.put_varint(h.sum());
  e.put_varint(buckets.size());
  uint64_t next_index = 0;
  for (const auto& b : buckets) {
    e.put_varint(b.index - next_index);
    e.put_varint(b.count);
    next_index = uint64_t{b.index} + 1;
  }
}

}  // namespace

std::string encode_snapshot(const metrics::Snapshot& s) {
  std::string out;
  Encoder e(&out);
  e.put_varint(s.interval_index);
  e.put_varint(s.requests);
  e.put_varint(s.errors);
  e.put_varint(metrics::kErrorCauseCount);
  for (uint64_t n : s.error_counts)
    e.put_varint(n);
  e.put_varint(s.status_counts.size());
  for (const auto& [status, count] : s.status_counts) {
    e.put_varint(status);
    e.put_varint(count);
  }
  e.put_varint(s.bytes_sent);
  e.put_varint(s.bytes_received);
  e.put_varint(s.connections_opened);
  e.put_varint(s.connections_established);
  e.put_varint(s.in_flight);
  e.put_varint(s.scheduled);
  e.put_varint(s.started_late);
  e.put_varint(s.not_started);
  e.put_varint(s.max_schedule_lag_us);
  encode_histogram(&e, s.latency);
  e.put_varint(s.tls_handshakes);
  e.put_varint(s.tls_resumed);
  encode_histogram(&e, s.tls_handshake);
  // Scenario sections; empty vectors cost one byte each.
  e.put_varint(s.steps.size());
  for (const metrics::StepStats& step : s.steps) {
    e.put_varint(step.requests);
    e.put_varint(step.errors);
    e.put_varint(step.failed);
    e.put_varint(step.extract_failed);
    encode_histogram(&e, step.latency);
  }
  e.put_varint(s.checks.size());
  for (const metrics::CheckStats& check : s.checks) {
    e.put_varint(check.passed);
    e.put_varint(check.failed);
    e.put_varint(check.samples.size());
    for (const std::string& sample : check.samples)
      e.put_string(sample);
  }
  e.put_varint(s.flows.size());
  for (const metrics::FlowStats& flow : s.flows) {
    e.put_varint(flow.iterations);
    e.put_varint(flow.aborted);
  }
  e.put_varint(s.dropped_iterations);
  e.put_varint(s.vus);
  e.put_varint(s.peak_vus);
  // Socket section: absent (0) in runs without WebSocket/TCP steps.
  e.put_varint(s.sockets ? 1 : 0);
  if (s.sockets) {
    const metrics::SocketStats& k = *s.sockets;
    e.put_varint(k.connected);
    e.put_varint(k.messages_in);
    e.put_varint(k.messages_out);
    e.put_varint(k.bytes_in);
    e.put_varint(k.bytes_out);
    e.put_varint(k.unmatched);
    e.put_varint(k.unsolicited);
    e.put_varint(metrics::kDisconnectCauseCount);
    for (uint64_t n : k.disconnects)
      e.put_varint(n);
    e.put_varint(k.close_codes.size());
    for (const auto& [code, count] : k.close_codes) {
      e.put_varint(code);
      e.put_varint(count);
    }
    e.put_varint(k.open);
    encode_histogram(&e, k.connect_time);
    encode_histogram(&e, k.handshake_time);
    encode_histogram(&e, k.first_message);
    encode_histogram(&e, k.delivery);
    e.put_varint(k.delivery_invalid);
  }
  // HTTP/2 frame counts by error code, gRPC calls by status; empty maps cost one byte each.
  for (const std::map<uint32_t, uint64_t>* codes :
       {&s.h2_goaway, &s.h2_rst_stream, &s.grpc_status}) {
    e.put_varint(codes->size());
    for (const auto& [code, count] : *codes) {
      e.put_varint(code);
      e.put_varint(count);
    }
  }
  e.put_varint(s.grpc_messages);
  // The generator's own load (docs/monitoring.md#the-generator). Always
  // present: both ends speak the same protocol version (checked in HELLO).
  const metrics::GeneratorLoad& g = s.generator;
  for (uint64_t v : {g.cpu_us, g.wall_us, g.busy_us, g.max_cpu_permille, g.max_busy_permille,
                     g.max_loop_lag_us, g.saturated}) {
    e.put_varint(v);
  }
  return out;
}

namespace {

bool decode_histogram(Decoder* d, metrics::Histogram* out) {
  uint64_t min = 0;
  uint64_t max = 0;
  uint64_t sum = 0;
  uint64_t n = 0;
  if (!d->read_varint(&min) || !d->read_varint(&max) || !d->read_varint(&sum) ||
      !d->read_varint(&n)) {
    return false;
  }
  // Each bucket takes at least two bytes, which bounds n before allocating.
  if (n > metrics::Histogram::kBucketCount || n > d->remaining() / 2) return false;
  std::vector<metrics::Histogram::Bucket> buckets;
  buckets.reserve(n);
  uint64_t next_index = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t gap = 0;
    uint64_t count = 0;
    if (!d->read_varint(&gap) || !d->read_varint(&count)) return false;
    if (gap >= metrics::Histogram::kBucketCount - next_index) return false;
    const uint64_t index = next_index + gap;
    buckets.push_back({static_cast<uint32_t>(index), count});
    next_index = index + 1;
  }
  return out->restore(buckets, min, max, sum);
}

}  // namespace

namespace {

bool decode_socket_stats(Decoder* decoder, metrics::SocketStats* out) {
  Decoder& d = *decoder;
  metrics::SocketStats& k = *out;
  uint64_t causes = 0;
  if (!d.read_varint(&k.connected) || !d.read_varint(&k.messages_in) ||
      !d.read_varint(&k.messages_out) || !d.read_varint(&k.bytes_in) ||
      !d.read_varint(&k.bytes_out) || !d.read_varint(&k.unmatched) ||
      !d.read_varint(&k.unsolicited) || !d.read_varint(&causes) ||
      causes != metrics::kDisconnectCauseCount) {
    return false;
  }
  for (uint64_t& n : k.disconnects) {
    if (!d.read_varint(&n)) return false;
  }
  uint64_t codes = 0;
  if (!d.read_varint(&codes) || codes > d.remaining() / 2) return false;
  for (uint64_t i = 0; i < codes; ++i) {
    uint16_t code = 0;
    uint64_t count = 0;
    if (!d.read_varint16(&code) || !d.read_varint(&count)) return false;
    if (!k.close_codes.empty() && code <= k.close_codes.rbegin()->first) return false;
    k.close_codes.emplace_hint(k.close_codes.end(), code, count);
  }
  return d.read_varint(&k.open) && decode_histogram(&d, &k.connect_time) &&
         decode_histogram(&d, &k.handshake_time) && decode_histogram(&d, &k.first_message) &&
         decode_histogram(&d, &k.delivery) && d.read_varint(&k.delivery_invalid);
}

}  // namespace

bool decode_snapshot(std::string_view payload, metrics::Snapshot* out) {
  Decoder d(payload);
  metrics::Snapshot s;
  uint64_t causes = 0;
  if (!d.read_varint(&s.interval_index) || !d.read_varint(&s.requests) ||
      !d.read_varint(&s.errors) || !d.read_varint(&causes)) {
    return false;
  }
  // The protocol version pins the list of causes; a mismatch is a peer bug.
  if (causes != metrics::kErrorCauseCount) return false;
  uint64_t error_total = 0;
  for (uint64_t& n : s.error_counts) {
    if (!d.read_varint(&n) || __builtin_add_overflow(error_total, n, &error_total)) return false;
  }
  if (error_total != s.errors) return false;

  uint64_t statuses = 0;
  if (!d.read_varint(&statuses) || statuses > d.remaining() / 2) return false;
  for (uint64_t i = 0; i < statuses; ++i) {
    uint16_t status = 0;
    uint64_t count = 0;
    if (!d.read_varint16(&status) || !d.read_varint(&count)) return false;
    // Strictly increasing, as a std::map writes them: no duplicates to resolve.
    if (!s.status_counts.empty() && status <= s.status_counts.rbegin()->first) return false;
    s.status_counts.emplace_hint(s.status_counts.end(), status, count);
  }

  if (!d.read_varint(&s.bytes_sent) || !d.read_varint(&s.bytes_received) ||
      !d.read_varint(&s.connections_opened) || !d.read_varint(&s.connections_established) ||
      !d.read_varint(&s.in_flight) || !d.read_varint(&s.scheduled) ||
      !d.read_varint(&s.started_late) || !d.read_varint(&s.not_started) ||
      !d.read_varint(&s.max_schedule_lag_us) || !decode_histogram(&d, &s.latency) ||
      !d.read_varint(&s.tls_handshakes) || !d.read_varint(&s.tls_resumed) ||
      !decode_histogram(&d, &s.tls_handshake)) {
    return false;
  }
  // Each element takes at least one byte per field (a step: 4 counters and a
  // histogram of at least 4), which bounds the counts
  // before anything is allocated.
  uint64_t n = 0;
  if (!d.read_varint(&n) || n > d.remaining() / 8 || n > metrics::kMaxSnapshotSteps) return false;
  s.steps.resize(n);
  for (metrics::StepStats& step : s.steps) {
    if (!d.read_varint(&step.requests) || !d.read_varint(&step.errors) ||
        !d.read_varint(&step.failed) || !d.read_varint(&step.extract_failed) ||
        !decode_histogram(&d, &step.latency)) {
      return false;
    }
  }
  if (!d.read_varint(&n) || n > d.remaining() / 3 || n > metrics::kMaxSnapshotChecks) return false;
  s.checks.resize(n);
  for (metrics::CheckStats& check : s.checks) {
    uint64_t samples = 0;
    if (!d.read_varint(&check.passed) || !d.read_varint(&check.failed) ||
        !d.read_varint(&samples) || samples > metrics::CheckStats::kMaxSamples) {
      return false;
    }
    check.samples.resize(samples);
    for (std::string& sample : check.samples) {
      if (!d.read_string(&sample)) return false;
    }
  }
  if (!d.read_varint(&n) || n > d.remaining() / 2 || n > metrics::kMaxSnapshotFlows) return false;
  s.flows.resize(n);
  for (metrics::FlowStats& flow : s.flows) {
    if (!d.read_varint(&flow.iterations) || !d.read_varint(&flow.aborted)) return false;
  }
  uint64_t has_sockets = 0;
  if (!d.read_varint(&s.dropped_iterations) || !d.read_varint(&s.vus) ||
      !d.read_varint(&s.peak_vus) || !d.read_varint(&has_sockets) || has_sockets > 1) {
    return false;
  }
  if (has_sockets == 1 && !decode_socket_stats(&d, &s.sockets.emplace())) return false;
  for (std::map<uint32_t, uint64_t>* codes : {&s.h2_goaway, &s.h2_rst_stream, &s.grpc_status}) {
    uint64_t entries = 0;
    if (!d.read_varint(&entries) || entries > d.remaining() / 2) return false;
    for (uint64_t i = 0; i < entries; ++i) {
      uint32_t code = 0;
      uint64_t count = 0;
      if (!d.read_varint32(&code) || !d.read_varint(&count)) return false;
      if (!codes->empty() && code <= codes->rbegin()->first) return false;
      codes->emplace_hint(codes->end(), code, count);
    }
  }
  if (!d.read_varint(&s.grpc_messages)) return false;
  metrics::GeneratorLoad& g = s.generator;
  for (uint64_t* v : {&g.cpu_us, &g.wall_us, &g.busy_us, &g.max_cpu_permille, &g.max_busy_permille,
                      &g.max_loop_lag_us, &g.saturated}) {
    if (!d.read_varint(v)) return false;
  }
  if (!d.at_end()) return false;
  *out = std::move(s);
  return true;
}

// ---- FrameReader ----

void FrameReader::append(const char* data, size_t size) {
  // Drop what was already returned before growing, so a long-lived
  // connection's buffer stays about one frame big.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(data, size);
}

FrameReader::Next FrameReader::next(MessageType* type, std::string* payload) {
  if (!error_.empty()) return Next::kError;
  if (buffered() < kFrameHeaderSize) return Next::kNeedMore;
  uint32_t size = 0;
  uint8_t raw_type = 0;
  Decoder header(std::string_view(buffer_).substr(consumed_, kFrameHeaderSize));
  header.read_u32(&size);
  header.read_u8(&raw_type);
  // Judged from the header alone, so a bad peer cannot make us wait for 4 GiB.
  if (size > max_payload_) {
    error_ = "frame of " + std::to_string(size) + " bytes exceeds the limit of " +
             std::to_string(max_payload_) + " bytes";
    return Next::kError;
  }
  if (!is_known_message_type(raw_type)) {
    error_ = "unknown message type " + std::to_string(raw_type);
    return Next::kError;
  }
  if (buffered() < kFrameHeaderSize + size) return Next::kNeedMore;
  *type = static_cast<MessageType>(raw_type);
  payload->assign(buffer_, consumed_ + kFrameHeaderSize, size);
  consumed_ += kFrameHeaderSize + size;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return Next::kFrame;
}

}  // namespace millstone::cluster
