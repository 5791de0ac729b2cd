// Remote agents end to end (docs/agents.md): a coordinator `millstone run
// --agents 2` and real `millstone agent` processes on loopback, over the TLS
// link and the token. What was sent is checked against the mock's own count.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "cluster/token.h"
#include "support.h"

namespace millstone::testing {
namespace agents_test {

const char* kRoutes = R"(
routes:
  - path: /hello
    body: "hello\n"
)";

// A join secret in a private file, as `millstone token > FILE` makes it
// (that command is tested in docs/agents.md's runnable block).
std::string token_file() {
  const std::string path = write_temp_file(cluster::Token::generate().text() + "\n", ".token");
  chmod(path.c_str(), 0600);
  return path;
}

// The port the coordinator listens on for agents (it picked one: port 0),
// from its "waiting up to ... on 127.0.0.1:PORT" line; "" after 5 s.
std::string agent_address(const Process& coordinator) {
  return coordinator.wait_for_output(R"(agents? on (127\.0\.0\.1:\d+))");
}

std::vector<std::string> coordinator_args(const MockServer& mock, const std::string& token,
                                          const std::string& out, const std::string& duration) {
  return {"run",
          mock.url("/hello"),
          "--agents",
          "2",
          "--agent-listen",
          "127.0.0.1:0",
          "--token-file",
          token,
          "--agent-wait",
          "20s",
          "-c",
          "4",
          "--rate",
          "200",
          "-d",
          duration,
          "-q",
          "--no-history",
          "-o",
          out};
}

std::vector<std::string> agent_args(const std::string& address, const std::string& token) {
  return {"agent", "--join", address, "--token-file", token, "--workers", "1"};
}

// Two agents share the run; an agent holding another token is refused on
// both sides, and the run goes on without it.
TEST(AgentIntegration, TwoAgentsSendWhatTheMockCountsAndAWrongTokenIsRefused) {
  MockServer mock(kRoutes);
  const std::string token = token_file();
  const std::string other = token_file();
  const std::string out = write_temp_file("", ".json");
  Process coordinator(coordinator_args(mock, token, out, "1s"));
  const std::string address = agent_address(coordinator);
  ASSERT_FALSE(address.empty()) << coordinator.wait(1).err;
  Process intruder({"agent", "--join", address, "--token-file", other, "--join-timeout", "1s"});
  Process first(agent_args(address, token));
  Process second(agent_args(address, token));

  const ProcessResult run = coordinator.wait(30);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("agent 1 joined: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("agent 2 joined: "), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("an agent with another token rejects this coordinator's key"),
            std::string::npos)
      << run.err;
  for (Process* agent : {&first, &second}) {
    const ProcessResult a = agent->wait(10);
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_NE(a.err.find("run complete"), std::string::npos) << a.err;
  }
  const ProcessResult refused = intruder.wait(10);
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_NE(refused.err.find("is not the coordinator this token pins"), std::string::npos)
      << refused.err;

  const nlohmann::json j = read_json(out);
  const uint64_t requests = j["requests"].get<uint64_t>();
  const uint64_t served = mock.stats()["requests"].get<uint64_t>();
  EXPECT_GT(requests, 100u);
  // Every request the agents sent reached the mock and came back in a
  // snapshot (one still in flight at the end may have reached it).
  EXPECT_GE(served, requests);
  EXPECT_LE(served, requests + j["in_flight"].get<uint64_t>());
  EXPECT_EQ(j["workers"], 2);
  ASSERT_EQ(j["agents"].size(), 2u);
  for (const nlohmann::json& agent : j["agents"]) {
    EXPECT_EQ(agent["outcome"], "finished") << agent;
    EXPECT_EQ(agent["workers"], 1);
  }
  EXPECT_FALSE(j.contains("agent_losses"));
}

// An agent SIGKILLed mid-run: the run goes on with the other, names the lost
// one and its share, and exits 9 (completed degraded).
TEST(AgentIntegration, AnAgentKilledMidRunIsReportedAndTheRunCompletesDegraded) {
  MockServer mock(kRoutes);
  const std::string token = token_file();
  const std::string out = write_temp_file("", ".json");
  Process coordinator(coordinator_args(mock, token, out, "2s"));
  const std::string address = agent_address(coordinator);
  ASSERT_FALSE(address.empty()) << coordinator.wait(1).err;
  Process survivor(agent_args(address, token));
  Process victim(agent_args(address, token));
  // Mid-run: both agents are sending (200/s shared by two).
  for (int i = 0; i < 500 && mock.stats()["requests"].get<uint64_t>() < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(mock.stats()["requests"].get<uint64_t>(), 60u);
  victim.signal(SIGKILL);

  const ProcessResult run = coordinator.wait(30);
  EXPECT_EQ(run.exit_code, 9) << run.out << run.err;
  EXPECT_NE(run.out.find("AGENT LOST: agent 127.0.0.1:"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("50% of the load is missing from then on"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("completed degraded: 1 agent lost"), std::string::npos) << run.err;
  EXPECT_EQ(survivor.wait(10).exit_code, 0);

  const nlohmann::json j = read_json(out);
  ASSERT_EQ(j["agent_losses"].size(), 1u) << j.dump();
  EXPECT_DOUBLE_EQ(j["agent_losses"][0]["missing_share"].get<double>(), 0.5);
  int lost = 0;
  for (const nlohmann::json& agent : j["agents"]) {
    if (agent["outcome"] == "lost") {
      ++lost;
      EXPECT_EQ(agent["agent"], j["agent_losses"][0]["agent"]);
    }
  }
  EXPECT_EQ(lost, 1);
  // The lost agent's last, unreported requests are missing from the
  // results, never counted twice.
  const uint64_t requests = j["requests"].get<uint64_t>();
  EXPECT_GT(requests, 0u);
  EXPECT_LE(requests, mock.stats()["requests"].get<uint64_t>());
  // The agents and their losses as docs/summary.schema.json describes them.
  expect_valid_summary(out);
}

// deploy/k8s/ parses as Kubernetes objects that fit together: the agents'
// Indexed Job dials the coordinator's Service port, both mount the token
// Secret with mode 0400 (millstone refuses a group-readable token), and the
// coordinator waits for as many agents as the Job completes. (No cluster
// here: kubectl's own validation is not run.)
TEST(AgentManifests, TheKubernetesManifestsParseAndAgree) {
  const std::string script = write_temp_file(R"(
import glob, sys, yaml
docs = [d for f in sorted(glob.glob(sys.argv[1] + '/*.yaml')) for d in yaml.safe_load_all(open(f))]
by = {(d['kind'], d['metadata']['name']): d for d in docs}
service = by[('Service', 'millstone-coordinator')]
coordinator = by[('Job', 'millstone-coordinator')]['spec']
agents = by[('Job', 'millstone-agents')]['spec']
assert agents['completionMode'] == 'Indexed'
port = service['spec']['ports'][0]['port']
agent_args = agents['template']['spec']['containers'][0]['args']
assert agent_args[agent_args.index('--join') + 1] == 'millstone-coordinator:%d' % port, agent_args
run_args = coordinator['template']['spec']['containers'][0]['args']
assert int(run_args[run_args.index('--agents') + 1]) == agents['completions'] == agents['parallelism']
assert run_args[run_args.index('--agent-listen') + 1].endswith(':%d' % port)
for job in (coordinator, agents):
    volume = [v for v in job['template']['spec']['volumes'] if 'secret' in v][0]
    assert volume['secret']['defaultMode'] == 0o400, volume
labels = coordinator['template']['metadata']['labels']
assert all(labels.get(k) == v for k, v in service['spec']['selector'].items())
print('ok')
)",
                                             ".py");
  EXPECT_EQ(shell("python3 " + script + " " + std::string(MILLSTONE_SOURCE_DIR) + "/deploy/k8s"),
            "ok\n");
}

}  // namespace agents_test
}  // namespace millstone::testing
