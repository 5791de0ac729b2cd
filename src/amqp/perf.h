#pragma once
// The throughput and latency test of `millstone amqp` (docs/amqp.md), in the
// spirit of RabbitMQ's PerfTest: publisher and consumer connections on one
// event loop, one channel each, a declared exchange, queue and binding;
// publishers paced on a fixed schedule (open model) with publisher confirms,
// consumers with a prefetch window that ack what they get. Each message
// carries the time it was due on this process's monotonic clock, so the
// consumer that receives it measures the end-to-end latency on the same clock.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "amqp/session.h"
#include "metrics/histogram.h"
#include "net/socket.h"

namespace millstone::tls {
class TlsClientContext;
}

namespace millstone::amqp {

// One second of the run, from the start of publishing: what happened in it.
struct PerfSecond {
  uint64_t published = 0;
  uint64_t confirmed = 0;
  uint64_t consumed = 0;
  uint64_t errors = 0;
  uint64_t confirm_p50_us = 0;  // of the confirms in this second; 0 when none
  uint64_t latency_p50_us = 0;  // of the deliveries in this second; 0 when none
};

struct PerfOptions {
  net::Endpoint endpoint;
  // amqps: every connection runs a TLS handshake first. Owned by the caller.
  tls::TlsClientContext* tls = nullptr;
  std::string tls_server_name;  // SNI and the name the certificate must carry
  SessionOptions session;
  uint32_t publishers = 1;
  uint32_t consumers = 1;
  double rate = 0;  // messages per second, all publishers together; 0 = as fast as confirms allow
  uint32_t size = 64;  // body bytes; at least kStampBytes
  int64_t duration_ns = 10'000'000'000;
  int64_t connect_timeout_ns = 5'000'000'000;
  // After publishing stops: how long to wait for confirms and deliveries.
  int64_t drain_ns = 2'000'000'000;
  std::string exchange = "millstone";  // empty: the default exchange (no declare, no bind)
  std::string exchange_type = "direct";
  std::string queue = "millstone-perf";
  std::string routing_key = "millstone-perf";
  bool confirm = true;
  uint32_t confirm_window = 1000;  // unconfirmed messages a publisher may have out
  uint16_t prefetch = 100;         // basic.qos per consumer; 0 = unlimited
  bool persistent = false;         // delivery mode 2
  // Set from a signal handler (Ctrl-C): publishing stops, the run drains and closes.
  const std::atomic<bool>* stop = nullptr;
  // Called on the loop after each second of publishing and draining (the
  // live progress line); `index` counts from 0.
  std::function<void(uint64_t index, const PerfSecond& second)> on_second;
};

// Bytes at the start of every body: the due time (8, little-endian
// nanoseconds), the run's id (8), so a message left in the queue by an
// earlier run is counted but never timed.
inline constexpr uint32_t kStampBytes = 16;

struct PerfResult {
  uint64_t published = 0;  // basic.publish sent
  uint64_t confirmed = 0;  // acked by the broker
  uint64_t nacked = 0;
  uint64_t returned = 0;     // unroutable (mandatory publish came back)
  uint64_t unconfirmed = 0;  // neither acked nor nacked when the run ended or the connection failed
  uint64_t consumed = 0;     // delivered and acked
  uint64_t redelivered = 0;  // of those, flagged redelivered
  uint64_t foreign = 0;      // of those, not stamped by this run: consumed, not timed
  uint64_t held_back = 0;    // publishes due while the confirm window or the socket was full
  uint64_t blocked = 0;      // connection.blocked / channel.flow stops from the broker
  uint64_t connections_opened = 0;
  uint64_t connections_ready = 0;  // open with their channel, declarations and role set up
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  metrics::Histogram confirm_latency;      // due time to broker ack, microseconds
  metrics::Histogram latency;              // due time to delivery at a consumer, microseconds
  std::map<std::string, uint64_t> errors;  // by cause: connect_refused, not_found, ...
  std::vector<std::string> error_samples;  // the first few, in words
  std::vector<PerfSecond> timeline;        // one per second from the start of publishing
  int64_t publish_ns = 0;                  // how long publishing ran (the rates' denominator)
  int64_t elapsed_ns = 0;                  // the whole run: opening, publishing, draining, closing
  double cpu_seconds = 0;                  // this process's user + system time during the run
  bool interrupted = false;
  // Broker facts from the handshake (the first connection that opened).
  std::string broker_product;
  std::string broker_version;
  uint16_t heartbeat_s = 0;
  uint32_t frame_max = 0;

  uint64_t error_count() const {
    uint64_t n = 0;
    for (const auto& [name, count] : errors)
      n += count;
    return n;
  }
};

PerfResult run_perf(const PerfOptions& options);

}  // namespace millstone::amqp
