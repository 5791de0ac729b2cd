#include "metrics/snapshot.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace millstone::metrics {
namespace snapshot_test {

TEST(SnapshotTest, ErrorCauseNamesAreStableAndUnique) {
  EXPECT_STREQ(error_cause_name(ErrorCause::kConnectRefused), "connect_refused");
  EXPECT_STREQ(error_cause_name(ErrorCause::kConnectTimeout), "connect_timeout");
  EXPECT_STREQ(error_cause_name(ErrorCause::kConnectOther), "connect_error");
  EXPECT_STREQ(error_cause_name(ErrorCause::kReset), "reset");
  EXPECT_STREQ(error_cause_name(ErrorCause::kClosed), "closed");
  EXPECT_STREQ(error_cause_name(ErrorCause::kTimeout), "timeout");
  EXPECT_STREQ(error_cause_name(ErrorCause::kMalformedStatus), "malformed_status");
  EXPECT_STREQ(error_cause_name(ErrorCause::kMalformedHeader), "malformed_header");
  EXPECT_STREQ(error_cause_name(ErrorCause::kHeaderTooLarge), "header_too_large");
  EXPECT_STREQ(error_cause_name(ErrorCause::kBadChunk), "bad_chunk");
  EXPECT_STREQ(error_cause_name(ErrorCause::kShortBody), "short_body");
  EXPECT_STREQ(error_cause_name(ErrorCause::kUnexpectedData), "unexpected_data");
  EXPECT_STREQ(error_cause_name(ErrorCause::kIoOther), "io_error");
  EXPECT_STREQ(error_cause_name(ErrorCause::kTlsCertificateExpired), "tls_certificate_expired");
  EXPECT_STREQ(error_cause_name(ErrorCause::kTlsCertificateHostname), "tls_certificate_hostname");
  EXPECT_STREQ(error_cause_name(ErrorCause::kTlsCertificateUntrusted), "tls_certificate_untrusted");
  EXPECT_STREQ(error_cause_name(ErrorCause::kTlsCertificate), "tls_certificate");
  EXPECT_STREQ(error_cause_name(ErrorCause::kTlsProtocolVersion), "tls_protocol_version");
  EXPECT_STREQ(error_cause_name(ErrorCause::kTlsAlertReceived), "tls_alert_received");
  EXPECT_STREQ(error_cause_name(ErrorCause::kTlsHandshake), "tls_handshake");
  EXPECT_STREQ(error_cause_name(ErrorCause::kMessageTimeout), "message_timeout");
  EXPECT_STREQ(error_cause_name(ErrorCause::kUnmatchedMessage), "unmatched_message");
  EXPECT_STREQ(error_cause_name(ErrorCause::kAmqpError), "amqp_error");
  EXPECT_STREQ(error_cause_name(ErrorCause::kPublishNacked), "publish_nacked");
  EXPECT_STREQ(error_cause_name(ErrorCause::kDuplicateMessage), "duplicate_message");
  EXPECT_STREQ(error_cause_name(ErrorCause::kOutOfOrderMessage), "out_of_order_message");
  EXPECT_STREQ(error_cause_name(ErrorCause::kPollTimeout), "poll_timeout");
  EXPECT_STREQ(error_cause_name(ErrorCause::kCount), "unknown");
  std::set<std::string> names;
  for (size_t i = 0; i < kErrorCauseCount; ++i) {
    names.insert(error_cause_name(static_cast<ErrorCause>(i)));
  }
  EXPECT_EQ(names.size(), kErrorCauseCount);
}

Snapshot sample(uint64_t interval, uint64_t scale) {
  Snapshot s;
  s.interval_index = interval;
  s.requests = 10 * scale;
  s.add_error(ErrorCause::kTimeout, scale);
  s.add_error(ErrorCause::kReset);
  s.status_counts[200] = 9 * scale;
  s.status_counts[503] = scale;
  s.bytes_sent = 1000 * scale;
  s.bytes_received = 5000 * scale;
  s.connections_opened = scale;
  s.scheduled = 11 * scale;
  s.started_late = scale;
  s.not_started = 1;
  s.max_schedule_lag_us = 100 * scale;
  for (uint64_t i = 0; i < s.requests; ++i)
    s.latency.record(1000 * scale + i);
  return s;
}

TEST(SnapshotTest, MergeAddsCountersAndKeepsMaxima) {
  Snapshot a = sample(3, 1);
  const Snapshot b = sample(5, 2);
  a.merge(b);
  EXPECT_EQ(a.interval_index, 5u);
  EXPECT_EQ(a.requests, 30u);
  EXPECT_EQ(a.errors, 5u);
  EXPECT_EQ(a.error_counts[static_cast<size_t>(ErrorCause::kTimeout)], 3u);
  EXPECT_EQ(a.error_counts[static_cast<size_t>(ErrorCause::kReset)], 2u);
  EXPECT_EQ(a.status_counts.at(200), 27u);
  EXPECT_EQ(a.status_counts.at(503), 3u);
  EXPECT_EQ(a.bytes_sent, 3000u);
  EXPECT_EQ(a.bytes_received, 15000u);
  EXPECT_EQ(a.connections_opened, 3u);
  EXPECT_EQ(a.scheduled, 33u);
  EXPECT_EQ(a.started_late, 3u);
  EXPECT_EQ(a.not_started, 2u);
  EXPECT_EQ(a.max_schedule_lag_us, 200u);
  EXPECT_EQ(a.latency.count(), 30u);
  EXPECT_EQ(a.latency.min(), 1000u);
  EXPECT_EQ(a.latency.max(), 2019u);
}

TEST(SnapshotTest, MergeIntoEmptyIsCopy) {
  Snapshot total;
  const Snapshot s = sample(4, 3);
  total.merge(s);
  EXPECT_EQ(total, s);
}

TEST(SnapshotTest, ClearResetsToDefault) {
  Snapshot s = sample(9, 2);
  s.clear();
  EXPECT_EQ(s, Snapshot());
}

SocketStats socket_sample(uint64_t k) {
  SocketStats s;
  s.connected = k;
  s.messages_in = 10 * k;
  s.messages_out = 2 * k;
  s.bytes_in = 100 * k;
  s.bytes_out = 20 * k;
  s.unmatched = k;
  s.unsolicited = 3 * k;
  s.add_disconnect(DisconnectCause::kServerClose);
  s.add_disconnect(DisconnectCause::kTimeout);
  s.close_codes[1000] = k;
  s.close_codes[static_cast<uint16_t>(4000 + k)] = 1;
  s.open = k;
  s.connect_time.record(100 * k);
  s.handshake_time.record(200 * k);
  s.first_message.record(300 * k);
  s.delivery.record(400 * k);
  s.delivery.record(500 * k);
  s.delivery_invalid = 7 * k;
  return s;
}

TEST(SnapshotTest, SocketStatsMergeExactly) {
  Snapshot a;
  Snapshot b;
  b.sockets = socket_sample(2);
  a.merge(b);  // absent + present = a copy
  ASSERT_TRUE(a.sockets.has_value());
  EXPECT_EQ(*a.sockets, socket_sample(2));
  Snapshot c;
  c.sockets = socket_sample(3);
  a.merge(c);
  const SocketStats& s = *a.sockets;
  EXPECT_EQ(s.connected, 5u);
  EXPECT_EQ(s.messages_in, 50u);
  EXPECT_EQ(s.messages_out, 10u);
  EXPECT_EQ(s.bytes_in, 500u);
  EXPECT_EQ(s.bytes_out, 100u);
  EXPECT_EQ(s.unmatched, 5u);
  EXPECT_EQ(s.unsolicited, 15u);
  EXPECT_EQ(s.disconnects[static_cast<size_t>(DisconnectCause::kServerClose)], 2u);
  EXPECT_EQ(s.disconnects[static_cast<size_t>(DisconnectCause::kTimeout)], 2u);
  EXPECT_EQ(s.disconnects[static_cast<size_t>(DisconnectCause::kReset)], 0u);
  EXPECT_EQ(s.close_codes.at(1000), 5u);
  EXPECT_EQ(s.close_codes.at(4002), 1u);
  EXPECT_EQ(s.close_codes.at(4003), 1u);
  EXPECT_EQ(s.open, 5u);
  EXPECT_EQ(s.connect_time.count(), 2u);
  EXPECT_EQ(s.delivery.count(), 4u);
  EXPECT_EQ(s.delivery.max(), 1500u);
  EXPECT_EQ(s.delivery_invalid, 35u);
  EXPECT_EQ(s.first_message.min(), 600u);

  // A snapshot without sockets leaves them as they are.
  Snapshot before = a;
  a.merge(Snapshot());
  EXPECT_EQ(a, before);

  // Clearing keeps the section (the run has socket steps) but zeroes it.
  a.clear();
  ASSERT_TRUE(a.sockets.has_value());
  EXPECT_EQ(*a.sockets, SocketStats());
}

TEST(SnapshotTest, DisconnectCauseNamesAreStableAndUnique) {
  std::set<std::string> names;
  for (size_t i = 0; i < kDisconnectCauseCount; ++i) {
    names.insert(disconnect_cause_name(static_cast<DisconnectCause>(i)));
  }
  EXPECT_EQ(names.size(), kDisconnectCauseCount);
  EXPECT_STREQ(disconnect_cause_name(DisconnectCause::kServerClose), "server_close");
  EXPECT_STREQ(disconnect_cause_name(DisconnectCause::kProtocolError), "protocol_error");
  EXPECT_STREQ(disconnect_cause_name(DisconnectCause::kCount), "unknown");
}

TEST(SnapshotTest, MergeAddsConnectionsEstablishedInFlightAndPeaks) {
  Snapshot a;
  a.connections_opened = 10;
  a.connections_established = 7;
  a.in_flight = 2;
  a.peak_vus = 5;
  Snapshot b = a;
  a.merge(b);
  EXPECT_EQ(a.connections_established, 14u);
  EXPECT_EQ(a.in_flight, 4u);
  EXPECT_EQ(a.peak_vus, 10u) << "two workers' peaks of the same second add";
  a.clear();
  EXPECT_EQ(a, Snapshot{});
}

TEST(SnapshotTest, FailuresAreTransportErrorsPlusHttpFailuresOverAttempts) {
  Snapshot s;
  s.requests = 1000;
  s.status_counts[200] = 955;
  s.status_counts[404] = 5;
  s.status_counts[500] = 40;
  Failures f = s.failures();
  EXPECT_EQ(f.http_failures, 45u);
  EXPECT_EQ(f.transport_errors, 0u);
  EXPECT_EQ(f.failed, 45u);
  EXPECT_EQ(f.attempts, 1000u);
  EXPECT_DOUBLE_EQ(f.rate(), 0.045);
  s.add_error(ErrorCause::kTimeout, 10);
  f = s.failures();
  EXPECT_EQ(f.transport_errors, 10u);
  EXPECT_EQ(f.attempts, 1010u);
  EXPECT_EQ(f.failed, 55u);
  // Scenario runs count per step, socket steps' own failures included.
  s.steps.resize(2);
  s.steps[0].requests = 1000;
  s.steps[0].errors = 10;
  s.steps[0].failed = 55;
  s.steps[1].requests = 8;
  s.steps[1].errors = 1;
  s.steps[1].failed = 3;
  f = s.failures();
  EXPECT_EQ(f.attempts, 1019u);
  EXPECT_EQ(f.transport_errors, 11u);
  EXPECT_EQ(f.failed, 58u);
  EXPECT_EQ(Snapshot{}.failures().rate(), 0.0);
}

}  // namespace snapshot_test
}  // namespace millstone::metrics

namespace millstone::metrics {
namespace snapshot_test {

TEST(SnapshotTest, GeneratorLoadAddsTimesAndKeepsTheBusiestWorker) {
  Snapshot a;
  a.generator = {900'000, 1'000'000, 990'000, 900, 990, 3'000, 1};
  Snapshot b;
  b.generator = {100'000, 1'000'000, 200'000, 100, 200, 60'000, 0};
  a.merge(b);
  EXPECT_EQ(a.generator, (GeneratorLoad{1'000'000, 2'000'000, 1'190'000, 900, 990, 60'000, 1}));
  a.clear();
  EXPECT_EQ(a.generator, GeneratorLoad{});
  EXPECT_TRUE(saturated(900, 0, 0));
  EXPECT_TRUE(saturated(0, 950, 0));
  EXPECT_TRUE(saturated(0, 0, 100'000));
  EXPECT_FALSE(saturated(899, 949, 99'999));
}

}  // namespace snapshot_test
}  // namespace millstone::metrics
