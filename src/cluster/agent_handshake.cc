#include "cluster/agent_handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include <fmt/format.h>

#include "cluster/coordinator.h"
#include "text/printable.h"

namespace millstone::cluster {

std::string compute_proof(std::string_view proof_key, ProofRole role, std::string_view exporter) {
  std::string message = role == ProofRole::kAgent ? "agent" : "coordinator";
  message.append(exporter);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  if (HMAC(EVP_sha256(), proof_key.data(), static_cast<int>(proof_key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
           &size) == nullptr ||
      size != kProofSize) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(mac), size);
}

bool proof_matches(std::string_view proof_key, ProofRole role, std::string_view exporter,
                   std::string_view received) {
  const std::string expected = compute_proof(proof_key, role, exporter);
  if (expected.size() != kProofSize || received.size() != kProofSize) return false;
  return CRYPTO_memcmp(expected.data(), received.data(), kProofSize) == 0;
}

bool clock_sample(int64_t t1, int64_t t2, int64_t t3, int64_t t4, ClockSample* out) {
  // Checked: a forged pong's times must not overflow the arithmetic.
  int64_t there_and_back = 0;  // t4 - t1
  int64_t held = 0;            // t3 - t2
  int64_t out_leg = 0;         // t2 - t1
  int64_t back_leg = 0;        // t3 - t4
  int64_t rtt = 0;
  int64_t twice_offset = 0;
  if (__builtin_sub_overflow(t4, t1, &there_and_back) || __builtin_sub_overflow(t3, t2, &held) ||
      __builtin_sub_overflow(t2, t1, &out_leg) || __builtin_sub_overflow(t3, t4, &back_leg) ||
      __builtin_sub_overflow(there_and_back, held, &rtt) ||
      __builtin_add_overflow(out_leg, back_leg, &twice_offset)) {
    return false;
  }
  if (there_and_back < 0 || held < 0 || rtt < 0) return false;
  out->rtt_ns = rtt;
  out->offset_ns = twice_offset / 2;
  return true;
}

void ClockEstimate::add(const ClockSample& sample) {
  if (count_ == 0 || sample.rtt_ns < best_.rtt_ns) best_ = sample;
  ++count_;
}

// ---- AdmitHandshake ----

AdmitHandshake::AdmitHandshake(std::string proof_key, std::string exporter, std::string name,
                               ClockExchangeOptions options)
    : proof_key_(std::move(proof_key)),
      exporter_(std::move(exporter)),
      name_(std::move(name)),
      options_(options) {
  options_.pings = std::max(1, options_.pings);
}

void AdmitHandshake::refuse(Refusal refusal, std::string reason) {
  state_ = State::kRefused;
  refusal_ = refusal;
  reason_ = std::move(reason);
}

void AdmitHandshake::send_ping(int64_t now_ns, std::vector<OutFrame>* out) {
  Ping ping;
  ping.sent_ns = now_ns;
  if (pings_sent_ == options_.pings) {
    // The last one carries the result.
    ping.has_offset = true;
    ping.offset_ns = clock_.best().offset_ns;
    ping.rtt_ns = clock_.best().rtt_ns;
    result_sent_ = true;
  }
  if (pings_sent_ == 0) first_ping_ns_ = now_ns;
  ++pings_sent_;
  outstanding_.push_back(now_ns);
  out->push_back({MessageType::kPing, encode_ping(ping)});
}

void AdmitHandshake::on_frame(MessageType type, std::string_view payload, int64_t now_ns,
                              std::vector<OutFrame>* out) {
  if (state_ == State::kAdmitted || state_ == State::kRefused) return;
  if (type == MessageType::kError && state_ != State::kAwaitProof) {
    std::string text;
    if (!decode_error(payload, &text)) text = "(an error message that does not decode)";
    refuse(Refusal::kProtocol, fmt::format("{} gave up: {}", name_, text::printable(text)));
    return;
  }
  switch (state_) {
    case State::kAwaitProof: {
      std::string mac;
      if (type != MessageType::kProof) {
        refuse(Refusal::kWrongToken, fmt::format("wrong token (a {} message instead of a proof)",
                                                 message_type_name(type)));
        return;
      }
      if (!decode_proof(payload, &mac) ||
          !proof_matches(proof_key_, ProofRole::kAgent, exporter_, mac)) {
        refuse(Refusal::kWrongToken,
               "wrong token (its proof does not match: another token, or a proof replayed from "
               "another connection)");
        return;
      }
      out->push_back({MessageType::kProof,
                      encode_proof(compute_proof(proof_key_, ProofRole::kCoordinator, exporter_))});
      state_ = State::kClock;
      send_ping(now_ns, out);
      return;
    }
    case State::kClock:
    case State::kAwaitHello: {
      if (type == MessageType::kPong) {
        Pong pong;
        if (!decode_pong(payload, &pong)) {
          refuse(Refusal::kProtocol, fmt::format("{} sent a pong that does not decode", name_));
          return;
        }
        auto it = std::find(outstanding_.begin(), outstanding_.end(), pong.ping_sent_ns);
        if (it == outstanding_.end()) {
          refuse(Refusal::kProtocol, fmt::format("{} sent a pong for no ping", name_));
          return;
        }
        outstanding_.erase(it);
        if (state_ == State::kAwaitHello) return;  // the answer to the result
        ClockSample sample;
        if (!clock_sample(pong.ping_sent_ns, pong.received_ns, pong.sent_ns, now_ns, &sample)) {
          refuse(Refusal::kProtocol,
                 fmt::format("{} sent a pong whose times do not add up", name_));
          return;
        }
        clock_.add(sample);
        if (++pongs_received_ == options_.pings) {
          send_ping(now_ns, out);
          state_ = State::kAwaitHello;
        }
        return;
      }
      if (type == MessageType::kHello && state_ == State::kAwaitHello) {
        uint32_t protocol = 0;
        std::string build;
        if (!decode_hello_versions(payload, &protocol, &build)) {
          refuse(Refusal::kProtocol,
                 fmt::format("{} sent a Hello too short to hold a version", name_));
          return;
        }
        if (protocol != kProtocolVersion) {
          refuse(Refusal::kVersion, protocol_mismatch(name_, protocol, build));
          return;
        }
        if (!decode_hello(payload, &hello_)) {
          refuse(Refusal::kProtocol, fmt::format("{} sent a Hello that does not decode", name_));
          return;
        }
        hello_payload_ = std::string(payload);
        state_ = State::kAdmitted;
        return;
      }
      refuse(Refusal::kProtocol,
             fmt::format("{} broke the protocol: an unexpected {} message during the {}", name_,
                         message_type_name(type),
                         state_ == State::kClock ? "clock exchange" : "wait for Hello"));
      return;
    }
    case State::kAdmitted:
    case State::kRefused:
      return;
  }
}

void AdmitHandshake::on_time(int64_t now_ns, std::vector<OutFrame>* out) {
  while (state_ == State::kClock && pings_sent_ < options_.pings && now_ns >= wake_ns()) {
    send_ping(now_ns, out);
  }
}

int64_t AdmitHandshake::wake_ns() const {
  if (state_ != State::kClock || pings_sent_ >= options_.pings) return INT64_MAX;
  return first_ping_ns_ + pings_sent_ * options_.interval_ns;
}

// ---- JoinHandshake ----

namespace {
// A coordinator that pings on and on without a result is broken.
constexpr int kMaxHandshakePings = 64;
}  // namespace

JoinHandshake::JoinHandshake(std::string proof_key, std::string exporter)
    : proof_key_(std::move(proof_key)), exporter_(std::move(exporter)) {}

void JoinHandshake::refuse(std::string reason) {
  state_ = State::kRefused;
  reason_ = std::move(reason);
}

void JoinHandshake::start(std::vector<OutFrame>* out) {
  out->push_back(
      {MessageType::kProof, encode_proof(compute_proof(proof_key_, ProofRole::kAgent, exporter_))});
}

void JoinHandshake::on_frame(MessageType type, std::string_view payload, int64_t now_ns,
                             std::vector<OutFrame>* out) {
  if (state_ == State::kJoined || state_ == State::kRefused) return;
  if (type == MessageType::kError) {
    std::string text;
    if (!decode_error(payload, &text)) text = "(an error message that does not decode)";
    refuse("the coordinator refused this agent: " + text::printable(text));
    return;
  }
  if (state_ == State::kAwaitProof) {
    std::string mac;
    if (type != MessageType::kProof) {
      refuse(fmt::format("the coordinator sent a {} message before proving the token",
                         message_type_name(type)));
      return;
    }
    if (!decode_proof(payload, &mac) ||
        !proof_matches(proof_key_, ProofRole::kCoordinator, exporter_, mac)) {
      refuse("the coordinator's proof does not match this token");
      return;
    }
    state_ = State::kClock;
    return;
  }
  Ping ping;
  if (type != MessageType::kPing || !decode_ping(payload, &ping)) {
    refuse(fmt::format("the coordinator broke the protocol: {} during the clock exchange",
                       type == MessageType::kPing
                           ? "a ping that does not decode"
                           : fmt::format("an unexpected {} message", message_type_name(type))));
    return;
  }
  out->push_back({MessageType::kPong, encode_pong(Pong{ping.sent_ns, now_ns, now_ns})});
  if (ping.has_offset) {
    clock_ = ClockSample{ping.offset_ns, ping.rtt_ns};
    state_ = State::kJoined;
    return;
  }
  if (++pings_ > kMaxHandshakePings) refuse("the coordinator pinged on without a result");
}

}  // namespace millstone::cluster
