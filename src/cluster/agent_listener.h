#pragma once
// The coordinator's port for remote agents (docs/design/agents.md): accepts
// connections, runs their handshakes side by side without blocking (TLS 1.3
// with the token's certificate, the proofs, the clock exchange, Hello), and
// hands out agents that passed as ready WorkerLinks. Everything else is
// refused with one log line naming the peer and the cause, and the listener
// goes on:
//
//   plaintext, garbage, an HTTP request   refused P: not TLS (tls_handshake: ...)
//   TLS but no proof or a wrong one       refused P: wrong token (...)
//   a proof replayed from another session refused P: wrong token (...)
//   silent, or dripping bytes             refused P: no handshake within 5 s
//   Hello of another protocol version     refused P: agent speaks protocol version ...
//   more than 64 handshakes at once       closed at once, counted
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/agent_handshake.h"
#include "cluster/agent_link.h"
#include "cluster/token.h"
#include "net/clock.h"
#include "tls/server_context.h"

namespace millstone::cluster {

// The listening socket could not be made (exit code 7).
class AgentListenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct AgentListenerOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT, numeric; port 0 picks one (tests)
  int64_t handshake_timeout_ns = 5 * net::kNsPerSec;
  size_t max_handshakes = 64;  // in progress at once; more are closed at once
  ClockExchangeOptions clock;
};

struct JoinedAgent {
  std::unique_ptr<AgentLink> link;  // its first receive() returns the Hello below
  Hello hello;
  std::string peer;   // "10.0.0.7:40112"
  ClockSample clock;  // offset (agent clock - coordinator clock) and round trip
};

class AgentListener {
 public:
  using Log = std::function<void(const std::string&)>;

  // Throws AgentListenError (cannot listen), TokenError or TlsSetupError.
  AgentListener(const Token& token, AgentListenerOptions options, Log log);
  ~AgentListener();
  AgentListener(const AgentListener&) = delete;
  AgentListener& operator=(const AgentListener&) = delete;

  // The address it listens on, with the port chosen ("127.0.0.1:40001").
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }

  // Accepts and advances handshakes until an agent is admitted (returned) or
  // `deadline_ns` passes (nullopt). With a deadline in the past it makes one
  // pass without waiting.
  std::optional<JoinedAgent> next(int64_t deadline_ns);

  size_t in_progress() const { return pending_.size(); }
  uint64_t refused() const { return refused_; }
  // Connections closed at once because max_handshakes were in progress.
  uint64_t dropped() const { return dropped_; }

 private:
  struct Pending;
  void accept_all(int64_t now_ns);
  void advance(Pending& p, int64_t now_ns);
  void drive_admission(Pending& p, int64_t now_ns);
  void send_all(Pending& p, std::vector<OutFrame>& frames);
  void refuse(Pending& p, const std::string& cause);

  AgentListenerOptions options_;
  Log log_;
  std::string proof_key_;
  std::unique_ptr<tls::TlsServerContext> tls_;
  int listen_fd_ = -1;
  std::string address_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<Pending>> pending_;
  std::deque<JoinedAgent> ready_;
  uint64_t refused_ = 0;
  uint64_t dropped_ = 0;
  int64_t last_drop_log_ns_ = 0;
};

}  // namespace millstone::cluster
