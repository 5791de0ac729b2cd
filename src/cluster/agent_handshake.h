#pragma once
// The agent link's exchange after TLS (docs/design/agents.md), as state
// machines with no I/O: frames in, frames out, times passed in. The listener
// (agent_listener.h) and the dialer (agent_dial.h) drive them over a
// StreamLink; the tests and the fuzzer drive them directly.
//
//   agent: Proof            coordinator: checks it (constant time), then Proof
//   agent: checks it        coordinator: Ping x 8, 20 ms apart (t1)
//   agent: Pong per Ping (t1, t2, t3)      coordinator: t4, keeps the exchange with
//                                          the smallest round trip, sends it in a last Ping
//   agent: Pong, Hello      coordinator: checks the version: admitted
//
// A proof is HMAC-SHA256(proof key, role || exporter) where the exporter is
// 32 bytes of this TLS session's keying material ("millstone agent v1"):
// a proof recorded on one connection is worthless on any other.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/wire.h"
#include "net/clock.h"

namespace millstone::cluster {

inline constexpr std::string_view kExporterLabel = "millstone agent v1";
inline constexpr size_t kExporterSize = 32;
// Largest frame accepted before an agent is admitted: a Proof, Pongs and a
// Hello are a few hundred bytes; an unauthenticated peer is held to this.
inline constexpr size_t kMaxHandshakePayload = 64 * 1024;

enum class ProofRole { kAgent, kCoordinator };
// HMAC-SHA256(proof_key, "agent" or "coordinator" || exporter), kProofSize bytes.
std::string compute_proof(std::string_view proof_key, ProofRole role, std::string_view exporter);
// Constant-time comparison of a received proof with the expected one.
bool proof_matches(std::string_view proof_key, ProofRole role, std::string_view exporter,
                   std::string_view received);

// One ping/pong exchange: t1 and t4 on the coordinator's clock, t2 and t3 on
// the agent's. offset = agent clock - coordinator clock.
struct ClockSample {
  int64_t offset_ns = 0;
  int64_t rtt_ns = 0;
  // The offset is right to within rtt / 2 (the asymmetry the exchange cannot see).
  int64_t error_ns() const { return rtt_ns / 2; }
  friend bool operator==(const ClockSample&, const ClockSample&) = default;
};
// False for times that do not add up (the agent answered before it received,
// a negative round trip, overflow): a peer's bug or a forgery, never a sample.
bool clock_sample(int64_t t1, int64_t t2, int64_t t3, int64_t t4, ClockSample* out);

// The exchange with the smallest round trip wins (NTP's and chrony's rule):
// its offset is the least disturbed by queueing on the way.
class ClockEstimate {
 public:
  void add(const ClockSample& sample);
  bool empty() const { return count_ == 0; }
  size_t count() const { return count_; }
  const ClockSample& best() const { return best_; }

 private:
  ClockSample best_;
  size_t count_ = 0;
};

struct ClockExchangeOptions {
  int pings = 8;
  int64_t interval_ns = 20 * net::kNsPerMs;
};

struct OutFrame {
  MessageType type;
  std::string payload;
};

// The coordinator's side: admits one agent, or says why not.
class AdmitHandshake {
 public:
  enum class State { kAwaitProof, kClock, kAwaitHello, kAdmitted, kRefused };
  enum class Refusal {
    kNone,
    kWrongToken,  // no proof, or a proof that does not match (wrong token, replay, relay)
    kVersion,     // a Hello of another protocol version
    kProtocol,    // anything else out of order or undecodable
  };

  // `name` names the peer in reasons ("agent 10.0.0.9:51234").
  AdmitHandshake(std::string proof_key, std::string exporter, std::string name,
                 ClockExchangeOptions options = {});

  // A frame that arrived at `now_ns`; what to send back is appended to *out.
  void on_frame(MessageType type, std::string_view payload, int64_t now_ns,
                std::vector<OutFrame>* out);
  // Sends the pings that are due at `now_ns`.
  void on_time(int64_t now_ns, std::vector<OutFrame>* out);
  // When on_time() has something to send next; INT64_MAX for nothing.
  int64_t wake_ns() const;

  State state() const { return state_; }
  Refusal refusal() const { return refusal_; }
  // Why it was refused, without the peer's name for kWrongToken ("wrong
  // token (...)"), with it for the others (the Error the agent is sent).
  const std::string& reason() const { return reason_; }
  const Hello& hello() const { return hello_; }
  const std::string& hello_payload() const { return hello_payload_; }
  const ClockEstimate& clock() const { return clock_; }

 private:
  void refuse(Refusal refusal, std::string reason);
  void send_ping(int64_t now_ns, std::vector<OutFrame>* out);

  std::string proof_key_;
  std::string exporter_;
  std::string name_;
  ClockExchangeOptions options_;
  State state_ = State::kAwaitProof;
  Refusal refusal_ = Refusal::kNone;
  std::string reason_;
  int pings_sent_ = 0;
  int pongs_received_ = 0;
  int64_t first_ping_ns_ = 0;
  std::vector<int64_t> outstanding_;  // t1 of pings not yet answered
  bool result_sent_ = false;
  ClockEstimate clock_;
  Hello hello_;
  std::string hello_payload_;
};

// The agent's side: proves the token, checks the coordinator's proof, answers
// pings until the one carrying the offset. Hello is the caller's to send next.
class JoinHandshake {
 public:
  enum class State { kAwaitProof, kClock, kJoined, kRefused };

  JoinHandshake(std::string proof_key, std::string exporter);
  // The agent's proof: the first frame on the link.
  void start(std::vector<OutFrame>* out);
  void on_frame(MessageType type, std::string_view payload, int64_t now_ns,
                std::vector<OutFrame>* out);

  State state() const { return state_; }
  const std::string& reason() const { return reason_; }
  // Agent clock minus coordinator clock, and the round trip it was measured
  // with, as the coordinator sent them.
  const ClockSample& clock() const { return clock_; }

 private:
  void refuse(std::string reason);

  std::string proof_key_;
  std::string exporter_;
  State state_ = State::kAwaitProof;
  std::string reason_;
  ClockSample clock_;
  int pings_ = 0;
};

}  // namespace millstone::cluster
