// drills: -> Plan::drills: faults on the run's timeline (docs/scenarios.md#drills).
// Only what can be checked without touching the world is checked here: the
// workers load the same file, and a pid file or a proxy is looked at when
// the fault starts.
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "http/url.h"
#include "scenario/drills.h"
#include "scenario/loader.h"
#include "scenario/loader_context.h"

namespace millstone::scenario {

namespace {

struct SignalName {
  const char* name;
  int number;
};

constexpr SignalName kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},   {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},
    {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD}, {"CONT", SIGCONT},
    {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"SYS", SIGSYS},
};

}  // namespace

const char* drill_kind_name(Drill::Kind kind) {
  switch (kind) {
    case Drill::Kind::kExec:
      return "exec";
    case Drill::Kind::kSignal:
      return "signal";
    case Drill::Kind::kProxy:
      return "proxy";
    case Drill::Kind::kMock:
      return "mock";
  }
  return "?";
}

std::string signal_name(int signal) {
  for (const SignalName& s : kSignals) {
    if (s.number == signal) return std::string("SIG") + s.name;
  }
  return fmt::format("signal {}", signal);
}

namespace detail {
namespace {

using yaml::Field;
using yaml::MapFields;
using yaml::shown;

constexpr size_t kMaxDrills = 100;
constexpr int64_t kDefaultTimeoutUs = 10'000'000;
constexpr int64_t kMaxTimeoutUs = 600'000'000;  // 10m: an action, not a phase of the run
constexpr std::string_view kDefaultProxyApi = "http://127.0.0.1:8474";

constexpr std::string_view kDrillKeys[] = {"name",    "at",   "after",  "offset", "duration",
                                           "timeout", "exec", "signal", "proxy",  "mock"};
constexpr std::string_view kActionKeys[] = {"exec", "signal", "proxy", "mock"};
constexpr std::string_view kExecKeys[] = {"command", "undo", "shell"};
constexpr std::string_view kSignalKeys[] = {"send", "pid", "pid_file", "undo"};
constexpr std::string_view kProxyKeys[] = {"api",      "proxy",      "toxic",     "stream",
                                           "toxicity", "attributes", "token_env", "token_file"};
constexpr std::string_view kMockKeys[] = {"url", "route", "set", "token_env", "token_file"};

// Toxiproxy's toxics and their attributes (docs/proxy.md#toxics). Times
// are milliseconds except the slicer's delay (microseconds); a duration
// with a unit ("200ms") is converted to the attribute's unit.
struct ToxicShape {
  std::string_view type;
  std::vector<std::string_view> attributes;
  std::vector<std::string_view> microsecond_attributes;
};
const ToxicShape kToxics[] = {
    {"latency", {"latency", "jitter"}, {}},
    {"bandwidth", {"rate"}, {}},
    {"slow_close", {"delay"}, {}},
    {"timeout", {"timeout"}, {}},
    {"reset_peer", {"timeout"}, {}},
    {"slicer", {"average_size", "size_variation", "delay"}, {"delay"}},
    {"limit_data", {"bytes"}, {}},
};
constexpr std::string_view kTimeAttributes[] = {"latency", "jitter", "delay", "timeout"};

// Characters that mean something to a shell: a command with them but
// without shell: true would not do what it reads as.
constexpr std::string_view kShellSyntax = "|&;<>()$`\\\"'*?[]#~=%{}";

void append_json_string(std::string_view text, std::string* out) {
  *out += '"';
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += c;
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '\t') {
      *out += "\\t";
    } else if (c == '\r') {
      *out += "\\r";
    } else if (u < 0x20) {
      *out += fmt::format("\\u{:04x}", u);
    } else {
      *out += c;
    }
  }
  *out += '"';
}

class DrillCompiler {
 public:
  DrillCompiler(LoadContext& ctx, std::string base_dir)
      : ctx_(ctx), reader_(ctx.reader), base_dir_(std::move(base_dir)) {}

  void compile(const Field& field);

 private:
  Drill compile_drill(const YAML::Node& node, const YAML::Mark& mark);
  void compile_start(const MapFields& map, const std::string& what, Drill* drill);
  void compile_exec(const Field& field, Drill* drill);
  Command command(const Field& field, bool shell, const std::string& what);
  void compile_signal(const Field& field, Drill* drill);
  int signal_number(const Field& field);
  void compile_proxy(const Field& field, Drill* drill);
  void compile_mock(const Field& field, Drill* drill);
  std::string http_base(const Field& field, std::string_view what);
  void compile_token(const MapFields& map, std::string_view what, ApiToken* token);
  void to_json(const YAML::Node& node, const YAML::Mark& mark, int depth, std::string* out);

