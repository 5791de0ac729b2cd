// Remote agents end to end (docs/agents.md): a coordinator `millstone run
// --agents 2` and real `millstone agent` processes on loopback, over the TLS
// link and the token. What was sent is checked against the mock's own count.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cluster/token.h"
#include "socket_servers.h"
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
  const std::string report = write_temp_file("", ".html");
  std::vector<std::string> args = coordinator_args(mock, token, out, "2s");
  args.insert(args.end(), {"--report", report});
  Process coordinator(args);
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

  // The report, as Chromium draws it: the loss in the header, and every
  // chart over time shaded from the loss to the end.
  ASSERT_TRUE(have("/usr/bin/chromium")) << "install chromium (scripts/install-deps.sh)";
  const Rendered page = render_in_chromium(report);
  ASSERT_EQ(page.status, "ok") << page.run.err.substr(0, 4000);
  EXPECT_TRUE(page.console_errors.empty()) << page.console_errors.front();
  const nlohmann::json& loss = j["agent_losses"][0];
  const std::string who =
      loss["agent"].get<std::string>() + " (" + loss["host"].get<std::string>() + ")";
  EXPECT_NE(page.dom.find("Completed degraded: " + who + " lost at second " +
                          std::to_string(loss["at_second"].get<int>()) +
                          "; 50% of the load missing from then on"),
            std::string::npos)
      << page.dom.substr(0, 3000);
  // Every chart but the percentile curve is over time, and each shades the loss.
  EXPECT_GE(page.charts, 3);
  EXPECT_EQ(body_attribute(page.dom, "data-bands"), std::to_string(page.charts - 1));
  EXPECT_NE(page.dom.find(fmt::format("Shaded: agent {} lost from {} s to the end (50% of the "
                                      "load missing)",
                                      who, loss["at_second"].get<int>())),
            std::string::npos);
}

