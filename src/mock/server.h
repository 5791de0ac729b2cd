#pragma once
// The mock server's runtime: N worker processes, each with its own event loop,
// sharing the listening sockets the parent opened (exclusive: a second server
// on the same address fails with "address already in use"), answering from
// the immutable MockConfig. What each worker served is counted
// in shared memory, one row per worker, so any worker can report the totals.
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "mock/config.h"
#include "mock/h2_connection.h"
#include "net/socket.h"
#include "tls/server_context.h"

namespace millstone::mock {

inline constexpr const char* kStatsPath = "/__millstone/stats";

struct ServerOptions {
  net::Endpoint listen;
  uint32_t workers = 1;
  bool print_stats_on_exit = true;  // per-route counts to stdout at shutdown
  bool announce = true;             // "listening on ..." line on stdout
  // Non-null: the HTTP listener speaks TLS (HTTPS, and /__millstone/stats
  // over it). Built by the caller before the workers fork; each inherits it.
  const tls::TlsServerContext* tls = nullptr;
  // A TLS client that has not finished its handshake by then is closed
  // (counted as a failed handshake, cause "timeout").
  int64_t tls_handshake_timeout_us = 10'000'000;
  // Where the certificate's PEM was written (for the listening line), if anywhere.
  std::string tls_certificate_out;
  // HTTP/2 on the same listener: h2c by prior knowledge, h2 by ALPN (the TLS
  // context must offer "h2" for that).
  H2Options http2;
  // Non-empty: the control API's changes (PATCH, POST, DELETE under
  // /__millstone/) need "Authorization: Bearer <token>" (docs/mock.md#control-api).
  std::string control_token;
};

enum class ServerExit {
  kStopped,       // by SIGINT or SIGTERM
  kCannotListen,  // an address is in use or cannot be bound (said on stderr)
  kFailed,        // a worker could not start or ended unexpectedly (said on stderr)
};

// Runs until SIGINT or SIGTERM. Errors at start-up (port in use...) are
// printed as one line on stderr.
ServerExit run_mock_server(const MockConfig& config, const ServerOptions& options);

// For the demo and tests: runs the server in a child process and returns once
// it listens. *bound receives the address actually bound (port 0 = any free
// port). Returns the child's pid, or -1 with *error set.
pid_t start_mock_server(const MockConfig& config, ServerOptions options, net::Endpoint* bound,
                        std::string* error);
// SIGTERM, then wait. Returns the child's exit status as from waitpid.
int stop_mock_server(pid_t pid);

}  // namespace millstone::mock
