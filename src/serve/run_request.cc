#include "serve/run_request.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "config/quantity.h"

namespace millstone::serve {

namespace {

constexpr uint64_t kMaxCount = 10'000'000;  // as `run`'s flags (cli/flag_values.h)
constexpr uint64_t kMaxWorkers = 4096;

const char* const kFields[] = {"url",  "scenario",    "scenario_yaml", "target",  "duration",
                               "rate", "connections", "vus",           "workers", "timeout",
                               "env",  "method",      "headers",       "body"};

bool is_identifier(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool has_control(const std::string& text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

class Checker {
 public:
  Checker(const nlohmann::json& body, std::string* error) : body_(body), error_(error) {}
  bool failed() const { return failed_; }

  bool fail(const std::string& field, const std::string& what) {
    if (!failed_) *error_ = fmt::format("field '{}': {}", field, what);
    failed_ = true;
    return false;
  }

  std::optional<std::string> text(const char* field) {
    if (!body_.contains(field)) return std::nullopt;
    const nlohmann::json& v = body_[field];
    if (!v.is_string()) {
      fail(field, fmt::format("expected a string, got {}", v.type_name()));
      return std::nullopt;
    }
    return v.get<std::string>();
  }

  std::optional<uint64_t> count(const char* field, uint64_t max) {
    if (!body_.contains(field)) return std::nullopt;
    const nlohmann::json& v = body_[field];
    if (!v.is_number_unsigned() || v.get<uint64_t>() < 1 || v.get<uint64_t>() > max) {
      fail(field, fmt::format("expected a whole number from 1 to {}, got {}", max, v.dump()));
      return std::nullopt;
    }
    return v.get<uint64_t>();
  }

 private:
  const nlohmann::json& body_;
  std::string* error_;
  bool failed_ = false;
};

}  // namespace

std::optional<RunRequest> parse_run_request(std::string_view text, const std::string& base_dir,
                                            std::string* error) {
  nlohmann::json body = nlohmann::json::parse(text, nullptr, false);
  if (body.is_discarded()) {
    // Say where: nlohmann's own message through the exception path.
    try {
      const nlohmann::json again = nlohmann::json::parse(text);
      (void)again;
    } catch (const nlohmann::json::parse_error& e) {
      *error = fmt::format("the body is not valid JSON: byte {}: {}", e.byte,
                           std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
      return std::nullopt;
    }
    *error = "the body is not valid JSON";
    return std::nullopt;
  }
  if (!body.is_object()) {
    *error = fmt::format("the body must be a JSON object, got {}", body.type_name());
    return std::nullopt;
  }
  for (const auto& [key, value] : body.items()) {
    if (std::find(std::begin(kFields), std::end(kFields), key) == std::end(kFields)) {
      *error = fmt::format(
          "unknown field '{}'; expected one of url, scenario, scenario_yaml, "
          "target, duration, rate, connections, vus, workers, timeout, env, "
          "method, headers, body",
          key);
      return std::nullopt;
    }
  }
  Checker check(body, error);
  RunRequest r;
  r.url = check.text("url").value_or("");
  r.scenario = check.text("scenario").value_or("");
  r.scenario_yaml = check.text("scenario_yaml").value_or("");
  r.target = check.text("target").value_or("");
  r.duration = check.text("duration");
  r.timeout = check.text("timeout");
  r.method = check.text("method");
  r.body = check.text("body");
  r.connections = check.count("connections", kMaxCount);
  r.vus = check.count("vus", kMaxCount);
  r.workers = check.count("workers", kMaxWorkers);
  if (check.failed()) return std::nullopt;
  if (body.contains("rate")) {
    const nlohmann::json& v = body["rate"];
    if (v.is_number()) {
      r.rate = fmt::format("{}", v.get<double>());
    } else if (v.is_string()) {
      r.rate = v.get<std::string>();
    } else {
      check.fail("rate", "expected a number per second or a string such as \"6000/m\"");
      return std::nullopt;
    }
  }
  const int given = !r.url.empty() + !r.scenario.empty() + !r.scenario_yaml.empty();
  if (given != 1) {
    *error = given == 0 ? "the body names no run: give one of url, scenario (a file on the "
                          "server) or scenario_yaml (the scenario's text)"
                        : "give only one of url, scenario and scenario_yaml";
    return std::nullopt;
  }
  if (!r.url.empty() && r.url.rfind("http://", 0) != 0 && r.url.rfind("https://", 0) != 0) {
    check.fail("url", "expected an http:// or https:// URL");
    return std::nullopt;
  }
  if (!r.url.empty() && has_control(r.url)) {
    check.fail("url", "control characters are not allowed");
    return std::nullopt;
  }
  if (!r.target.empty() && r.url.empty() == false) {
    check.fail("target", "applies to scenarios only; a URL run's target is its url");
    return std::nullopt;
  }
  if (!r.scenario.empty()) {
    std::string path = r.scenario.front() == '/' ? r.scenario : base_dir + "/" + r.scenario;
    char resolved[PATH_MAX];
    struct stat st {};
    if (::realpath(path.c_str(), resolved) == nullptr || ::stat(resolved, &st) != 0) {
      check.fail("scenario", fmt::format("{}: {}", r.scenario, std::strerror(errno)));
      return std::nullopt;
    }
    if (!S_ISREG(st.st_mode)) {
      check.fail("scenario", fmt::format("{}: not a regular file", r.scenario));
      return std::nullopt;
    }
    r.scenario = resolved;
  }
  std::string problem;
  for (const char* field : {"duration", "timeout"}) {
    const std::optional<std::string>& v =
        std::string_view(field) == "duration" ? r.duration : r.timeout;
    if (!v) continue;
    const std::optional<int64_t> us = config::parse_duration_us(*v, &problem);
    if (!us || *us <= 0) {
      check.fail(field, us ? "expected a duration above 0" : fmt::format("\"{}\" {}", *v, problem));
      return std::nullopt;
    }
  }
  if (r.rate && !config::parse_rate_per_s(*r.rate, "requests", 1e-9, 1e9, &problem)) {
    check.fail("rate", fmt::format("\"{}\" {}", *r.rate, problem));
    return std::nullopt;
  }
  const bool url_run = !r.url.empty();
  if (!url_run) {
    for (const char* field : {"connections", "method", "headers", "body"}) {
      if (body.contains(field)) {
        check.fail(field, "applies to URL runs; a scenario sets it in its steps (use vus)");
        return std::nullopt;
      }
    }
  } else if (r.vus) {
    check.fail("vus", "applies to scenarios; a URL run has connections");
    return std::nullopt;
  }
  if (r.method && (r.method->empty() || r.method->size() > 32 ||
                   std::any_of(r.method->begin(), r.method->end(), [](char c) {
                     return !std::isupper(static_cast<unsigned char>(c)) && c != '-' && c != '_';
                   }))) {
    check.fail("method", "expected an HTTP method in capitals, such as GET or POST");
    return std::nullopt;
  }
  if (r.body && r.body->size() > (512u << 10)) {
    check.fail("body", "larger than 512 KiB; put it in a scenario's data file");
    return std::nullopt;
  }
  if (body.contains("headers")) {
    const nlohmann::json& v = body["headers"];
    if (!v.is_array()) {
      check.fail("headers", "expected an array of \"Name: value\" strings");
      return std::nullopt;
    }
    for (const nlohmann::json& h : v) {
      if (!h.is_string() || h.get<std::string>().find(':') == std::string::npos ||
          has_control(h.get<std::string>())) {
        check.fail("headers", fmt::format("expected \"Name: value\" without control characters, "
                                          "got {}",
                                          h.dump()));
        return std::nullopt;
      }
      r.headers.push_back(h.get<std::string>());
    }
  }
  if (body.contains("env")) {
    const nlohmann::json& v = body["env"];
    if (!v.is_object()) {
      check.fail("env", "expected an object of NAME: \"value\" strings");
      return std::nullopt;
    }
    for (const auto& [name, value] : v.items()) {
      if (!is_identifier(name)) {
        check.fail("env", fmt::format("'{}' is not a name: letters, digits and _, not starting "
                                      "with a digit",
                                      name));
        return std::nullopt;
      }
      if (!value.is_string()) {
        check.fail("env", fmt::format("the value of {} must be a string", name));
        return std::nullopt;
      }
      r.env.emplace_back(name, value.get<std::string>());
    }
  }
  return r;
}

nlohmann::json run_request_json(const RunRequest& r) {
  nlohmann::json j = nlohmann::json::object();
  if (!r.url.empty()) j["url"] = r.url;
  if (!r.scenario.empty()) j["scenario"] = r.scenario;
  if (!r.scenario_yaml.empty()) j["scenario_yaml"] = r.scenario_yaml;
  if (!r.target.empty()) j["target"] = r.target;
  if (r.duration) j["duration"] = *r.duration;
  if (r.rate) j["rate"] = *r.rate;
  if (r.connections) j["connections"] = *r.connections;
  if (r.vus) j["vus"] = *r.vus;
  if (r.workers) j["workers"] = *r.workers;
  if (r.timeout) j["timeout"] = *r.timeout;
  if (!r.env.empty()) {
    nlohmann::json env = nlohmann::json::object();
    for (const auto& [name, value] : r.env)
      env[name] = value;
    j["env"] = env;
  }
  if (r.method) j["method"] = *r.method;
  if (!r.headers.empty()) j["headers"] = r.headers;
  if (r.body) j["body"] = *r.body;
  return j;
}

std::vector<std::string> run_arguments(const RunRequest& r, const RunFiles& files, int live_fd) {
  std::vector<std::string> args = {"run"};
  args.push_back(!r.url.empty() ? r.url : !r.scenario.empty() ? r.scenario : files.scenario);
  for (std::string flag : {"-q", "--out", files.summary.c_str(), "--report", files.report.c_str(),
                           "--junit", files.junit.c_str(), "--history", files.history.c_str()}) {
    args.push_back(std::move(flag));
  }
  args.push_back("--live-events");
  args.push_back(fmt::format("/dev/fd/{}", live_fd));
  auto add = [&args](const char* flag, const std::string& value) {
    // NAME=VALUE form: a value starting with '-' is never read as a flag.
    args.push_back(fmt::format("{}={}", flag, value));
  };
  if (!r.target.empty()) add("--target", r.target);
  if (r.duration) add("--duration", *r.duration);
  if (r.rate) add("--rate", *r.rate);
  if (r.connections) add("--connections", std::to_string(*r.connections));
  if (r.vus) add("--vus", std::to_string(*r.vus));
  if (r.workers) add("--workers", std::to_string(*r.workers));
  if (r.timeout) add("--timeout", *r.timeout);
  for (const auto& [name, value] : r.env)
    add("--env", name + "=" + value);
  if (r.method) add("--method", *r.method);
  for (const std::string& h : r.headers)
    add("--header", h);
  if (r.body) add("--body", *r.body);
  return args;
}

}  // namespace millstone::serve
