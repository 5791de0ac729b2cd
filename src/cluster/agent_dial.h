#pragma once
// The agent's side of the link (docs/design/agents.md): dials the
// coordinator, checks that it holds the key the token pins, proves the token,
// takes the clock offset, and retries with backoff (0.5 s doubling to 5 s,
// with jitter) until it succeeds or the deadline passes. Agents dial out, so
// they work behind NAT and in pods, and may start before the coordinator.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cluster/agent_handshake.h"
#include "cluster/agent_link.h"
#include "cluster/agent_tls.h"
#include "cluster/token.h"
#include "net/clock.h"

namespace millstone::cluster {

struct DialOptions {
  // One attempt: connect, TLS, proofs and clock exchange.
  int64_t attempt_timeout_ns = 5 * net::kNsPerSec;
  int64_t first_backoff_ns = 500 * net::kNsPerMs;
  int64_t max_backoff_ns = 5 * net::kNsPerSec;
};

struct DialResult {
  // The TLS context the link's stream was made from: declared first, so it
  // outlives the link (the stream uses its BIO method).
  std::unique_ptr<AgentClientTls> tls;
  std::unique_ptr<AgentLink> link;  // null: every attempt failed until the deadline
  ClockSample clock;                // agent clock - coordinator clock, as measured
  std::string error;                // why the last attempt failed
  int attempts = 0;
};

// The pause before attempt `attempt` + 1 (attempt >= 1): first_backoff doubled
// per attempt up to max_backoff, times a jitter factor from `unit` in [0, 1)
// spread over [0.8, 1.2), so agents restarted together do not dial in step.
int64_t dial_backoff_ns(const DialOptions& options, int attempt, double unit);

// `address` is HOST:PORT ([V6]:PORT); HOST may be a name, resolved anew on
// every attempt. Each failed attempt is one `log` line with the cause and
// the pause before the next. Hello is the caller's to send on the link.
DialResult dial_coordinator(const std::string& address, const Token& token, int64_t deadline_ns,
                            const DialOptions& options,
                            const std::function<void(const std::string&)>& log);

}  // namespace millstone::cluster
