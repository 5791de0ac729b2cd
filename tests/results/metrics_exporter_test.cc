// The Prometheus exporter: the exposition text, the HTTP side (over real
// sockets on loopback) and promtool's verdict on what it serves.
#include "results/metrics_exporter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "net/socket.h"

namespace millstone::results {
namespace metrics_exporter_test {

using metrics::ErrorCause;
using metrics::Snapshot;

// "name{labels}" -> value, for every sample line.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

double value(const std::map<std::string, std::string>& s, const std::string& series) {
  auto it = s.find(series);
  if (it == s.end()) {
    ADD_FAILURE() << "no series " << series;
    return -1;
  }
  return std::stod(it->second);
}

ExporterLabels url_labels() {
  return {"20261123-032041-4f2a", "http://127.0.0.1:1/", {}, {}, {}};
}

ExporterLabels scenario_labels() {
  return {"run-1",
          "shop.yaml",
          {"shopper/login", "shopper/buy"},
          {"shopper/login: status in [200]"},
          {"shopper"}};
}

Snapshot scenario_total() {
  Snapshot s;
  s.steps.resize(2);
  s.checks.resize(1);
  s.flows.resize(1);
  for (int i = 0; i < 30; ++i) {
    s.latency.record(1000 + i * 10);
    s.steps[0].latency.record(1000 + i * 10);
  }
  for (int i = 0; i < 20; ++i) {
    s.latency.record(40000);
    s.steps[1].latency.record(40000);
  }
  s.requests = 50;
  s.steps[0].requests = 30;
  s.steps[1].requests = 20;
  s.steps[1].failed = 4;
  s.status_counts[200] = 46;
  s.status_counts[503] = 4;
  s.add_error(ErrorCause::kTimeout, 2);
  s.checks[0].passed = 28;
  s.checks[0].failed = 2;
  s.flows[0].iterations = 19;
  s.flows[0].aborted = 1;
  s.dropped_iterations = 3;
  s.bytes_sent = 1234;
  s.bytes_received = 56789;
  s.connections_opened = 7;
  s.connections_established = 5;
  s.vus = 10;
  return s;
}

// A scenario run with WebSocket steps: 40 connections, pushes with delivery latency.
Snapshot socket_total() {
  Snapshot s = scenario_total();
  metrics::SocketStats& k = s.sockets.emplace();
  k.connected = 40;
  k.messages_in = 400;
  k.messages_out = 40;
  k.bytes_in = 12000;
  k.bytes_out = 800;
  k.unsolicited = 3;
  k.add_disconnect(metrics::DisconnectCause::kServerClose);
  k.close_codes[1001] = 1;
  for (int i = 0; i < 400; ++i)
    k.delivery.record(2000 + i);
  for (int i = 0; i < 40; ++i)
    k.connect_time.record(150);
  return s;
}

// ---------------------------------------------------------------------------
// Exposition text

TEST(MetricsExposition, EveryFamilyHasHelpAndTypeAndEverySampleTheRunId) {
  std::string text = render_exposition(scenario_labels(), scenario_total(), 10, 3);
  std::map<std::string, std::string> types;
  std::set<std::string> helps;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string hash, kind, name, type;
    words >> hash >> kind >> name >> type;
    if (hash == "#" && kind == "TYPE") types[name] = type;
    if (hash == "#" && kind == "HELP") helps.insert(name);
  }
  EXPECT_EQ(types.size(), helps.size());
  for (const auto& [series, v] : samples(text)) {
    std::string name = series.substr(0, series.find('{'));
    EXPECT_EQ(name.rfind("millstone_", 0), 0u) << name;
    std::string family = name;
    for (std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (name.size() > suffix.size() && name.ends_with(suffix) &&
          types.count(name.substr(0, name.size() - suffix.size())))
        family = name.substr(0, name.size() - suffix.size());
    }
    EXPECT_TRUE(types.count(family)) << "no TYPE for " << series;
    EXPECT_TRUE(helps.count(family)) << "no HELP for " << series;
    EXPECT_NE(series.find("{run_id=\"run-1\""), std::string::npos) << series;
  }
  EXPECT_EQ(types["millstone_requests_total"], "counter");
  EXPECT_EQ(types["millstone_request_duration_seconds"], "histogram");
  EXPECT_EQ(types["millstone_vus"], "gauge");
}

TEST(MetricsExposition, BeforeAnyDataEveryCounterIsZero) {
  std::string text = render_exposition(url_labels(), Snapshot{}, 0, 0);
  auto s = samples(text);
  EXPECT_EQ(value(s,
                  "millstone_run_info{run_id=\"20261123-032041-4f2a\",name=\"http://"
                  "127.0.0.1:1/\",version=\"" MILLSTONE_VERSION "\"}"),
            1);
  EXPECT_EQ(value(s, "millstone_requests_total{run_id=\"20261123-032041-4f2a\"}"), 0);
  EXPECT_EQ(value(s,
                  "millstone_request_errors_total{run_id=\"20261123-032041-4f2a\",cause="
                  "\"connect_refused\"}"),
            0);
  EXPECT_EQ(value(s, "millstone_request_duration_seconds_count{run_id=\"20261123-032041-4f2a\"}"),
            0);
  // URL runs have no steps, checks or flows.
  EXPECT_EQ(text.find("step="), std::string::npos);
  EXPECT_EQ(text.find("millstone_checks_total"), std::string::npos);
}

TEST(MetricsExposition, CountersFollowTheTotals) {
  std::string text = render_exposition(scenario_labels(), scenario_total(), 10, 3);
  auto s = samples(text);
  const std::string r = "run_id=\"run-1\"";
  EXPECT_EQ(value(s, "millstone_requests_total{" + r + "}"), 50);
  EXPECT_EQ(value(s, "millstone_requests_total{" + r + ",step=\"shopper/login\"}"), 30);
  EXPECT_EQ(value(s, "millstone_requests_total{" + r + ",step=\"shopper/buy\"}"), 20);
  EXPECT_EQ(value(s, "millstone_step_failed_requests_total{" + r + ",step=\"shopper/buy\"}"), 4);
  EXPECT_EQ(value(s, "millstone_request_errors_total{" + r + ",cause=\"timeout\"}"), 2);
  EXPECT_EQ(value(s, "millstone_request_errors_total{" + r + ",cause=\"reset\"}"), 0);
  EXPECT_EQ(value(s, "millstone_responses_total{" + r + ",status=\"200\"}"), 46);
  EXPECT_EQ(value(s, "millstone_responses_total{" + r + ",status=\"503\"}"), 4);
  const std::string check = ",check=\"shopper/login: status in [200]\"";
  EXPECT_EQ(value(s, "millstone_checks_total{" + r + check + ",result=\"pass\"}"), 28);
  EXPECT_EQ(value(s, "millstone_checks_total{" + r + check + ",result=\"fail\"}"), 2);
  EXPECT_EQ(value(s, "millstone_iterations_total{" + r + ",flow=\"shopper\"}"), 19);
  EXPECT_EQ(value(s, "millstone_iterations_aborted_total{" + r + ",flow=\"shopper\"}"), 1);
  EXPECT_EQ(value(s, "millstone_dropped_iterations_total{" + r + "}"), 3);
  EXPECT_EQ(value(s, "millstone_vus{" + r + "}"), 10);
  EXPECT_EQ(value(s, "millstone_bytes_sent_total{" + r + "}"), 1234);
  EXPECT_EQ(value(s, "millstone_bytes_received_total{" + r + "}"), 56789);
  EXPECT_EQ(value(s, "millstone_connections_opened_total{" + r + "}"), 7);
  EXPECT_EQ(value(s, "millstone_connections_established_total{" + r + "}"), 5);
  EXPECT_EQ(value(s, "millstone_http_failures_total{" + r + "}"), 4);
  EXPECT_EQ(value(s, "millstone_run_elapsed_seconds{" + r + "}"), 3);
}

TEST(MetricsExposition, HistogramBucketsAreCumulativeAndCountMatchesRequests) {
  Snapshot s;
  // 0.4 ms, 0.6 ms, 1.9 s and 100 s (beyond the last bound of 60 s).
  for (uint64_t us : {400u, 600u, 1900000u, 100000000u})
    s.latency.record(us);
  s.requests = 4;
  auto text = samples(render_exposition(url_labels(), s, 0, 1));
  const std::string b =
      "millstone_request_duration_seconds_bucket{run_id=\"20261123-032041-4f2a\",le=";
  EXPECT_EQ(value(text, b + "\"0.0005\"}"), 1);
  EXPECT_EQ(value(text, b + "\"0.001\"}"), 2);
  EXPECT_EQ(value(text, b + "\"1.5\"}"), 2);
  EXPECT_EQ(value(text, b + "\"2\"}"), 3);
  EXPECT_EQ(value(text, b + "\"60\"}"), 3);
  EXPECT_EQ(value(text, b + "\"+Inf\"}"), 4);
  double previous = 0;
  for (double bound : duration_bucket_bounds()) {
    double v = value(text, b + "\"" + fmt::format("{}", bound) + "\"}");
    EXPECT_GE(v, previous) << bound;
    previous = v;
  }
  const std::string r = "{run_id=\"20261123-032041-4f2a\"}";
  EXPECT_EQ(value(text, "millstone_request_duration_seconds_count" + r),
            value(text, "millstone_requests_total" + r));
  EXPECT_NEAR(value(text, "millstone_request_duration_seconds_sum" + r), 101.901, 101.901 * 0.01);
}

TEST(MetricsExposition, PerStepHistogramsCountTheirStepsRequests) {
  auto s = samples(render_exposition(scenario_labels(), scenario_total(), 10, 3));
  for (std::string step : {"shopper/login", "shopper/buy"}) {
    const std::string l = "{run_id=\"run-1\",step=\"" + step + "\"";
    EXPECT_EQ(value(s, "millstone_request_duration_seconds_count" + l + "}"),
              value(s, "millstone_requests_total" + l + "}"));
    EXPECT_EQ(value(s, "millstone_request_duration_seconds_bucket" + l + ",le=\"+Inf\"}"),
              value(s, "millstone_requests_total" + l + "}"));
  }
  // login: 1.00-1.29 ms, all under 1.5 ms; buy: 40 ms, between the 0.03 and 0.05 bounds.
  EXPECT_EQ(value(s,
                  "millstone_request_duration_seconds_bucket{run_id=\"run-1\",step=\"shopper/"
                  "login\",le=\"0.0015\"}"),
            30);
  EXPECT_EQ(value(s,
                  "millstone_request_duration_seconds_bucket{run_id=\"run-1\",step=\"shopper/"
                  "buy\",le=\"0.03\"}"),
            0);
  EXPECT_EQ(value(s,
                  "millstone_request_duration_seconds_bucket{run_id=\"run-1\",step=\"shopper/"
                  "buy\",le=\"0.05\"}"),
            20);
}

TEST(MetricsExposition, LabelValuesAreEscaped) {
  ExporterLabels labels = scenario_labels();
  labels.name = "C:\\tmp\\\"odd\"\nname.yaml";
  labels.check_names = {"say \"hi\"\\"};
  std::string text = render_exposition(labels, scenario_total(), 0, 1);
  EXPECT_NE(text.find("name=\"C:\\\\tmp\\\\\\\"odd\\\"\\nname.yaml\""), std::string::npos) << text;
  EXPECT_NE(text.find("check=\"say \\\"hi\\\"\\\\\""), std::string::npos);
  // No raw line feed inside any sample line.
  for (const auto& [series, v] : samples(text))
    EXPECT_EQ(series.find('\n'), std::string::npos);
}

TEST(MetricsExposition, UnnamedStepsAndFlowsAreLabelledByIndex) {
  ExporterLabels labels{"r", "s.yaml", {}, {}, {}};
  Snapshot total = scenario_total();
  auto s = samples(render_exposition(labels, total, 0, 1));
  EXPECT_EQ(value(s, "millstone_requests_total{run_id=\"r\",step=\"#1\"}"), 20);
  EXPECT_EQ(value(s, "millstone_iterations_total{run_id=\"r\",flow=\"#0\"}"), 19);
}

// ---------------------------------------------------------------------------
// The exporter as a ProgressSink

TEST(MetricsExposition, SocketFamiliesOnlyInRunsWithSockets) {
  EXPECT_EQ(render_exposition(scenario_labels(), scenario_total(), 10, 3).find("millstone_socket"),
            std::string::npos);
  auto s = samples(render_exposition(scenario_labels(), socket_total(), 10, 3, 39));
  EXPECT_EQ(s["millstone_sockets_open{run_id=\"run-1\"}"], "39");
  EXPECT_EQ(s["millstone_socket_messages_total{run_id=\"run-1\",direction=\"in\"}"], "400");
  EXPECT_EQ(s["millstone_socket_disconnects_total{run_id=\"run-1\",cause=\"server_close\"}"], "1");
  EXPECT_EQ(s["millstone_socket_close_codes_total{run_id=\"run-1\",code=\"1001\"}"], "1");
  EXPECT_EQ(s["millstone_socket_delivery_latency_seconds_count{run_id=\"run-1\"}"], "400");
  EXPECT_EQ(s["millstone_socket_delivery_latency_seconds_bucket{run_id=\"run-1\",le=\"0.003\"}"],
            "400");
  EXPECT_EQ(s["millstone_socket_delivery_latency_seconds_bucket{run_id=\"run-1\",le=\"0.002\"}"],
            "0");
}

TEST(MetricsExporter, FollowsOnSecondAndReportsTheLatestSecondsVus) {
  std::string error;
  auto exporter = MetricsExporter::start("127.0.0.1:0", scenario_labels(), &error);
  ASSERT_TRUE(exporter) << error;
  Snapshot second = scenario_total();
  second.vus = 5;
  Snapshot total = second;
  exporter->on_second(0, second, total);
  second.vus = 3;
  total.merge(second);  // total.vus is now 8: a sum over seconds, not a gauge
  exporter->on_second(1, second, total);
  auto s = samples(exporter->exposition());
  EXPECT_EQ(value(s, "millstone_vus{run_id=\"run-1\"}"), 3);
  EXPECT_EQ(value(s, "millstone_requests_total{run_id=\"run-1\"}"), 100);
  EXPECT_EQ(value(s, "millstone_run_elapsed_seconds{run_id=\"run-1\"}"), 2);
  exporter->on_finish();
  EXPECT_EQ(value(samples(exporter->exposition()), "millstone_requests_total{run_id=\"run-1\"}"),
            100);
}

TEST(MetricsExporter, DrillsAreGaugesFromTheStartAndFollowTheirEvents) {
  std::string error;
  ExporterLabels labels = scenario_labels();
  labels.drill_names = {"slow-db", "kill-api"};
  auto exporter = MetricsExporter::start("127.0.0.1:0", labels, &error);
  ASSERT_TRUE(exporter) << error;
  const std::string slow = "millstone_drill_active{run_id=\"run-1\",drill=\"slow-db\"}";
  const std::string kill = "millstone_drill_active{run_id=\"run-1\",drill=\"kill-api\"}";
  auto s = samples(exporter->exposition());
  EXPECT_EQ(value(s, slow), 0);  // known before it starts, so a dashboard can draw it
  EXPECT_EQ(value(s, kill), 0);
  exporter->on_drill("slow-db", true, false);
  exporter->on_drill("kill-api", false, true);
  s = samples(exporter->exposition());
  EXPECT_EQ(value(s, slow), 1);
  EXPECT_EQ(value(s, kill), 0);
  EXPECT_EQ(value(s, "millstone_drill_action_failures_total{run_id=\"run-1\",drill=\"kill-api\"}"),
            1);
  exporter->on_drill("slow-db", false, false);
  EXPECT_EQ(value(samples(exporter->exposition()), slow), 0);
}

// ---------------------------------------------------------------------------
// HTTP over real sockets

struct Address {
  std::string host;
  uint16_t port = 0;
};

Address parse(const std::string& bound) {
  std::string error;
  auto e = net::parse_listen_address(bound, &error);
  EXPECT_TRUE(e) << error;
  return {e ? net::numeric_host(*e) : "", e ? e->port() : uint16_t{0}};
}

// A blocking client connection with a 5 s receive timeout, so no test can hang.
int connect_to(const std::string& bound) {
  Address a = parse(bound);
  auto endpoint = net::make_endpoint(a.host, a.port);
  if (!endpoint) return -1;
  int fd = socket(endpoint->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, endpoint->addr(), endpoint->length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Everything until the server closes (or 5 s pass without a byte).
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string round_trip(const std::string& bound, const std::string& request) {
  int fd = connect_to(bound);
  if (fd < 0) return "";
  send_all(fd, request);
  std::string response = read_all(fd);
  close(fd);
  return response;
}

std::string get(const std::string& bound, const std::string& method, const std::string& path) {
  return round_trip(bound, method + " " + path + " HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
}

std::string body_of(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

TEST(MetricsExporterHttp, ServesMetricsWithThePrometheusContentType) {
  std::string error;
  auto exporter = MetricsExporter::start("127.0.0.1:0", scenario_labels(), &error);
  ASSERT_TRUE(exporter) << error;
  EXPECT_EQ(exporter->bound_address().rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(parse(exporter->bound_address()).port, 0);
  Snapshot total = scenario_total();
  exporter->on_second(0, total, total);

  std::string response = get(exporter->bound_address(), "GET", "/metrics");
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response.substr(0, 200);
  EXPECT_NE(response.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_EQ(body_of(response), exporter->exposition());
  EXPECT_NE(response.find("\r\nContent-Length: " + std::to_string(body_of(response).size())),
            std::string::npos);

  std::string with_query = get(exporter->bound_address(), "GET", "/metrics?x=1");
  EXPECT_EQ(with_query.rfind("HTTP/1.1 200 ", 0), 0u);
  std::string head = get(exporter->bound_address(), "HEAD", "/metrics");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 ", 0), 0u);
  EXPECT_EQ(body_of(head), "");
  EXPECT_EQ(get(exporter->bound_address(), "GET", "/").rfind("HTTP/1.1 404 ", 0), 0u);
  EXPECT_EQ(get(exporter->bound_address(), "GET", "/metricsx").rfind("HTTP/1.1 404 ", 0), 0u);
  std::string post = get(exporter->bound_address(), "POST", "/metrics");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u);
  EXPECT_NE(post.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_EQ(round_trip(exporter->bound_address(), "garbage\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
}

TEST(MetricsExporterHttp, SlowAndGarbageClientsDoNotBlockTheNextScrape) {
  std::string error;
  ExporterLimits limits;
  limits.read_timeout_ms = 60000;  // longer than any client here waits
  limits.max_connections = 8;
  auto exporter = MetricsExporter::start("127.0.0.1:0", url_labels(), &error, limits);
  ASSERT_TRUE(exporter) << error;
  const std::string bound = exporter->bound_address();

  // A client that sends half a request line and then nothing.
  int slow = connect_to(bound);
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(send_all(slow, "GET /metr"));
  // A client that sends a request line that never ends.
  int garbage = connect_to(bound);
  ASSERT_GE(garbage, 0);
  std::string junk(64 * 1024, 'x');
  send_all(garbage, junk);
  // More idle connections than the exporter keeps: the oldest are dropped.
  std::vector<int> idle;
  for (int i = 0; i < 12; ++i)
    idle.push_back(connect_to(bound));

  // Each client socket has a 5 s receive timeout, so a blocked server fails here.
  std::string response = get(bound, "GET", "/metrics");
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK", 0), 0u) << response;
  EXPECT_EQ(body_of(response), exporter->exposition());

  // The over-long request was answered and closed rather than buffered forever.
  std::string garbage_answer = read_all(garbage);
  EXPECT_TRUE(garbage_answer.empty() || garbage_answer.rfind("HTTP/1.1 431 ", 0) == 0)
      << garbage_answer.substr(0, 100);
  close(garbage);
  close(slow);
  for (int fd : idle)
    close(fd);
}

TEST(MetricsExporterHttp, ASilentClientIsClosedAfterTheReadTimeout) {
  std::string error;
  ExporterLimits limits;
  limits.read_timeout_ms = 200;
  auto exporter = MetricsExporter::start("127.0.0.1:0", url_labels(), &error, limits);
  ASSERT_TRUE(exporter) << error;
  int fd = connect_to(exporter->bound_address());
  ASSERT_GE(fd, 0);
  char c;
  errno = 0;
  // 0 = closed by the server; -1 with EAGAIN would be our own 5 s timeout.
  EXPECT_EQ(recv(fd, &c, 1, 0), 0) << strerror(errno);
  close(fd);
}

TEST(MetricsExporterHttp, ListensOnIpv6) {
  std::string error;
  auto exporter = MetricsExporter::start("[::1]:0", url_labels(), &error);
  if (!exporter && error.find("Cannot assign") != std::string::npos)
    GTEST_SKIP() << "no IPv6 loopback here: " << error;
  ASSERT_TRUE(exporter) << error;
  EXPECT_EQ(exporter->bound_address().rfind("[::1]:", 0), 0u) << exporter->bound_address();
  EXPECT_EQ(get(exporter->bound_address(), "GET", "/metrics").rfind("HTTP/1.1 200 ", 0), 0u);
}

TEST(MetricsExporterHttp, BadOrTakenAddressesAreErrors) {
  std::string error;
  EXPECT_FALSE(MetricsExporter::start("9464", url_labels(), &error));
  EXPECT_NE(error.find("HOST:PORT"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(MetricsExporter::start("example.com:9464", url_labels(), &error));
  EXPECT_FALSE(error.empty());
  auto first = MetricsExporter::start("127.0.0.1:0", url_labels(), &error);
  ASSERT_TRUE(first) << error;
  error.clear();
  EXPECT_FALSE(MetricsExporter::start(first->bound_address(), url_labels(), &error));
  // The caller names the address (--metrics-listen ADDRESS: ...).
  EXPECT_EQ(error, "address already in use (another process listens there)");
}

// ---------------------------------------------------------------------------
// promtool

constexpr const char* kPromtool = "/usr/bin/promtool";

struct ToolResult {
  int exit_code = -1;
  std::string output;
};

// `promtool check metrics < file`, stdout and stderr together.
ToolResult promtool_check(const std::string& exposition) {
  char path[] = "/tmp/millstone-exposition-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << exposition;
  std::string command = std::string(kPromtool) + " check metrics < " + path + " 2>&1";
  ToolResult r;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  unlink(path);
  return r;
}

TEST(MetricsExporterPromtool, LintIsCleanForUrlAndScenarioRuns) {
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << "promtool is not installed";
  ExporterLabels odd = scenario_labels();
  odd.name = "odd \"name\"\\ with\nline feed";
  for (const std::string& text :
       {render_exposition(url_labels(), Snapshot{}, 0, 0),
        render_exposition(url_labels(), scenario_total(), 0, 5),
        render_exposition(scenario_labels(), scenario_total(), 10, 5),
        render_exposition(odd, scenario_total(), 10, 5),
        render_exposition(scenario_labels(), socket_total(), 10, 5, 39),
        render_exposition(scenario_labels(), scenario_total(), 10, 5, 0,
                          {{"slow-db", true, 0}, {"kill-api", false, 2}})}) {
    ToolResult r = promtool_check(text);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "") << text;
  }
}

TEST(MetricsExporterPromtool, PromtoolDoesReportAProblem) {
  // The check above would pass vacuously if promtool never said anything.
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << "promtool is not installed";
  ToolResult r = promtool_check("# TYPE millstone_requests counter\nmillstone_requests 1\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output, "");
}

}  // namespace metrics_exporter_test
}  // namespace millstone::results