  LoadContext& ctx_;
  yaml::Reader& reader_;
  std::string base_dir_;
};

void DrillCompiler::compile(const Field& field) {
  if (!field.value.IsSequence()) {
    reader_.fail(field.mark, fmt::format("drills is {}; expected a list of faults such as "
                                         "[{{name: slow-db, at: 10s, duration: 5s, proxy: "
                                         "{{...}}}}]",
                                         yaml::kind_of(field.value)));
  }
  std::vector<Drill>& drills = ctx_.plan.drills;
  for (const YAML::Node& item : field.value) {
    const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
    if (drills.size() == kMaxDrills) {
      reader_.fail(mark, fmt::format("more than {} drills; expected fewer", kMaxDrills));
    }
    Drill drill = compile_drill(item, mark);
    const auto same = std::find_if(drills.begin(), drills.end(),
                                   [&](const Drill& d) { return d.name == drill.name; });
    if (same != drills.end()) {
      reader_.fail(mark, fmt::format("drill name {} is used twice (first at {}); expected "
                                     "distinct names",
                                     shown(drill.name), same->location));
    }
    drills.push_back(std::move(drill));
  }
}

Drill DrillCompiler::compile_drill(const YAML::Node& node, const YAML::Mark& mark) {
  const MapFields map = reader_.read_map(node, mark, "drill", kDrillKeys);
  Drill drill;
  drill.location = reader_.location(map.mark);
  const Field* name = map.find("name");
  if (name == nullptr) {
    reader_.fail(map.mark,
                 "drill has no name; expected e.g. name: slow-db (it labels the fault "
                 "in the summary, the report and the metrics)");
  }
  drill.name = reader_.scalar(*name, "a name such as slow-db");
  const bool good_name = !drill.name.empty() && drill.name.size() <= kMaxNameBytes &&
                         std::all_of(drill.name.begin(), drill.name.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                         });
  if (!good_name) {
    reader_.fail(name->mark, fmt::format("drill name {} is not usable; expected 1 to {} letters, "
                                         "digits, '_', '-' or '.' (it names a toxic and a "
                                         "metric label)",
                                         shown(drill.name), kMaxNameBytes));
  }
  const std::string what = fmt::format("drill {}", drill.name);
  compile_start(map, what, &drill);
  if (const Field* duration = map.find("duration")) {
    drill.duration_us = reader_.duration_us(*duration);
    if (drill.duration_us <= 0) {
      reader_.fail(duration->mark, fmt::format("{} lasts 0s; expected a duration above 0, or no "
                                               "duration: for a one-off action",
                                               what));
    }
  }
  drill.timeout_us = kDefaultTimeoutUs;
  if (const Field* timeout = map.find("timeout")) {
    drill.timeout_us = reader_.duration_us(*timeout);
    if (drill.timeout_us <= 0 || drill.timeout_us > kMaxTimeoutUs) {
      reader_.fail(timeout->mark, fmt::format("{} timeout {} is out of range; expected a duration "
                                              "above 0 and at most 10m (it bounds each action)",
                                              what, shown(reader_.scalar(*timeout, ""))));
    }
  }
  const Field* action = nullptr;
  for (std::string_view key : kActionKeys) {
    const Field* found = map.find(key);
    if (found == nullptr) continue;
    if (action != nullptr) {
      reader_.fail(found->key_mark,
                   fmt::format("{} has both {} and {}; expected one action per drill (split it "
                               "into two drills with the same start)",
                               what, action->key, found->key));
    }
    action = found;
  }
  if (action == nullptr) {
    reader_.fail(map.mark, fmt::format("{} has no action; expected one of exec:, signal:, "
                                       "proxy: or mock:",
                                       what));
  }
  if (action->key == "exec") compile_exec(*action, &drill);
  if (action->key == "signal") compile_signal(*action, &drill);
  if (action->key == "proxy") compile_proxy(*action, &drill);
  if (action->key == "mock") compile_mock(*action, &drill);
  return drill;
}

