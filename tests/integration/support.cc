#include "support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

namespace millstone::testing {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string temp_path(const std::string& suffix) {
  static int counter = 0;
  return "/tmp/millstone-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter) +
         suffix;
}

// Every `millstone run` records itself in the run history. The tests' runs go
// to a database in a temporary directory of this test binary, set before any
// test (or child process) starts, so they never touch the real home
// directory. A test may point MILLSTONE_HISTORY elsewhere, or pass --history.
class TestHistory {
 public:
  TestHistory() {
    char pattern[] = "/tmp/millstone-test-history-XXXXXX";
    if (!mkdtemp(pattern)) {
      perror("millstone tests: cannot create a directory for the run history");
      std::abort();
    }
    dir_ = pattern;
    setenv("MILLSTONE_HISTORY", (dir_ + "/history.db").c_str(), 1);
  }
  ~TestHistory() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};
const TestHistory test_history;

// Lines in which Chromium reports what the page printed to its console or
// an uncaught exception: "[...:INFO:CONSOLE(12)] "Uncaught Error: ...", source: ...".
std::vector<std::string> console_lines(const std::string& err) {
  std::vector<std::string> found;
  std::istringstream in(err);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("CONSOLE(") != std::string::npos || line.find("Uncaught") != std::string::npos ||
        line.find(":CONSOLE:") != std::string::npos) {
      found.push_back(line);
    }
  }
  return found;
}

}  // namespace

std::string temp_dir() {
  static int counter = 0;
  std::string dir = test_history.dir() + "/dir-" + std::to_string(++counter);
  std::filesystem::create_directories(dir);
  return dir;
}

int connect_loopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

int listen_loopback(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(fd, 128);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

std::string write_temp_file(const std::string& content, const std::string& suffix) {
  std::string path = temp_path(suffix);
  std::ofstream(path) << content;
  return path;
}

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(read_file(path));
}

const nlohmann::json& step(const nlohmann::json& summary, const std::string& name) {
  for (const nlohmann::json& s : summary["steps"]) {
    if (s["name"] == name) return s;
  }
  static const nlohmann::json missing = nlohmann::json::object();
  ADD_FAILURE() << "no step " << name << " in " << summary["steps"].dump();
  return missing;
}

uint64_t count(const nlohmann::json& j, const char* key) {
  return j.contains(key) ? j[key].get<uint64_t>() : 0;
}

