// Agents over any WorkerLink (socketpairs here; the TLS link is another
// layer): real agent processes with real local workers against the mock, the
// coordinator's count checked against the mock's own; and scripted agents
// that go silent or whose link breaks.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/agent.h"
#include "cluster/agent_link.h"
#include "cluster/coordinator.h"
#include "cluster/link.h"
#include "cluster/wire.h"
#include "http/request_builder.h"
#include "http/url.h"
#include "link_pair.h"
#include "mock/server.h"
#include "net/clock.h"

namespace millstone::cluster {
namespace agent_test {

// The body of a GET /__millstone/stats, parsed.
nlohmann::json mock_stats(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request =
        "GET /__millstone/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    (void)!send(fd, request.data(), request.size(), 0);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
      response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return nlohmann::json::parse(body == std::string::npos ? "" : response.substr(body + 4), nullptr,
                               false);
}

// Waits for `pid` at most `patience_ns`; -1 if it had to be killed.
int wait_exit_code(pid_t pid, int64_t patience_ns) {
  const int64_t deadline = net::now_ns() + patience_ns;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (net::now_ns() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    usleep(10'000);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class AgentFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mock::MockConfig config =
        mock::parse_mock_config("routes:\n  - path: /fast\n    body: ok\n", "test");
    mock::ServerOptions options;
    options.listen = *net::make_endpoint("127.0.0.1", 0);
    options.print_stats_on_exit = false;
    std::string error;
    mock_pid_ = mock::start_mock_server(config, options, &bound_, &error);
    ASSERT_GT(mock_pid_, 0) << error;
  }
  void TearDown() override { mock::stop_mock_server(mock_pid_); }

  engine::RunPlan plan(uint32_t connections, double rate, uint64_t duration_ms) {
    engine::RunPlan p;
    p.address = "127.0.0.1";
    p.port = bound_.port();
    std::string error;
    auto url = http::parse_url("http://127.0.0.1:" + std::to_string(p.port) + "/fast", &error);
    p.request_bytes = http::build_request("GET", *url, {}, "");
    p.connections = connections;
    p.rate = rate;
    p.duration_ms = duration_ms;
    p.timeout_ms = 1000;
    p.connect_timeout_ms = 1000;
    return p;
  }

  // Forks an agent process serving the agent end of `pair`.
  pid_t start_agent(LinkPair& pair, const std::vector<int>& also_close) {
    const pid_t pid = fork();
    if (pid == 0) {
      for (int fd : also_close)
        close(fd);
      pair.coordinator_side.reset();
      alarm(30);  // a bug must not leave it behind
      _exit(serve_agent(*pair.peer_side, local_hello(0), AgentOptions{}));
    }
    pair.peer_side.reset();
    return pid;
  }

  pid_t mock_pid_ = -1;
  net::Endpoint bound_;
};

// Two agents (two local workers and one) run an open-model plan: the fleet's
// total is the mock's count, each agent sent one snapshot per second, and the
// shares add up to the plan.
TEST_F(AgentFleetTest, TwoAgentsRunTheWholePlanAndTheMockCountsEveryRequest) {
  LinkPair a = make_pair("agent a");
  LinkPair b = make_pair("agent b");
  const pid_t pid_a = start_agent(a, {b.coordinator_side->fd(), b.peer_side->fd()});
  const pid_t pid_b = start_agent(b, {a.coordinator_side->fd()});

  const engine::RunPlan whole = plan(3, 300, 1100);
  std::vector<AgentShare> shares = split_over_agents(whole, {2, 1});
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(a.coordinator_side));
  links.push_back(std::move(b.coordinator_side));
  CoordinatorOptions options;
  options.start_lead_ns = 300 * net::kNsPerMs;  // the agents fork and start their workers
  RunResult result = Coordinator(std::move(links), {shares[0].plan, shares[1].plan}, {}, options,
                                 nullptr, {shares[0].local_workers, shares[1].local_workers})
                         .run();
  EXPECT_EQ(wait_exit_code(pid_a, 10 * net::kNsPerSec), 0);
  EXPECT_EQ(wait_exit_code(pid_b, 10 * net::kNsPerSec), 0);

  ASSERT_EQ(result.outcomes.size(), 2u);
  for (const WorkerOutcome& o : result.outcomes)
    EXPECT_EQ(o.state, WorkerOutcome::State::kFinished) << o.reason;
  EXPECT_TRUE(result.losses.empty());
  EXPECT_TRUE(result.worker_failures.empty());
  const metrics::Snapshot& t = result.total;
  EXPECT_EQ(t.errors, 0u);
  // 1.1 s at 300/s over three workers on two agents: 330 due in all.
  EXPECT_EQ(t.scheduled, 330u);
  const nlohmann::json stats = mock_stats(bound_.port());
  ASSERT_TRUE(stats.is_object());
  const uint64_t served = stats["requests"].get<uint64_t>();
  // The server saw every completed request; any still in flight at the end
  // it may have seen too.
  EXPECT_GE(served, t.requests);
  EXPECT_LE(served, t.requests + t.in_flight);
  EXPECT_GT(t.requests, 290u);
  // Each agent's seconds arrived as seconds: 0 whole, 1 the partial last.
  ASSERT_EQ(result.seconds.size(), 2u);
  EXPECT_EQ(result.seconds.at(0).requests + result.seconds.at(1).requests, t.requests);
}

// The coordinator goes away mid-run: the agent stops its workers at once and
// exits non-zero, long before the planned end.
TEST_F(AgentFleetTest, AnAgentWhoseCoordinatorVanishesStopsAtOnce) {
  LinkPair p = make_pair("agent");
  const pid_t pid = start_agent(p, {});
  MessageType type;
  std::string payload;
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  ASSERT_EQ(type, MessageType::kHello);
  Start start;
  start.start_ns = net::now_ns() + 100 * net::kNsPerMs;
  start.plan = plan(1, 0, 30'000);
  start.local_workers = 1;
  p.coordinator_side->send(MessageType::kStart, encode_start(start));
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  ASSERT_EQ(type, MessageType::kAck);
  // Its first whole second: the run is under way.
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  EXPECT_EQ(type, MessageType::kSnapshot);
  p.coordinator_side->close();
  EXPECT_EQ(wait_exit_code(pid, 5 * net::kNsPerSec), 1);
}

// A worker's Start is refused by an agent with one clear line.
TEST_F(AgentFleetTest, AnAgentRefusesAWorkersStart) {
  LinkPair p = make_pair("agent");
  std::thread agent(
      [&] { EXPECT_EQ(serve_agent(*p.peer_side, local_hello(0), AgentOptions{}), 1); });
  MessageType type;
  std::string payload;
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  Start start;
  start.plan = plan(1, 0, 1000);
  p.coordinator_side->send(MessageType::kStart, encode_start(start));
  ASSERT_EQ(receive_until(*p.coordinator_side, in_seconds(5), &type, &payload), WaitResult::kOk);
  ASSERT_EQ(type, MessageType::kError);
  std::string text;
  ASSERT_TRUE(decode_error(payload, &text));
  EXPECT_NE(text.find("worker's Start"), std::string::npos) << text;
  agent.join();
}

// --- Agent loss, with scripted agents ---

metrics::Snapshot second(uint64_t index, uint64_t requests) {
  metrics::Snapshot s;
  s.interval_index = index;
  s.requests = requests;
  s.latency.record(500);
  return s;
}

engine::RunPlan fleet_plan(uint32_t first, uint32_t total) {
  engine::RunPlan plan;
  plan.address = "127.0.0.1";
  plan.port = 9;
  plan.duration_ms = 1000;
  plan.timeout_ms = 100;
  plan.connect_timeout_ms = 100;
  plan.worker_index = first;
  plan.worker_count = total;
  return plan;
}

CoordinatorOptions loss_options() {
  CoordinatorOptions o;
  o.hello_timeout_ns = 500 * net::kNsPerMs;
  o.ack_timeout_ns = 500 * net::kNsPerMs;
  o.start_lead_ns = 10 * net::kNsPerMs;
  o.stop_after_end_ns = 50 * net::kNsPerMs;
  o.finish_grace_ns = 2 * net::kNsPerSec;
  o.silence_timeout_ns = 300 * net::kNsPerMs;
  return o;
}

// Hello, Start, Ack and the given seconds; what follows is the caller's.
void join_and_send(WorkerLink& link, const std::vector<metrics::Snapshot>& seconds,
                   uint32_t expect_workers) {
  link.send(MessageType::kHello, encode_hello(local_hello(0)));
  MessageType type;
  std::string payload;
  ASSERT_EQ(receive_until(link, in_seconds(5), &type, &payload), WaitResult::kOk);
  ASSERT_EQ(type, MessageType::kStart);
  Start start;
  ASSERT_TRUE(decode_start(payload, &start));
  EXPECT_EQ(start.local_workers, expect_workers);
  link.send(MessageType::kAck, encode_ack(Ack{net::now_ns()}));
  for (const metrics::Snapshot& s : seconds)
    link.send(MessageType::kSnapshot, encode_snapshot(s));
  ASSERT_EQ(flush_until(link, in_seconds(5)), WaitResult::kOk);
}

// One agent goes silent after its second 0, another's link closes after its
// second 1: both are named, with the second their share went missing from,
// and the run completes with the third agent (--on-agent-loss continue).
TEST(AgentLoss, ASilentAgentAndABrokenLinkAreLossesAndTheRunGoesOn) {
  LinkPair steady = make_pair("agent steady");
  LinkPair silent = make_pair("agent silent");
  LinkPair broken = make_pair("agent broken");
  std::thread steady_agent([&] {
    join_and_send(*steady.peer_side, {second(0, 10), second(1, 10)}, 2);
    steady.peer_side->send(MessageType::kDone, encode_done(Done{}));
    EXPECT_EQ(flush_until(*steady.peer_side, in_seconds(5)), WaitResult::kOk);
  });
  std::string told_silent;
  std::thread silent_agent([&] {
    join_and_send(*silent.peer_side, {second(0, 20)}, 1);
    // Holds its link open and says nothing more: the coordinator gives up.
    MessageType type;
    std::string payload;
    ASSERT_EQ(receive_until(*silent.peer_side, in_seconds(5), &type, &payload), WaitResult::kOk);
    ASSERT_EQ(type, MessageType::kError);
    decode_error(payload, &told_silent);
  });
  std::thread broken_agent([&] {
    join_and_send(*broken.peer_side, {second(0, 30), second(1, 30)}, 1);
    broken.peer_side->close();
  });
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(steady.coordinator_side));
  links.push_back(std::move(silent.coordinator_side));
  links.push_back(std::move(broken.coordinator_side));
  RunResult result =
      Coordinator(std::move(links), {fleet_plan(0, 4), fleet_plan(2, 4), fleet_plan(3, 4)}, {},
                  loss_options(), nullptr, {2, 1, 1})
          .run();
  steady_agent.join();
  silent_agent.join();
  broken_agent.join();

  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFinished);
  EXPECT_TRUE(result.worker_failures.empty());
  ASSERT_EQ(result.losses.size(), 2u);
  const AgentLoss* silent_loss = &result.losses[0];
  const AgentLoss* broken_loss = &result.losses[1];
  if (silent_loss->agent != "agent silent") std::swap(silent_loss, broken_loss);
  EXPECT_EQ(silent_loss->agent, "agent silent");
  EXPECT_EQ(silent_loss->at_second, 1u);
  EXPECT_DOUBLE_EQ(silent_loss->missing_share, 0.25);
  EXPECT_EQ(silent_loss->cause, "agent silent sent nothing for 0.3 s");
  EXPECT_EQ(told_silent, silent_loss->cause);
  EXPECT_EQ(silent_loss->host, local_hello(0).host);
  EXPECT_EQ(broken_loss->agent, "agent broken");
  EXPECT_EQ(broken_loss->at_second, 2u);
  EXPECT_NE(broken_loss->cause.find("closed"), std::string::npos) << broken_loss->cause;
  // What they sent before is kept; the seconds after are marked.
  EXPECT_EQ(result.total.requests, 100u);
  EXPECT_DOUBLE_EQ(missing_share(result, 0), 0);
  EXPECT_DOUBLE_EQ(missing_share(result, 1), 0.25);
  EXPECT_DOUBLE_EQ(missing_share(result, 2), 0.5);
}

// An agent with nothing to report for longer than the silence timeout (its
// workers busy, between seconds) is not lost while it answers the
// coordinator's pings: the coordinator's loop sends them.
TEST(AgentLoss, AnIdleAgentThatAnswersPingsIsNotLost) {
  LinkPair pair = make_pair("agent idle");
  const int64_t heartbeat_ns = 50 * net::kNsPerMs;
  auto agent_side = std::make_unique<AgentLink>(std::move(pair.peer_side), AgentLink::Role::kAgent,
                                                ClockSample{}, heartbeat_ns);
  std::thread agent([&] {
    join_and_send(*agent_side, {}, 1);
    // Pings are answered inside receive(); the next message is the Stop.
    MessageType type;
    std::string payload;
    ASSERT_EQ(receive_until(*agent_side, in_seconds(5), &type, &payload), WaitResult::kOk);
    EXPECT_EQ(type, MessageType::kStop);
    agent_side->send(MessageType::kSnapshot, encode_snapshot(second(0, 5)));
    agent_side->send(MessageType::kDone, encode_done(Done{}));
    EXPECT_EQ(flush_until(*agent_side, in_seconds(5)), WaitResult::kOk);
  });
  std::vector<std::unique_ptr<WorkerLink>> links;
  auto coordinator_side = std::make_unique<AgentLink>(
      std::move(pair.coordinator_side), AgentLink::Role::kCoordinator, ClockSample{}, heartbeat_ns);
  AgentLink* link = coordinator_side.get();
  links.push_back(std::move(coordinator_side));
  engine::RunPlan plan = fleet_plan(0, 1);
  plan.duration_ms = 600;  // twice the silence timeout, with nothing sent
  Coordinator coordinator(std::move(links), {plan}, {}, loss_options(), nullptr, {1});
  RunResult result = coordinator.run();
  agent.join();
  EXPECT_TRUE(result.losses.empty()) << result.losses[0].cause;
  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFinished);
  EXPECT_EQ(result.total.requests, 5u);
  EXPECT_GE(link->pongs(), 6u);
}

