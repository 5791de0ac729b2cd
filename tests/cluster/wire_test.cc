#include "cluster/wire.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

namespace millstone::cluster {
namespace wire_test {

engine::RunPlan sample_plan() {
  engine::RunPlan p;
  p.address = "::1";
  p.port = 8080;
  p.url = "http://[::1]:8080/items?id=7";
  p.request_bytes = std::string("GET /items?id=7 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") +
                    std::string(1, '\0') + "\xff";  // any bytes survive
  p.head_request = true;
  p.connections = 64;
  p.rate = 12345.678;
  p.duration_ms = 30'000;
  p.timeout_ms = 2'000;
  p.connect_timeout_ms = 1'500;
  p.worker_index = 2;
  p.worker_count = 4;
  return p;
}

void expect_plans_equal(const engine::RunPlan& a, const engine::RunPlan& b) {
  EXPECT_EQ(a.address, b.address);
  EXPECT_EQ(a.port, b.port);
  EXPECT_EQ(a.url, b.url);
  EXPECT_EQ(a.request_bytes, b.request_bytes);
  EXPECT_EQ(a.head_request, b.head_request);
  EXPECT_EQ(a.connections, b.connections);
  EXPECT_EQ(a.rate, b.rate);
  EXPECT_EQ(a.duration_ms, b.duration_ms);
  EXPECT_EQ(a.timeout_ms, b.timeout_ms);
  EXPECT_EQ(a.connect_timeout_ms, b.connect_timeout_ms);
  EXPECT_EQ(a.worker_index, b.worker_index);
  EXPECT_EQ(a.worker_count, b.worker_count);
}

metrics::Snapshot sample_snapshot() {
  metrics::Snapshot s;
  s.interval_index = 17;
  s.requests = 5000;
  s.add_error(metrics::ErrorCause::kConnectRefused, 3);
  s.add_error(metrics::ErrorCause::kIoOther, 1);
  s.add_error(metrics::ErrorCause::kTimeout, 300);
  s.status_counts[200] = 4900;
  s.status_counts[404] = 99;
  s.status_counts[599] = 1;
  s.bytes_sent = uint64_t{1} << 40;
  s.bytes_received = UINT64_MAX;
  s.connections_opened = 64;
  s.generator = {980'000, 1'000'000, 999'000, 980, 999, 12'000, 1};
  s.connections_established = 60;
  s.in_flight = 7;
  s.peak_vus = 33;
  s.scheduled = 5010;
  s.started_late = 12;
  s.not_started = 10;
  s.max_schedule_lag_us = 4321;
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> lognormal(7.0, 2.0);
  for (int i = 0; i < 5000; ++i)
    s.latency.record(static_cast<uint64_t>(lognormal(rng)));
  s.latency.record(metrics::Histogram::kMaxValue);
  s.latency.record(0);
  s.tls_handshakes = 40;
  s.tls_resumed = 39;
  s.tls_handshake.record(1200);
  s.tls_handshake.record(350);
  return s;
}

// Three agents' seconds, each sent as a snapshot over the wire and merged as
// the coordinator merges them, give the same histogram, and so the same
// percentiles to the microsecond, as every request recorded in one.
TEST(WireTest, AgentsHistogramsMergedOverTheWireEqualOneHistogramOfTheSameRequests) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> latency_us(9.0, 1.2);  // median ~8 ms, a long tail
  std::uniform_int_distribution<int> agent(0, 2);
  metrics::Snapshot agents[3];
  metrics::Histogram all;
  for (int i = 0; i < 30'000; ++i) {
    const auto v = static_cast<uint64_t>(latency_us(rng));
    agents[agent(rng)].latency.record(v);
    all.record(v);
  }
  metrics::Snapshot merged;
  for (metrics::Snapshot& a : agents) {
    a.requests = a.latency.count();
    metrics::Snapshot received;
    ASSERT_TRUE(decode_snapshot(encode_snapshot(a), &received));
    merged.merge(received);
  }
  EXPECT_EQ(merged.latency, all);
  EXPECT_EQ(merged.requests, all.count());
  for (double q : {0.5, 0.9, 0.99, 0.999, 1.0})
    EXPECT_EQ(merged.latency.value_at(q), all.value_at(q)) << q;
}

TEST(WireTest, VarintBoundaries) {
  std::string buf;
  Encoder e(&buf);
  const std::vector<uint64_t> values = {
      0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX - 1, UINT64_MAX};
  for (uint64_t v : values)
    e.put_varint(v);
  Decoder d(buf);
  for (uint64_t v : values) {
    uint64_t got = 0;
    ASSERT_TRUE(d.read_varint(&got));
    EXPECT_EQ(got, v);
  }
  EXPECT_TRUE(d.at_end());
  uint64_t v = 0;
  EXPECT_FALSE(d.read_varint(&v));
}

TEST(WireTest, RejectsOverlongVarints) {
  uint64_t v = 0;
  // Eleven bytes.
  EXPECT_FALSE(Decoder(std::string(10, '\x80') + '\x00').read_varint(&v));
  // Ten bytes but more than 64 bits.
  EXPECT_FALSE(Decoder(std::string(9, '\xff') + '\x02').read_varint(&v));
  EXPECT_TRUE(Decoder(std::string(9, '\xff') + '\x01').read_varint(&v));
  EXPECT_EQ(v, UINT64_MAX);
  // Truncated: continuation bit set on the last byte.
  EXPECT_FALSE(Decoder("\x80\x80").read_varint(&v));
  uint32_t v32 = 0;
  std::string big;
  Encoder(&big).put_varint(uint64_t{UINT32_MAX} + 1);
  EXPECT_FALSE(Decoder(big).read_varint32(&v32));
  uint16_t v16 = 0;
  std::string big16;
  Encoder(&big16).put_varint(65536);
  EXPECT_FALSE(Decoder(big16).read_varint16(&v16));
}

TEST(WireTest, FixedIntsAreLittleEndian) {
  std::string buf;
  Encoder e(&buf);
  e.put_u32(0x01020304);
  e.put_u64(0x0102030405060708);
  EXPECT_EQ(buf, std::string("\x04\x03\x02\x01\x08\x07\x06\x05\x04\x03\x02\x01", 12));
  Decoder d(buf);
  uint32_t a = 0;
  uint64_t b = 0;
  ASSERT_TRUE(d.read_u32(&a));
  ASSERT_TRUE(d.read_u64(&b));
  EXPECT_EQ(a, 0x01020304u);
  EXPECT_EQ(b, 0x0102030405060708u);
  EXPECT_FALSE(d.read_u8(nullptr));  // never dereferenced when out of bytes
}

TEST(WireTest, StringsAndDoubles) {
  std::string buf;
  Encoder e(&buf);
  e.put_string("");
  e.put_string(std::string("a\0b", 3));
  e.put_double(-0.0);
  e.put_double(std::numeric_limits<double>::infinity());
  e.put_bool(true);
  Decoder d(buf);
  std::string s;
  double x = 0;
  bool flag = false;
  ASSERT_TRUE(d.read_string(&s));
  EXPECT_EQ(s, "");
  ASSERT_TRUE(d.read_string(&s));
  EXPECT_EQ(s, std::string("a\0b", 3));
  ASSERT_TRUE(d.read_double(&x));
  EXPECT_TRUE(std::signbit(x));
  ASSERT_TRUE(d.read_double(&x));
  EXPECT_TRUE(std::isinf(x));
  ASSERT_TRUE(d.read_bool(&flag));
  EXPECT_TRUE(flag);
  EXPECT_TRUE(d.at_end());
  // A length longer than what is left fails without allocating it.
  std::string lying;
  Encoder(&lying).put_varint(uint64_t{1} << 60);
  lying += "abc";
  EXPECT_FALSE(Decoder(lying).read_string(&s));
  EXPECT_FALSE(Decoder("\x02").read_bool(&flag));
}

TEST(WireTest, RunPlanRoundTrip) {
  const engine::RunPlan plan = sample_plan();
  engine::RunPlan decoded;
  ASSERT_TRUE(decode_run_plan(encode_run_plan(plan), &decoded));
  expect_plans_equal(decoded, plan);

  const engine::RunPlan defaults;
  ASSERT_TRUE(decode_run_plan(encode_run_plan(defaults), &decoded));
  expect_plans_equal(decoded, defaults);
}

// Workers compile the scenario text themselves; {{ env.NAME }} values travel
// in the plan because a worker (or remote agent) must not read its own environment.
TEST(WireTest, RunPlanCarriesScenarioParametersAndOverrides) {
  engine::RunPlan plan = sample_plan();
  plan.scenario_source = "flows: []";
  plan.scenario_parameters = {{"BASE_PATH", "/api"}, {"TOKEN", std::string("a\0b=c", 5)}};
  plan.scenario_vus = 7;
  plan.scenario_duration_us = 90'000'000;
  plan.scenario_rate = 2.5;
  engine::RunPlan decoded;
  ASSERT_TRUE(decode_run_plan(encode_run_plan(plan), &decoded));
  EXPECT_EQ(decoded.scenario_parameters, plan.scenario_parameters);
  EXPECT_EQ(decoded.scenario_vus, 7u);
  EXPECT_EQ(decoded.scenario_duration_us, 90'000'000u);
  EXPECT_EQ(decoded.scenario_rate, 2.5);
  std::string truncated = encode_run_plan(plan);
  truncated.pop_back();
  EXPECT_FALSE(decode_run_plan(truncated, &decoded));
}

// https: the options travel with the files' contents, which a remote agent
// could not read itself.
TEST(WireTest, RunPlanCarriesTlsOptions) {
  engine::RunPlan plan = sample_plan();
  tls::TlsClientOptions& t = plan.tls.emplace();
  t.insecure = true;
  t.ca_file = "ca.pem";
  t.ca_pem = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n";
  t.cert_file = "client.crt";
  t.cert_pem = "cert";
  t.key_file = "client.key";
  t.key_pem = std::string("key\0bytes", 9);
  t.min_version = tls::TlsVersion::k1_3;
  t.max_version = tls::TlsVersion::k1_3;
  t.alpn = {"h2", "http/1.1"};
  t.resume_sessions = false;
  plan.tls_server_name = "localhost";
  plan.keepalive = false;
  plan.io_backend = net::IoBackend::kUring;
  engine::RunPlan decoded;
  ASSERT_TRUE(decode_run_plan(encode_run_plan(plan), &decoded));
  ASSERT_TRUE(decoded.tls.has_value());
  EXPECT_TRUE(decoded.tls->insecure);
  EXPECT_EQ(decoded.tls->ca_file, t.ca_file);
  EXPECT_EQ(decoded.tls->ca_pem, t.ca_pem);
  EXPECT_EQ(decoded.tls->cert_file, t.cert_file);
  EXPECT_EQ(decoded.tls->cert_pem, t.cert_pem);
  EXPECT_EQ(decoded.tls->key_file, t.key_file);
  EXPECT_EQ(decoded.tls->key_pem, t.key_pem);
  EXPECT_EQ(decoded.tls->min_version, tls::TlsVersion::k1_3);
  EXPECT_EQ(decoded.tls->max_version, tls::TlsVersion::k1_3);
  EXPECT_EQ(decoded.tls->alpn, t.alpn);
  EXPECT_FALSE(decoded.tls->resume_sessions);
  EXPECT_EQ(decoded.tls_server_name, "localhost");
  EXPECT_FALSE(decoded.keepalive);
  EXPECT_EQ(decoded.io_backend, net::IoBackend::kUring);
  for (size_t cut = 1; cut < 40; ++cut) {  // every truncation of the TLS part
    EXPECT_FALSE(decode_run_plan(
        encode_run_plan(plan).substr(0, encode_run_plan(plan).size() - cut), &decoded));
  }

  const engine::RunPlan plain = sample_plan();
  ASSERT_TRUE(decode_run_plan(encode_run_plan(plain), &decoded));
  EXPECT_FALSE(decoded.tls.has_value());
  EXPECT_TRUE(decoded.keepalive);
  EXPECT_EQ(decoded.io_backend, net::IoBackend::kEpoll);
  // An unknown backend number is refused, not cast.
  std::string bad = encode_run_plan(plain);
  bad.back() = 7;
  EXPECT_FALSE(decode_run_plan(bad, &decoded));
}

TEST(WireTest, RunPlanRejectsNonsense) {
  engine::RunPlan unchanged = sample_plan();
  auto rejects = [&](const engine::RunPlan& bad) {
    engine::RunPlan out = unchanged;
    EXPECT_FALSE(decode_run_plan(encode_run_plan(bad), &out));
    expect_plans_equal(out, unchanged);
  };
  engine::RunPlan p = sample_plan();
  p.rate = std::nan("");
  rejects(p);
  p.rate = -1;
  rejects(p);
  p.rate = std::numeric_limits<double>::infinity();
  rejects(p);
  p = sample_plan();
  p.worker_count = 0;
  p.worker_index = 0;
  rejects(p);
  p = sample_plan();
  p.worker_index = p.worker_count;
  rejects(p);

  engine::RunPlan out;
  EXPECT_FALSE(decode_run_plan(encode_run_plan(sample_plan()) + "x", &out));  // trailing bytes
}

TEST(WireTest, SnapshotRoundTrip) {
  const metrics::Snapshot s = sample_snapshot();
  metrics::Snapshot decoded;
  decoded.requests = 99;  // overwritten completely
  ASSERT_TRUE(decode_snapshot(encode_snapshot(s), &decoded));
  EXPECT_EQ(decoded, s);
  EXPECT_EQ(decoded.latency.value_at(0.99), s.latency.value_at(0.99));

  const metrics::Snapshot empty;
  ASSERT_TRUE(decode_snapshot(encode_snapshot(empty), &decoded));
  EXPECT_EQ(decoded, empty);
}

TEST(WireTest, Http2PlanAndFrameCountsRoundTrip) {
  engine::RunPlan plan = sample_plan();
  plan.http2 = true;
  plan.streams = 100;
  plan.h2_window = 1 << 20;
  plan.h2_header_table = 0;
  plan.request.method = "POST";
  plan.request.scheme = "https";
  plan.request.authority = "example.test:8443";
  plan.request.path = "/a?b=c";
  plan.request.headers = {{"X-A", "1"}, {"x-b", ""}};
  plan.request.body = std::string("\0body", 5);
  engine::RunPlan decoded;
  ASSERT_TRUE(decode_run_plan(encode_run_plan(plan), &decoded));
  EXPECT_TRUE(decoded.http2);
  EXPECT_EQ(decoded.streams, 100u);
  EXPECT_EQ(decoded.h2_window, 1u << 20);
  EXPECT_EQ(decoded.h2_header_table, 0u);
  EXPECT_EQ(decoded.request, plan.request);
  plan.streams = 0;  // a worker cannot run zero streams per connection
  EXPECT_FALSE(decode_run_plan(encode_run_plan(plan), &decoded));

  metrics::Snapshot s = sample_snapshot();
  s.h2_goaway[0] = 2;
  s.h2_goaway[0xb] = 1;
  s.h2_rst_stream[8] = 40;
  s.h2_rst_stream[0x1234] = 1;
  metrics::Snapshot back;
  ASSERT_TRUE(decode_snapshot(encode_snapshot(s), &back));
  EXPECT_EQ(back, s);
  metrics::Snapshot merged = s;
  merged.merge(s);
  EXPECT_EQ(merged.h2_rst_stream[8], 80u);
}

TEST(WireTest, GrpcPlanAndStatusCountsRoundTrip) {
  engine::RunPlan plan = sample_plan();
  plan.http2 = true;
  plan.grpc = true;
  plan.grpc_server_streaming = true;
  plan.request.method = "POST";
  plan.request.path = "/millstone.test.Greeter/Updates";
  plan.request.body = std::string("\0\0\0\0\x02\x10\x03", 7);
  engine::RunPlan decoded;
  ASSERT_TRUE(decode_run_plan(encode_run_plan(plan), &decoded));
  EXPECT_TRUE(decoded.grpc);
  EXPECT_TRUE(decoded.grpc_server_streaming);
  EXPECT_EQ(decoded.request, plan.request);

  metrics::Snapshot s = sample_snapshot();
  s.grpc_status[0] = 900;
  s.grpc_status[14] = 100;
  s.grpc_status[99] = 1;
  s.grpc_messages = 2'700;
  metrics::Snapshot back;
  ASSERT_TRUE(decode_snapshot(encode_snapshot(s), &back));
  EXPECT_EQ(back, s);
  EXPECT_EQ(back.grpc_failures(), 101u);
  s.merge(back);
  EXPECT_EQ(s.grpc_status[14], 200u);
  EXPECT_EQ(s.grpc_messages, 5'400u);
}

metrics::Snapshot socket_snapshot() {
  metrics::Snapshot s = sample_snapshot();
  metrics::SocketStats& k = s.sockets.emplace();
  k.connected = 70'000;
  k.messages_in = uint64_t{1} << 35;
  k.messages_out = 12;
  k.bytes_in = UINT64_MAX;
  k.bytes_out = 300;
  k.unmatched = 4;
  k.unsolicited = 5;
  k.add_disconnect(metrics::DisconnectCause::kServerClose);
  k.add_disconnect(metrics::DisconnectCause::kProtocolError);
  k.add_disconnect(metrics::DisconnectCause::kLocalClose);
  k.close_codes[1000] = 3;
  k.close_codes[1008] = 1;
  k.close_codes[4999] = 2;
  k.open = 100'000;
  for (uint64_t v : {1u, 150u, 2000u, 70000u})
    k.connect_time.record(v);
  k.handshake_time.record(900);
  k.first_message.record(200'000);
  for (uint64_t v = 1; v < 100'000; v *= 3)
    k.delivery.record(v);
  k.delivery_invalid = 6;
  return s;
}

TEST(WireTest, SnapshotWithSocketsRoundTrip) {
  const metrics::Snapshot s = socket_snapshot();
  metrics::Snapshot decoded;
  ASSERT_TRUE(decode_snapshot(encode_snapshot(s), &decoded));
  ASSERT_TRUE(decoded.sockets.has_value());
  EXPECT_EQ(decoded, s);
  EXPECT_EQ(decoded.sockets->delivery.value_at(0.5), s.sockets->delivery.value_at(0.5));

  // An empty socket section is still present after the round trip.
  metrics::Snapshot empty;
  empty.sockets.emplace();
  ASSERT_TRUE(decode_snapshot(encode_snapshot(empty), &decoded));
  EXPECT_EQ(decoded, empty);

  const std::string bytes = encode_snapshot(s);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_snapshot(std::string_view(bytes).substr(0, n), &decoded)) << n;
  }
  EXPECT_FALSE(decode_snapshot(bytes + "x", &decoded));
}

TEST(WireTest, SnapshotRejectsBadSocketSection) {
  metrics::Snapshot plain;
  std::string bytes = encode_snapshot(plain);
  // The presence flag, before the GOAWAY, RST_STREAM and grpc-status maps
  // (empty: one byte each), the gRPC message count (0: one byte) and the
  // generator's load (seven zeros: one byte each).
  const size_t flag = bytes.size() - 12;
  ASSERT_EQ(bytes[flag], '\0');
  bytes[flag] = 2;  // neither absent nor present
  metrics::Snapshot out;
  EXPECT_FALSE(decode_snapshot(bytes, &out));

  // Close codes out of order (a duplicate) are rejected, like statuses.
  metrics::Snapshot s;
  s.sockets.emplace().close_codes = {{1000, 1}, {1001, 1}};
  std::string payload = encode_snapshot(s);
  // 1000 = e8 07, 1001 = e9 07: make the second code equal the first.
  const size_t at = payload.find("\xe9\x07");
  ASSERT_NE(at, std::string::npos);
  payload[at] = '\xe8';
  EXPECT_FALSE(decode_snapshot(payload, &out));
}

TEST(WireTest, SnapshotRejectsInconsistentCounts) {
  metrics::Snapshot s = sample_snapshot();
  s.errors += 1;  // no longer the sum of error_counts
  metrics::Snapshot out;
  EXPECT_FALSE(decode_snapshot(encode_snapshot(s), &out));
  EXPECT_EQ(out, metrics::Snapshot());

  // A peer with a different list of error causes.
  std::string payload;
  Encoder e(&payload);
  e.put_varint(0);                              // interval
  e.put_varint(0);                              // requests
  e.put_varint(0);                              // errors
  e.put_varint(metrics::kErrorCauseCount + 1);  // causes
  for (size_t i = 0; i <= metrics::kErrorCauseCount; ++i)
    e.put_varint(0);
  EXPECT_FALSE(decode_snapshot(payload, &out));
}

TEST(WireTest, SnapshotRejectsDuplicateStatuses) {
  metrics::Snapshot s;
  s.status_counts[200] = 1;
  s.status_counts[201] = 1;
  std::string payload = encode_snapshot(s);
  // Statuses follow the 3 header varints, the cause count and the causes
  // (all one byte here) and the pair count: patch 201 into 200.
  const size_t first_status = 3 + 1 + metrics::kErrorCauseCount + 1;
  ASSERT_EQ(static_cast<uint8_t>(payload[first_status]), 200);
  ASSERT_EQ(static_cast<uint8_t>(payload[first_status + 1]), 1);  // 200 is a 2-byte varint
  payload[first_status + 3] = payload[first_status];
  payload[first_status + 4] = payload[first_status + 1];
  metrics::Snapshot out;
  EXPECT_FALSE(decode_snapshot(payload, &out));
}

TEST(WireTest, EveryTruncationIsRejected) {
  const std::string plan = encode_run_plan(sample_plan());
  const std::string snap = encode_snapshot(sample_snapshot());
  engine::RunPlan p;
  metrics::Snapshot s;
  for (size_t n = 0; n < plan.size(); ++n) {
    EXPECT_FALSE(decode_run_plan(std::string_view(plan).substr(0, n), &p)) << n;
  }
  for (size_t n = 0; n < snap.size(); ++n) {
    EXPECT_FALSE(decode_snapshot(std::string_view(snap).substr(0, n), &s)) << n;
  }
}

TEST(WireTest, GarbageNeverCrashes) {
  std::mt19937_64 rng(99);
  const std::string valid = encode_snapshot(sample_snapshot());
  engine::RunPlan p;
  metrics::Snapshot s;
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 64);
      for (char& c : bytes)
        c = static_cast<char>(rng());
    } else {
      bytes = valid;  // valid prefix with a few flipped bytes reaches deeper
      for (int k = 0; k < 3; ++k)
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    decode_run_plan(bytes, &p);
    if (decode_snapshot(bytes, &s)) {
      metrics::Snapshot again;
      ASSERT_TRUE(decode_snapshot(encode_snapshot(s), &again));
      EXPECT_EQ(again, s);
    }
  }
}

Hello sample_hello() {
  Hello h;
  h.build_version = "0.9.1";
  h.worker_index = 3;
  h.host = "load-7";
  h.cores = 16;
  h.fd_limit = 1'048'576;
  h.pid = 4242;
  return h;
}

TEST(WireTest, HelloAndError) {
  const Hello h = sample_hello();
  Hello got;
  ASSERT_TRUE(decode_hello(encode_hello(h), &got));
  EXPECT_EQ(got, h);
  EXPECT_FALSE(decode_hello("\x01\x00\x00", &got));
  EXPECT_FALSE(decode_hello(encode_hello(h) + "x", &got));
  std::string text;
  ASSERT_TRUE(decode_error(encode_error("connect: refused"), &text));
  EXPECT_EQ(text, "connect: refused");
  EXPECT_FALSE(
      decode_error("\x05"
                   "ab",
                   &text));
}

TEST(WireTest, LocalHelloDescribesThisProcess) {
  const Hello h = local_hello(5);
  EXPECT_EQ(h.protocol_version, kProtocolVersion);
  EXPECT_EQ(h.build_version, MILLSTONE_VERSION);
  EXPECT_EQ(h.worker_index, 5u);
  EXPECT_GT(h.cores, 0u);
  EXPECT_GT(h.fd_limit, 0u);
  EXPECT_EQ(h.pid, static_cast<uint64_t>(getpid()));
}

// The prefix (u32 version, build string) is readable from any version's Hello,
// including version 3's (u32 version, u32 worker index), so a mismatch can be named.
TEST(WireTest, HelloVersionsAreReadableAcrossVersions) {
  uint32_t protocol = 0;
  std::string build;
  ASSERT_TRUE(decode_hello_versions(encode_hello(sample_hello()), &protocol, &build));
  EXPECT_EQ(protocol, kProtocolVersion);
  EXPECT_EQ(build, "0.9.1");
  const std::string version3("\x03\x00\x00\x00\x01\x00\x00\x00", 8);
  build.clear();
  ASSERT_TRUE(decode_hello_versions(version3, &protocol, &build));
  EXPECT_EQ(protocol, 3u);
  EXPECT_EQ(build, "");
  Hello full;
  EXPECT_FALSE(decode_hello(version3, &full));
  EXPECT_FALSE(decode_hello_versions("\x04\x00", &protocol, &build));
}

TEST(WireTest, StartRoundTrip) {
  Start start;
  start.start_ns = 123'456'789'012;
  start.plan = sample_plan();
  start.data_files = {{"data/users.csv", "name\nann\nbob\n"}, {"data/ids.json", "[{\"id\":1}]"}};
  Start got;
  ASSERT_TRUE(decode_start(encode_start(start), &got));
  EXPECT_EQ(got.start_ns, start.start_ns);
  EXPECT_EQ(encode_run_plan(got.plan), encode_run_plan(start.plan));
  EXPECT_EQ(got.data_files, start.data_files);
  // Two files under one path would leave the worker to guess.
  start.data_files.push_back(start.data_files.front());
  EXPECT_FALSE(decode_start(encode_start(start), &got));
  start.data_files.pop_back();
  const std::string encoded = encode_start(start);
  for (size_t n = 0; n < encoded.size(); ++n)
    EXPECT_FALSE(decode_start(encoded.substr(0, n), &got)) << n;
  EXPECT_FALSE(decode_start(encoded + "x", &got));
}

// An agent's Start: the run's totals and its range of the fleet's shares.
TEST(WireTest, AgentStartCarriesItsShareRange) {
  Start start;
  start.start_ns = 5;
  start.plan = sample_plan();
  start.plan.worker_index = 3;
  start.plan.worker_count = 8;
  start.local_workers = 5;
  Start got;
  ASSERT_TRUE(decode_start(encode_start(start), &got));
  EXPECT_EQ(got.local_workers, 5u);
  EXPECT_EQ(got.plan.worker_index, 3u);
  // Shares 3..8 of 8 do not exist.
  start.local_workers = 6;
  EXPECT_FALSE(decode_start(encode_start(start), &got));
}

TEST(WireTest, AckAndDoneRoundTrip) {
  Ack ack{987'654'321};
  Ack got_ack;
  ASSERT_TRUE(decode_ack(encode_ack(ack), &got_ack));
  EXPECT_EQ(got_ack, ack);
  EXPECT_FALSE(decode_ack("1234567", &got_ack));
  Done done{3, 65536, {"worker 2 (pid 41) killed by signal 9 (Killed)"}};
  Done got_done;
  ASSERT_TRUE(decode_done(encode_done(done), &got_done));
  EXPECT_EQ(got_done, done);
  Done plain{1, 2, {}};
  ASSERT_TRUE(decode_done(encode_done(plain), &got_done));
  EXPECT_EQ(got_done, plain);
  EXPECT_FALSE(decode_done("", &got_done));
  EXPECT_FALSE(decode_done(encode_done(done) + "x", &got_done));
  EXPECT_STREQ(message_type_name(MessageType::kAck), "ack");
}

TEST(WireTest, FrameLayout) {
  const std::string frame = encode_frame(MessageType::kError, "abc");
  EXPECT_EQ(frame, std::string("\x03\x00\x00\x00\x05"
                               "abc",
                               8));
  EXPECT_EQ(encode_frame(MessageType::kStop, ""), std::string("\0\0\0\0\x03", 5));
  EXPECT_TRUE(encode_frame(MessageType::kStart, std::string(kMaxPayloadSize + 1, 'x')).empty());
  EXPECT_STREQ(message_type_name(MessageType::kSnapshot), "snapshot");
  EXPECT_STREQ(message_type_name(static_cast<MessageType>(99)), "unknown");
}

TEST(WireTest, FramesSplitByteByByte) {
  const std::string plan = encode_run_plan(sample_plan());
  const std::string snap = encode_snapshot(sample_snapshot());
  const std::string stream =
      encode_frame(MessageType::kHello, encode_hello(sample_hello())) +
      encode_frame(MessageType::kStart, plan) + encode_frame(MessageType::kStop, "") +
      encode_frame(MessageType::kSnapshot, snap) + encode_frame(MessageType::kDone, "");
  FrameReader reader;
  std::vector<std::pair<MessageType, std::string>> frames;
  for (char c : stream) {
    reader.append(&c, 1);
    MessageType type{};
    std::string payload;
    FrameReader::Next next;
    while ((next = reader.next(&type, &payload)) == FrameReader::Next::kFrame) {
      frames.emplace_back(type, payload);
    }
    ASSERT_EQ(next, FrameReader::Next::kNeedMore);
  }
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_EQ(frames[0].first, MessageType::kHello);
  EXPECT_EQ(frames[1].first, MessageType::kStart);
  EXPECT_EQ(frames[1].second, plan);
  EXPECT_EQ(frames[2].first, MessageType::kStop);
  EXPECT_EQ(frames[2].second, "");
  EXPECT_EQ(frames[3].first, MessageType::kSnapshot);
  EXPECT_EQ(frames[3].second, snap);
  EXPECT_EQ(frames[4].first, MessageType::kDone);
  EXPECT_EQ(reader.buffered(), 0u);

  metrics::Snapshot decoded;
  ASSERT_TRUE(decode_snapshot(frames[3].second, &decoded));
  EXPECT_EQ(decoded, sample_snapshot());
}

TEST(WireTest, ManyFramesInOneAppend) {
  std::string stream;
  for (int i = 0; i < 100; ++i)
    stream += encode_frame(MessageType::kError, encode_error("e"));
  FrameReader reader;
  reader.append(stream.data(), stream.size() - 1);  // last frame incomplete
  MessageType type{};
  std::string payload;
  int frames = 0;
  while (reader.next(&type, &payload) == FrameReader::Next::kFrame)
    ++frames;
  EXPECT_EQ(frames, 99);
  reader.append(stream.data() + stream.size() - 1, 1);
  EXPECT_EQ(reader.next(&type, &payload), FrameReader::Next::kFrame);
  EXPECT_EQ(reader.next(&type, &payload), FrameReader::Next::kNeedMore);
}

TEST(WireTest, OversizeFrameRejectedFromHeaderAlone) {
  FrameReader reader;
  std::string header;
  Encoder e(&header);
  e.put_u32(static_cast<uint32_t>(kMaxPayloadSize + 1));
  e.put_u8(static_cast<uint8_t>(MessageType::kSnapshot));
  reader.append(header.data(), header.size());
  MessageType type{};
  std::string payload;
  EXPECT_EQ(reader.next(&type, &payload), FrameReader::Next::kError);
  EXPECT_NE(reader.error().find("exceeds"), std::string::npos) << reader.error();
  // Errors are final.
  const std::string ok = encode_frame(MessageType::kStop, "");
  reader.append(ok.data(), ok.size());
  EXPECT_EQ(reader.next(&type, &payload), FrameReader::Next::kError);

  FrameReader at_limit;
  std::string limit_header;
  Encoder(&limit_header).put_u32(static_cast<uint32_t>(kMaxPayloadSize));
  limit_header.push_back(static_cast<char>(MessageType::kSnapshot));
  at_limit.append(limit_header.data(), limit_header.size());
  EXPECT_EQ(at_limit.next(&type, &payload), FrameReader::Next::kNeedMore);
}

TEST(WireTest, UnknownMessageTypeRejected) {
  for (uint8_t bad : {uint8_t{0}, uint8_t{11}, uint8_t{255}}) {
    FrameReader reader;
    const char frame[] = {0, 0, 0, 0, static_cast<char>(bad)};
    reader.append(frame, sizeof frame);
    MessageType type{};
    std::string payload;
    EXPECT_EQ(reader.next(&type, &payload), FrameReader::Next::kError);
    EXPECT_EQ(reader.error(), "unknown message type " + std::to_string(bad));
  }
}

TEST(WireTest, AgentLinkMessagesRoundTripAndRejectTheMalformed) {
  for (const Ping& ping : {Ping{123, false, 0, 0}, Ping{-5, true, -2'500'000'000, 40'000}}) {
    Ping again;
    ASSERT_TRUE(decode_ping(encode_ping(ping), &again));
    EXPECT_EQ(again, ping);
    EXPECT_FALSE(decode_ping(encode_ping(ping) + "x", &again));
  }
  Ping ping;
  std::string negative_rtt = encode_ping(Ping{1, true, 2, 0});
  negative_rtt.back() = '\x80';  // the rtt's top byte: above INT64_MAX
  EXPECT_FALSE(decode_ping(negative_rtt, &ping));
  const Pong pong{1, -2, 3};
  Pong again;
  ASSERT_TRUE(decode_pong(encode_pong(pong), &again));
  EXPECT_EQ(again, pong);
  EXPECT_FALSE(decode_pong(encode_pong(pong).substr(1), &again));
  std::string mac;
  EXPECT_TRUE(decode_proof(std::string(kProofSize, 'm'), &mac));
  EXPECT_FALSE(decode_proof(std::string(kProofSize - 1, 'm'), &mac));
  EXPECT_STREQ(message_type_name(MessageType::kProof), "proof");
  EXPECT_STREQ(message_type_name(MessageType::kPing), "ping");
  EXPECT_STREQ(message_type_name(MessageType::kPong), "pong");
}

}  // namespace wire_test
}  // namespace millstone::cluster