void DrillCompiler::compile_start(const MapFields& map, const std::string& what, Drill* drill) {
  const Field* at = map.find("at");
  const Field* after = map.find("after");
  const Field* offset = map.find("offset");
  if (at != nullptr && after != nullptr) {
    reader_.fail(after->key_mark, fmt::format("{} has both at: and after:; expected one start "
                                              "(after: NAME with offset: for a time after a "
                                              "scenario starts)",
                                              what));
  }
  if (at == nullptr && after == nullptr) {
    reader_.fail(map.mark, fmt::format("{} has no start; expected at: 20s, or after: SCENARIO "
                                       "(when that scenario starts) with an optional offset: 5s",
                                       what));
  }
  if (offset != nullptr && after == nullptr) {
    reader_.fail(offset->key_mark,
                 fmt::format("{} has offset: without after:; expected at: for a time from the "
                             "run's start, or after: SCENARIO with offset:",
                             what));
  }
  const YAML::Mark* start_mark = nullptr;
  if (at != nullptr) {
    drill->start_us = reader_.duration_us(*at);
    start_mark = &at->mark;
  } else {
    drill->after = reader_.scalar(*after, "a scenario name");
    start_mark = &after->mark;
    std::vector<std::string> names;
    const ScenarioRun* found = nullptr;
    for (const ScenarioRun& run : ctx_.plan.scenarios) {
      names.push_back(run.name);
      if (run.name == drill->after) found = &run;
    }
    if (found == nullptr) {
      reader_.fail(after->mark,
                   fmt::format("{} starts after {}, which names no scenario{}; "
                               "expected one of: {}",
                               what, shown(drill->after), yaml::did_you_mean(drill->after, names),
                               yaml::join(names, 20)));
    }
    drill->start_us = found->start_us;
    if (offset != nullptr) {
      drill->start_us += reader_.duration_us(*offset);
      start_mark = &offset->mark;
    }
  }
  const int64_t run_end = ctx_.plan.total_duration_us();
  if (drill->start_us >= run_end) {
    reader_.fail(*start_mark,
                 fmt::format("{} starts at {:g}s, when the run has ended ({:g}s); expected a "
                             "start within the run",
                             what, static_cast<double>(drill->start_us) / 1e6,
                             static_cast<double>(run_end) / 1e6));
  }
}

Command DrillCompiler::command(const Field& field, bool shell, const std::string& what) {
  Command argv;
  if (field.value.IsSequence()) {
    if (shell) {
      reader_.fail(field.mark, fmt::format("{} {} is a list with shell: true; expected one "
                                           "string for the shell to read",
                                           what, field.key));
    }
    for (const YAML::Node& item : field.value) {
      const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
      argv.push_back(reader_.scalar(item, mark, field.key, "a string (one argument)"));
    }
  } else {
    const std::string text = reader_.scalar(field,
                                            "a command: a list such as [pkill, -STOP, "
                                            "api] or a string");
    if (shell) return {"/bin/sh", "-c", text};
    const size_t special = text.find_first_of(kShellSyntax);
    if (special != std::string::npos) {
      reader_.fail(reader_.mark_at(field.value, field.mark, special),
                   fmt::format("{} {} {} has shell syntax ({}) but runs without a shell; "
                               "expected shell: true, or a list of arguments such as [kill, "
                               "-STOP, \"1234\"]",
                               what, field.key, shown(text), shown(text.substr(special, 1))));
    }
    size_t at = 0;
    while (at < text.size()) {
      const size_t start = text.find_first_not_of(" \t", at);
      if (start == std::string::npos) break;
      const size_t end = std::min(text.find_first_of(" \t", start), text.size());
      argv.push_back(text.substr(start, end - start));
      at = end;
    }
  }
  if (argv.empty() || argv[0].empty()) {
    reader_.fail(field.mark, fmt::format("{} {} is empty; expected a program and its arguments",
                                         what, field.key));
  }
  return argv;
}

