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

}  // namespace millstone::results
