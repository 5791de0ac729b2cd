// The agent link on 127.0.0.1: a real agent joins; hostile peers on the
// coordinator's port and fake coordinators on the agent's side are refused
// with one line naming the cause (docs/design/agents.md, the table).
#include "cluster/agent_listener.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/agent_dial.h"
#include "cluster/agent_tls.h"
#include "cluster/coordinator.h"
#include "cluster/worker_process.h"
#include "net/socket.h"
#include "tls/tls_stream.h"

namespace millstone::cluster {
namespace agent_listener_test {

class Lines {
 public:
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) {
      std::lock_guard lock(mutex_);
      lines_.push_back(line);
    };
  }
  std::vector<std::string> all() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  bool any_contains(const std::string& text) {
    for (const std::string& line : all()) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  std::string joined() {
    std::string out;
    for (const std::string& line : all())
      out += line + "\n";
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

AgentListenerOptions quick_listener() {
  AgentListenerOptions o;
  o.handshake_timeout_ns = 300 * net::kNsPerMs;
  o.clock = ClockExchangeOptions{3, 2 * net::kNsPerMs};
  return o;
}

DialOptions quick_dial() {
  DialOptions o;
  o.attempt_timeout_ns = 2 * net::kNsPerSec;
  o.first_backoff_ns = 20 * net::kNsPerMs;
  o.max_backoff_ns = 100 * net::kNsPerMs;
  return o;
}

int64_t in_ms(int64_t ms) {
  return net::now_ns() + ms * net::kNsPerMs;
}

// Drives the listener until it has refused `count` peers (or 5 s pass).
void pump_until_refused(AgentListener& listener, uint64_t count) {
  const int64_t deadline = in_ms(5000);
  while (listener.refused() < count && net::now_ns() < deadline) {
    EXPECT_FALSE(listener.next(in_ms(20))) << "nobody should be admitted";
  }
  EXPECT_EQ(listener.refused(), count);
}

int connect_plain(uint16_t port) {
  const int fd = net::tcp_socket(AF_INET);
  const int started = net::start_connect(fd, *net::make_endpoint("127.0.0.1", port));
  if (started == 1) {
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, 2000);
  }
  return fd;
}

// A TLS client that pins the token's key but speaks whatever the test wants after.
struct RawAgent {
  std::unique_ptr<AgentClientTls> tls;
  std::unique_ptr<StreamLink> link;
  std::string exporter;
};

RawAgent tls_connect(uint16_t port, const Token& token) {
  RawAgent a;
  a.tls = std::make_unique<AgentClientTls>(token);
  auto stream = tls::TlsStream::client(a.tls->context(), a.tls->target(), connect_plain(port));
  for (;;) {
    const net::StreamResult r = stream->handshake();
    if (r.status == net::StreamStatus::kOk) break;
    if (r.status != net::StreamStatus::kWouldBlock) {
      ADD_FAILURE() << "TLS: " << stream->error_text();
      return a;
    }
    pollfd p{stream->fd(),
             static_cast<short>(r.wait == net::Readiness::kWritable ? POLLOUT : POLLIN), 0};
    poll(&p, 1, 2000);
  }
  a.exporter = stream->export_keying_material(kExporterLabel, kExporterSize);
  a.link = std::make_unique<StreamLink>(std::move(stream), "coordinator");
  return a;
}

// After the proof: answers pings until the one with the result.
void answer_clock_exchange(StreamLink& link) {
  MessageType type;
  std::string payload;
  for (;;) {
    ASSERT_EQ(receive_until(link, in_ms(2000), &type, &payload), WaitResult::kOk);
    if (type == MessageType::kProof) continue;
    ASSERT_EQ(type, MessageType::kPing);
    Ping ping;
    ASSERT_TRUE(decode_ping(payload, &ping));
    link.send(MessageType::kPong, encode_pong(Pong{ping.sent_ns, net::now_ns(), net::now_ns()}));
    if (ping.has_offset) return;
  }
}

TEST(AgentJoin, AnAgentWithTheTokenJoinsWithItsHelloAndClock) {
  const Token token = Token::generate();
  Lines log;
  AgentListener listener(token, quick_listener(), log.sink());
  DialResult dialed;
  std::thread agent([&] {
    dialed = dial_coordinator(listener.address(), token, in_ms(5000), quick_dial(), log.sink());
    if (dialed.link) {
      dialed.link->send(MessageType::kHello, encode_hello(local_hello(0)));
      MessageType type;
      std::string payload;
      EXPECT_EQ(receive_until(*dialed.link, in_ms(5000), &type, &payload), WaitResult::kOk);
      EXPECT_EQ(type, MessageType::kStop);
    }
  });
  std::optional<JoinedAgent> joined = listener.next(in_ms(5000));
  ASSERT_TRUE(joined) << log.joined();
  joined->link->send(MessageType::kStop, {});
  flush_until(*joined->link, in_ms(2000));
  agent.join();
  ASSERT_TRUE(dialed.link) << dialed.error;
  EXPECT_EQ(dialed.attempts, 1);
  EXPECT_EQ(joined->hello, local_hello(0));
  EXPECT_EQ(joined->peer.rfind("127.0.0.1:", 0), 0u) << joined->peer;
  EXPECT_EQ(joined->link->name(), "agent " + joined->peer);
  // One machine, one CLOCK_MONOTONIC: the true offset is 0, and the exchange
  // bounds its error by half its round trip.
  EXPECT_LE(std::llabs(joined->clock.offset_ns), joined->clock.error_ns() + 1);
  EXPECT_EQ(dialed.clock, joined->clock) << "the agent is told what was measured";
  // The Hello the listener read comes first on the link.
  MessageType type;
  std::string payload;
  ASSERT_EQ(joined->link->receive(&type, &payload), WorkerLink::Receive::kMessage);
  EXPECT_EQ(type, MessageType::kHello);
  EXPECT_TRUE(log.all().empty()) << log.joined();
}

// The whole chain: a worker body on the agent's side of a TLS link, the
// Coordinator on the other, neither knowing about pings or proofs.
TEST(AgentJoin, ACoordinatorRunsAWorkerOverTheAgentLink) {
  const Token token = Token::generate();
  Lines log;
  AgentListener listener(token, quick_listener(), log.sink());
  int worker_exit = -1;
  std::thread agent([&] {
    DialResult dialed =
        dial_coordinator(listener.address(), token, in_ms(5000), quick_dial(), log.sink());
    ASSERT_TRUE(dialed.link) << dialed.error;
    WorkerOptions options;
    options.clock_offset_ns = dialed.clock.offset_ns;
    worker_exit = serve_worker(*dialed.link, local_hello(0), options);
  });
  std::optional<JoinedAgent> joined = listener.next(in_ms(5000));
  ASSERT_TRUE(joined) << log.joined();
  engine::RunPlan plan;
  plan.address = "127.0.0.1";
  plan.port = 9;  // discard: refused, which is a counted error
  plan.connections = 1;
  plan.duration_ms = 300;
  plan.timeout_ms = 100;
  plan.connect_timeout_ms = 100;
  CoordinatorOptions options;
  options.hello_timeout_ns = net::kNsPerSec;
  options.start_lead_ns = 20 * net::kNsPerMs;
  options.finish_grace_ns = 2 * net::kNsPerSec;
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(joined->link));
  RunResult result = Coordinator(std::move(links), {plan}, {}, options, nullptr).run();
  agent.join();
  ASSERT_EQ(result.outcomes.size(), 1u);
  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFinished) << result.outcomes[0].reason;
  EXPECT_EQ(worker_exit, 0);
  EXPECT_GT(result.total.errors + result.total.requests, 0u);
}