void DrillCompiler::compile_exec(const Field& field, Drill* drill) {
  drill->kind = Drill::Kind::kExec;
  const std::string what = fmt::format("drill {} exec", drill->name);
  const MapFields map = reader_.read_map(field.value, field.mark, what, kExecKeys);
  bool shell = false;
  if (const Field* given = map.find("shell")) shell = reader_.boolean(*given);
  const Field* cmd = map.find("command");
  if (cmd == nullptr) {
    reader_.fail(map.mark, fmt::format("{} has no command; expected e.g. command: [docker, "
                                       "pause, api]",
                                       what));
  }
  drill->exec.command = command(*cmd, shell, what);
  if (const Field* undo = map.find("undo")) {
    if (!drill->has_duration()) {
      reader_.fail(undo->key_mark, fmt::format("{} has undo: but the drill has no duration:; "
                                               "expected duration: (when to undo)",
                                               what));
    }
    drill->exec.undo = command(*undo, shell, what);
  }
}

int DrillCompiler::signal_number(const Field& field) {
  std::string text = reader_.scalar(field, "a signal name such as SIGSTOP");
  std::string upper;
  for (char c : text)
    upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.starts_with("SIG")) upper.erase(0, 3);
  std::vector<std::string> names;
  for (const SignalName& s : kSignals) {
    if (upper == s.name) return s.number;
    names.push_back(std::string("SIG") + s.name);
  }
  reader_.fail(field.mark,
               fmt::format("{} {} is not a signal name{}; expected e.g. SIGTERM, "
                           "SIGKILL, SIGSTOP, SIGCONT, SIGHUP",
                           field.key, shown(text), yaml::did_you_mean("SIG" + upper, names)));
}

void DrillCompiler::compile_signal(const Field& field, Drill* drill) {
  drill->kind = Drill::Kind::kSignal;
  const std::string what = fmt::format("drill {} signal", drill->name);
  const MapFields map = reader_.read_map(field.value, field.mark, what, kSignalKeys);
  const Field* send = map.find("send");
  if (send == nullptr) {
    reader_.fail(map.mark, fmt::format("{} has no send; expected e.g. {{send: SIGSTOP, pid_file: "
                                       "/run/api.pid}}",
                                       what));
  }
  SignalAction& s = drill->signal;
  s.signal = signal_number(*send);
  const Field* pid = map.find("pid");
  const Field* pid_file = map.find("pid_file");
  if ((pid == nullptr) == (pid_file == nullptr)) {
    reader_.fail(
        pid ? pid_file->key_mark : map.mark,
        fmt::format("{} needs one of pid: and pid_file:; expected the process to signal", what));
  }
  if (pid != nullptr) {
    // 0 and -1 would signal a process group or every process; 1 is init.
    s.pid = static_cast<int64_t>(reader_.number(*pid, 2, 4194304, /*whole=*/true));
  } else {
    const std::string name = reader_.scalar(*pid_file, "a path to a file holding a pid");
    if (name.empty()) {
      reader_.fail(pid_file->mark, fmt::format("{} pid_file is empty; expected a path", what));
    }
    std::filesystem::path path(name);
    if (path.is_relative() && !base_dir_.empty()) path = std::filesystem::path(base_dir_) / path;
    s.pid_file = path.lexically_normal().string();
  }
  if (const Field* undo = map.find("undo")) {
    if (!drill->has_duration()) {
      reader_.fail(undo->key_mark, fmt::format("{} has undo: but the drill has no duration:; "
                                               "expected duration: (when to send it)",
                                               what));
    }
    s.undo_signal = signal_number(*undo);
  } else if (drill->has_duration() && (s.signal == SIGSTOP || s.signal == SIGTSTP)) {
    s.undo_signal = SIGCONT;  // a stopped process is never left stopped
  }
}

std::string DrillCompiler::http_base(const Field& field, std::string_view what) {
  const std::string text = reader_.scalar(field, "a URL such as http://127.0.0.1:8474");
  std::string error;
  const std::optional<http::Url> url = http::parse_url(text, &error);
  if (!url)
    reader_.fail(field.mark, fmt::format("{} {} {}: {}", what, field.key, shown(text), error));
  if (url->scheme != "http" || url->target != "/") {
    reader_.fail(field.mark, fmt::format("{} {} {} is not a plain http:// base URL; expected "
                                         "e.g. http://127.0.0.1:8474 (no path, no TLS)",
                                         what, field.key, shown(text)));
  }
  return fmt::format("http://{}:{}", url->ipv6_literal ? "[" + url->host + "]" : url->host,
                     url->port);
}

