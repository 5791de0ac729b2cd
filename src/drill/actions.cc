#include "drill/actions.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "net/clock.h"
#include "proxy/proxy_thread.h"

extern char** environ;

namespace millstone::drill {

void OutputExcerpt::append(std::string_view bytes) {
  total_ += bytes.size();
  while (!bytes.empty() && head_.size() < half_) {
    const size_t n = std::min(half_ - head_.size(), bytes.size());
    head_.append(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  for (char c : bytes) {
    if (tail_.size() < half_) {
      tail_.push_back(c);
    } else {
      tail_[tail_start_] = c;
      tail_start_ = (tail_start_ + 1) % half_;
    }
  }
}

std::string OutputExcerpt::text() const {
  std::string tail = tail_.substr(tail_start_) + tail_.substr(0, tail_start_);
  const uint64_t kept = head_.size() + tail.size();
  if (total_ > kept) {
    return head_ + fmt::format("[... {} bytes left out ...]", total_ - kept) + tail;
  }
  return head_ + tail;
}

std::string path_segment(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

HttpCall mock_patch_call(const scenario::MockAction& mock) {
  return {"PATCH", fmt::format("{}/__millstone/routes/{}", mock.url, path_segment(mock.route)),
          mock.patch, mock.token.value};
}

HttpCall mock_reset_call(const scenario::MockAction& mock) {
  return {"DELETE", fmt::format("{}/__millstone/routes/{}", mock.url, path_segment(mock.route)), "",
          mock.token.value};
}

HttpCall toxic_add_call(const scenario::ProxyAction& proxy, const std::string& toxic_name) {
  nlohmann::json attributes = nlohmann::json::object();
  for (const auto& [name, value] : proxy.attributes)
    attributes[name] = value;
  const nlohmann::json body = {{"name", toxic_name},
                               {"type", proxy.toxic_type},
                               {"stream", proxy.stream},
                               {"toxicity", proxy.toxicity},
                               {"attributes", attributes}};
  return {"POST", fmt::format("{}/proxies/{}/toxics", proxy.api, path_segment(proxy.proxy)),
          body.dump(), proxy.token.value};
}

HttpCall toxic_remove_call(const scenario::ProxyAction& proxy, const std::string& toxic_name) {
  return {"DELETE",
          fmt::format("{}/proxies/{}/toxics/{}", proxy.api, path_segment(proxy.proxy),
                      path_segment(toxic_name)),
          "", proxy.token.value};
}

bool read_token(scenario::ApiToken* token, const std::string& drill, std::string* error) {
  std::string value;
  if (!token->env.empty()) {
    const char* found = std::getenv(token->env.c_str());
    if (found == nullptr || *found == 0) {
      *error = fmt::format(
          "{}: drill {} token_env {} is {}; expected the API's token in that "
          "environment variable",
          token->location, drill, token->env, found == nullptr ? "not set" : "empty");
      return false;
    }
    value = found;
  } else if (!token->file.empty()) {
    std::ifstream in(token->file, std::ios::binary);
    if (!in) {
      *error = fmt::format(
          "{}: drill {} token_file {}: cannot read it: {}; expected a file "
          "holding the API's token",
          token->location, drill, token->file, std::strerror(errno));
      return false;
    }
    std::getline(in, value, '\0');
  } else {
    return true;
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r' || value.back() == ' ' ||
                            value.back() == '\t')) {
    value.pop_back();
  }
  // A header cannot carry a line break or a control byte: refuse rather than
  // send a request that means something else.
  const bool usable = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (!usable) {
    *error = fmt::format(
        "{}: drill {} {} holds {}; expected one line of printable text (the "
        "API's token)",
        token->location, drill,
        token->env.empty() ? "token_file " + token->file : "token_env " + token->env,
        value.empty() ? "nothing" : "a control character");
    return false;
  }
  token->value = std::move(value);
  return true;
}

namespace {

std::string seconds_text(int64_t ns) {
  return fmt::format("{:g}s", static_cast<double>(ns / net::kNsPerMs) / 1e3);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by {}", scenario::signal_name(WTERMSIG(status)));
  }
  return fmt::format("ended with wait status {}", status);
}

size_t collect(char* data, size_t size, size_t count, void* user) {
  static_cast<OutputExcerpt*>(user)->append(std::string_view(data, size * count));
  return size * count;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

ActionResult run_command(const scenario::Command& argv, int64_t deadline_ns) {
  ActionResult result;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.detail = fmt::format("cannot make a pipe: {}", std::strerror(errno));
    return result;
  }
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&files, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&files, pipe_fds[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The coordinator blocks SIGINT and SIGTERM (it reads them from a
  // signalfd): the command gets a clean mask and default dispositions, and
  // its own process group, so a timeout kills everything it started.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  sigdelset(&defaults, SIGKILL);
  sigdelset(&defaults, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, args[0], &files, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    result.detail = fmt::format("cannot run {}: {}", argv[0], std::strerror(spawned));
    return result;
  }
  const int64_t started = net::now_ns();
  OutputExcerpt output;
  int status = 0;
  bool exited = false;
  bool open = true;
  char buffer[4096];
  // Until the command exits: a background process it left behind may hold
  // the pipe open for ever, so its exit, not the pipe's end, ends the wait.
  while (!exited) {
    const int64_t left_ns = deadline_ns - net::now_ns();
    if (left_ns <= 0) break;
    if (open) {
      pollfd p{pipe_fds[0], POLLIN, 0};
      const int wait_ms = static_cast<int>(std::clamp<int64_t>(left_ns / net::kNsPerMs, 1, 20));
      if (poll(&p, 1, wait_ms) > 0) {
        const ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
        if (n > 0) {
          output.append(std::string_view(buffer, static_cast<size_t>(n)));
        } else if (n == 0 || errno != EINTR) {
          open = false;
        }
      }
    } else {
      usleep(static_cast<useconds_t>(std::min<int64_t>(left_ns / 1000, 5000)));
    }
    exited = waitpid(pid, &status, WNOHANG) == pid;
  }
  if (!exited) {
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
    result.detail = fmt::format("timed out after {} and was killed with its process group",
                                seconds_text(net::now_ns() - started));
  } else {
    // What it printed just before exiting.
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    for (ssize_t n; open && (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
      output.append(std::string_view(buffer, static_cast<size_t>(n)));
    }
    result.detail = describe_status(status);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  close(pipe_fds[0]);
  result.output = output.text();
  return result;
}

ActionResult send_signal(int signal, int64_t pid, const std::string& pid_file) {
  ActionResult result;
  std::string from;
  if (pid == 0) {
    from = fmt::format(" (from {})", pid_file);
    std::ifstream in(pid_file);
    std::string text;
    if (!in || !std::getline(in, text)) {
      result.detail = fmt::format("cannot read pid file {}: {}", pid_file,
                                  in ? "it is empty" : std::strerror(errno));
      return result;
    }
    text.erase(0, text.find_first_not_of(" \t"));
    text.erase(text.find_last_not_of(" \t\r") + 1);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
    if (ec != std::errc() || end != text.data() + text.size()) pid = 0;
  }
  // 0 and -1 would reach a process group or every process; 1 is init.
  if (pid <= 1 || pid > 4194304) {
    result.detail =
        fmt::format("pid file {} holds no usable pid; expected a process id above 1", pid_file);
    return result;
  }
  if (pid == getpid()) {
    result.detail = fmt::format("pid {}{} is millstone itself; refused", pid, from);
    return result;
  }
  if (kill(static_cast<pid_t>(pid), signal) != 0) {
    result.detail = fmt::format("cannot send {} to pid {}{}: {}", scenario::signal_name(signal),
                                pid, from, std::strerror(errno));
    return result;
  }
  result.ok = true;
  result.detail = fmt::format("sent {} to pid {}{}", scenario::signal_name(signal), pid, from);
  return result;
}

ActionResult http_call(const HttpCall& call, int64_t deadline_ns) {
  ActionResult result;
  const int64_t left_ms = (deadline_ns - net::now_ns()) / net::kNsPerMs;
  if (left_ms <= 0) {
    result.detail = fmt::format("{} {}: no time left before the timeout", call.method, call.url);
    return result;
  }
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    result.detail = "cannot start an HTTP client (libcurl)";
    return result;
  }
  CURL* c = curl.get();
  curl_slist* raw = curl_slist_append(nullptr, "Content-Type: application/json");
  raw = curl_slist_append(raw, "Expect:");
  if (!call.token.empty()) {
    raw = curl_slist_append(raw, ("Authorization: Bearer " + call.token).c_str());
  }
  std::unique_ptr<curl_slist, CurlDeleter> headers(raw);
  OutputExcerpt body(1024);
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");  // a drill's API is on this network, never proxied
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(left_ms));
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (call.method != "GET" && call.method != "DELETE") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, call.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_USERAGENT, "millstone-drill/" MILLSTONE_VERSION);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(c);
  result.output = body.text();
  if (rc != CURLE_OK) {
    result.detail = fmt::format("{} {}: {}", call.method, call.url,
                                error[0] != 0 ? error : curl_easy_strerror(rc));
    return result;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  result.ok = status >= 200 && status < 300;
  result.detail = fmt::format("{} {}: HTTP {}", call.method, call.url, status);
  if (status == 401 || status == 403) {
    result.detail += call.token.empty()
                         ? " (refused without a token; expected token_env: or token_file: in "
                           "the drill)"
                         : " (the token was refused; expected the API's own token in token_env: "
                           "or token_file:)";
  }
  return result;
}

proxy::ToxicSpec toxic_spec(const scenario::ProxyAction& action, const std::string& name) {
  proxy::ToxicSpec spec;
  spec.name = name;
  // The loader accepts only known types, streams and attributes.
  spec.type = proxy::parse_toxic_type(action.toxic_type).value_or(proxy::ToxicType::kLatency);
  spec.stream = proxy::parse_direction(action.stream).value_or(proxy::Direction::kDownstream);
  spec.toxicity = action.toxicity;
  proxy::ToxicAttributes& a = spec.attributes;
  for (const auto& [key, value] : action.attributes) {
    if (key == "latency") a.latency = value;
    if (key == "jitter") a.jitter = value;
    if (key == "rate") a.rate = value;
    if (key == "delay") a.delay = value;
    if (key == "timeout") a.timeout = value;
    if (key == "average_size") a.average_size = value;
    if (key == "size_variation") a.size_variation = value;
    if (key == "bytes") a.bytes = value;
  }
  return spec;
}

ActionResult local_toxic(proxy::ProxyThread& proxies, const scenario::ProxyAction& action,
                         const std::string& name, bool add, int64_t deadline_ns) {
  ActionResult result;
  const std::string what =
      add ? fmt::format("add toxic {} ({} {}) to the run's proxy {}", name, action.toxic_type,
                        action.stream, action.proxy)
          : fmt::format("remove toxic {} from the run's proxy {}", name, action.proxy);
  std::optional<proxy::Status> status;
  if (add) {
    status = proxies.call(
        [proxy = action.proxy, spec = toxic_spec(action, name)](proxy::FaultProxy& p) {
          proxy::ToxicSpec added;
          return p.add_toxic(proxy, spec, &added);
        },
        deadline_ns);
  } else {
    status = proxies.call(
        [proxy = action.proxy, name](proxy::FaultProxy& p) { return p.remove_toxic(proxy, name); },
        deadline_ns);
  }
  if (!status) {
    result.detail = fmt::format("{}: no answer before the timeout", what);
  } else if (!status->ok()) {
    result.detail = fmt::format("{}: {} ({})", what, status->message, status->code);
  } else {
    result.ok = true;
    result.detail = fmt::format("{}: done", what);
  }
  return result;
}

SystemActions::SystemActions(proxy::ProxyThread* local) : local_(local) {
  // Not thread-safe in older libcurls: done once, before any drill thread.
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

ActionResult SystemActions::local_action(const scenario::Drill& drill, bool add,
                                         int64_t deadline_ns) {
  if (local_ == nullptr) {
    ActionResult result;
    result.detail = fmt::format("the run's proxy {} is not running", drill.proxy.proxy);
    return result;
  }
  return local_toxic(*local_, drill.proxy, drill.name, add, deadline_ns);
}

ActionResult SystemActions::start(const scenario::Drill& drill, int64_t deadline_ns) {
  switch (drill.kind) {
    case scenario::Drill::Kind::kExec:
      return run_command(drill.exec.command, deadline_ns);
    case scenario::Drill::Kind::kSignal:
      return send_signal(drill.signal.signal, drill.signal.pid, drill.signal.pid_file);
    case scenario::Drill::Kind::kProxy:
      if (drill.proxy.local) return local_action(drill, true, deadline_ns);
      return http_call(toxic_add_call(drill.proxy, drill.name), deadline_ns);
    case scenario::Drill::Kind::kMock:
      return http_call(mock_patch_call(drill.mock), deadline_ns);
  }
  return {};
}

bool SystemActions::has_end(const scenario::Drill& drill) const {
  switch (drill.kind) {
    case scenario::Drill::Kind::kExec:
      return !drill.exec.undo.empty();
    case scenario::Drill::Kind::kSignal:
      return drill.signal.undo_signal != 0;
    case scenario::Drill::Kind::kProxy:
    case scenario::Drill::Kind::kMock:
      return true;
  }
  return false;
}

ActionResult SystemActions::end(const scenario::Drill& drill, int64_t deadline_ns) {
  switch (drill.kind) {
    case scenario::Drill::Kind::kExec:
      return run_command(drill.exec.undo, deadline_ns);
    case scenario::Drill::Kind::kSignal:
      return send_signal(drill.signal.undo_signal, drill.signal.pid, drill.signal.pid_file);
    case scenario::Drill::Kind::kProxy:
      if (drill.proxy.local) return local_action(drill, false, deadline_ns);
      return http_call(toxic_remove_call(drill.proxy, drill.name), deadline_ns);
    case scenario::Drill::Kind::kMock:
      return http_call(mock_reset_call(drill.mock), deadline_ns);
  }
  return {};
}

}  // namespace millstone::drill