TEST(AgentPortHostile, PlaintextGarbageAndHttpAreNotTls) {
  const Token token = Token::generate();
  Lines log;
  AgentListener listener(token, quick_listener(), log.sink());
  std::vector<int> fds;
  for (const char* bytes : {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x01\x02garbage\xff\xfe\r\n"}) {
    fds.push_back(connect_plain(listener.port()));
    ASSERT_GT(write(fds.back(), bytes, strlen(bytes)), 0);
  }
  pump_until_refused(listener, 2);
  for (const std::string& line : log.all()) {
    EXPECT_EQ(line.rfind("refused 127.0.0.1:", 0), 0u) << line;
    EXPECT_NE(line.find(": not TLS (tls_handshake: "), std::string::npos) << line;
  }
  for (int fd : fds)
    close(fd);
}

TEST(AgentPortHostile, SilentAndDrippingPeersMeetTheDeadline) {
  const Token token = Token::generate();
  Lines log;
  AgentListener listener(token, quick_listener(), log.sink());
  const int silent = connect_plain(listener.port());
  const int drip = connect_plain(listener.port());
  // A TLS record header promising 512 bytes, then a byte at a time.
  ASSERT_EQ(write(drip, "\x16\x03\x01\x02\x00", 5), 5);
  const int64_t deadline = in_ms(5000);
  while (listener.refused() < 2 && net::now_ns() < deadline) {
    EXPECT_FALSE(listener.next(in_ms(50)));
    (void)!write(drip, "\x01", 1);
  }
  ASSERT_EQ(listener.refused(), 2u) << log.joined();
  for (const std::string& line : log.all())
    EXPECT_NE(line.find(": no handshake within 0.3 s"), std::string::npos) << line;
  close(silent);
  close(drip);
}

TEST(AgentPortHostile, NoProofAWrongProofAndAReplayAreAWrongToken) {
  const Token token = Token::generate();
  const Token other = Token::generate();
  Lines log;
  AgentListener listener(token, quick_listener(), log.sink());
  std::thread peers([&] {
    // Hello first, without a proof.
    RawAgent no_proof = tls_connect(listener.port(), token);
    no_proof.link->send(MessageType::kHello, encode_hello(local_hello(0)));
    // A proof made with another token's key.
    RawAgent wrong = tls_connect(listener.port(), token);
    wrong.link->send(MessageType::kProof,
                     compute_proof(other.proof_key(), ProofRole::kAgent, wrong.exporter));
    // A good proof, recorded, then played on a second connection.
    RawAgent first = tls_connect(listener.port(), token);
    const std::string recorded =
        compute_proof(token.proof_key(), ProofRole::kAgent, first.exporter);
    first.link->send(MessageType::kProof, recorded);
    MessageType type;
    std::string payload;
    ASSERT_EQ(receive_until(*first.link, in_ms(2000), &type, &payload), WaitResult::kOk);
    EXPECT_EQ(type, MessageType::kProof) << "the genuine proof passes";
    first.link->close();
    RawAgent replay = tls_connect(listener.port(), token);
    replay.link->send(MessageType::kProof, recorded);
    // A frame header promising 1 MiB, before any proof: refused from the header.
    RawAgent big = tls_connect(listener.port(), token);
    big.link->send(MessageType::kProof, std::string(1 << 20, 'x'));
    for (RawAgent* a : {&no_proof, &wrong, &replay, &big}) {
      EXPECT_NE(receive_until(*a->link, in_ms(2000), &type, &payload), WaitResult::kOk)
          << "refused peers are told nothing";
    }
  });
  pump_until_refused(listener, 5);
  peers.join();
  const std::string lines = log.joined();
  EXPECT_TRUE(log.any_contains(": wrong token (a hello message instead of a proof)")) << lines;
  int mismatches = 0;
  for (const std::string& line : log.all())
    mismatches += line.find(": wrong token (its proof does not match") != std::string::npos;
  EXPECT_EQ(mismatches, 2) << lines;  // the wrong key and the replay
  EXPECT_TRUE(log.any_contains(": closed the connection during the handshake")) << lines;
  EXPECT_TRUE(log.any_contains(": wrong token (no proof: agent 127.0.0.1:")) << lines;
  EXPECT_TRUE(
      log.any_contains("broke the protocol: frame of 1048576 bytes exceeds the limit of "
                       "65536 bytes)"))
      << lines;
}

TEST(AgentPortHostile, AHelloOfAnotherVersionGetsTheExistingRefusal) {
  const Token token = Token::generate();
  Lines log;
  AgentListener listener(token, quick_listener(), log.sink());
  std::string told;
  std::thread peer([&] {
    RawAgent a = tls_connect(listener.port(), token);
    a.link->send(MessageType::kProof,
                 compute_proof(token.proof_key(), ProofRole::kAgent, a.exporter));
    answer_clock_exchange(*a.link);
    Hello old = local_hello(0);
    old.protocol_version = 4;
    a.link->send(MessageType::kHello, encode_hello(old));
    MessageType type;
    std::string payload;
    ASSERT_EQ(receive_until(*a.link, in_ms(2000), &type, &payload), WaitResult::kOk);
    EXPECT_EQ(type, MessageType::kError);
    decode_error(payload, &told);
  });
  pump_until_refused(listener, 1);
  peer.join();
  const std::string line = log.all().at(0);
  EXPECT_NE(line.find(": agent speaks protocol version 4 (millstone " MILLSTONE_VERSION
                      "), this coordinator " +
                      std::to_string(kProtocolVersion)),
            std::string::npos)
      << line;
  EXPECT_EQ("refused " + line.substr(8, line.find(": ") - 8) + ": " + told, line);
}

TEST(AgentPortHostile, HandshakesBeyondTheLimitAreClosedAtOnce) {
  const Token token = Token::generate();
  Lines log;
  AgentListenerOptions options = quick_listener();
  options.max_handshakes = 2;
  AgentListener listener(token, options, log.sink());
  const int a = connect_plain(listener.port());
  const int b = connect_plain(listener.port());
  const int c = connect_plain(listener.port());
  const int64_t deadline = in_ms(2000);
  while (listener.dropped() == 0 && net::now_ns() < deadline)
    listener.next(in_ms(10));
  EXPECT_EQ(listener.dropped(), 1u);
  EXPECT_EQ(listener.in_progress(), 2u);
  char byte;
  pollfd p{c, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  EXPECT_EQ(read(c, &byte, 1), 0) << "closed at once";
  EXPECT_TRUE(log.any_contains(": 2 handshakes already in progress (1 connection closed so far)"))
      << log.joined();
  for (int fd : {a, b, c})
    close(fd);
}

// ---- The agent's side: fake coordinators ----

TEST(AgentDialHostile, ACoordinatorWithAnotherKeyIsRefusedAndRefusesBack) {
  const Token ours = Token::generate();
  const Token theirs = Token::generate();
  Lines coordinator_log;
  Lines agent_log;
  AgentListener listener(theirs, quick_listener(), coordinator_log.sink());
  DialResult dialed;
  std::thread agent([&] {
    dialed = dial_coordinator(listener.address(), ours, in_ms(600), quick_dial(), agent_log.sink());
  });
  const int64_t deadline = in_ms(3000);
  while (!dialed.attempts && net::now_ns() < deadline)
    listener.next(in_ms(20));
  agent.join();
  while (listener.refused() < static_cast<uint64_t>(dialed.attempts) && net::now_ns() < deadline)
    listener.next(in_ms(20));
  EXPECT_FALSE(dialed.link);
  EXPECT_GE(dialed.attempts, 2) << "it retries";
  // Every attempt says why (the last may run out of time instead: the deadline cuts it).
  EXPECT_TRUE(
      agent_log.any_contains(listener.address() + " is not the coordinator this token pins"))
      << agent_log.joined();
  EXPECT_TRUE(agent_log.any_contains("; retrying in 0.0")) << agent_log.joined();
  EXPECT_TRUE(agent_log.any_contains("; giving up")) << agent_log.joined();
  EXPECT_TRUE(coordinator_log.any_contains(
      "TLS handshake failed (tls_alert_received: the peer sent an alert: "))
      << coordinator_log.joined();
}

// A server that accepts and does `serve` with each connection, on its own thread.
class FakeCoordinator {
 public:
  explicit FakeCoordinator(std::function<void(int)> serve) {
    // Without SO_REUSEADDR, so the port chosen has no TIME_WAIT left from an
    // earlier test (a SYN meeting one is answered late, after a retransmit).
    listen_fd_ = net::tcp_socket(AF_INET);
    const net::Endpoint any = *net::make_endpoint("127.0.0.1", 0);
    EXPECT_EQ(bind(listen_fd_, any.addr(), any.length), 0);
    EXPECT_EQ(listen(listen_fd_, 16), 0);
    port_ = net::local_endpoint(listen_fd_)->port();
    thread_ = std::thread([this, serve = std::move(serve)] {
      while (!stop_) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (poll(&p, 1, 20) != 1) continue;
        const int fd = net::accept_connection(listen_fd_);
        if (fd >= 0) serve(fd);
      }
    });
  }
  ~FakeCoordinator() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int listen_fd_;
  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Dials for 600 ms, 200 ms an attempt; returns every attempt's line. The
// refusal is looked for in any attempt: on loopback a connect now and then
// meets a TIME_WAIT left by an earlier test and waits for a SYN retransmit
// (1 s), which says nothing about the peer.
std::string dial_for_a_while(const std::string& address, const Token& token) {
  DialOptions options = quick_dial();
  options.attempt_timeout_ns = 200 * net::kNsPerMs;
  Lines log;
  const DialResult r = dial_coordinator(address, token, in_ms(600), options, log.sink());
  EXPECT_FALSE(r.link);
  return log.joined();
}

TEST(AgentDialHostile, APlaintextServerIsNotTls) {
  FakeCoordinator fake([](int fd) {
    (void)!write(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    net::close_with_reset(fd);  // no TIME_WAIT on this side
  });
  const std::string lines = dial_for_a_while(fake.address(), Token::generate());
  EXPECT_NE(lines.find("does not speak TLS 1.3 here (tls_handshake: "), std::string::npos) << lines;
}

TEST(AgentDialHostile, ASilentServerMeetsTheAttemptDeadline) {
  std::vector<int> held;
  FakeCoordinator fake([&](int fd) { held.push_back(fd); });
  const std::string lines = dial_for_a_while(fake.address(), Token::generate());
  EXPECT_NE(lines.find("did not complete a TLS handshake in time"), std::string::npos) << lines;
  for (int fd : held)
    close(fd);
}

TEST(AgentDialHostile, ACoordinatorWithTheKeyButAWrongProofIsRefused) {
  const Token token = Token::generate();
  const Token other = Token::generate();
  std::unique_ptr<tls::TlsServerContext> context = coordinator_tls_context(token);
  FakeCoordinator fake([&](int fd) {
    auto stream = tls::TlsStream::server(*context, fd);
    for (net::StreamResult r; (r = stream->handshake()).status != net::StreamStatus::kOk;) {
      if (r.status != net::StreamStatus::kWouldBlock) return;
      pollfd p{stream->fd(), POLLIN | POLLOUT, 0};
      poll(&p, 1, 100);
    }
    const std::string exporter = stream->export_keying_material(kExporterLabel, kExporterSize);
    StreamLink link(std::move(stream), "agent");
    MessageType type;
    std::string payload;
    if (receive_until(link, in_ms(1000), &type, &payload) != WaitResult::kOk) return;
    link.send(MessageType::kProof,
              compute_proof(other.proof_key(), ProofRole::kCoordinator, exporter));
    flush_until(link, in_ms(1000));
    receive_until(link, in_ms(1000), &type, &payload);  // until the agent hangs up
  });
  const std::string lines = dial_for_a_while(fake.address(), token);
  EXPECT_NE(lines.find(": the coordinator's proof does not match this token; "), std::string::npos)
      << lines;
}

TEST(AgentDial, RetriesUntilTheCoordinatorListens) {
  // A port nothing listens on yet.
  const int probe = net::listen_socket(*net::make_endpoint("127.0.0.1", 0), 1);
  const uint16_t port = net::local_endpoint(probe)->port();
  close(probe);
  const Token token = Token::generate();
  Lines agent_log;
  DialResult dialed;
  std::thread agent([&] {
    dialed = dial_coordinator("127.0.0.1:" + std::to_string(port), token, in_ms(5000), quick_dial(),
                              agent_log.sink());
    if (dialed.link) {
      dialed.link->send(MessageType::kHello, encode_hello(local_hello(0)));
      flush_until(*dialed.link, in_ms(2000));
    }
  });
  const int64_t deadline = in_ms(3000);
  while (!agent_log.any_contains("Connection refused; retrying in") && net::now_ns() < deadline) {
    std::this_thread::yield();
  }
  AgentListenerOptions options = quick_listener();
  options.listen = "127.0.0.1:" + std::to_string(port);
  Lines coordinator_log;
  AgentListener listener(token, options, coordinator_log.sink());
  std::optional<JoinedAgent> joined = listener.next(in_ms(5000));
  agent.join();
  ASSERT_TRUE(joined) << coordinator_log.joined() << agent_log.joined();
  EXPECT_TRUE(coordinator_log.all().empty()) << coordinator_log.joined();
  EXPECT_GE(dialed.attempts, 2);
  EXPECT_TRUE(dialed.link);
}

TEST(AgentDial, BackoffDoublesToItsCapWithJitter) {
  const DialOptions o;  // 0.5 s doubling to 5 s
  EXPECT_EQ(dial_backoff_ns(o, 1, 0.5), 500 * net::kNsPerMs);
  EXPECT_EQ(dial_backoff_ns(o, 2, 0.5), 1000 * net::kNsPerMs);
  EXPECT_EQ(dial_backoff_ns(o, 4, 0.5), 4000 * net::kNsPerMs);
  EXPECT_EQ(dial_backoff_ns(o, 5, 0.5), 5000 * net::kNsPerMs);
  EXPECT_EQ(dial_backoff_ns(o, 50, 0.5), 5000 * net::kNsPerMs);
  EXPECT_EQ(dial_backoff_ns(o, 1, 0.0), 400 * net::kNsPerMs);
  EXPECT_EQ(dial_backoff_ns(o, 50, 1.0), 6000 * net::kNsPerMs);
}

}  // namespace agent_listener_test
}  // namespace millstone::cluster