void DrillCompiler::compile_token(const MapFields& map, std::string_view what, ApiToken* token) {
  const Field* env = map.find("token_env");
  const Field* file = map.find("token_file");
  if (env != nullptr && file != nullptr) {
    reader_.fail(file->key_mark, fmt::format("{} has both token_env: and token_file:; expected "
                                             "one place to read the token from",
                                             what));
  }
  if (env != nullptr) {
    token->env = reader_.scalar(*env, "an environment variable's name");
    token->location = reader_.location(env->mark);
    const bool good = !token->env.empty() && !(token->env[0] >= '0' && token->env[0] <= '9') &&
                      std::all_of(token->env.begin(), token->env.end(), [](char c) {
                        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                               (c >= '0' && c <= '9') || c == '_';
                      });
    if (!good) {
      reader_.fail(env->mark, fmt::format("{} token_env {} is not an environment variable's "
                                          "name; expected letters, digits and '_' such as "
                                          "MOCK_TOKEN (the name, not the token)",
                                          what, shown(token->env)));
    }
  } else if (file != nullptr) {
    const std::string name = reader_.scalar(*file, "a path to a file holding the token");
    token->location = reader_.location(file->mark);
    if (name.empty()) {
      reader_.fail(file->mark, fmt::format("{} token_file is empty; expected a path", what));
    }
    std::filesystem::path path(name);
    if (path.is_relative() && !base_dir_.empty()) path = std::filesystem::path(base_dir_) / path;
    token->file = path.lexically_normal().string();
  }
}

void DrillCompiler::compile_proxy(const Field& field, Drill* drill) {
  drill->kind = Drill::Kind::kProxy;
  const std::string what = fmt::format("drill {} proxy", drill->name);
  const MapFields map = reader_.read_map(field.value, field.mark, what, kProxyKeys);
  ProxyAction& p = drill->proxy;
  const Field* api = map.find("api");
  p.api = std::string(kDefaultProxyApi);
  if (api != nullptr) p.api = http_base(*api, what);
  compile_token(map, what, &p.token);
  const Field* proxy = map.find("proxy");
  if (proxy == nullptr) {
    reader_.fail(map.mark, fmt::format("{} has no proxy; expected proxy: NAME, the proxy's name "
                                       "on the API",
                                       what));
  }
  p.proxy = reader_.scalar(*proxy, "a proxy name");
  if (p.proxy.empty())
    reader_.fail(proxy->mark, fmt::format("{} proxy is empty; expected a name", what));
  // Without api:, a name among the file's proxies: is one of the run's own.
  const std::vector<RunProxy>& own = ctx_.plan.proxies;
  if (api == nullptr && !own.empty()) {
    std::vector<std::string> names;
    for (const RunProxy& r : own)
      names.push_back(r.name);
    if (std::find(names.begin(), names.end(), p.proxy) == names.end()) {
      reader_.fail(proxy->mark,
                   fmt::format("{} proxy {} is none of the file's proxies{}; expected one of: {} "
                               "(or api: for a proxy that runs elsewhere)",
                               what, shown(p.proxy), yaml::did_you_mean(p.proxy, names),
                               yaml::join(names, 20)));
    }
    if (p.token.given()) {
      reader_.fail(map.mark, fmt::format("{} has a token for the run's own proxy {}; expected "
                                         "none (it is called in-process)",
                                         what, shown(p.proxy)));
    }
    p.local = true;
    p.api.clear();
  }
  const Field* toxic = map.find("toxic");
  std::vector<std::string> types;
  for (const ToxicShape& shape : kToxics)
    types.emplace_back(shape.type);
  if (toxic == nullptr) {
    reader_.fail(map.mark, fmt::format("{} has no toxic; expected toxic: one of {}", what,
                                       yaml::join(types, 10)));
  }
  p.toxic_type = reader_.scalar(*toxic, "a toxic type");
  const ToxicShape* shape = nullptr;
  for (const ToxicShape& candidate : kToxics) {
    if (candidate.type == p.toxic_type) shape = &candidate;
  }
  if (shape == nullptr) {
    reader_.fail(toxic->mark,
                 fmt::format("{} toxic {} is not a toxic type{}; expected one of {}", what,
                             shown(p.toxic_type), yaml::did_you_mean(p.toxic_type, types),
                             yaml::join(types, 10)));
  }
  if (const Field* stream = map.find("stream")) {
    p.stream = reader_.scalar(*stream, "upstream or downstream");
    if (p.stream != "upstream" && p.stream != "downstream") {
      reader_.fail(stream->mark, fmt::format("{} stream {} is neither upstream (client to "
                                             "server) nor downstream (server to client); "
                                             "expected one of them",
                                             what, shown(p.stream)));
    }
  }
  if (const Field* toxicity = map.find("toxicity")) {
    p.toxicity = reader_.number(*toxicity, 0, 1, /*whole=*/false);
  }
  if (const Field* attributes = map.find("attributes")) {
    const MapFields attrs = reader_.read_map(attributes->value, attributes->mark,
                                             fmt::format("{} attributes", what), shape->attributes);
    for (const Field& attr : attrs.fields) {
      const std::string raw = reader_.scalar(attr, "a whole number or a duration");
      const bool is_time = std::find(std::begin(kTimeAttributes), std::end(kTimeAttributes),
                                     attr.key) != std::end(kTimeAttributes);
      const bool micro =
          std::find(shape->microsecond_attributes.begin(), shape->microsecond_attributes.end(),
                    attr.key) != shape->microsecond_attributes.end();
      int64_t value = 0;
      const std::optional<double> number = yaml::parse_double(yaml::trim(raw));
      if (number) {
        value = static_cast<int64_t>(reader_.number(attr, 0, 1e12, /*whole=*/true));
      } else if (is_time) {
        const int64_t us = reader_.duration_us(attr);
        value = micro ? us : us / 1000;
        if (!micro && us % 1000 != 0) {
          reader_.fail(attr.mark, fmt::format("{} attributes {} {} is not whole milliseconds; "
                                              "expected a multiple of 1ms (Toxiproxy's unit)",
                                              what, attr.key, shown(raw)));
        }
      } else {
        reader_.fail(attr.mark, fmt::format("{} attributes {} {} is not a whole number; expected "
                                            "a whole number (bytes, KB/s)",
                                            what, attr.key, shown(raw)));
      }
      p.attributes.emplace_back(attr.key, value);
    }
  }
}

