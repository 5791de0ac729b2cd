#pragma once
// What one worker process must do: built once by the coordinator from the
// command line, sent to each worker (locally over a socketpair, later to remote
// agents over TCP), and never changed while the run goes on.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/request_spec.h"
#include "net/io_backend.h"
#include "tls/options.h"

namespace millstone::engine {

struct RunPlan {
  // Target, already resolved by the coordinator (numeric address, no DNS in workers).
  std::string address;  // "127.0.0.1" or "::1"
  uint16_t port = 0;
  std::string url;  // for messages only
  // The complete request, serialized once; every request of the run is these bytes.
  std::string request_bytes;
  bool head_request = false;  // HEAD responses carry no body
  // https: TLS for every connection, with the CA, certificate and key as PEM
  // text (the *_pem fields), read once by the coordinator: a remote agent has
  // no access to its files. The file names stay for messages.
  std::optional<tls::TlsClientOptions> tls;
  std::string tls_server_name;  // the URL's host: SNI and the name to verify
  // false (--no-keepalive): close after each response and reconnect, so every
  // request pays a TCP connect (and TLS handshake).
  bool keepalive = true;
  // --http2: HTTP/2 (ALPN h2 over TLS, prior knowledge over cleartext) with
  // `streams` requests in flight per connection; the request as a
  // protocol-neutral spec that the HTTP/2 session encodes (request_bytes is
  // HTTP/1.1's encoding and unused then).
  bool http2 = false;
  uint32_t streams = 1;
  uint32_t h2_window = 65'535;       // SETTINGS_INITIAL_WINDOW_SIZE
  uint32_t h2_header_table = 4'096;  // SETTINGS_HEADER_TABLE_SIZE
  http::RequestSpec request;
  // `millstone grpc` (docs/grpc.md): the HTTP/2 request is a unary gRPC call
  // (its body one length-prefixed message, encoded once by the coordinator);
  // answers are judged as gRPC and counted by grpc-status.
  bool grpc = false;
  // A server-streaming method: any number of response messages per call.
  bool grpc_server_streaming = false;

  uint32_t connections = 1;  // this worker's share of -c
  double rate = 0.0;         // this worker's requests per second; 0 = closed model
  uint64_t duration_ms = 10'000;
  uint64_t timeout_ms = 10'000;  // per request, from send to complete response
  uint64_t connect_timeout_ms = 5'000;
  // Numeric local addresses to spread connections over (--source-address, or
  // 127.0.0.x chosen by the coordinator for loopback targets); empty = any.
  std::vector<std::string> source_addresses;
  uint32_t worker_index = 0;
  uint32_t worker_count = 1;
  // --io: what drives the workers' event loops (net/io_backend.h).
  net::IoBackend io_backend = net::IoBackend::kEpoll;

  // Scenario runs: the scenario file travels as text and every worker
  // compiles it into the same immutable plan (a remote agent has no access
  // to the coordinator's files). The target address/port above is the
  // scenario's target, resolved once by the coordinator. Empty = quick mode.
  std::string scenario_path;      // for messages
  std::string scenario_source;    // the YAML text
  std::string scenario_base_dir;  // where its data files are
  std::string target_override;    // --target URL, replaces the file's target
  // {{ env.NAME }} values the file uses, taken once by the coordinator from -e
  // and its environment: a worker (or remote agent) never reads its own.
  std::vector<std::pair<std::string, std::string>> scenario_parameters;
  // --vus, --duration, --rate given with the file (0 = not given); every
  // worker applies them while compiling, as the coordinator did.
  uint32_t scenario_vus = 0;
  uint64_t scenario_duration_us = 0;
  double scenario_rate = 0;
};

}  // namespace millstone::engine
