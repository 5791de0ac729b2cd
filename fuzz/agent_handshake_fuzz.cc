// Feeds arbitrary frames to the agent link's exchange after TLS
// (cluster/agent_handshake.h): the first byte picks the side (even: the
// coordinator admitting an agent, odd: an agent joining), the rest is a frame
// stream (Proof, Ping/Pong, Hello, anything). The proof key and the exporter
// are fixed, so the corpus can hold valid proofs and the fuzzer can reach the
// clock exchange and Hello. Whatever it sends, the state machines must end
// in a consistent state and never crash; Ping, Pong and Proof payloads that
// decode must re-encode to themselves.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/agent_handshake.h"
#include "cluster/wire.h"

namespace {

namespace cluster = millstone::cluster;

void check(bool ok) {
  if (!ok) std::abort();
}

void round_trips(std::string_view payload) {
  cluster::Ping ping;
  if (cluster::decode_ping(payload, &ping)) {
    cluster::Ping again;
    check(cluster::decode_ping(cluster::encode_ping(ping), &again) && again == ping);
    check(ping.rtt_ns >= 0);
  }
  cluster::Pong pong;
  if (cluster::decode_pong(payload, &pong)) {
    cluster::Pong again;
    check(cluster::decode_pong(cluster::encode_pong(pong), &again) && again == pong);
    cluster::ClockSample sample;
    if (cluster::clock_sample(pong.ping_sent_ns, pong.received_ns, pong.sent_ns,
                              pong.ping_sent_ns + 1000, &sample)) {
      check(sample.rtt_ns >= 0 && sample.rtt_ns <= 1000);
    }
  }
  std::string mac;
  if (cluster::decode_proof(payload, &mac)) check(mac.size() == cluster::kProofSize);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool agent_side = (data[0] & 1) != 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string key(32, 'k');
  const std::string exporter(32, 'e');
  cluster::AdmitHandshake admit(key, exporter, "agent", cluster::ClockExchangeOptions{2, 1000});
  cluster::JoinHandshake join(key, exporter);
  std::vector<cluster::OutFrame> out;
  if (agent_side) join.start(&out);

  cluster::FrameReader reader;
  reader.append(input.data(), input.size());
  cluster::MessageType type{};
  std::string payload;
  int64_t now = 1'000'000'000;
  while (reader.next(&type, &payload) == cluster::FrameReader::Next::kFrame) {
    round_trips(payload);
    if (agent_side) {
      join.on_frame(type, payload, now, &out);
    } else {
      admit.on_frame(type, payload, now, &out);
      admit.on_time(now, &out);
    }
    now += 1000;
  }
  for (const cluster::OutFrame& frame : out)
    check(cluster::is_known_message_type(static_cast<uint8_t>(frame.type)));
  if (admit.state() == cluster::AdmitHandshake::State::kAdmitted) {
    check(admit.hello().protocol_version == cluster::kProtocolVersion);
    check(admit.clock().count() == 2 && admit.clock().best().rtt_ns >= 0);
  }
  if (admit.state() == cluster::AdmitHandshake::State::kRefused) check(!admit.reason().empty());
  if (join.state() == cluster::JoinHandshake::State::kRefused) check(!join.reason().empty());
  if (join.state() == cluster::JoinHandshake::State::kJoined) check(join.clock().rtt_ns >= 0);
  return 0;
}