void DrillCompiler::to_json(const YAML::Node& node, const YAML::Mark& mark, int depth,
                            std::string* out) {
  if (depth > 16)
    reader_.fail(mark, "mock set nests deeper than 16 levels; expected a route's fields");
  reader_.charge(16, mark);
  if (node.IsMap()) {
    *out += '{';
    bool first = true;
    for (const auto& entry : node) {
      if (!first) *out += ',';
      first = false;
      const YAML::Mark at = entry.first.Mark().is_null() ? mark : entry.first.Mark();
      append_json_string(reader_.scalar(entry.first, at, "a key", "a field name"), out);
      *out += ':';
      to_json(entry.second, entry.second.Mark().is_null() ? at : entry.second.Mark(), depth + 1,
              out);
    }
    *out += '}';
  } else if (node.IsSequence()) {
    *out += '[';
    bool first = true;
    for (const YAML::Node& item : node) {
      if (!first) *out += ',';
      first = false;
      to_json(item, item.Mark().is_null() ? mark : item.Mark(), depth + 1, out);
    }
    *out += ']';
  } else if (node.IsNull()) {
    *out += "null";
  } else {
    const std::string& text = node.Scalar();
    reader_.charge(text.size(), mark);
    // A quoted scalar ("200") stays a string; a plain one may be a number or a boolean.
    const bool plain = node.Tag() != "!";
    if (plain && (text == "true" || text == "false" || is_json_number(text))) {
      *out += text;
    } else {
      append_json_string(text, out);
    }
  }
}

void DrillCompiler::compile_mock(const Field& field, Drill* drill) {
  drill->kind = Drill::Kind::kMock;
  const std::string what = fmt::format("drill {} mock", drill->name);
  const MapFields map = reader_.read_map(field.value, field.mark, what, kMockKeys);
  MockAction& m = drill->mock;
  const Field* url = map.find("url");
  const Field* route = map.find("route");
  const Field* set = map.find("set");
  if (url == nullptr || route == nullptr || set == nullptr) {
    reader_.fail(map.mark, fmt::format("{} has no {}; expected e.g. {{url: "
                                       "http://127.0.0.1:8080, route: orders, set: {{latency: "
                                       "200ms}}}}",
                                       what,
                                       url == nullptr     ? "url"
                                       : route == nullptr ? "route"
                                                          : "set"));
  }
  m.url = http_base(*url, what);
  compile_token(map, what, &m.token);
  m.route = reader_.scalar(*route, "a route name");
  if (m.route.empty())
    reader_.fail(route->mark, fmt::format("{} route is empty; expected a name", what));
  if (!set->value.IsMap() || set->value.size() == 0) {
    reader_.fail(set->mark, fmt::format("{} set is {}; expected a map of the route's fields, "
                                        "such as {{latency: 200ms, status: 503}}",
                                        what, yaml::kind_of(set->value)));
  }
  to_json(set->value, set->mark, 0, &m.patch);
}

