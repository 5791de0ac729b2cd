// `millstone run --metrics-listen` scraped by a real Prometheus server
// (Debian's `prometheus` package), queried through its HTTP API afterwards.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "socket_servers.h"
#include "support.h"

namespace millstone::testing {
namespace live_metrics_test {

constexpr const char* kPrometheus = "/usr/bin/prometheus";

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// A Prometheus server in a temporary directory, stopped (and if need be
// killed) when the test ends.
class PrometheusServer {
 public:
  PrometheusServer(int scrape_port) {
    char tmpl[] = "/tmp/millstone-prometheus-XXXXXX";
    dir_ = mkdtemp(tmpl);
    port_ = free_port();
    std::ofstream(dir_ + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
           "scrape_configs:\n  - job_name: millstone\n    static_configs:\n"
           "      - targets: ['127.0.0.1:"
        << scrape_port << "']\n";
    std::vector<std::string> args = {kPrometheus, "--config.file=" + dir_ + "/prometheus.yml",
                                     "--storage.tsdb.path=" + dir_ + "/data",
                                     "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                     "--log.level=warn"};
    pid_ = fork();
    if (pid_ == 0) {
      int log = open((dir_ + "/log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 1);
      dup2(log, 2);
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(kPrometheus, argv.data());
      _exit(127);
    }
  }
  ~PrometheusServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  int port() const { return port_; }
  std::string log() const {
    std::ifstream in(dir_ + "/log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Waits up to timeout_s for /-/ready to answer 200.
  bool wait_ready(double timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (http_request(port_, "GET", "/-/ready").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }
  // Waits up to timeout_s for the scrape target to be listed (up or down).
  bool wait_target_active(double timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      nlohmann::json j =
          nlohmann::json::parse(http_request(port_, "GET", "/api/v1/targets").body, nullptr, false);
      if (!j.is_discarded() && j.contains("data") && !j["data"]["activeTargets"].empty() &&
          !j["data"]["activeTargets"][0].value("lastScrape", "").starts_with("0001"))
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }
  // GET /api/v1/query; the "data.result" array, or null on failure.
  nlohmann::json query(const std::string& promql, double at_unix_s) {
    std::string path =
        "/api/v1/query?query=" + url_encode(promql) + "&time=" + std::to_string(at_unix_s);
    HttpResponse r = http_request(port_, "GET", path);
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 200 || j.is_discarded() || j["status"] != "success") {
      ADD_FAILURE() << promql << ": HTTP " << r.status << " " << r.body;
      return nullptr;
    }
    return j["data"]["result"];
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST(LiveMetricsIntegration, PrometheusScrapesTheRunAndAnswersQueries) {
  if (access(kPrometheus, X_OK) != 0) GTEST_SKIP() << "prometheus is not installed";
  MockServer mock("routes:\n  - path: /hello\n    body: \"hello\\n\"\n    latency: 2ms\n");
  const int metrics_port = free_port();
  PrometheusServer prometheus(metrics_port);
  ASSERT_TRUE(prometheus.wait_ready(30)) << prometheus.log();

  // Prometheus starts scraping a target only once its discovery has handed
  // it over (a few seconds after start): wait for that, so the run is
  // scraped from its first second.
  ASSERT_TRUE(prometheus.wait_target_active(30)) << prometheus.log();

  std::string out = write_temp_file("", ".json");
  Process run({"run", mock.url("/hello"), "-c", "4", "-d", "8s", "-w", "1", "-q",
               "--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port), "-o", out});
  ProcessResult r = run.wait(40);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string run_id = read_json(out)["run_id"];

  // The series went stale when the run's port closed, so ask about the
  // moment of the last sample scraped while the run went on.
  nlohmann::json range = prometheus.query("millstone_requests_total[1m]", unix_now());
  ASSERT_TRUE(range.is_array() && range.size() == 1) << range.dump() << prometheus.log();
  const nlohmann::json& values = range[0]["values"];
  ASSERT_GE(values.size(), 3u) << "an 8 s run scraped every second: " << range.dump();
  const double during_run = values.back()[0].get<double>();

  nlohmann::json result = prometheus.query("millstone_requests_total", during_run);
  ASSERT_TRUE(result.is_array() && !result.empty())
      << "at " << std::to_string(during_run) << ": " << result.dump()
      << "\nlast minute: " << prometheus.query("millstone_requests_total[1m]", unix_now()).dump()
      << "\n"
      << prometheus.log();
  bool found = false;
  for (const auto& series : result) {
    if (series["metric"].value("run_id", "") != run_id) continue;
    found = true;
    EXPECT_EQ(series["metric"]["job"], "millstone");
    EXPECT_GT(std::stod(series["value"][1].get<std::string>()), 0) << series.dump();
  }
  EXPECT_TRUE(found) << "no series with run_id " << run_id << ": " << result.dump();

  // The histogram works as one: a p99 from the buckets near the mock's 2 ms.
  nlohmann::json p99 = prometheus.query(
      "histogram_quantile(0.99, sum by (le) (rate(millstone_request_duration_seconds_bucket{"
      "run_id=\"" +
          run_id + "\", step=\"\"}[5s])))",
      during_run);
  ASSERT_TRUE(p99.is_array() && p99.size() == 1) << p99.dump();
  double seconds = std::stod(p99[0]["value"][1].get<std::string>());
  EXPECT_GT(seconds, 0.001) << p99.dump();
  EXPECT_LT(seconds, 1.0) << p99.dump();

  // run_info names the run.
  nlohmann::json info = prometheus.query("millstone_run_info", during_run);
  ASSERT_TRUE(info.is_array() && !info.empty()) << info.dump();
  EXPECT_EQ(info[0]["metric"]["run_id"], run_id);
  EXPECT_EQ(info[0]["metric"]["name"], mock.url("/hello"));
}

}  // namespace live_metrics_test
}  // namespace millstone::testing
