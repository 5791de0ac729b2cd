#pragma once
// A remote agent's link: a StreamLink over TLS after the handshake
// (agent_handshake.h), with the heartbeat and the clock offset added, and
// nothing else. To the code above it is a WorkerLink like any other: Pings and
// Pongs never reach it.
//
// Coordinator side: heartbeat() sends a Ping every 500 ms (with the current
// offset, so the agent keeps it up to date); each Pong re-measures the
// offset (the smallest round trip of the last 8 exchanges wins). The Hello
// the listener read is handed out again by the first receive(), so the
// coordinator's handshake runs unchanged; a loop that waits for readiness
// must call receive() once before its first wait (has_buffered_message()).
//
// Agent side: every Ping is answered with a Pong at once, inside receive();
// a Ping carrying an offset updates offset_ns().
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "cluster/agent_handshake.h"
#include "cluster/link.h"

namespace millstone::cluster {

class AgentLink final : public WorkerLink {
 public:
  enum class Role { kCoordinator, kAgent };
  static constexpr int64_t kHeartbeatIntervalNs = 500 * net::kNsPerMs;
  // A re-measured offset this far from the handshake's is worth a note.
  static constexpr int64_t kDriftNoteNs = 5 * net::kNsPerMs;
  // Exchanges the running estimate keeps.
  static constexpr size_t kClockWindow = 8;

  // `clock`: what the handshake measured (coordinator) or was told (agent).
  AgentLink(std::unique_ptr<WorkerLink> inner, Role role, ClockSample clock,
            int64_t heartbeat_interval_ns = kHeartbeatIntervalNs);

  // Coordinator side: a message already read from the link (the agent's
  // Hello), returned by the first receive().
  void replay_first(MessageType type, std::string payload);
  bool has_buffered_message() const { return replay_.has_value(); }

  int fd() const override { return inner_->fd(); }
  const std::string& name() const override { return inner_->name(); }
  bool send(MessageType type, std::string_view payload) override;
  bool flush() override;
  size_t queued_bytes() const override { return inner_->queued_bytes(); }
  size_t peak_queued_bytes() const override { return inner_->peak_queued_bytes(); }
  Receive receive(MessageType* type, std::string* payload) override;
  bool ok() const override { return error_.empty() && inner_->ok(); }
  const std::string& error() const override { return error_.empty() ? inner_->error() : error_; }
  void close() override { inner_->close(); }

  // Coordinator side: sends a Ping when one is due; returns when the next one is.
  int64_t heartbeat(int64_t now_ns) override;
  // When a frame of any kind last arrived (or the link was made): a link
  // silent for 2 s has lost its agent (docs/design/agents.md).
  int64_t last_heard_ns() const { return last_heard_ns_; }
  // Agent clock minus coordinator clock: the current estimate (coordinator)
  // or the latest the coordinator sent (agent).
  int64_t offset_ns() const { return clock_.offset_ns; }
  const ClockSample& clock() const { return clock_; }
  const ClockSample& handshake_clock() const { return handshake_clock_; }
  // How far the offset moved since the handshake (monotonic clocks drift
  // tens of ppm); above kDriftNoteNs the run should say so.
  int64_t drift_ns() const;
  uint64_t pongs() const { return pongs_; }

 private:
  void fail(std::string why);
  // False if the frame broke the link.
  bool on_ping(std::string_view payload, int64_t now_ns);
  bool on_pong(std::string_view payload, int64_t now_ns);

  std::unique_ptr<WorkerLink> inner_;
  Role role_;
  ClockSample clock_;
  ClockSample handshake_clock_;
  std::optional<std::pair<MessageType, std::string>> replay_;
  int64_t heartbeat_interval_ns_;
  int64_t last_heard_ns_;
  int64_t next_ping_ns_;
  std::deque<int64_t> outstanding_;  // t1 of heartbeats not answered yet
  std::deque<ClockSample> samples_;  // the last kClockWindow exchanges
  uint64_t pongs_ = 0;
  std::string error_;
};

}  // namespace millstone::cluster