constexpr size_t kMaxProxies = 32;
constexpr std::string_view kRunProxyKeys[] = {"name", "listen", "upstream"};

// HOST:PORT with a port from 1 (the flows must know where to send).
bool host_port(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  std::string_view host = text.substr(0, colon);
  if (host.front() == '[' && host.back() != ']') return false;
  if (host.front() != '[' && host.find(':') != std::string_view::npos) return false;
  int port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    port = port * 10 + (c - '0');
    if (port > 65535) return false;
  }
  return port > 0;
}

void compile_run_proxies(LoadContext& ctx, const Field& field) {
  yaml::Reader& reader = ctx.reader;
  if (!field.value.IsSequence()) {
    reader.fail(field.mark, fmt::format("proxies is {}; expected a list such as [{{name: api, "
                                        "listen: 127.0.0.1:18080, upstream: 127.0.0.1:8080}}]",
                                        yaml::kind_of(field.value)));
  }
  std::vector<RunProxy>& proxies = ctx.plan.proxies;
  for (const YAML::Node& item : field.value) {
    const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
    if (proxies.size() == kMaxProxies) {
      reader.fail(mark, fmt::format("more than {} proxies; expected fewer", kMaxProxies));
    }
    const MapFields map = reader.read_map(item, mark, "proxy", kRunProxyKeys);
    RunProxy proxy;
    proxy.location = reader.location(map.mark);
    for (std::string_view key : kRunProxyKeys) {
      if (map.find(key) == nullptr) {
        reader.fail(map.mark, fmt::format("proxy has no {}; expected e.g. {{name: api, listen: "
                                          "127.0.0.1:18080, upstream: 127.0.0.1:8080}}",
                                          key));
      }
    }
    const Field& name = *map.find("name");
    proxy.name = reader.scalar(name, "a name such as api");
    const bool good_name = !proxy.name.empty() && proxy.name.size() <= kMaxNameBytes &&
                           std::all_of(proxy.name.begin(), proxy.name.end(), [](char c) {
                             return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                           });
    if (!good_name) {
      reader.fail(name.mark, fmt::format("proxy name {} is not usable; expected 1 to {} letters, "
                                         "digits, '_', '-' or '.'",
                                         shown(proxy.name), kMaxNameBytes));
    }
    const std::string what = fmt::format("proxy {}", proxy.name);
    for (std::string_view key : {std::string_view("listen"), std::string_view("upstream")}) {
      const Field& f = *map.find(key);
      std::string text = reader.scalar(f, "HOST:PORT");
      if (!host_port(text)) {
        reader.fail(f.mark,
                    fmt::format("{} {} {} is not HOST:PORT; expected e.g. {}{}", what, key,
                                shown(text), key == "listen" ? "127.0.0.1:18080" : "127.0.0.1:8080",
                                key == "listen" ? " (a fixed port: the flows send there)" : ""));
      }
      (key == "listen" ? proxy.listen : proxy.upstream) = std::move(text);
    }
    for (const RunProxy& other : proxies) {
      if (other.name == proxy.name || other.listen == proxy.listen) {
        const bool same_name = other.name == proxy.name;
        reader.fail(same_name ? name.mark : map.find("listen")->mark,
                    fmt::format("proxy {} {} is used twice (first at {}); expected distinct {}",
                                same_name ? "name" : "listen address",
                                shown(same_name ? proxy.name : proxy.listen), other.location,
                                same_name ? "names" : "addresses"));
      }
    }
    proxies.push_back(std::move(proxy));
  }
}

}  // namespace

void compile_proxies(LoadContext& ctx, const yaml::Field& field) {
  compile_run_proxies(ctx, field);
}

void compile_drills(LoadContext& ctx, const yaml::Field& field, const std::string& base_dir) {
  DrillCompiler(ctx, base_dir).compile(field);
}

}  // namespace detail
}  // namespace millstone::scenario
