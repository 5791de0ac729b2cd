#include "results/record.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>

namespace millstone::results {

namespace {

std::string os_pretty_name() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
    std::string value = line.substr(12);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return "";
}

}  // namespace

Environment current_environment() {
  Environment env;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) env.host = host;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  env.cores = cores > 0 ? static_cast<uint32_t>(cores) : std::thread::hardware_concurrency();
  utsname u{};
  if (uname(&u) == 0) env.kernel = fmt::format("{} {}", u.sysname, u.release);
  env.os = os_pretty_name();
  env.millstone_version = MILLSTONE_VERSION;
  return env;
}

nlohmann::json to_json(const Environment& env) {
  return {{"host", env.host},
          {"cores", env.cores},
          {"kernel", env.kernel},
          {"os", env.os},
          {"millstone_version", env.millstone_version},
          {"command_line", env.command_line},
          {"started_unix_ms", env.started_unix_ms}};
}

Environment environment_from_json(const nlohmann::json& j) {
  Environment env;
  env.host = j.value("host", "");
  env.cores = j.value("cores", 0u);
  env.kernel = j.value("kernel", "");
  env.os = j.value("os", "");
  env.millstone_version = j.value("millstone_version", "");
  env.command_line = j.value("command_line", "");
  env.started_unix_ms = j.value("started_unix_ms", int64_t{0});
  return env;
}

std::string make_run_id(int64_t started_unix_ms) {
  time_t seconds = static_cast<time_t>(started_unix_ms / 1000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &utc);
  std::random_device random;
  return fmt::format("{}-{:04x}", stamp, random() & 0xffff);
}

namespace {

uint64_t count_of(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() && it->get<double>() > 0
             ? static_cast<uint64_t>(it->get<double>())
             : 0;
}

// "error rate 4.50% (45 HTTP failures, 0 transport errors)": the summary's
// one definition of errors (docs/summary-json.md).
std::string error_rate_text(const nlohmann::json& s) {
  auto rate = s.find("error_rate");
  if (rate == s.end() || !rate->is_number()) {
    return fmt::format("{} transport errors", count_of(s, "error_total"));
  }
  return fmt::format("error rate {:.2f}% ({} HTTP failures, {} transport errors)",
                     100 * rate->get<double>(), count_of(s, "http_failures"),
                     count_of(s, "error_total"));
}

}  // namespace

RunVerdict run_verdict(const RunRecord& record) {
  const nlohmann::json& s = record.summary.is_object() ? record.summary : nlohmann::json::object();
  size_t thresholds = 0;
  size_t unevaluated = 0;
  size_t failed = 0;
  std::string first_failed;
  if (auto t = s.find("thresholds"); t != s.end() && t->is_array()) {
    for (const nlohmann::json& one : *t) {
      // A target.* threshold without data was not judged (docs/monitoring.md).
      if (one.is_object() && one.value("status", std::string()) == "no_data") {
        ++unevaluated;
        continue;
      }
      ++thresholds;
      if (!one.is_object() || one.value("passed", true)) continue;
      if (failed++ == 0) {
        first_failed = fmt::format("{} (observed {})", one.value("threshold", std::string("?")),
                                   one.value("observed", std::string("?")));
      }
    }
  }
  // SLO objectives (docs/summary-json.md#slo) judge like thresholds.
  size_t objectives = 0;
  size_t objectives_failed = 0;
  std::string first_objective;
  const nlohmann::json* abort = nullptr;
  if (auto slo = s.find("slo"); slo != s.end() && slo->is_object()) {
    if (auto list = slo->find("objectives"); list != slo->end() && list->is_array()) {
      for (const nlohmann::json& one : *list) {
        ++objectives;
        if (!one.is_object() || one.value("passed", true)) continue;
        if (objectives_failed++ == 0) first_objective = one.value("objective", std::string("?"));
      }
    }
    if (auto a = slo->find("abort"); a != slo->end() && a->is_object()) abort = &*a;
  }
  RunVerdict v;
  switch (record.exit_code) {
    case 0:
      v.good = true;
      if (thresholds || objectives) {
        v.word = "PASSED";
        const std::string not_judged =
            unevaluated ? fmt::format(" ({} more not evaluated: no data)", unevaluated) : "";
        v.judged = objectives == 0
                       ? fmt::format("{} of {} thresholds held{}; {}", thresholds, thresholds,
                                     not_judged, error_rate_text(s))
                       : fmt::format("{} of {} thresholds and {} of {} SLO objectives held{}; {}",
                                     thresholds, thresholds, objectives, objectives, not_judged,
                                     error_rate_text(s));
      } else {
        v.word = "COMPLETED";
        v.judged = fmt::format("no thresholds, so nothing was judged; {}", error_rate_text(s));
      }
      return v;
    case 99:
      v.word = "FAILED";
      if (failed > 0 || objectives_failed == 0) {
        v.judged = fmt::format("{} of {} thresholds failed, first {}; {}", failed, thresholds,
                               first_failed, error_rate_text(s));
      } else {
        v.judged = fmt::format("{} of {} SLO objectives failed, first {}; {}", objectives_failed,
                               objectives, first_objective, error_rate_text(s));
      }
      return v;
    case 97:
      v.word = "ABORTED";
      v.judged = fmt::format("stopped by an abort guard{}; {}",
                             abort ? ": " + abort->value("reason", std::string()) : std::string(),
                             error_rate_text(s));
      return v;
    case 6:
      v.word = "FAILED";
      v.judged = fmt::format(
          "nothing was measured: no request got a complete response ({} of {} connections "
          "established)",
          count_of(s, "connections_established"), count_of(s, "connections_attempted"));
      return v;
    case 5: {
      v.word = "INCOMPLETE";
      std::string why = "a worker died or hung";
      if (auto f = s.find("worker_failures");
          f != s.end() && f->is_array() && !f->empty() && f->front().is_string()) {
        why = f->front().get<std::string>();
      } else if (auto d = s.find("drills"); d != s.end() && d->is_array()) {
        // No worker failed: a drill's action did (docs/scenarios.md#drills).
        for (const nlohmann::json& drill : *d) {
          const std::string status = drill.value("status", "");
          if (status != "failed" && status != "undo_failed") continue;
          const nlohmann::json& action = drill[status == "failed" ? "start" : "end"];
          why = fmt::format("drill {} {}{}", drill.value("name", ""),
                            status == "failed" ? "failed to start" : "was not undone",
                            action.is_object() ? ": " + action.value("detail", "") : "");
          break;
        }
      }
      v.judged = fmt::format("{}; {}", why, error_rate_text(s));
      return v;
    }
    case 130:
      v.word = "INTERRUPTED";
      v.judged = fmt::format("stopped by a signal; {}", error_rate_text(s));
      return v;
    default:
      v.word = "FAILED";
      v.judged = fmt::format("exit code {} (docs/exit-codes.md); {}", record.exit_code,
                             error_rate_text(s));
      return v;
  }
}

}  // namespace millstone::results
