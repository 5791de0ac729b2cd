// The agent link's exchange after TLS, with no I/O: proofs (right, wrong,
// replayed from another session), the clock offset from scripted times, the
// version check, and the heartbeat of AgentLink over a socketpair.
#include "cluster/agent_handshake.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cluster/agent_link.h"
#include "cluster/token.h"

namespace millstone::cluster {
namespace agent_handshake_test {

const std::string kExporterA(32, 'A');
const std::string kExporterB(32, 'B');

// Runs both sides against each other with the agent's clock `offset` ahead
// and a one-way delay of `delay(i)` for the i-th frame each way.
struct Session {
  AdmitHandshake admit;
  JoinHandshake join;
  Session(const std::string& coordinator_key, const std::string& agent_key,
          const std::string& exporter)
      : admit(coordinator_key, exporter, "agent", ClockExchangeOptions{4, 20 * net::kNsPerMs}),
        join(agent_key, exporter) {}
};

TEST(AgentProof, TheRightTokenIsAdmittedAndBothProofsCheck) {
  const Token token = Token::generate();
  Session s(token.proof_key(), token.proof_key(), kExporterA);
  std::vector<OutFrame> to_coordinator;
  std::vector<OutFrame> to_agent;
  s.join.start(&to_coordinator);
  ASSERT_EQ(to_coordinator.size(), 1u);
  EXPECT_EQ(to_coordinator[0].type, MessageType::kProof);
  int64_t now = 1'000'000'000;
  s.admit.on_frame(to_coordinator[0].type, to_coordinator[0].payload, now, &to_agent);
  EXPECT_EQ(s.admit.state(), AdmitHandshake::State::kClock);
  ASSERT_EQ(to_agent.size(), 2u);  // its own proof, then the first ping
  EXPECT_EQ(to_agent[0].type, MessageType::kProof);
  EXPECT_EQ(to_agent[1].type, MessageType::kPing);
  to_coordinator.clear();
  s.join.on_frame(to_agent[0].type, to_agent[0].payload, now, &to_coordinator);
  EXPECT_EQ(s.join.state(), JoinHandshake::State::kClock);
}

TEST(AgentProof, AnotherTokenIsRefusedBothWays) {
  const Token right = Token::generate();
  const Token wrong = Token::generate();
  Session s(right.proof_key(), wrong.proof_key(), kExporterA);
  std::vector<OutFrame> out;
  std::vector<OutFrame> back;
  s.join.start(&out);
  s.admit.on_frame(out[0].type, out[0].payload, 0, &back);
  EXPECT_EQ(s.admit.state(), AdmitHandshake::State::kRefused);
  EXPECT_EQ(s.admit.refusal(), AdmitHandshake::Refusal::kWrongToken);
  EXPECT_TRUE(back.empty()) << "nothing is answered before the proof checks";
  EXPECT_NE(s.admit.reason().find("wrong token"), std::string::npos);

  // The agent checks the coordinator's proof too.
  JoinHandshake join(wrong.proof_key(), kExporterA);
  join.on_frame(MessageType::kProof,
                encode_proof(compute_proof(right.proof_key(), ProofRole::kCoordinator, kExporterA)),
                0, &out);
  EXPECT_EQ(join.state(), JoinHandshake::State::kRefused);
  EXPECT_EQ(join.reason(), "the coordinator's proof does not match this token");
}

TEST(AgentProof, AProofReplayedInAnotherSessionIsRefused) {
  const Token token = Token::generate();
  // Recorded on session A...
  const std::string recorded = compute_proof(token.proof_key(), ProofRole::kAgent, kExporterA);
  AdmitHandshake a(token.proof_key(), kExporterA, "agent");
  std::vector<OutFrame> out;
  a.on_frame(MessageType::kProof, recorded, 0, &out);
  EXPECT_EQ(a.state(), AdmitHandshake::State::kClock);
  // ... and played on session B, whose exported keying material differs.
  AdmitHandshake b(token.proof_key(), kExporterB, "agent");
  out.clear();
  b.on_frame(MessageType::kProof, recorded, 0, &out);
  EXPECT_EQ(b.refusal(), AdmitHandshake::Refusal::kWrongToken);
  EXPECT_TRUE(out.empty());
  // A coordinator's proof is not an agent's: a reflected proof fails too.
  AdmitHandshake c(token.proof_key(), kExporterA, "agent");
  c.on_frame(MessageType::kProof,
             compute_proof(token.proof_key(), ProofRole::kCoordinator, kExporterA), 0, &out);
  EXPECT_EQ(c.refusal(), AdmitHandshake::Refusal::kWrongToken);
}

TEST(AgentProof, AnythingButAProofFirstIsAWrongToken) {
  const Token token = Token::generate();
  AdmitHandshake a(token.proof_key(), kExporterA, "agent");
  std::vector<OutFrame> out;
  a.on_frame(MessageType::kHello, encode_hello(local_hello(0)), 0, &out);
  EXPECT_EQ(a.refusal(), AdmitHandshake::Refusal::kWrongToken);
  EXPECT_EQ(a.reason(), "wrong token (a hello message instead of a proof)");
  AdmitHandshake short_proof(token.proof_key(), kExporterA, "agent");
  short_proof.on_frame(MessageType::kProof, "short", 0, &out);
  EXPECT_EQ(short_proof.refusal(), AdmitHandshake::Refusal::kWrongToken);
}

TEST(ClockSample, OffsetAndRoundTripFromTheFourTimes) {
  ClockSample s;
  // Agent clock 5 s ahead; 1 ms out, 0.1 ms held, 3 ms back.
  const int64_t t1 = 100'000'000;
  const int64_t t2 = t1 + 5'000'000'000 + 1'000'000;
  const int64_t t3 = t2 + 100'000;
  const int64_t t4 = t1 + 1'000'000 + 100'000 + 3'000'000;
  ASSERT_TRUE(clock_sample(t1, t2, t3, t4, &s));
  EXPECT_EQ(s.rtt_ns, 4'000'000);
  // The asymmetry (1 ms vs 3 ms) shows as an error of half the difference,
  // within rtt / 2 as promised.
  EXPECT_EQ(s.offset_ns, 5'000'000'000 - 1'000'000);
  EXPECT_LE(std::llabs(s.offset_ns - 5'000'000'000), s.error_ns());
  EXPECT_FALSE(clock_sample(t1, t3, t2, t4, &s)) << "answered before it received";
  EXPECT_FALSE(clock_sample(t1, t2, t2 + 10'000'000, t1 + 1'000'000, &s)) << "negative rtt";
  EXPECT_FALSE(clock_sample(INT64_MIN, INT64_MAX, INT64_MAX, INT64_MAX, &s)) << "overflow";
}

// Scripted exchange: the coordinator's pings at its clock, the agent's clock
// offset by `offset`, per-ping delays out and back; the smallest rtt wins.
TEST(ClockEstimate, TheExchangeWithTheSmallestRoundTripWins) {
  const Token token = Token::generate();
  AdmitHandshake admit(token.proof_key(), kExporterA, "agent",
                       ClockExchangeOptions{4, 20 * net::kNsPerMs});
  JoinHandshake join(token.proof_key(), kExporterA);
  const int64_t offset = -2'500'000'000;  // the agent's clock is 2.5 s behind
  const int64_t out_ms[] = {5, 2, 1, 8};
  const int64_t back_ms[] = {5, 4, 1, 1};  // exchange 2: 2 ms rtt, symmetric
  std::vector<OutFrame> to_c;
  std::vector<OutFrame> to_a;
  join.start(&to_c);
  int64_t now = 10 * net::kNsPerSec;
  admit.on_frame(MessageType::kProof, to_c[0].payload, now, &to_a);
  to_c.clear();
  join.on_frame(MessageType::kProof, to_a[0].payload, now, &to_c);
  to_a.erase(to_a.begin());  // the proof; the first ping remains
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      now = admit.wake_ns();
      admit.on_time(now, &to_a);
    }
    ASSERT_EQ(to_a.size(), 1u);
    Ping ping;
    ASSERT_TRUE(decode_ping(to_a[0].payload, &ping));
    EXPECT_FALSE(ping.has_offset);
    EXPECT_EQ(ping.sent_ns, now);
    const int64_t arrive = now + out_ms[i] * net::kNsPerMs;
    to_c.clear();
    join.on_frame(MessageType::kPing, to_a[0].payload, arrive + offset, &to_c);
    to_a.clear();
    ASSERT_EQ(to_c.size(), 1u);
    admit.on_frame(MessageType::kPong, to_c[0].payload, arrive + back_ms[i] * net::kNsPerMs, &to_a);
  }
  ASSERT_EQ(admit.state(), AdmitHandshake::State::kAwaitHello);
  EXPECT_EQ(admit.clock().count(), 4u);
  EXPECT_EQ(admit.clock().best(), (ClockSample{offset, 2 * net::kNsPerMs}));
  // The result goes to the agent in the last ping.
  ASSERT_EQ(to_a.size(), 1u);
  to_c.clear();
  join.on_frame(MessageType::kPing, to_a[0].payload, now, &to_c);
  EXPECT_EQ(join.state(), JoinHandshake::State::kJoined);
  EXPECT_EQ(join.clock(), (ClockSample{offset, 2 * net::kNsPerMs}));
  // Its pong is accepted, then Hello admits the agent.
  to_a.clear();
  admit.on_frame(MessageType::kPong, to_c[0].payload, now + 1, &to_a);
  EXPECT_EQ(admit.state(), AdmitHandshake::State::kAwaitHello);
  Hello hello = local_hello(0);
  hello.host = "load-a";
  admit.on_frame(MessageType::kHello, encode_hello(hello), now + 2, &to_a);
  EXPECT_EQ(admit.state(), AdmitHandshake::State::kAdmitted);
  EXPECT_EQ(admit.hello(), hello);
  EXPECT_EQ(admit.hello_payload(), encode_hello(hello));
  EXPECT_TRUE(to_a.empty());
}

TEST(ClockEstimate, APongForNoPingOrWithImpossibleTimesIsRefused) {
  const Token token = Token::generate();
  auto proven = [&] {
    auto a = std::make_unique<AdmitHandshake>(token.proof_key(), kExporterA, "agent");
    std::vector<OutFrame> out;
    a->on_frame(MessageType::kProof,
                compute_proof(token.proof_key(), ProofRole::kAgent, kExporterA), 1000, &out);
    return a;
  };
  std::vector<OutFrame> out;
  auto a = proven();
  a->on_frame(MessageType::kPong, encode_pong(Pong{999, 5, 6}), 2000, &out);
  EXPECT_EQ(a->reason(), "agent sent a pong for no ping");
  auto b = proven();
  b->on_frame(MessageType::kPong, encode_pong(Pong{1000, 9, 5}), 2000, &out);
  EXPECT_EQ(b->reason(), "agent sent a pong whose times do not add up");
  auto c = proven();
  c->on_frame(MessageType::kHello, encode_hello(local_hello(0)), 2000, &out);
  EXPECT_EQ(c->refusal(), AdmitHandshake::Refusal::kProtocol);
}

TEST(AgentAdmission, AHelloOfAnotherVersionIsRefusedNamingBoth) {
  const Token token = Token::generate();
  AdmitHandshake admit(token.proof_key(), kExporterA, "agent", ClockExchangeOptions{1, 0});
  std::vector<OutFrame> out;
  admit.on_frame(MessageType::kProof,
                 compute_proof(token.proof_key(), ProofRole::kAgent, kExporterA), 100, &out);
  Ping ping;
  ASSERT_TRUE(decode_ping(out.back().payload, &ping));
  admit.on_frame(MessageType::kPong, encode_pong(Pong{ping.sent_ns, 150, 150}), 200, &out);
  ASSERT_EQ(admit.state(), AdmitHandshake::State::kAwaitHello);
  Hello old = local_hello(0);
  old.protocol_version = 4;
  old.build_version = "0.1.0";
  admit.on_frame(MessageType::kHello, encode_hello(old), 300, &out);
  EXPECT_EQ(admit.refusal(), AdmitHandshake::Refusal::kVersion);
  EXPECT_EQ(admit.reason(), "agent speaks protocol version 4 (millstone 0.1.0), this coordinator " +
                                std::to_string(kProtocolVersion) +
                                " (millstone " MILLSTONE_VERSION
                                "); run the same millstone version everywhere");
}

// AgentLink over a socketpair: heartbeats are answered and measured below
// the WorkerLink interface; the replayed Hello comes first.
TEST(AgentLinkHeartbeat, PingsAreAnsweredAndPongsMeasuredInvisibly) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  constexpr int64_t kInterval = 2 * net::kNsPerMs;
  AgentLink coordinator(StreamLink::over_socket(fds[0], "agent x"), AgentLink::Role::kCoordinator,
                        ClockSample{7, 100}, kInterval);
  AgentLink agent(StreamLink::over_socket(fds[1], "coordinator"), AgentLink::Role::kAgent,
                  ClockSample{7, 100});
  coordinator.replay_first(MessageType::kHello, "hello bytes");
  EXPECT_TRUE(coordinator.has_buffered_message());
  MessageType type;
  std::string payload;
  ASSERT_EQ(coordinator.receive(&type, &payload), WorkerLink::Receive::kMessage);
  EXPECT_EQ(type, MessageType::kHello);
  EXPECT_EQ(payload, "hello bytes");
  EXPECT_EQ(coordinator.receive(&type, &payload), WorkerLink::Receive::kNothing);

  // A ping every interval; the agent answers inside receive() and returns
  // nothing to its caller; the coordinator measures the pong inside its receive().
  const int64_t deadline = net::now_ns() + 5 * net::kNsPerSec;
  while (coordinator.pongs() == 0 && net::now_ns() < deadline) {
    const int64_t now = net::now_ns();
    EXPECT_GT(coordinator.heartbeat(now), now);
    EXPECT_EQ(agent.receive(&type, &payload), WorkerLink::Receive::kNothing);
    EXPECT_EQ(coordinator.receive(&type, &payload), WorkerLink::Receive::kNothing);
  }
  EXPECT_GE(coordinator.pongs(), 1u);
  // The ping carried the coordinator's current offset.
  EXPECT_EQ(agent.offset_ns(), 7);
  EXPECT_LE(coordinator.last_heard_ns(), net::now_ns());
}

// The fuzzer's seeds (fuzz/agent_handshake_fuzz.cc) must reach the end of
// each side's exchange, or the fuzzer starts from refusals only.
TEST(AgentHandshakeCorpus, TheSeedsAdmitAndJoin) {
  auto read = [](const std::string& name) {
    std::ifstream in(std::string(MILLSTONE_SOURCE_DIR) + "/fuzz/corpus/agent_handshake_fuzz/" +
                     name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string key(32, 'k');
  const std::string exporter(32, 'e');
  auto play = [&](const std::string& input, auto&& on_frame) {
    FrameReader reader;
    reader.append(input.data() + 1, input.size() - 1);
    MessageType type;
    std::string payload;
    int64_t now = 1'000'000'000;
    while (reader.next(&type, &payload) == FrameReader::Next::kFrame) {
      on_frame(type, payload, now);
      now += 1000;
    }
  };
  AdmitHandshake admit(key, exporter, "agent", ClockExchangeOptions{2, 1000});
  std::vector<OutFrame> out;
  play(read("coordinator_admits"), [&](MessageType type, const std::string& payload, int64_t now) {
    admit.on_frame(type, payload, now, &out);
    admit.on_time(now, &out);
  });
  EXPECT_EQ(admit.state(), AdmitHandshake::State::kAdmitted) << admit.reason();
  EXPECT_EQ(admit.clock().best(), (ClockSample{-2'500'000'000 - 150, 900}));
  JoinHandshake join(key, exporter);
  play(read("agent_joins"), [&](MessageType type, const std::string& payload, int64_t now) {
    join.on_frame(type, payload, now, &out);
  });
  EXPECT_EQ(join.state(), JoinHandshake::State::kJoined) << join.reason();
}

}  // namespace agent_handshake_test
}  // namespace millstone::cluster
