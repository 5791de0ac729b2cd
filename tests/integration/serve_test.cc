// `millstone serve` with real processes on 127.0.0.1 (docs/serve.md): runs
// started over the API against `millstone mock`, watched over Server-Sent
// Events, queued, stopped and aborted; the token and bad bodies refused with
// nothing started; the web console (docs/console.md) driven in headless
// Chromium. Counts are checked against the mock's own.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace serve_test {

const char* const kRoutes = R"(
routes:
  - path: /a
    body: "a"
  - path: /c
    body: "c"
  - path: /slow
    body: "s"
)";

int entries_in(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (const dirent* e = readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  }
  closedir(d);
  return n;
}

// An events stream read as it comes, bounded by a deadline.
class SseClient {
 public:
  SseClient(int port, const std::string& path, const std::string& token) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                token + "\r\nAccept: text/event-stream\r\n\r\n";
    (void)!send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  }
  ~SseClient() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Reads until `text` has appeared `times` times in all read so far (true), or
  // the stream ends or `seconds` pass (false).
  bool wait_for(const std::string& text, int times, double seconds) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(int(seconds * 1000));
    for (;;) {
      int count = 0;
      for (size_t at = all_.find(text); at != std::string::npos; at = all_.find(text, at + 1))
        ++count;
      if (count >= times) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[8192];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        close();
        continue;
      }
      all_.append(buffer, static_cast<size_t>(n));
    }
  }
  const std::string& text() const { return all_; }
  // The data of every event of that name, parsed.
  std::vector<nlohmann::json> events(const std::string& name) const {
    std::vector<nlohmann::json> out;
    const std::regex event("event: " + name + "\nid: \\d+\ndata: ([^\n]*)\n\n");
    for (std::sregex_iterator it(all_.begin(), all_.end(), event), end; it != end; ++it)
      out.push_back(nlohmann::json::parse((*it)[1].str()));
    return out;
  }

 private:
  int fd_ = -1;
  std::string all_;
};

