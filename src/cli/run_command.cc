#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/duration.h"
#include "cli/exit_codes.h"
#include "cli/progress.h"
#include "cli/summary.h"
#include "cluster/coordinator.h"
#include "http/request_builder.h"
#include "http/url.h"
#include "net/socket.h"

namespace millstone::cli {

namespace {

int usage_error(const std::string& message) {
  fmt::print(stderr, "millstone run: {}\n", message);
  return kExitUsage;
}

// One blocking connect before the workers start, so an unreachable target is
// one clear line instead of a run full of connect errors.
bool preflight_connect(const net::Endpoint& endpoint, int64_t timeout_us, std::string* error) {
  int fd = net::tcp_socket(endpoint.family());
  if (fd < 0) {
    *error = fmt::format("cannot create a socket: {}", strerror(errno));
    return false;
  }
  int rc = net::start_connect(fd, endpoint);
  int err = rc < 0 ? errno : 0;
  if (rc > 0) {
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(timeout_us / 1000));
    err = n == 0 ? ETIMEDOUT : net::connect_result(fd);
  }
  close(fd);
  if (err != 0) {
    *error = err == ETIMEDOUT ? std::string("connection timed out") : std::string(strerror(err));
    return false;
  }
  return true;
}

// Many connections need many descriptors: use the whole hard limit, and
// spread connections so no worker needs more than it allows.
uint64_t raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

}  // namespace

int run_command(const RunOptions& options) {
  std::string error;
  auto url = http::parse_url(options.url, &error);
  if (!url) return usage_error(fmt::format("bad URL '{}': {}", options.url, error));
  auto duration_us = parse_duration_us(options.duration, &error);
  if (!duration_us || *duration_us <= 0) {
    return usage_error(fmt::format("--duration: {}", duration_us ? "must be positive" : error));
  }
  auto timeout_us = parse_duration_us(options.timeout, &error);
  if (!timeout_us || *timeout_us <= 0) {
    return usage_error(fmt::format("--timeout: {}", timeout_us ? "must be positive" : error));
  }
  auto connect_timeout_us = parse_duration_us(options.connect_timeout, &error);
  if (!connect_timeout_us || *connect_timeout_us <= 0) {
    return usage_error(
        fmt::format("--connect-timeout: {}", connect_timeout_us ? "must be positive" : error));
  }
  if (options.connections == 0) return usage_error("--connections must be at least 1");
  if (options.rate < 0) return usage_error("--rate must be positive (requests per second)");
  std::vector<std::pair<std::string, std::string>> headers;
  for (const std::string& h : options.headers) {
    std::pair<std::string, std::string> header;
    if (!http::parse_header_arg(h, &header, &error)) {
      return usage_error(fmt::format("-H '{}': {}", h, error));
    }
    headers.push_back(std::move(header));
  }
  if (!options.body.empty() && !options.body_file.empty()) {
    return usage_error("--body and --body-file cannot both be given");
  }
  std::string body = options.body;
  if (!options.body_file.empty()) {
    std::ifstream in(options.body_file, std::ios::binary);
    if (!in) {
      fmt::print(stderr, "millstone run: --body-file {}: cannot read: {}\n", options.body_file,
                 strerror(errno));
      return kExitConfig;
    }
    std::ostringstream content;
    content << in.rdbuf();
    body = content.str();
  }

  auto endpoint = net::resolve(url->host, url->port, &error);
  if (!endpoint) {
    fmt::print(stderr, "millstone run: {} is unreachable: {}\n", options.url, error);
    return kExitUnreachable;
  }
  if (!preflight_connect(*endpoint, *connect_timeout_us, &error)) {
    fmt::print(stderr, "millstone run: cannot connect to {} ({}): {}\n", endpoint->to_string(),
               options.url, error);
    return kExitUnreachable;
  }

  engine::RunPlan plan;
  plan.address = net::numeric_host(*endpoint);
  plan.port = url->port;
  plan.url = options.url;
  plan.request_bytes = http::build_request(options.method, *url, headers, body);
  plan.head_request = options.method == "HEAD";
  plan.connections = options.connections;
  plan.rate = options.rate;
  plan.duration_ms = static_cast<uint64_t>(*duration_us / 1000);
  plan.timeout_ms = static_cast<uint64_t>(std::max<int64_t>(1, *timeout_us / 1000));
  plan.connect_timeout_ms = static_cast<uint64_t>(std::max<int64_t>(1, *connect_timeout_us / 1000));

  uint64_t fd_limit = raise_fd_limit();
  uint32_t workers = options.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  // Keep some descriptors per worker for its event loop and channel.
  uint64_t per_worker = fd_limit > 64 ? fd_limit - 32 : fd_limit;
  uint32_t needed = static_cast<uint32_t>((options.connections + per_worker - 1) / per_worker);
  if (needed > workers) {
    if (options.workers != 0) {
      return usage_error(fmt::format(
          "{} connections on {} workers need {} descriptors per worker, above the open-file "
          "limit of {}; use --workers {} or more (or raise 'ulimit -n')",
          options.connections, workers, (options.connections + workers - 1) / workers, fd_limit,
          needed));
    }
    workers = needed;
  }

  RunDescription description{options.url,  options.method, options.connections,
                             options.rate, workers,        plan.duration_ms};
  bool terminal = isatty(STDERR_FILENO);
  ConsoleProgress progress(stderr, terminal, static_cast<double>(plan.duration_ms) / 1e3);
  cluster::RunResult result =
      cluster::run_local(plan, workers, options.quiet ? nullptr : &progress);
  description.workers = result.workers;

  std::cout << format_summary(description, result) << std::flush;
  if (!options.out.empty()) {
    std::ofstream out(options.out);
    out << summary_json(description, result).dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "millstone run: --out {}: cannot write: {}\n", options.out,
                 strerror(errno));
      return kExitConfig;
    }
  }
  if (!result.worker_failures.empty()) return kExitIncomplete;
  if (result.interrupted) return kExitInterrupted;
  return kExitOk;
}

}  // namespace millstone::cli