Process::Process(const std::vector<std::string>& args, uint64_t open_file_limit,
                 const std::string& netns) {
  out_path_ = temp_path(".out");
  err_path_ = temp_path(".err");
  pid_ = fork();
  if (pid_ == 0) {
    if (!netns.empty()) {
      const int ns = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(125);
      close(ns);
    }
    if (open_file_limit) {
      rlimit limit{open_file_limit, open_file_limit};
      if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(126);
    }
    int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    std::vector<char*> argv;
    std::string binary = MILLSTONE_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
}

Process::~Process() {
  if (!waited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  unlink(out_path_.c_str());
  unlink(err_path_.c_str());
}

void Process::signal(int sig) {
  kill(pid_, sig);
}

std::string Process::stdout_so_far() const {
  return read_file(out_path_);
}

std::string Process::wait_for_output(const std::string& pattern, double timeout_s) const {
  const std::regex re(pattern);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  do {
    std::smatch m;
    const std::string out = stdout_so_far();
    if (std::regex_search(out, m, re)) return m.size() > 1 ? m[1].str() : m[0].str();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  return "";
}

ProcessResult Process::wait(double timeout_s) {
  ProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      result.timed_out = true;
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  waited_ = true;
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = read_file(out_path_);
  result.err = read_file(err_path_);
  return result;
}

ProcessResult run_millstone(const std::vector<std::string>& args, double timeout_s) {
  Process p(args);
  return p.wait(timeout_s);
}

MockServer::MockServer(const std::string& yaml, int workers, const std::vector<std::string>& extra,
                       uint64_t open_file_limit) {
  config_path_ = write_temp_file(yaml, ".yaml");
  std::vector<std::string> args{"mock",
                                "--config",
                                config_path_,
                                "--listen",
                                "127.0.0.1:0",
                                "--workers",
                                std::to_string(workers),
                                "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  process_ = std::make_unique<Process>(args, open_file_limit);
  std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  for (int i = 0; i < 500 && port_ == 0; ++i) {
    std::smatch m;
    std::string out = process_->stdout_so_far();
    if (std::regex_search(out, m, listening))
      port_ = std::stoi(m[1]);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (port_ == 0)
    throw std::runtime_error("mock server did not start: " + process_->stdout_so_far());
}

MockServer::~MockServer() {
  process_->signal(SIGTERM);
  process_->wait(10);
  unlink(config_path_.c_str());
}

std::string MockServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

nlohmann::json MockServer::stats() const {
  std::string body = http_get(port_, "/__millstone/stats");
  return nlohmann::json::parse(body);
}

std::string http_get(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!send(fd, request.data(), request.size(), 0);
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
    response.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

HttpResponse http_request(int port, const std::string& method, const std::string& path,
                          const std::string& body,
                          const std::vector<std::pair<std::string, std::string>>& headers) {
  HttpResponse result;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return result;
  }
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  for (const auto& [name, value] : headers)
    request += name + ": " + value + "\r\n";
  if (!body.empty()) request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;
  (void)!send(fd, request.data(), request.size(), 0);
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
    response.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos || response.compare(0, 9, "HTTP/1.1 ") != 0) return result;
  result.status = std::atoi(response.c_str() + 9);
  result.head = response.substr(0, end);
  result.body = response.substr(end + 4);
  return result;
}

ExternalServer::ExternalServer(const std::vector<std::string>& args, const std::string& log) {
  pid_ = fork();
  if (pid_ == 0) {
    FILE* out = std::fopen(log.c_str(), "w");
    if (out != nullptr) {
      dup2(fileno(out), 1);
      dup2(fileno(out), 2);
    }
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

ExternalServer::~ExternalServer() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

bool wait_listening(int port) {
  for (int i = 0; i < 200; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void expect_valid_summary(const std::string& out) {
  const std::string script = write_temp_file(R"(
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for k, v in node.items():
            if k != "if":
                strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
strict(schema)
errors = list(Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))))
for e in errors:
    print("/".join(str(p) for p in e.absolute_path), e.message)
sys.exit(1 if errors else 0)
)",
                                             ".py");
  const std::string command =
      "python3 " + script + " " + MILLSTONE_SOURCE_DIR + "/docs/summary.schema.json " + out;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

std::string shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen(("timeout 20 " + command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0)
    out.append(buffer, n);
  pclose(pipe);
  return out;
}

// Runs argv with stdout and stderr in files, in its own process group so a
// timeout kills everything it started (Chromium forks helpers).
Command run_command(const std::vector<std::string>& args, double timeout_s) {
  std::string out_path = write_temp_file("", ".stdout");
  std::string err_path = write_temp_file("", ".stderr");
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    int out = open(out_path.c_str(), O_WRONLY | O_TRUNC);
    int err = open(err_path.c_str(), O_WRONLY | O_TRUNC);
    int null = open("/dev/null", O_RDONLY);
    dup2(out, 1);
    dup2(err, 2);
    dup2(null, 0);
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  Command result;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  int status = 0;
  while (true) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Helpers of a process that ended on its own go too.
  kill(-pid, SIGKILL);
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  return result;
}

std::string body_attribute(const std::string& dom, const std::string& name) {
  std::smatch m;
  std::regex pattern("<body[^>]*\\s" + name + "=\"([^\"]*)\"");
  if (std::regex_search(dom, m, pattern)) return m[1];
  return "";
}

Rendered render_in_chromium(const std::string& html_path, const std::string& extra) {
  char dir_template[] = "/tmp/millstone-chromium-XXXXXX";
  std::string profile = mkdtemp(dir_template);
  Rendered r;
  r.run = run_command(
      {"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
       "--no-first-run", "--disable-background-networking", "--disable-component-update",
       "--disable-sync", "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
       "--virtual-time-budget=5000", "--window-size=1400,3000", extra, "file://" + html_path},
      30);
  run_command({"/bin/rm", "-rf", profile}, 10);
  r.dom = r.run.out;
  r.status = body_attribute(r.dom, "data-status");
  std::string charts = body_attribute(r.dom, "data-charts");
  std::string points = body_attribute(r.dom, "data-points");
  if (!charts.empty()) r.charts = std::stoi(charts);
  if (!points.empty()) r.points = std::stol(points);
  r.console_errors = console_lines(r.run.err);
  return r;
}

bool have(const std::string& path) {
  return access(path.c_str(), X_OK) == 0;
}

}  // namespace millstone::testing