class Serve {
 public:
  // `extra`: more `millstone serve` flags, such as --scenarios DIR.
  explicit Serve(const std::vector<std::string>& extra = {}) : dir_(temp_dir()) {
    token_ = run_millstone({"token"}).out;
    while (!token_.empty() && token_.back() == '\n')
      token_.pop_back();
    const std::string token_file = dir_ + "/token";
    std::ofstream(token_file) << token_ << "\n";
    chmod(token_file.c_str(), 0600);
    std::vector<std::string> args = {"serve",    "--listen",   "127.0.0.1:0", "--token-file",
                                     token_file, "--data-dir", dir_ + "/data"};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = std::make_unique<Process>(args);
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    for (int i = 0; i < 500 && port_ == 0; ++i) {
      std::smatch m;
      const std::string out = process_->stdout_so_far();
      if (std::regex_search(out, m, listening))
        port_ = std::stoi(m[1]);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Serve() {
    process_->signal(SIGTERM);
    process_->wait(20);
  }
  int port() const { return port_; }
  const std::string& token() const { return token_; }
  std::string runs_dir() const { return dir_ + "/data/runs"; }
  HttpResponse call(const std::string& method, const std::string& path,
                    const std::string& body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {}) const {
    headers.emplace_back("Authorization", "Bearer " + token_);
    return http_request(port_, method, path, body, headers);
  }
  nlohmann::json json(const std::string& method, const std::string& path,
                      const std::string& body = "") const {
    const HttpResponse r = call(method, path, body);
    return nlohmann::json::parse(r.body, nullptr, false);
  }

 private:
  std::string dir_;
  std::string token_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// Validates each instance against its components/schemas entry of
// docs/api/openapi.yaml with python3-jsonschema (OpenAPI 3.0's `nullable`
// read as "or null"): the API's answers are what the published file says.
// One python process for all of them.
void expect_match_openapi(const std::vector<std::pair<std::string, nlohmann::json>>& instances) {
  const std::string script = write_temp_file(R"(
import json, sys, yaml
from jsonschema import Draft202012Validator
spec = yaml.safe_load(open(sys.argv[1]))
def nullable(node):
    if isinstance(node, dict):
        if node.pop("nullable", False):
            node["type"] = [node["type"], "null"]
            if "enum" in node and None not in node["enum"]:
                node["enum"].append(None)
        node.pop("example", None)
        for v in node.values():
            nullable(v)
    elif isinstance(node, list):
        for v in node:
            nullable(v)
nullable(spec)
failed = False
for name, instance in json.load(open(sys.argv[2])):
    schema = {"components": spec["components"], "$ref": "#/components/schemas/" + name}
    for e in Draft202012Validator(schema).iter_errors(instance):
        print(name, "/".join(str(p) for p in e.absolute_path), e.message)
        failed = True
sys.exit(1 if failed else 0)
)",
                                             ".py");
  const std::string data = write_temp_file(nlohmann::json(instances).dump(), ".json");
  const std::string command =
      "python3 " + script + " " + MILLSTONE_SOURCE_DIR + "/docs/api/openapi.yaml " + data;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

std::string quick_run(const MockServer& mock, const std::string& path, const std::string& duration,
                      int connections) {
  return nlohmann::json{
      {"url", mock.url(path)}, {"duration", duration}, {"connections", connections}, {"workers", 1}}
      .dump();
}

TEST(ServeIntegration, RunsQueueOneAtATimeAreWatchedOverSseAndCountWhatTheMockServed) {
  MockServer mock(kRoutes);
  const std::string scenarios = temp_dir();
  std::ofstream(scenarios + "/smoke.yaml") << "target: http://127.0.0.1:1\n";
  Serve serve({"--scenarios", scenarios});
  ASSERT_NE(serve.port(), 0);
  const int connections = 4;
  const HttpResponse a = serve.call("POST", "/v1/runs", quick_run(mock, "/a", "1s", connections));
  ASSERT_EQ(a.status, 202) << a.body;
  const std::string a_id = nlohmann::json::parse(a.body)["id"];
  // Posted while A runs: queued behind it, in order.
  const nlohmann::json b = serve.json("POST", "/v1/runs", quick_run(mock, "/slow", "30s", 1));
  EXPECT_EQ(b["state"], "queued") << b.dump();
  const HttpResponse c = serve.call("POST", "/v1/runs", quick_run(mock, "/c", "1s", connections),
                                    {{"Idempotency-Key", "c-once"}});
  ASSERT_EQ(c.status, 202) << c.body;
  const std::string c_id = nlohmann::json::parse(c.body)["id"];
  // The same key again: the same run, not another.
  const nlohmann::json c_again = serve.json("POST", "/v1/runs", "");
  EXPECT_EQ(c_again["status"], 400);
  const HttpResponse c_replay =
      serve.call("POST", "/v1/runs", quick_run(mock, "/c", "1s", connections),
                 {{"Idempotency-Key", "c-once"}});
  EXPECT_EQ(nlohmann::json::parse(c_replay.body)["id"], c_id);
  const nlohmann::json queued = serve.json("GET", "/v1/runs/" + c_id);
  EXPECT_EQ(queued["queue_position"], 2);

  SseClient a_events(serve.port(), "/v1/runs/" + a_id + "/events", serve.token());
  ASSERT_TRUE(a_events.wait_for("event: end", 1, 20)) << a_events.text();
  EXPECT_GE(a_events.events("second").size(), 1u) << a_events.text();
  const std::vector<nlohmann::json> end = a_events.events("end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["state"], "passed");
  EXPECT_EQ(end[0]["exit_code"], 0);

  // B starts when A has ended; aborted (SIGKILL) once it has reported a second.
  const std::string b_id = b["id"];
  SseClient b_events(serve.port(), "/v1/runs/" + b_id + "/events", serve.token());
  ASSERT_TRUE(b_events.wait_for("event: second", 1, 20)) << b_events.text();
  const nlohmann::json a_run = serve.json("GET", "/v1/runs/" + a_id);
  const nlohmann::json b_run = serve.json("GET", "/v1/runs/" + b_id);
  EXPECT_GE(b_run["started_at"].get<std::string>(), a_run["ended_at"].get<std::string>());
  EXPECT_EQ(serve.call("POST", "/v1/runs/" + b_id + "/abort").status, 202);
  ASSERT_TRUE(b_events.wait_for("event: end", 1, 10)) << b_events.text();
  EXPECT_EQ(b_events.events("end")[0]["state"], "aborted");
  EXPECT_EQ(serve.call("GET", "/v1/runs/" + b_id + "/summary").status, 404);
  EXPECT_EQ(serve.call("POST", "/v1/runs/" + b_id + "/stop").status, 409);

  SseClient c_events(serve.port(), "/v1/runs/" + c_id + "/events", serve.token());
  ASSERT_TRUE(c_events.wait_for("event: end", 1, 20)) << c_events.text();
  EXPECT_EQ(c_events.events("end")[0]["state"], "passed");

  // What each run counted against what the mock served (at most one
  // response per connection was still on its way at the end).
  const nlohmann::json stats = mock.stats();
  for (const auto& [id, route] : {std::pair{a_id, 0}, std::pair{c_id, 1}}) {
    const HttpResponse summary = serve.call("GET", "/v1/runs/" + id + "/summary");
    ASSERT_EQ(summary.status, 200) << summary.body;
    const uint64_t reported = nlohmann::json::parse(summary.body)["requests"];
    const uint64_t served = stats["routes"][route]["requests"];
    EXPECT_GT(reported, 0u);
    EXPECT_GE(served, reported);
    EXPECT_LE(served - reported, static_cast<uint64_t>(connections));
  }
  // The seconds streamed add up to the run's count.
  uint64_t streamed = 0;
  for (const nlohmann::json& second : a_events.events("second"))
    streamed += second["requests"].get<uint64_t>();
  EXPECT_EQ(streamed, nlohmann::json::parse(
                          serve.call("GET", "/v1/runs/" + a_id + "/summary").body)["requests"]);
  const HttpResponse report = serve.call("GET", "/v1/runs/" + a_id + "/report");
  EXPECT_EQ(report.status, 200);
  EXPECT_NE(report.head.find("text/html"), std::string::npos);
  EXPECT_NE(report.body.find("<html"), std::string::npos);
  EXPECT_EQ(serve.call("GET", "/v1/runs/" + a_id + "/junit").status, 200);
  // A client that comes after the end gets the whole run, from the run's directory.
  SseClient late(serve.port(), "/v1/runs/" + a_id + "/events", serve.token());
  ASSERT_TRUE(late.wait_for("event: end", 1, 5)) << late.text();
  EXPECT_EQ(late.events("second").size(), a_events.events("second").size());
  // The history: A as the baseline of its key, C compared with the baseline of its own
  // (a different URL, so none yet), B never recorded.
  const nlohmann::json marked = serve.json("POST", "/v1/runs/" + a_id + "/baseline");
  EXPECT_EQ(marked["key"], "GET " + mock.url("/a")) << marked.dump();
  const nlohmann::json compared = serve.json("GET", "/v1/runs/" + a_id + "/compare?tolerance=5%25");
  EXPECT_EQ(compared["baseline"], marked["run_id"]) << compared.dump();
  EXPECT_EQ(compared["tolerance"], 0.05);
  EXPECT_EQ(serve.call("GET", "/v1/runs/" + c_id + "/compare").status, 404);
  EXPECT_EQ(serve.call("POST", "/v1/runs/" + b_id + "/baseline").status, 404);
  // The list: newest first, with states and verdicts.
  const nlohmann::json list = serve.json("GET", "/v1/runs");
  ASSERT_EQ(list["runs"].size(), 3u);
  EXPECT_EQ(list["runs"][0]["id"], c_id);
  EXPECT_EQ(list["runs"][2]["id"], a_id);
  EXPECT_EQ(list["runs"][2]["verdict"], "pass");
  EXPECT_EQ(list["runs"][1]["state"], "aborted");
  std::vector<std::pair<std::string, nlohmann::json>> answers = {
      {"Run", queued},
      {"Run", serve.json("GET", "/v1/runs/" + a_id)},
      {"Run", serve.json("GET", "/v1/runs/" + b_id)},
      {"Error", c_again},
      {"ScenarioList", serve.json("GET", "/v1/scenarios")},
      {"Error", serve.json("GET", "/v1/runs/" + a_id + "x/report")}};
  for (const nlohmann::json& brief : list["runs"])
    answers.emplace_back("RunBrief", brief);
  expect_match_openapi(answers);
}

TEST(ServeIntegration, StopEndsARunWithPartialResultsAndALeavingSseClientCostsItNothing) {
  MockServer mock(kRoutes);
  Serve serve;
  ASSERT_NE(serve.port(), 0);
  const HttpResponse posted = serve.call("POST", "/v1/runs", quick_run(mock, "/a", "30s", 2));
  ASSERT_EQ(posted.status, 202) << posted.body;
  const std::string id = nlohmann::json::parse(posted.body)["id"];
  EXPECT_EQ(serve.call("GET", "/v1/runs/" + id + "/report").status, 409);
  {
    // Reads one second and goes away mid-run.
    SseClient leaving(serve.port(), "/v1/runs/" + id + "/events", serve.token());
    ASSERT_TRUE(leaving.wait_for("event: second", 1, 20)) << leaving.text();
  }
  SseClient staying(serve.port(), "/v1/runs/" + id + "/events", serve.token());
  // The replay has what was sent so far, and the run keeps going.
  ASSERT_TRUE(staying.wait_for("event: second", 2, 10)) << staying.text();
  EXPECT_EQ(serve.json("GET", "/v1/runs/" + id)["state"], "running");
  EXPECT_EQ(serve.call("POST", "/v1/runs/" + id + "/stop").status, 202);
  ASSERT_TRUE(staying.wait_for("event: end", 1, 15)) << staying.text();
  const nlohmann::json run = serve.json("GET", "/v1/runs/" + id);
  EXPECT_EQ(run["state"], "stopped") << run.dump();
  EXPECT_EQ(run["exit_code"], 130);
  // Partial results: what ran, counted, well short of 30 s.
  ASSERT_TRUE(run["summary"].is_object()) << run.dump();
  EXPECT_GT(run["summary"]["requests"].get<uint64_t>(), 0u);
  EXPECT_LT(run["summary"]["duration_s"].get<double>(), 20.0);
  EXPECT_EQ(serve.call("GET", "/v1/runs/" + id + "/report").status, 200);
}

TEST(ServeIntegration, AWrongOrMissingTokenIs401AndStartsNothing) {
  Serve serve;
  ASSERT_NE(serve.port(), 0);
  const std::string body = R"({"url": "http://127.0.0.1:1/", "duration": "1s"})";
  const HttpResponse missing = http_request(serve.port(), "POST", "/v1/runs", body);
  EXPECT_EQ(missing.status, 401);
  EXPECT_NE(missing.body.find("bearer token"), std::string::npos) << missing.body;
  const HttpResponse wrong = http_request(serve.port(), "POST", "/v1/runs", body,
                                          {{"Authorization", "Bearer " + serve.token() + "x"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(
      http_request(serve.port(), "GET", "/v1/runs", "", {{"Authorization", "Basic x"}}).status,
      401);
  EXPECT_EQ(entries_in(serve.runs_dir()), 0);
  EXPECT_EQ(serve.json("GET", "/v1/runs")["runs"].size(), 0u);
  EXPECT_EQ(http_request(serve.port(), "GET", "/v1/scenarios").status, 401);
  // Without --scenarios there are none to list.
  const nlohmann::json saved = serve.json("GET", "/v1/scenarios");
  EXPECT_TRUE(saved["dir"].is_null()) << saved.dump();
  EXPECT_EQ(saved["scenarios"].size(), 0u);
}

TEST(ServeIntegration, MalformedBodiesAre400WithAMessageNamingWhatWasWrong) {
  Serve serve;
  ASSERT_NE(serve.port(), 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"url": "http://127.0.0.1:1/", "duration": "1s")", "not valid JSON"},
      {R"(["http://127.0.0.1:1/"])", "must be a JSON object"},
      {R"({"url": "http://127.0.0.1:1/", "durration": "1s"})", "unknown field 'durration'"},
      {R"({"url": "http://127.0.0.1:1/", "duration": "10"})", "field 'duration'"},
      {R"({"url": "http://127.0.0.1:1/", "connections": 0})", "field 'connections'"},
      {R"({"url": "ftp://127.0.0.1:1/"})", "field 'url'"},
      {R"({"scenario": "/nonexistent/file.yaml"})", "field 'scenario'"},
      {R"({"duration": "1s"})", "names no run"},
  };
  for (const auto& [body, expected] : cases) {
    const HttpResponse r = serve.call("POST", "/v1/runs", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find(expected), std::string::npos) << body << " -> " << r.body;
  }
  EXPECT_EQ(serve.call("DELETE", "/v1/runs").status, 405);
  EXPECT_EQ(serve.call("GET", "/v1/runs/nope").status, 404);
  EXPECT_EQ(entries_in(serve.runs_dir()), 0);
}

bool have_console_driver() {
  return have("/usr/bin/chromium") && std::system("node --version > /dev/null 2>&1") == 0 &&
         access(MILLSTONE_SOURCE_DIR "/tests/interop/node_modules/ws", F_OK) == 0;
}

// The console as a person uses it, in headless Chromium over the DevTools
// protocol (tests/interop/console_driver.js): the token typed in, a saved
// scenario (whose file name is markup) started with overrides against the
// mock, the live chart growing, stop, the report, baseline and comparison.
// Screenshots go to BUILD/screenshots/ for a person to look at.
TEST(ServeIntegration, TheConsoleInChromiumStartsWatchesStopsAndReportsARun) {
  if (!have_console_driver())
    GTEST_SKIP() << "chromium, node or tests/interop/node_modules/ws is missing";
  MockServer mock(kRoutes);
  const std::string scenarios = temp_dir();
  const std::string markup = "<img src=x onerror=alert(1)>";
  std::ofstream(scenarios + "/" + markup + ".yaml")
      << "target: http://127.0.0.1:1\nflows:\n  browse:\n    steps:\n      - get: /a\n"
         "        check: {status: 200}\n";
  std::ofstream(scenarios + "/smoke.yml") << "target: http://127.0.0.1:1\n";
  std::ofstream(scenarios + "/notes.txt") << "not a scenario\n";
  Serve serve({"--scenarios", scenarios});
  ASSERT_NE(serve.port(), 0);

  // The API the console lists them with (checked against the OpenAPI file above).
  const nlohmann::json saved = serve.json("GET", "/v1/scenarios");
  ASSERT_EQ(saved["scenarios"].size(), 2u) << saved.dump();
  EXPECT_EQ(saved["scenarios"][0]["name"], markup + ".yaml");
  EXPECT_EQ(saved["scenarios"][1]["name"], "smoke.yml");
  // The page itself needs no token and holds no data; the API still does.
  const HttpResponse page = http_request(serve.port(), "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.head.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
  EXPECT_EQ(http_request(serve.port(), "GET", "/v1/runs").status, 401);

  std::string shots = MILLSTONE_BINARY;
  shots = shots.substr(0, shots.rfind('/')) + "/screenshots";
  std::filesystem::create_directories(shots);
  const Command driven =
      run_command({"/usr/bin/env", "node", MILLSTONE_SOURCE_DIR "/tests/interop/console_driver.js",
                   "http://127.0.0.1:" + std::to_string(serve.port()) + "/", serve.token(),
                   mock.url(""), shots},
                  30);
  const nlohmann::json seen = nlohmann::json::parse(driven.out, nullptr, false);
  ASSERT_EQ(driven.exit_code, 0) << driven.out << driven.err;
  ASSERT_TRUE(seen.is_object()) << driven.out;
  EXPECT_EQ(seen["console_errors"].size(), 0u) << seen["console_errors"].dump(1);
  EXPECT_TRUE(seen["token_in_storage_only"].get<bool>());
  // Names from the server are text, never markup.
  EXPECT_EQ(seen["scenario_options"][0], markup + ".yaml");
  EXPECT_NE(seen["title"].get<std::string>().find(markup), std::string::npos) << seen["title"];
  EXPECT_EQ(seen["list_target"], scenarios + "/" + markup + ".yaml");
  EXPECT_EQ(seen["injected_elements"], 0);
  // The live chart was drawn while the run went, and grew with each second; three charts.
  EXPECT_GE(seen["points_first"].get<int>(), 1);
  EXPECT_EQ(seen["state_while_live"], "running");
  EXPECT_GT(seen["points_at_end"].get<int>(), seen["points_first"].get<int>());
  EXPECT_EQ(seen["chart_paths"], 3);
  EXPECT_EQ(seen["state_after_stop"], "stopped");
  EXPECT_EQ(seen["list_state"], "stopped");
  // The report in its sandboxed frame rendered, and cannot reach the console.
  EXPECT_EQ(seen["report_status"], "ok");
  EXPECT_GT(seen["report_charts"].get<int>(), 0);
  EXPECT_EQ(seen["report_origin"], "opaque");
  EXPECT_EQ(seen["compared"], "ok");
  EXPECT_GT(seen["compare_rows"].get<int>(), 0);
  EXPECT_EQ(seen["screenshots"].size(), 3u);

  // The run the page started is the one the API and the mock know: the
  // overrides reached it, and what the page streamed is what the mock served.
  const std::string id = seen["run_id"];
  const nlohmann::json run = serve.json("GET", "/v1/runs/" + id);
  EXPECT_EQ(run["state"], "stopped");
  EXPECT_EQ(run["request"]["target"], mock.url(""));
  EXPECT_EQ(run["request"]["vus"], 2);
  EXPECT_EQ(run["request"]["duration"], "20s");
  const uint64_t reported = run["summary"]["requests"];
  EXPECT_EQ(seen["streamed_requests"].get<uint64_t>(), reported);
  const uint64_t served = mock.stats()["routes"][0]["requests"];
  EXPECT_GT(reported, 0u);
  EXPECT_GE(served, reported);
  EXPECT_LE(served - reported, 2u);
}

}  // namespace serve_test
}  // namespace millstone::testing
