// drills: in scenario files: what compiles, and every error with its
// FILE:LINE:COL and what was expected.
#include <signal.h>

#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scenario/loader.h"

namespace millstone::scenario {
namespace loader_drills_test {

using ::testing::ElementsAre;
using ::testing::Pair;

// Lines 1-8; drills start on line 9.
constexpr std::string_view kHead = R"(target: http://127.0.0.1:9
flows:
  a:
    steps:
      - get: /
scenarios:
  warm: {executor: constant-vus, vus: 1, duration: 10s, graceful_stop: 0s}
  peak: {executor: constant-vus, vus: 2, duration: 20s, start: after warm}
)";

std::unique_ptr<Plan> load(std::string_view drills) {
  return parse_scenario(std::string(kHead) + std::string(drills), "d.yaml", "/base");
}

std::string error_of(std::string_view drills) {
  try {
    load(drills);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(LoaderDrills, CompilesEveryAction) {
  auto plan = load(R"(drills:
  - name: stop-api
    at: 12s
    duration: 3s
    signal: {send: stop, pid_file: run/api.pid}
  - name: slow-db
    after: peak
    offset: 2s
    duration: 5s
    timeout: 2s
    proxy:
      api: http://127.0.0.1:8474
      proxy: db
      toxic: latency
      stream: upstream
      toxicity: 0.5
      attributes: {latency: 200ms, jitter: 20}
  - name: errors
    at: 1s
    mock:
      url: http://localhost:8080
      route: list items
      set: {status: 503, latency: 20ms, rate: "0.5", errors: [{rate: 50%, reset: true}], x: null}
      token_file: secrets/mock.token
  - name: pause
    at: 0s
    duration: 1s
    exec: {command: docker pause api, undo: [docker, unpause, api]}
  - name: shell
    at: 1s
    exec: {command: "echo $HOME > /tmp/x", shell: true}
)");
  ASSERT_EQ(plan->drills.size(), 5u);
  const Drill& stop = plan->drills[0];
  EXPECT_EQ(stop.kind, Drill::Kind::kSignal);
  EXPECT_EQ(stop.location, "d.yaml:10:5");
  EXPECT_EQ(stop.start_us, 12'000'000);
  EXPECT_EQ(stop.end_us(), 15'000'000);
  EXPECT_EQ(stop.signal.signal, SIGSTOP);
  EXPECT_EQ(stop.signal.undo_signal, SIGCONT);  // never left stopped
  EXPECT_EQ(stop.signal.pid_file, "/base/run/api.pid");

  const Drill& slow = plan->drills[1];
  EXPECT_EQ(slow.kind, Drill::Kind::kProxy);
  EXPECT_EQ(slow.start_us, 12'000'000);  // peak starts at 10s, plus 2s
  EXPECT_EQ(slow.after, "peak");
  EXPECT_EQ(slow.timeout_us, 2'000'000);
  EXPECT_EQ(slow.proxy.api, "http://127.0.0.1:8474");
  EXPECT_EQ(slow.proxy.proxy, "db");
  EXPECT_EQ(slow.proxy.toxic_type, "latency");
  EXPECT_EQ(slow.proxy.stream, "upstream");
  EXPECT_EQ(slow.proxy.toxicity, 0.5);
  EXPECT_THAT(slow.proxy.attributes, ElementsAre(Pair("latency", 200), Pair("jitter", 20)));

  const Drill& errors = plan->drills[2];
  EXPECT_EQ(errors.mock.url, "http://localhost:8080");
  EXPECT_EQ(errors.mock.route, "list items");
  EXPECT_FALSE(errors.has_duration());
  EXPECT_EQ(errors.mock.token.file, "/base/secrets/mock.token");  // beside the scenario
  EXPECT_TRUE(errors.mock.token.value.empty());  // read by the coordinator at the run's start
  EXPECT_FALSE(slow.proxy.token.given());
  EXPECT_EQ(
      errors.mock.patch,
      R"({"status":503,"latency":"20ms","rate":"0.5","errors":[{"rate":"50%","reset":true}],"x":null})");

  EXPECT_THAT(plan->drills[3].exec.command, ElementsAre("docker", "pause", "api"));
  EXPECT_THAT(plan->drills[3].exec.undo, ElementsAre("docker", "unpause", "api"));
  EXPECT_THAT(plan->drills[4].exec.command, ElementsAre("/bin/sh", "-c", "echo $HOME > /tmp/x"));
}

TEST(LoaderDrills, TheFilesOwnProxiesAreAddressedByName) {
  auto plan = load(R"(proxies:
  - {name: api, listen: 127.0.0.1:18080, upstream: localhost:8080}
  - {name: db, listen: "[::1]:15432", upstream: 127.0.0.1:5432}
drills:
  - {name: slow, at: 1s, proxy: {proxy: db, toxic: latency, attributes: {latency: 200ms}}}
  - {name: far, at: 1s, proxy: {api: "http://127.0.0.1:8474", proxy: db, toxic: latency}}
)");
  ASSERT_EQ(plan->proxies.size(), 2u);
  EXPECT_EQ(plan->proxies[0].name, "api");
  EXPECT_EQ(plan->proxies[0].listen, "127.0.0.1:18080");
  EXPECT_EQ(plan->proxies[0].upstream, "localhost:8080");
  EXPECT_EQ(plan->proxies[1].location, "d.yaml:11:5");
  EXPECT_TRUE(plan->drills[0].proxy.local);
  EXPECT_EQ(plan->drills[0].proxy.api, "");
  EXPECT_FALSE(plan->drills[1].proxy.local);  // api: names a proxy that runs elsewhere
}

TEST(LoaderDrills, SlicerDelayIsInMicroseconds) {
  auto plan = load(R"(drills:
  - {name: s, at: 1s, proxy: {proxy: p, toxic: slicer, attributes: {average_size: 64, delay: 2ms}}}
)");
  EXPECT_EQ(plan->drills[0].proxy.api, "http://127.0.0.1:8474");  // Toxiproxy's port
  EXPECT_THAT(plan->drills[0].proxy.attributes,
              ElementsAre(Pair("average_size", 64), Pair("delay", 2000)));
}

TEST(LoaderDrills, TheExampleLoads) {
  const auto plan = load_scenario_file(MILLSTONE_SOURCE_DIR "/examples/drill.yaml");
  ASSERT_EQ(plan->drills.size(), 2u);
  EXPECT_EQ(plan->drills[0].proxy.attributes[0],
            std::make_pair(std::string("latency"), int64_t{200}));
  EXPECT_EQ(plan->drills[1].start_us, 17'000'000);
  EXPECT_EQ(plan->drills[1].mock.patch,
            R"({"errors":[{"rate":"50%","status":503,"body":"drill\n"}]})");
}

struct ErrorCase {
  const char* name;
  std::string_view drills;
  std::string_view message;
};

// clang-format off
const ErrorCase kCases[] = {
    {"NotAList", "drills: {a: 1}\n",
     "d.yaml:9:9: drills is a map; expected a list of faults such as [{name: slow-db, at: 10s, duration: 5s, proxy: {...}}]"},
    {"UnknownKey", "drills:\n  - {name: a, at: 1s, exec: {command: [true]}, durration: 2s}\n",
     "d.yaml:10:48: unknown key \"durration\" in drill (did you mean \"duration\"?); expected one of: name, at, after, offset, duration, timeout, exec, signal, proxy, mock"},
    {"NoName", "drills:\n  - {at: 1s, exec: {command: [true]}}\n",
     "d.yaml:10:5: drill has no name; expected e.g. name: slow-db (it labels the fault in the summary, the report and the metrics)"},
    {"BadName", "drills:\n  - {name: a b, at: 1s, exec: {command: [true]}}\n",
     "d.yaml:10:12: drill name \"a b\" is not usable; expected 1 to 64 letters, digits, '_', '-' or '.' (it names a toxic and a metric label)"},
    {"DuplicateName", "drills:\n  - {name: a, at: 1s, exec: {command: [true]}}\n  - {name: a, at: 2s, exec: {command: [true]}}\n",
     "d.yaml:11:5: drill name \"a\" is used twice (first at d.yaml:10:5); expected distinct names"},
    {"NoStart", "drills:\n  - {name: a, exec: {command: [true]}}\n",
     "d.yaml:10:5: drill a has no start; expected at: 20s, or after: SCENARIO (when that scenario starts) with an optional offset: 5s"},
    {"AtAndAfter", "drills:\n  - {name: a, at: 1s, after: warm, exec: {command: [true]}}\n",
     "d.yaml:10:23: drill a has both at: and after:; expected one start (after: NAME with offset: for a time after a scenario starts)"},
    {"OffsetWithoutAfter", "drills:\n  - {name: a, at: 1s, offset: 1s, exec: {command: [true]}}\n",
     "d.yaml:10:23: drill a has offset: without after:; expected at: for a time from the run's start, or after: SCENARIO with offset:"},
    {"AfterUnknown", "drills:\n  - {name: a, after: peek, exec: {command: [true]}}\n",
     "d.yaml:10:22: drill a starts after \"peek\", which names no scenario (did you mean \"peak\"?); expected one of: warm, peak"},
    {"StartsAfterTheRun", "drills:\n  - {name: a, at: 40s, exec: {command: [true]}}\n",
     "d.yaml:10:19: drill a starts at 40s, when the run has ended (35s); expected a start within the run"},
    {"ZeroDuration", "drills:\n  - {name: a, at: 1s, duration: 0s, exec: {command: [true]}}\n",
     "d.yaml:10:33: drill a lasts 0s; expected a duration above 0, or no duration: for a one-off action"},
    {"TimeoutTooLong", "drills:\n  - {name: a, at: 1s, timeout: 1h, exec: {command: [true]}}\n",
     "d.yaml:10:32: drill a timeout \"1h\" is out of range; expected a duration above 0 and at most 10m (it bounds each action)"},
    {"NoAction", "drills:\n  - {name: a, at: 1s}\n",
     "d.yaml:10:5: drill a has no action; expected one of exec:, signal:, proxy: or mock:"},
    {"TwoActions", "drills:\n  - {name: a, at: 1s, exec: {command: [true]}, signal: {send: KILL, pid: 5}}\n",
     "d.yaml:10:48: drill a has both exec and signal; expected one action per drill (split it into two drills with the same start)"},
    {"ShellSyntaxWithoutShell", "drills:\n  - {name: a, at: 1s, exec: {command: \"kill $(cat x)\"}}\n",
     "d.yaml:10:45: drill a exec command \"kill $(cat x)\" has shell syntax (\"$\") but runs without a shell; expected shell: true, or a list of arguments such as [kill, -STOP, \"1234\"]"},
    {"EmptyCommand", "drills:\n  - {name: a, at: 1s, exec: {command: []}}\n",
     "d.yaml:10:39: drill a exec command is empty; expected a program and its arguments"},
    {"UndoWithoutDuration", "drills:\n  - {name: a, at: 1s, exec: {command: [a], undo: [b]}}\n",
     "d.yaml:10:44: drill a exec has undo: but the drill has no duration:; expected duration: (when to undo)"},
    {"UnknownSignal", "drills:\n  - {name: a, at: 1s, signal: {send: SIGSTPO, pid: 5}}\n",
     "d.yaml:10:38: send \"SIGSTPO\" is not a signal name (did you mean \"SIGSTOP\"?); expected e.g. SIGTERM, SIGKILL, SIGSTOP, SIGCONT, SIGHUP"},
    {"SignalWithoutTarget", "drills:\n  - {name: a, at: 1s, signal: {send: KILL}}\n",
     "d.yaml:10:31: drill a signal needs one of pid: and pid_file:; expected the process to signal"},
    {"SignalToEveryProcess", "drills:\n  - {name: a, at: 1s, signal: {send: KILL, pid: -1}}\n",
     "d.yaml:10:49: pid \"-1\" is out of range; expected a whole number from 2 to 4194304"},
    {"UnknownToxic", "drills:\n  - {name: a, at: 1s, proxy: {proxy: p, toxic: latncy}}\n",
     "d.yaml:10:48: drill a proxy toxic \"latncy\" is not a toxic type (did you mean \"latency\"?); expected one of latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data"},
    {"AttributeOfAnotherToxic", "drills:\n  - {name: a, at: 1s, proxy: {proxy: p, toxic: latency, attributes: {rate: 5}}}\n",
     "d.yaml:10:70: unknown key \"rate\" in drill a proxy attributes; expected one of: latency, jitter"},
    {"FractionalAttribute", "drills:\n  - {name: a, at: 1s, proxy: {proxy: p, toxic: bandwidth, attributes: {rate: 1.5}}}\n",
     "d.yaml:10:78: rate \"1.5\" is not a whole number; expected a whole number from 0 to 1000000000000"},
    {"BadStream", "drills:\n  - {name: a, at: 1s, proxy: {proxy: p, toxic: latency, stream: up}}\n",
     "d.yaml:10:65: drill a proxy stream \"up\" is neither upstream (client to server) nor downstream (server to client); expected one of them"},
    {"ProxyApiWithPath", "drills:\n  - {name: a, at: 1s, proxy: {api: \"http://127.0.0.1:8474/x\", proxy: p, toxic: latency}}\n",
     "d.yaml:10:36: drill a proxy api \"http://127.0.0.1:8474/x\" is not a plain http:// base URL; expected e.g. http://127.0.0.1:8474 (no path, no TLS)"},
    {"MockWithoutSet", "drills:\n  - {name: a, at: 1s, mock: {url: \"http://127.0.0.1:1\", route: r}}\n",
     "d.yaml:10:29: drill a mock has no set; expected e.g. {url: http://127.0.0.1:8080, route: orders, set: {latency: 200ms}}"},
    {"MockSetNotMap", "drills:\n  - {name: a, at: 1s, mock: {url: \"http://127.0.0.1:1\", route: r, set: [1]}}\n",
     "d.yaml:10:72: drill a mock set is a list; expected a map of the route's fields, such as {latency: 200ms, status: 503}"},
    {"TwoTokens", "drills:\n  - {name: a, at: 1s, mock: {url: \"http://127.0.0.1:1\", route: r, set: {status: 503}, token_env: T, token_file: t}}\n",
     "d.yaml:10:101: drill a mock has both token_env: and token_file:; expected one place to read the token from"},
    {"TokenItselfAsEnv", "drills:\n  - {name: a, at: 1s, proxy: {proxy: p, toxic: latency, token_env: \"s3cret-42!\"}}\n",
     "d.yaml:10:68: drill a proxy token_env \"s3cret-42!\" is not an environment variable's name; expected letters, digits and '_' such as MOCK_TOKEN (the name, not the token)"},
    {"ProxyListenWithoutPort", "proxies:\n  - {name: api, listen: 127.0.0.1, upstream: 127.0.0.1:80}\n",
     "d.yaml:10:25: proxy api listen \"127.0.0.1\" is not HOST:PORT; expected e.g. 127.0.0.1:18080 (a fixed port: the flows send there)"},
    {"ProxyListenTwice", "proxies:\n  - {name: a, listen: 127.0.0.1:1, upstream: 127.0.0.1:80}\n  - {name: b, listen: 127.0.0.1:1, upstream: 127.0.0.1:80}\n",
     "d.yaml:11:23: proxy listen address \"127.0.0.1:1\" is used twice (first at d.yaml:10:5); expected distinct addresses"},
    {"DrillNamesNoOwnProxy", "proxies:\n  - {name: api, listen: 127.0.0.1:1, upstream: 127.0.0.1:80}\ndrills:\n  - {name: a, at: 1s, proxy: {proxy: apj, toxic: latency}}\n",
     "d.yaml:12:38: drill a proxy proxy \"apj\" is none of the file's proxies (did you mean \"api\"?); expected one of: api (or api: for a proxy that runs elsewhere)"},
};
// clang-format on

class LoaderDrillErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(LoaderDrillErrors, NamesFileLineAndWhatWasExpected) {
  const ErrorCase& c = GetParam();
  EXPECT_EQ(error_of(c.drills), c.message) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Cases, LoaderDrillErrors, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace loader_drills_test
}  // namespace millstone::scenario
