#include "cluster/agent_link.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

namespace millstone::cluster {

AgentLink::AgentLink(std::unique_ptr<WorkerLink> inner, Role role, ClockSample clock,
                     int64_t heartbeat_interval_ns)
    : inner_(std::move(inner)),
      role_(role),
      clock_(clock),
      handshake_clock_(clock),
      heartbeat_interval_ns_(heartbeat_interval_ns),
      last_heard_ns_(net::now_ns()),
      next_ping_ns_(last_heard_ns_ + heartbeat_interval_ns) {}

void AgentLink::replay_first(MessageType type, std::string payload) {
  replay_.emplace(type, std::move(payload));
}

void AgentLink::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
}

bool AgentLink::send(MessageType type, std::string_view payload) {
  return ok() && inner_->send(type, payload);
}

bool AgentLink::flush() {
  return ok() && inner_->flush();
}

WorkerLink::Receive AgentLink::receive(MessageType* type, std::string* payload) {
  if (replay_) {
    *type = replay_->first;
    *payload = std::move(replay_->second);
    replay_.reset();
    return Receive::kMessage;
  }
  if (!error_.empty()) return Receive::kBroken;
  for (;;) {
    const Receive r = inner_->receive(type, payload);
    if (r != Receive::kMessage) return r;
    const int64_t now = net::now_ns();
    last_heard_ns_ = now;
    if (*type == MessageType::kPing && role_ == Role::kAgent) {
      if (!on_ping(*payload, now)) return Receive::kBroken;
      continue;
    }
    if (*type == MessageType::kPong && role_ == Role::kCoordinator) {
      if (!on_pong(*payload, now)) return Receive::kBroken;
      continue;
    }
    return r;
  }
}

bool AgentLink::on_ping(std::string_view payload, int64_t now_ns) {
  Ping ping;
  if (!decode_ping(payload, &ping)) {
    fail(fmt::format("{} broke the protocol: a ping that does not decode", name()));
    return false;
  }
  if (ping.has_offset) clock_ = ClockSample{ping.offset_ns, ping.rtt_ns};
  // A full outbox is the link's own failure, reported by its next call.
  inner_->send(MessageType::kPong, encode_pong(Pong{ping.sent_ns, now_ns, net::now_ns()}));
  return true;
}

bool AgentLink::on_pong(std::string_view payload, int64_t now_ns) {
  Pong pong;
  if (!decode_pong(payload, &pong)) {
    fail(fmt::format("{} broke the protocol: a pong that does not decode", name()));
    return false;
  }
  ++pongs_;
  // A pong for a ping it does not know (the handshake's last one, or one
  // dropped from the window) still says the agent is alive; only known ones
  // are measured.
  auto it = std::find(outstanding_.begin(), outstanding_.end(), pong.ping_sent_ns);
  if (it == outstanding_.end()) return true;
  outstanding_.erase(it);
  ClockSample sample;
  if (!clock_sample(pong.ping_sent_ns, pong.received_ns, pong.sent_ns, now_ns, &sample)) {
    fail(fmt::format("{} broke the protocol: a pong whose times do not add up", name()));
    return false;
  }
  samples_.push_back(sample);
  if (samples_.size() > kClockWindow) samples_.pop_front();
  clock_ = *std::min_element(
      samples_.begin(), samples_.end(),
      [](const ClockSample& a, const ClockSample& b) { return a.rtt_ns < b.rtt_ns; });
  return true;
}

int64_t AgentLink::heartbeat(int64_t now_ns) {
  if (role_ != Role::kCoordinator || !ok()) return INT64_MAX;
  if (now_ns >= next_ping_ns_) {
    Ping ping;
    ping.sent_ns = now_ns;
    ping.has_offset = true;
    ping.offset_ns = clock_.offset_ns;
    ping.rtt_ns = clock_.rtt_ns;
    if (inner_->send(MessageType::kPing, encode_ping(ping))) {
      outstanding_.push_back(now_ns);
      if (outstanding_.size() > kClockWindow) outstanding_.pop_front();
    }
    next_ping_ns_ = now_ns + heartbeat_interval_ns_;
  }
  return next_ping_ns_;
}

int64_t AgentLink::drift_ns() const {
  return std::llabs(clock_.offset_ns - handshake_clock_.offset_ns);
}

}  // namespace millstone::cluster