// --on-agent-loss fail: the first loss stops every other agent now, and the
// run is incomplete.
TEST(AgentLoss, FailStopsTheOtherAgents) {
  LinkPair steady = make_pair("agent steady");
  LinkPair broken = make_pair("agent broken");
  bool stopped = false;
  std::thread steady_agent([&] {
    join_and_send(*steady.peer_side, {second(0, 10)}, 1);
    MessageType type;
    std::string payload;
    ASSERT_EQ(receive_until(*steady.peer_side, in_seconds(5), &type, &payload), WaitResult::kOk);
    stopped = type == MessageType::kStop;
    steady.peer_side->send(MessageType::kSnapshot, encode_snapshot(second(1, 1)));
    steady.peer_side->send(MessageType::kDone, encode_done(Done{}));
    EXPECT_EQ(flush_until(*steady.peer_side, in_seconds(5)), WaitResult::kOk);
  });
  std::thread broken_agent([&] {
    join_and_send(*broken.peer_side, {}, 1);
    broken.peer_side->close();
  });
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(steady.coordinator_side));
  links.push_back(std::move(broken.coordinator_side));
  CoordinatorOptions options = loss_options();
  options.on_agent_loss = CoordinatorOptions::OnAgentLoss::kFail;
  // Far longer than the test: only the loss can end it.
  std::vector<engine::RunPlan> plans = {fleet_plan(0, 2), fleet_plan(1, 2)};
  for (engine::RunPlan& p : plans)
    p.duration_ms = 60'000;
  const int64_t began = net::now_ns();
  RunResult result = Coordinator(std::move(links), plans, {}, options, nullptr, {1, 1}).run();
  steady_agent.join();
  broken_agent.join();
  EXPECT_TRUE(stopped);
  EXPECT_LT(net::now_ns() - began, 30 * net::kNsPerSec);
  EXPECT_EQ(result.outcomes[0].state, WorkerOutcome::State::kFinished);
  ASSERT_EQ(result.losses.size(), 1u);
  EXPECT_EQ(result.losses[0].at_second, 0u);
  ASSERT_EQ(result.worker_failures.size(), 1u);
  EXPECT_NE(result.worker_failures[0].find("--on-agent-loss fail"), std::string::npos);
  EXPECT_EQ(result.total.requests, 11u);
}

// An agent whose local worker died says so in its Done: the run is incomplete.
TEST(AgentLoss, AnAgentsFailedWorkersReachTheCoordinator) {
  LinkPair p = make_pair("agent a");
  std::thread agent([&] {
    join_and_send(*p.peer_side, {second(0, 5)}, 1);
    p.peer_side->send(MessageType::kDone,
                      encode_done(Done{0, 0, {"worker 1 (pid 7) killed by signal 9 (Killed)"}}));
    EXPECT_EQ(flush_until(*p.peer_side, in_seconds(5)), WaitResult::kOk);
  });
  std::vector<std::unique_ptr<WorkerLink>> links;
  links.push_back(std::move(p.coordinator_side));
  RunResult result =
      Coordinator(std::move(links), {fleet_plan(0, 1)}, {}, loss_options(), nullptr, {1}).run();
  agent.join();
  EXPECT_TRUE(result.losses.empty());
  ASSERT_EQ(result.worker_failures.size(), 1u);
  EXPECT_EQ(result.worker_failures[0], "agent a: worker 1 (pid 7) killed by signal 9 (Killed)");
}

}  // namespace agent_test
}  // namespace millstone::cluster