// The manifests `millstone k8s render` prints for a scenario: they parse, fit
// together (the Service selects the coordinator's pod on the port both
// command lines name; the agents' count, the token Secret and its 0400 mode,
// the ConfigMap's files at the paths the scenario names them by, byte for
// byte), and their command lines run here as a kubelet would run them: the
// ConfigMap and the Secret written out as mounted, the coordinator through
// its container command (the shell wrapper), the agents from their args.
//
// The hand-written deploy/k8s/ manifests are checked in the same Python run
// (one interpreter start): the agents' Job dials the coordinator's Service
// port, both mount the token Secret with mode 0400, and the coordinator
// waits for as many agents as the Job completes.
TEST(AgentManifests, RenderedManifestsAgreeAndTheirCommandLinesRunHere) {
  MockServer mock(kRoutes);
  const std::string folder = temp_dir();
  const std::string scenario = folder + "/shop.yaml";
  {
    std::ofstream(scenario) << R"(target: "{{ env.TARGET }}"
data:
  users: {file: data/users.csv}
  places: {file: latin.csv}
scenarios:
  load: {executor: constant-arrival-rate, rate: 200, duration: 5s, pre_allocated_vus: 8}
flows:
  browse:
    steps:
      - get: /hello?u={{ users.name }}
        headers: {X-Note: "{{ users.note }} {{ places.name }}"}
)";
    mkdir((folder + "/data").c_str(), 0700);
    // Trailing spaces, a tab, UTF-8 and no final newline: a literal block
    // must keep them; Latin-1 is not UTF-8 and must travel as binaryData.
    std::ofstream(folder + "/data/users.csv")
        << "name,note\nalice,  trailing  \nbob,caf\xc3\xa9\tx";
    std::ofstream(folder + "/latin.csv") << "name\nJos\xe9\n";
  }
  const std::string token = token_file();
  const std::string target = fmt::format("http://127.0.0.1:{}", mock.port());
  const Command render = run_command({MILLSTONE_BINARY,
                                      "k8s",
                                      "render",
                                      scenario,
                                      "--agents",
                                      "2",
                                      "--name",
                                      "t1",
                                      "--namespace",
                                      "load",
                                      "--token-file",
                                      token,
                                      "--agent-cpu",
                                      "1500m",
                                      "--results-hold",
                                      "0",
                                      "--on-agent-loss",
                                      "fail",
                                      "-e",
                                      "TARGET=" + target,
                                      "--",
                                      "-d",
                                      "500ms"},
                                     10);
  ASSERT_EQ(render.exit_code, 0) << render.err;
  const std::string manifests = write_temp_file(render.out, ".yaml");
  const std::string script = write_temp_file(R"(
import base64, glob, json, os, sys, yaml
manifests, source, work, port, binary, token, target, handwritten = sys.argv[1:]

docs = [d for f in sorted(glob.glob(handwritten + '/*.yaml')) for d in yaml.safe_load_all(open(f))]
handwritten_docs = docs
by = {(d['kind'], d['metadata']['name']): d for d in docs}
service = by[('Service', 'millstone-coordinator')]
coordinator = by[('Job', 'millstone-coordinator')]['spec']
agents = by[('Job', 'millstone-agents')]['spec']
assert agents['completionMode'] == 'Indexed'
port_ = service['spec']['ports'][0]['port']
agent_args = agents['template']['spec']['containers'][0]['args']
assert agent_args[agent_args.index('--join') + 1] == 'millstone-coordinator:%d' % port_, agent_args
run_args = coordinator['template']['spec']['containers'][0]['args']
assert int(run_args[run_args.index('--agents') + 1]) == agents['completions'] == agents['parallelism']
assert run_args[run_args.index('--agent-listen') + 1].endswith(':%d' % port_)
for job in (coordinator, agents):
    volume = [v for v in job['template']['spec']['volumes'] if 'secret' in v][0]
    assert volume['secret']['defaultMode'] == 0o400, volume
labels = coordinator['template']['metadata']['labels']
assert all(labels.get(k) == v for k, v in service['spec']['selector'].items())

docs = list(yaml.safe_load_all(open(manifests)))
json.dump(handwritten_docs + docs, open(os.path.join(work, 'objects.json'), 'w'))
assert [d['kind'] for d in docs] == ['Secret', 'ConfigMap', 'Service', 'Job', 'Job'], docs
secret, cm, svc, cjob, ajob = docs
for d in docs:
    assert d['metadata']['namespace'] == 'load' and d['metadata']['name'].startswith('t1-'), d
cpod, apod = cjob['spec']['template']['spec'], ajob['spec']['template']['spec']
cc, ac = cpod['containers'][0], apod['containers'][0]
run, agent = cc['args'], ac['args']
flag = lambda args, f: args[args.index(f) + 1]
selects = lambda labels: all(labels.get(k) == v for k, v in svc['spec']['selector'].items())
assert selects(cjob['spec']['template']['metadata']['labels'])
assert not selects(ajob['spec']['template']['metadata']['labels'])
p = svc['spec']['ports'][0]
assert p['port'] == p['targetPort'] == cc['ports'][0]['containerPort'], p
assert flag(run, '--agent-listen') == '0.0.0.0:%d' % p['port']
assert flag(agent, '--join') == '%s:%d' % (svc['metadata']['name'], p['port'])
assert ajob['spec']['completionMode'] == 'Indexed'
assert int(flag(run, '--agents')) == ajob['spec']['completions'] == ajob['spec']['parallelism'] == 2
assert flag(run, '--on-agent-loss') == 'fail'
assert flag(agent, '--workers') == '2' and ac['resources']['requests']['cpu'] == '1500m'
assert flag(run, '-e') == 'TARGET=' + target and run[-2:] == ['-d', '500ms'], run
assert secret['stringData']['token'] == open(token).read().strip()
for pod, c in ((cpod, cc), (apod, ac)):
    volumes = {v['name']: v for v in pod['volumes']}
    by_path = {m['mountPath']: m['name'] for m in c['volumeMounts']}
    path = flag(c['args'], '--token-file')
    s = volumes[by_path[os.path.dirname(path)]]['secret']
    assert s['secretName'] == secret['metadata']['name'] and s['defaultMode'] == 0o400, s
    assert [i['path'] for i in s['items'] if i['key'] == 'token'] == [os.path.basename(path)]
mounts = {m['name']: m['mountPath'] for m in cc['volumeMounts']}
volume = {v['name']: v for v in cpod['volumes']}['scenario']['configMap']
assert volume['name'] == cm['metadata']['name']
assert sorted(cm['data']) == ['data-users.csv', 'shop.yaml'] and list(cm['binaryData']) == ['latin.csv']
mount = os.path.join(work, 'scenario')
for item in volume['items']:
    key = item['key']
    data = cm['data'][key].encode() if key in cm['data'] else base64.b64decode(cm['binaryData'][key])
    assert data == open(os.path.join(source, item['path']), 'rb').read(), item
    os.makedirs(os.path.dirname(os.path.join(mount, item['path'])), exist_ok=True)
    open(os.path.join(mount, item['path']), 'wb').write(data)
assert run[1] == mounts['scenario'] + '/shop.yaml', run
os.makedirs(os.path.join(work, 'results'))
open(os.path.join(work, 'token'), 'w').write(secret['stringData']['token'])
os.chmod(os.path.join(work, 'token'), 0o400)
def here(args):
    out = []
    for a in args:
        a = a.replace(mounts['scenario'], mount).replace(mounts['results'], work + '/results')
        a = a.replace(flag(run, '--token-file'), work + '/token')
        a = a.replace('0.0.0.0:%d' % p['port'], '127.0.0.1:' + port)
        out.append(a.replace(flag(agent, '--join'), '127.0.0.1:' + port))
    return out
command = [c.replace('millstone "$@"', binary + ' "$@"') for c in cc['command']]
print(json.dumps({'coordinator': command + here(run), 'agent': here(agent)}))
)",
                                             ".py");
  const std::string work = temp_dir();
  const int port = free_port();
  const Command checked = run_command(
      {"/usr/bin/python3", script, manifests, folder, work, std::to_string(port), MILLSTONE_BINARY,
       token, target, std::string(MILLSTONE_SOURCE_DIR) + "/deploy/k8s"},
      10);
  ASSERT_EQ(checked.exit_code, 0) << checked.err << render.out;
  // Both sets of manifests against the Kubernetes API's own schemas (what a
  // client-side dry run checks), through the pinned kubernetes-models package.
  const Command valid = run_command(
      {"/usr/bin/node", std::string(MILLSTONE_SOURCE_DIR) + "/tests/interop/k8s_validate.js",
       work + "/objects.json"},
      10);
  EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err;
  EXPECT_EQ(valid.out, "8 valid\n");  // 3 hand-written, 5 rendered
  const nlohmann::json commands = nlohmann::json::parse(checked.out);
  Command coordinator;
  std::thread pod([&] {
    coordinator = run_command(commands["coordinator"].get<std::vector<std::string>>(), 30);
  });
  ASSERT_TRUE(wait_for_port(port, 5)) << (pod.join(), coordinator.err);
  std::vector<std::string> agent = commands["agent"].get<std::vector<std::string>>();
  Process first(agent);
  Process second(agent);
  pod.join();
  ASSERT_EQ(coordinator.exit_code, 0) << coordinator.out << coordinator.err;
  EXPECT_NE(coordinator.out.find("agent 2 joined: "), std::string::npos) << coordinator.out;
  for (Process* a : {&first, &second})
    EXPECT_EQ(a->wait(10).exit_code, 0);
  const nlohmann::json j = read_json(work + "/results/summary.json");
  const uint64_t requests = j["requests"].get<uint64_t>();
  EXPECT_GT(requests, 0u);
  EXPECT_EQ(j["status"]["200"], requests) << j.dump();
  EXPECT_EQ(j["workers"], 4);
  const uint64_t served = mock.stats()["requests"].get<uint64_t>();
  EXPECT_GE(served, requests);
  EXPECT_LE(served, requests + j["in_flight"].get<uint64_t>());
  struct stat report {};
  EXPECT_EQ(stat((work + "/results/report.html").c_str(), &report), 0);
  EXPECT_GT(report.st_size, 10'000);
}

