// Agents on hosts of their own: every agent, the coordinator and the target
// in a network namespace this test creates, each with its own address on one
// bridge (192.0.2.0/24, the documentation range, reachable nowhere else), as
// docs/agents.md's machines would be. What was sent is checked against the
// target's own count; a loss is a SIGKILL or a link taken down.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cluster/token.h"
#include "support.h"

namespace millstone::testing {
namespace agents_netns_test {

// `ip` commands, bounded (they return at once); true when it exited 0.
bool ip(const std::string& args) {
  const std::string command = "timeout 10 ip " + args + " >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

// A hub namespace holding a bridge, and one namespace per host with a veth
// to it. Names carry the test's pid, so parallel runs never share one; the
// destructor deletes the namespaces, which takes their links with them.
class TestNetwork {
 public:
  TestNetwork() : prefix_("ms" + std::to_string(getpid())) {
    ok_ = ip("netns add " + hub()) && ip("-n " + hub() + " link set lo up") &&
          ip("-n " + hub() + " link add br0 type bridge") && ip("-n " + hub() + " link set br0 up");
  }
  ~TestNetwork() {
    for (const std::string& ns : namespaces_)
      ip("netns del " + ns);
    ip("netns del " + hub());
  }
  TestNetwork(const TestNetwork&) = delete;
  TestNetwork& operator=(const TestNetwork&) = delete;

  bool ok() const { return ok_; }

  // A host named `name` with address 192.0.2.<octet>; returns its namespace.
  std::string add_host(const std::string& name, int octet) {
    const std::string ns = prefix_ + name;
    const std::string inside = "v" + name;             // the host's end
    const std::string outside = prefix_ + "p" + name;  // the bridge's end (< 16 chars)
    namespaces_.push_back(ns);
    ok_ = ok_ && ip("netns add " + ns) &&
          ip("link add " + inside + " netns " + ns + " type veth peer name " + outside + " netns " +
             hub()) &&
          ip("-n " + hub() + " link set " + outside + " master br0 up") &&
          ip("-n " + ns + " addr add 192.0.2." + std::to_string(octet) + "/24 dev " + inside) &&
          ip("-n " + ns + " link set " + inside + " up") && ip("-n " + ns + " link set lo up");
    return ns;
  }

  // Cuts the host off, as a pulled cable would: its end of the veth goes down.
  bool cut(const std::string& name) {
    return ip("-n " + prefix_ + name + " link set v" + name + " down");
  }

 private:
  std::string hub() const { return prefix_ + "hub"; }

  std::string prefix_;
  bool ok_ = false;
  std::vector<std::string> namespaces_;
};

std::string token_file() {
  const std::string path = write_temp_file(cluster::Token::generate().text() + "\n", ".token");
  chmod(path.c_str(), 0600);
  return path;
}

// The target's own count of requests, read from inside its namespace.
uint64_t served(const std::string& target_ns) {
  const std::string body = shell("ip netns exec " + target_ns +
                                 " curl -s --max-time 2 http://192.0.2.2:8080/__millstone/stats");
  const nlohmann::json stats = nlohmann::json::parse(body, nullptr, false);
  return stats.is_object() ? stats["requests"].get<uint64_t>() : 0;
}

// The network, a mock target with a fixed 20 ms latency, a coordinator
// waiting for three agents, and the agents, each on its own host. 150/s over
// 6 connections is half of what 20 ms answers allow, so nothing queues.
struct Fleet {
  TestNetwork net;
  std::string coordinator_ns, target_ns;
  std::vector<std::string> agent_ns;
  std::string token = token_file();
  std::string out = write_temp_file("", ".json");
  std::unique_ptr<Process> target, coordinator;
  std::vector<std::unique_ptr<Process>> agents;

  // Returns "" when ready, or why not.
  std::string start(const std::string& duration) {
    coordinator_ns = net.add_host("c", 1);
    target_ns = net.add_host("t", 2);
    for (int i = 1; i <= 3; ++i)
      agent_ns.push_back(net.add_host("a" + std::to_string(i), 10 + i));
    if (!net.ok()) return "could not build the test network";

    const std::string config = write_temp_file(
        "routes:\n  - path: /hello\n    latency: 20ms\n    body: \"hello\\n\"\n", ".yaml");
    target = std::make_unique<Process>(
        std::vector<std::string>{"mock", "--config", config, "--listen", "192.0.2.2:8080",
                                 "--workers", "1", "--quiet"},
        0, target_ns);
    if (target->wait_for_output(R"(listening on 192\.0\.2\.2:8080)").empty())
      return "the target did not start";

    coordinator = std::make_unique<Process>(std::vector<std::string>{"run",
                                                                     "http://192.0.2.2:8080/hello",
                                                                     "--agents",
                                                                     "3",
                                                                     "--agent-listen",
                                                                     "192.0.2.1:7070",
                                                                     "--token-file",
                                                                     token,
                                                                     "--agent-wait",
                                                                     "20s",
                                                                     "-c",
                                                                     "6",
                                                                     "--rate",
                                                                     "150",
                                                                     "-d",
                                                                     duration,
                                                                     "-q",
                                                                     "--no-history",
                                                                     "-o",
                                                                     out},
                                            0, coordinator_ns);
    if (coordinator->wait_for_output(R"(agents on 192\.0\.2\.1:7070)").empty())
      return "no coordinator";
    for (const std::string& ns : agent_ns) {
      agents.push_back(std::make_unique<Process>(
          std::vector<std::string>{"agent", "--join", "192.0.2.1:7070", "--token-file", token,
                                   "--workers", "1"},
          0, ns));
    }
    return "";
  }
};

bool can_make_namespaces() {
  const std::string probe = "ms" + std::to_string(getpid()) + "probe";
  const bool ok = ip("netns add " + probe) &&
                  ip("-n " + probe + " link add x0 type veth peer name x1") &&
                  ip("-n " + probe + " link add br0 type bridge");
  ip("netns del " + probe);
  return ok;
}

// Three agents on three hosts: they join from their own addresses, the
// target counts what the merged results count, and no answer came back
// faster than the target's 20 ms.
TEST(AgentNetns, ThreeAgentsOnTheirOwnHostsSendWhatTheTargetCounts) {
  if (!can_make_namespaces()) GTEST_SKIP() << "needs `ip netns add`, veth and bridge (root)";
  Fleet fleet;
  const std::string why = fleet.start("2s");
  ASSERT_EQ(why, "") << (fleet.coordinator ? fleet.coordinator->stdout_so_far() : "");

  const ProcessResult run = fleet.coordinator->wait(40);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_NE(run.out.find("(192.0.2.1" + std::to_string(i) + ":"), std::string::npos) << run.out;
  }
  for (auto& agent : fleet.agents)
    EXPECT_EQ(agent->wait(10).exit_code, 0);

  const nlohmann::json j = read_json(fleet.out);
  const uint64_t requests = j["requests"].get<uint64_t>();
  const uint64_t target = served(fleet.target_ns);
  EXPECT_GT(requests, 200u);
  EXPECT_GE(target, requests);
  EXPECT_LE(target, requests + j["in_flight"].get<uint64_t>());
  ASSERT_EQ(j["agents"].size(), 3u);
  for (const nlohmann::json& agent : j["agents"]) {
    EXPECT_EQ(agent["outcome"], "finished") << agent;
    EXPECT_EQ(agent["workers"], 1);
  }
  // Every request waited the target's 20 ms. (The median is 20.3-20.5 ms
  // here: the bridge adds about 0.1 ms. It was 31-32 ms while this fleet
  // sent 300/s over 6 connections, each then busy 100% of the time, so
  // requests queued and their latency, counted from when each was due,
  // grew; see docs/agents.md. Not asserted: timing.)
  EXPECT_GE(j["latency_ms"]["min"].get<double>(), 19.9) << j["latency_ms"];
}

// One agent SIGKILLed and another cut off by its link going down, at the
// same moment mid-run: heartbeats name both within 2 s, the third goes on,
// and the run completes degraded, each lost agent's third named as missing.
TEST(AgentNetns, AnAgentKilledAndAnotherCutOffAreBothNamedAndTheRunCompletes) {
  if (!can_make_namespaces()) GTEST_SKIP() << "needs `ip netns add`, veth and bridge (root)";
  Fleet fleet;
  const std::string why = fleet.start("4s");
  ASSERT_EQ(why, "") << (fleet.coordinator ? fleet.coordinator->stdout_so_far() : "");
  for (int i = 0; i < 500 && served(fleet.target_ns) < 75; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(served(fleet.target_ns), 75u);
  fleet.agents[0]->signal(SIGKILL);
  ASSERT_TRUE(fleet.net.cut("a2"));

  const ProcessResult run = fleet.coordinator->wait(40);
  EXPECT_EQ(run.exit_code, 9) << run.out << run.err;
  EXPECT_NE(run.out.find("AGENT LOST: agent 192.0.2.11:"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("AGENT LOST: agent 192.0.2.12:"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("completed degraded: 2 agents lost"), std::string::npos) << run.err;
  EXPECT_EQ(fleet.agents[2]->wait(10).exit_code, 0);

  const nlohmann::json j = read_json(fleet.out);
  ASSERT_EQ(j["agent_losses"].size(), 2u) << j.dump();
  for (const nlohmann::json& loss : j["agent_losses"])
    EXPECT_NEAR(loss["missing_share"].get<double>(), 1.0 / 3.0, 1e-9) << loss;
  // What the lost agents sent after their last report reached the target
  // but is missing from the results, never counted twice.
  EXPECT_LE(j["requests"].get<uint64_t>(), served(fleet.target_ns));
  expect_valid_summary(fleet.out);
}

}  // namespace agents_netns_test
}  // namespace millstone::testing
