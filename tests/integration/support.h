#pragma once
// Starts real millstone processes on loopback for integration tests. Every
// process is bounded: a test waits at most a given time, then kills it.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace millstone::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs the millstone binary with args; kills it after timeout_s.
ProcessResult run_millstone(const std::vector<std::string>& args, double timeout_s = 60);

class Process {
 public:
  // Starts the millstone binary with args; stdout/stderr go to temporary files.
  // A non-zero open_file_limit sets the child's RLIMIT_NOFILE (soft and hard),
  // as on a machine whose limit is that low. A netns names a network
  // namespace (`ip netns add NAME`) the child runs in, as on another host.
  explicit Process(const std::vector<std::string>& args, uint64_t open_file_limit = 0,
                   const std::string& netns = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  pid_t pid() const { return pid_; }
  // Waits up to timeout_s for the process to end (then kills it).
  ProcessResult wait(double timeout_s);
  void signal(int sig);
  // Reads what the process has printed to stdout so far.
  std::string stdout_so_far() const;
  // Waits (timeout_s at most) until stdout matches the regex `pattern`;
  // returns the first capture group (the whole match without one), or "".
  std::string wait_for_output(const std::string& pattern, double timeout_s = 5) const;

 private:
  pid_t pid_ = -1;
  std::string out_path_;
  std::string err_path_;
  bool waited_ = false;
};

// A `millstone mock` on 127.0.0.1 with a free port, from YAML text.
class MockServer {
 public:
  // `extra`: more `millstone mock` flags, such as --no-http2. A non-zero
  // open_file_limit is the mock's RLIMIT_NOFILE (see Process).
  explicit MockServer(const std::string& yaml, int workers = 1,
                      const std::vector<std::string>& extra = {}, uint64_t open_file_limit = 0);
  ~MockServer();
  int port() const { return port_; }
  std::string url(const std::string& path) const;
  // GET /__millstone/stats, parsed.
  nlohmann::json stats() const;

 private:
  std::string config_path_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// A server other than millstone (nginx, nghttpd, openssl s_server...),
// started with execv and its stdout and stderr in `log`; SIGTERM, then
// SIGKILL after 2 s, and reaped when it goes out of scope.
class ExternalServer {
 public:
  ExternalServer(const std::vector<std::string>& args, const std::string& log);
  ~ExternalServer();
  ExternalServer(const ExternalServer&) = delete;
  ExternalServer& operator=(const ExternalServer&) = delete;

 private:
  pid_t pid_ = -1;
};

// Waits until 127.0.0.1:port accepts connections (2 s at most).
bool wait_listening(int port);

// Checks a JSON summary file against docs/summary.schema.json, strictly
// (no property the schema does not name), with python3-jsonschema.
void expect_valid_summary(const std::string& summary_path);

// Runs a shell command (curl, openssl, node) bounded to 20 s; returns its
// stdout (stderr is dropped).
std::string shell(const std::string& command);

// Plain blocking HTTP GET on loopback; returns the body ("" on failure).
std::string http_get(int port, const std::string& path);

struct HttpResponse {
  int status = 0;    // 0 when there was no parsable answer
  std::string head;  // status line and headers
  std::string body;
};

// One request on its own connection (Connection: close), any method; a
// Content-Length is added for a non-empty body.
HttpResponse http_request(int port, const std::string& method, const std::string& path,
                          const std::string& body = "",
                          const std::vector<std::pair<std::string, std::string>>& headers = {});
// A listening TCP socket on 127.0.0.1 with a free port (blocking, backlog 128).
int listen_loopback(int* port);
// A blocking TCP connection to 127.0.0.1:port with a 5 s receive timeout, or
// -1 when the connect fails.
int connect_loopback(int port);
std::string write_temp_file(const std::string& content, const std::string& suffix);
// A new empty directory, removed when the test binary exits. (The binary
// also points MILLSTONE_HISTORY at a throwaway database before any test runs.)
std::string temp_dir();
nlohmann::json read_json(const std::string& path);
// A scenario summary's entry for step `name`; a test failure and an empty
// object when it has none.
const nlohmann::json& step(const nlohmann::json& summary, const std::string& name);
// j[key] as a count, 0 when j has no such key.
uint64_t count(const nlohmann::json& j, const char* key);

// A command other than millstone, run to its end.
struct Command {
  int exit_code = -1;
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] a path) with stdout and stderr in files, in its own
// process group so a timeout kills everything it started (Chromium forks
// helpers).
Command run_command(const std::vector<std::string>& args, double timeout_s);

// Whether path is an executable file.
bool have(const std::string& path);

// An HTML report as headless Chromium renders it (--dump-dom): the DOM after
// the page's script ran, and what the page says of itself on <body>.
struct Rendered {
  Command run;
  std::string dom;
  std::string status;  // body's data-status
  int charts = -1;
  long points = -1;
  std::vector<std::string> console_errors;  // console lines and uncaught exceptions
};
Rendered render_in_chromium(const std::string& html_path, const std::string& extra = "--dump-dom");
// An attribute of <body> in a rendered DOM ("" when absent).
std::string body_attribute(const std::string& dom, const std::string& name);

}  // namespace millstone::testing