// The scenario's TLS files are read when it loads, so they travel with it:
// the CA and the certificate in the ConfigMap, the private key in a Secret,
// both projected into the one folder at the paths the scenario names.
TEST(AgentManifests, RenderCarriesTheScenariosTlsFilesAndKeepsTheKeyInASecret) {
  const std::string folder = temp_dir();
  mkdir((folder + "/certs").c_str(), 0700);
  shell(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=t "
      "-days 1 -keyout " +
      folder + "/certs/client.key -out " + folder + "/certs/client.pem 2>/dev/null && cp " +
      folder + "/certs/client.pem " + folder + "/certs/ca.pem");
  std::ofstream(folder + "/s.yaml")
      << "target: https://api.internal:8443\ndefaults:\n  tls: {ca: certs/ca.pem, cert: "
         "certs/client.pem, key: certs/client.key}\nflows:\n  f:\n    steps:\n      - get: /\n";
  const Command render = run_command({MILLSTONE_BINARY, "k8s", "render", folder + "/s.yaml",
                                      "--agents", "2", "--token-secret", "load-token"},
                                     10);
  ASSERT_EQ(render.exit_code, 0) << render.err;
  const std::string script = write_temp_file(R"(
import base64, os, sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
kinds = {(d['kind'], d['metadata']['name']): d for d in docs}
assert ('Secret', 'load-token') not in kinds
keys, cm = kinds[('Secret', 'millstone-scenario-keys')], kinds[('ConfigMap', 'millstone-scenario')]
pod = kinds[('Job', 'millstone-coordinator')]['spec']['template']['spec']
sources = [v for v in pod['volumes'] if v['name'] == 'scenario'][0]['projected']['sources']
assert [s['configMap']['name'] for s in sources if 'configMap' in s] == [cm['metadata']['name']]
assert [s['secret']['name'] for s in sources if 'secret' in s] == [keys['metadata']['name']]
files = {}
for s in sources:
    for item in (s.get('configMap') or s['secret'])['items']:
        data = cm['data'][item['key']].encode() if 'configMap' in s else base64.b64decode(keys['data'][item['key']])
        files[item['path']] = data
        assert ('secret' in s) == (item['path'] == 'certs/client.key'), item
        assert 'secret' not in s or item['mode'] == 0o400, item
assert sorted(files) == ['certs/ca.pem', 'certs/client.key', 'certs/client.pem', 's.yaml'], files
for path, data in files.items():
    assert data == open(os.path.join(sys.argv[2], path), 'rb').read(), path
assert 'PRIVATE KEY' not in str(cm)
print('ok')
)",
                                             ".py");
  const Command checked =
      run_command({"/usr/bin/python3", script, write_temp_file(render.out, ".yaml"), folder}, 10);
  EXPECT_EQ(checked.out, "ok\n") << checked.err << render.out;
}

