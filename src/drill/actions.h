#pragma once
// What a drill does when its fault starts and when it ends: run a command,
// send a signal, add or remove a toxic on a Toxiproxy-compatible API, patch
// or reset a mock route. Each call blocks its caller (one thread per drill,
// scheduler.h) and is bounded by a deadline: a command still running then is
// killed with its process group, an HTTP call is abandoned.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/toxic.h"
#include "scenario/drills.h"

namespace millstone::proxy {
class ProxyThread;
}

namespace millstone::drill {

struct ActionResult {
  bool ok = false;
  // One line for a person: "exited with status 0", "HTTP 204",
  // "sent SIGSTOP to pid 4242", "timed out after 10s; killed".
  std::string detail;
  std::string output;  // an excerpt: a command's output, or an HTTP answer's body
  int exit_code = -1;  // exec: the command's exit status (-1: none)
};

// Keeps the first and the last `half` bytes of what a command prints, so a
// chatty command costs bounded memory and its last words (usually the error)
// are kept.
class OutputExcerpt {
 public:
  explicit OutputExcerpt(size_t half = 2048) : half_(half) {}
  void append(std::string_view bytes);
  std::string text() const;  // "head[... 1234 bytes left out ...]tail"
  uint64_t total() const { return total_; }

 private:
  size_t half_;
  std::string head_;
  std::string tail_;  // a ring of the last half_ bytes, oldest at tail_start_
  size_t tail_start_ = 0;
  uint64_t total_ = 0;
};

// An HTTP request a drill makes (the mock's control API, a proxy's toxics).
struct HttpCall {
  std::string method;
  std::string url;
  std::string body;   // JSON; empty for none
  std::string token;  // sent as "Authorization: Bearer TOKEN" when not empty; never printed
};

// Reads a drill's API token from its environment variable or file (trailing
// blanks and newlines dropped) into token->value. False with *error, one line
// naming the drill's FILE:LINE:COL and what was expected; the token itself is
// never part of it.
bool read_token(scenario::ApiToken* token, const std::string& drill, std::string* error);

// The mock's control API, in one place so its wire form can change here
// alone: POST {url}/__millstone/routes/{route} with the route's fields, and
// POST {url}/__millstone/routes/{route}/reset to restore the file's route.
HttpCall mock_patch_call(const scenario::MockAction& mock);
HttpCall mock_reset_call(const scenario::MockAction& mock);
// Toxiproxy's API: POST {api}/proxies/{proxy}/toxics, DELETE .../toxics/{name}.
HttpCall toxic_add_call(const scenario::ProxyAction& proxy, const std::string& toxic_name);
HttpCall toxic_remove_call(const scenario::ProxyAction& proxy, const std::string& toxic_name);

// Percent-encodes a path segment (route names may hold spaces).
std::string path_segment(std::string_view text);

// The actions as the scheduler sees them; tests replace them.
class Actions {
 public:
  virtual ~Actions() = default;
  // The fault begins. `deadline_ns` on CLOCK_MONOTONIC (net::now_ns()).
  virtual ActionResult start(const scenario::Drill& drill, int64_t deadline_ns) = 0;
  // The fault ends (its duration is over, or the run ended with it on):
  // undo what start() did. Only called after a start() that succeeded.
  virtual ActionResult end(const scenario::Drill& drill, int64_t deadline_ns) = 0;
  // Whether end() does anything for this drill (an exec without undo does not).
  virtual bool has_end(const scenario::Drill& drill) const = 0;
};

// A proxy action as the fault proxy's own toxic (name = the drill's).
proxy::ToxicSpec toxic_spec(const scenario::ProxyAction& action, const std::string& name);
// A toxic added to, or removed from, one of the run's own proxies.
ActionResult local_toxic(proxy::ProxyThread& proxies, const scenario::ProxyAction& action,
                         const std::string& name, bool add, int64_t deadline_ns);

// The real ones: processes, signals and HTTP on this machine, and the run's
// own proxies (`local`, may be null when the file has no proxies:).
class SystemActions final : public Actions {
 public:
  explicit SystemActions(proxy::ProxyThread* local = nullptr);
  ActionResult start(const scenario::Drill& drill, int64_t deadline_ns) override;
  ActionResult end(const scenario::Drill& drill, int64_t deadline_ns) override;
  bool has_end(const scenario::Drill& drill) const override;

 private:
  ActionResult local_action(const scenario::Drill& drill, bool add, int64_t deadline_ns);
  proxy::ProxyThread* local_;
};

// Runs argv (argv[0] looked up on PATH) without a shell, in its own process
// group, stdin from /dev/null, stdout and stderr into the excerpt; kills the
// group at the deadline.
ActionResult run_command(const scenario::Command& argv, int64_t deadline_ns);
// Sends `signal` to `pid`, or to the pid read from `pid_file` when pid is 0.
ActionResult send_signal(int signal, int64_t pid, const std::string& pid_file);
// Makes one HTTP/1.1 request with libcurl; ok for a 2xx answer. A 401 or 403
// says whether a token was sent, so a wrong or missing one reads as such.
ActionResult http_call(const HttpCall& call, int64_t deadline_ns);

}  // namespace millstone::drill