// Bad input names the flag or the file, with the documented exit code.
TEST(AgentManifests, RenderRefusesBadInputNamingTheFlagOrFile) {
  const std::string folder = temp_dir();
  const std::string scenario = folder + "/s.yaml";
  std::ofstream(scenario) << "target: http://127.0.0.1:9\ndata:\n  users: {file: ../users.csv}\n"
                             "flows:\n  f:\n    steps:\n      - get: /\n";
  std::ofstream(folder + "/../users.csv") << "name\na\n";
  const std::string good = write_temp_file(
      "target: http://127.0.0.1:9\nflows:\n  f:\n    steps:\n"
      "      - get: /\n",
      ".yaml");
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{good, "--agents", "0"}, 2, "--agents"},
      {{good}, 2, "--agents is required"},
      {{good, "--agents", "2", "--name", "Shop_1"}, 2, "--name 'Shop_1'"},
      {{good, "--agents", "2", "--agent-cpu", "two"}, 2, "--agent-cpu 'two'"},
      {{good, "--agents", "2", "--on-agent-loss", "stop"}, 2, "--on-agent-loss 'stop'"},
      {{good, "--agents", "2", "--", "--agents", "3"}, 2, "--agents after --"},
      {{good, "--agents", "2", "--", "-d", "5x"}, 2, "--duration"},
      {{good, "--agents", "2", "--token-file", "/nonexistent/t"}, 3, "/nonexistent/t"},
      {{folder + "/missing.yaml", "--agents", "2"}, 3, "missing.yaml: cannot read"},
      {{scenario, "--agents", "2"}, 3, "is outside the scenario's folder"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {MILLSTONE_BINARY, "k8s", "render"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Command r = run_command(args, 10);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << "nothing printed on bad input";
  }
}

}  // namespace agents_test
}  // namespace millstone::testing
