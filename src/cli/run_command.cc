#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cli/agent_fleet.h"
#include "cli/commands.h"
#include "cli/drill_report.h"
#include "cli/exit_codes.h"
#include "cli/generator_summary.h"
#include "cli/history_commands.h"
#include "cli/limits.h"
#include "cli/live_events.h"
#include "cli/progress.h"
#include "cli/run_execute.h"
#include "cli/scenario_summary.h"
#include "cli/slo_summary.h"
#include "cli/summary.h"
#include "cluster/coordinator.h"
#include "cluster/local_workers.h"
#include "config/yaml_text.h"
#include "drill/actions.h"
#include "drill/scheduler.h"
#include "grpc/reflection_client.h"
#include "http/request_builder.h"
#include "http/url.h"
#include "monitor/collector.h"
#include "net/clock.h"
#include "net/io_backend.h"
#include "net/socket.h"
#include "net/stop_request.h"
#include "net/stream.h"
#include "proxy/proxy_thread.h"
#include "results/junit.h"
#include "results/knee.h"
#include "results/metrics_exporter.h"
#include "results/record.h"
#include "results/report.h"
#include "results/timeseries.h"
#include "results/webhook.h"
#include "scenario/loader.h"
#include "scenario/slo.h"
#include "scenario/target_thresholds.h"
#include "scenario/thresholds.h"
#include "text/printable.h"
#include "tls/client_context.h"
#include "tls/tls_stream.h"

namespace millstone::cli {

namespace {

int usage_error(const std::string& message) {
  fmt::print(stderr, "millstone run: {}\n", text::printable(message));
  return kExitUsage;
}

// One blocking connect before the workers start, so an unreachable target is
// one clear line instead of a run full of connect errors. Returns the
// connected socket (non-blocking), or -1 with *error set.
int preflight_connect(const net::Endpoint& endpoint, const std::vector<std::string>& sources,
                      int64_t timeout_us, std::string* error) {
  int fd = net::tcp_socket(endpoint.family());
  if (fd < 0) {
    *error = fmt::format("cannot create a socket: {}", strerror(errno));
    return -1;
  }
  // From the first source address, like the workers' connections will be.
  auto source = sources.empty() ? std::nullopt : net::make_endpoint(sources.front(), 0);
  if (source && net::bind_source(fd, *source) < 0) {
    *error = fmt::format("cannot bind to source address {}: {}", sources.front(), strerror(errno));
    close(fd);
    return -1;
  }
  int rc = net::start_connect(fd, endpoint);
  int err = rc < 0 ? errno : 0;
  if (rc > 0) {
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(timeout_us / 1000));
    err = n == 0 ? ETIMEDOUT : net::connect_result(fd);
  }
  if (err != 0) {
    close(fd);
    *error = err == ETIMEDOUT ? std::string("connection timed out") : std::string(strerror(err));
    return -1;
  }
  return fd;
}

// The TLS handshake the workers will do, once, on the pre-flight connection
// `fd` (owned from here): a certificate the options do not accept is one line
// before the run rather than a run of tls_* errors. False with *error set.
bool preflight_handshake(const tls::TlsClientOptions& options, const std::string& server_name,
                         uint16_t port, int fd, int64_t timeout_us, bool scenario, bool http2,
                         std::string* error) {
  tls::TlsClientContext context(options);  // checked before: does not throw
  std::unique_ptr<tls::TlsStream> stream =
      tls::TlsStream::client(context, context.target(server_name, port), fd);
  if (!stream) {
    *error = "out of memory";
    return false;
  }
  const int64_t deadline = net::now_ns() + timeout_us * 1000;
  for (;;) {
    const net::StreamResult result = stream->handshake();
    if (result.status == net::StreamStatus::kOk) {
      if (http2 && stream->alpn() != "h2") {
        *error = stream->alpn().empty()
                     ? std::string(
                           "--http2: the server selected no ALPN protocol; expected h2 "
                           "(it does not offer HTTP/2 over TLS)")
                     : fmt::format(
                           "--http2: the server selected ALPN '{}'; expected h2 (it does "
                           "not offer HTTP/2 over TLS)",
                           stream->alpn());
        return false;
      }
      if (!http2 && !stream->alpn().empty() && stream->alpn() != "http/1.1") {
        // Offered with --alpn: the connections would speak HTTP/1.1 to a
        // server that chose another protocol, and every request would fail.
        *error = fmt::format(
            "the server selected ALPN '{}', and this run speaks HTTP/1.1{}",
            text::printable(stream->alpn()),
            stream->alpn() == "h2" ? "; use --http2 for HTTP/2, or leave h2 out of --alpn" : "");
        return false;
      }
      return true;
    }
    if (result.status != net::StreamStatus::kWouldBlock) {
      const metrics::ErrorCause cause = result.cause;
      *error = fmt::format("TLS handshake failed: {} ({})", stream->error_text(),
                           metrics::error_cause_name(cause));
      const bool certificate = cause == metrics::ErrorCause::kTlsCertificateExpired ||
                               cause == metrics::ErrorCause::kTlsCertificateHostname ||
                               cause == metrics::ErrorCause::kTlsCertificateUntrusted ||
                               cause == metrics::ErrorCause::kTlsCertificate;
      if (certificate) {
        *error += scenario ? "; set defaults: tls: ca: FILE to trust the CA that signed it, or "
                             "insecure: true to skip verification"
                           : "; use --cacert FILE to trust the CA that signed it, or -k to skip "
                             "verification";
      } else if (http2 && cause == metrics::ErrorCause::kTlsAlertReceived) {
        // nginx without `http2` ends the handshake with no_application_protocol.
        *error +=
            "; --http2 offers ALPN h2 alone and the server refused it (it does not offer "
            "HTTP/2 over TLS)";
      }
      return false;
    }
    const int64_t left_ms = (deadline - net::now_ns()) / 1'000'000;
    pollfd p{stream->fd(),
             static_cast<short>(result.wait == net::Readiness::kWritable ? POLLOUT : POLLIN), 0};
    if (left_ms <= 0 || poll(&p, 1, static_cast<int>(left_ms)) == 0) {
      *error = "TLS handshake timed out (--connect-timeout)";
      return false;
    }
  }
}

// https: the TLS options of the run plan, with the files' contents (workers
// and remote agents do not read the coordinator's files). Checked here by
// building the context once. Returns 0, or the exit code after printing why.
int prepare_tls(const RunOptions& options, const http::Url& url, engine::RunPlan* plan) {
  if (!url.tls()) {
    if (options.tls_flags()) {
      return usage_error(fmt::format(
          "TLS flags (-k, --cacert, --cert, --key, --tls-min, --tls-max, --no-tls-resumption, "
          "--alpn) need an https:// URL; got {}",
          options.url));
    }
    return 0;
  }
  tls::TlsClientOptions tls;
  tls.insecure = options.insecure;
  tls.min_version = options.tls_min.value_or(tls::TlsVersion::k1_2);
  tls.max_version = options.tls_max.value_or(tls::TlsVersion::k1_3);
  if (tls.min_version > tls.max_version) {
    return usage_error("--tls-min 1.3 is above --tls-max 1.2; expected min <= max");
  }
  if (options.cert.empty() != options.key.empty()) {
    return usage_error(options.cert.empty() ? "--key needs --cert (the client certificate)"
                                            : "--cert needs --key (its private key)");
  }
  tls.resume_sessions = !options.no_tls_resumption;
  tls.alpn = options.http2 ? std::vector<std::string>{"h2"}
                           : options.alpn.value_or(std::vector<std::string>{"http/1.1"});
  const std::pair<const std::string*, std::string*> files[] = {
      {&options.cacert, &tls.ca_pem}, {&options.cert, &tls.cert_pem}, {&options.key, &tls.key_pem}};
  const char* flags[] = {"--cacert", "--cert", "--key"};
  for (size_t i = 0; i < 3; ++i) {
    const std::string& path = *files[i].first;
    if (path.empty()) continue;
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    if (in) content << in.rdbuf();
    if (!in || content.str().empty()) {
      fmt::print(stderr, "millstone run: {} {}: cannot read: {}\n", flags[i], text::printable(path),
                 in ? "the file is empty" : strerror(errno));
      return kExitConfig;
    }
    *files[i].second = content.str();
  }
  tls.ca_file = options.cacert;
  tls.cert_file = options.cert;
  tls.key_file = options.key;
  try {
    tls::TlsClientContext check(tls);
  } catch (const tls::TlsSetupError& e) {
    fmt::print(stderr, "millstone run: {}\n", text::printable(e.what()));
    return kExitConfig;
  }
  plan->tls = std::move(tls);
  plan->tls_server_name = url.host;
  return 0;
}

// grpc: {reflection: true}: the target's reflection service asked while the
// scenario loads, before any worker starts (docs/scenarios.md#grpc-steps),
// over the run's target (--target included) and the file's TLS settings.
scenario::GrpcReflection reflect_for_scenario(const RunOptions& options, const scenario::Plan& plan,
                                              const std::vector<std::string>& services) {
  http::Url target = plan.target;
  std::string error;
  if (!options.target.empty()) {
    if (auto url = http::parse_url(options.target, &error)) target = *url;  // else reported later
  }
  grpc::ReflectionTarget request;
  request.host = target.host;
  request.port = target.port;
  request.authority = target.host_header();
  if (target.tls()) {
    request.tls = plan.tls;
    request.server_name = plan.tls_server_name.empty() ? target.host : plan.tls_server_name;
  }
  request.connect_timeout_us = options.connect_timeout_us;
  request.timeout_us = plan.timeout_us;
  const grpc::ReflectionResult result = grpc::reflect(request, services);
  const std::string where = fmt::format("{}://{}", target.scheme, target.host_header());
  scenario::GrpcReflection out;
  switch (result.failure) {
    case grpc::ReflectionFailure::kNone:
      out.descriptor_set = result.descriptor_set;
      break;
    case grpc::ReflectionFailure::kUnreachable:
      out.error = fmt::format("{} is unreachable: {}", where, result.error);
      out.exit_code = kExitUnreachable;
      break;
    case grpc::ReflectionFailure::kTls:
      out.error = fmt::format("{}: {}", where, result.error);
      out.exit_code = kExitTls;
      break;
    case grpc::ReflectionFailure::kReflection: {
      std::string names;
      for (const std::string& service : services)
        names += (names.empty() ? "" : ", ") + service;
      out.error = fmt::format(
          "server reflection at {}: {}; expected the server to describe {} (or protos: with "
          "their .proto files)",
          where, result.error, names);
      out.exit_code = kExitConfig;
      break;
    }
  }
  return out;
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

scenario::Parameters scenario_parameters(
    const std::vector<std::pair<std::string, std::string>>& env) {
  scenario::Parameters parameters;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const size_t equals = text.find('=');
    if (equals != std::string_view::npos && equals > 0) {
      parameters[std::string(text.substr(0, equals))] = std::string(text.substr(equals + 1));
    }
  }
  for (const auto& [name, value] : env)
    parameters[name] = value;
  return parameters;
}

bool looks_like_scenario(const std::string& target) {
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) return false;
  auto ends_with = [&](std::string_view suffix) {
    return target.size() >= suffix.size() &&
           target.compare(target.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".yaml") || ends_with(".yml") || access(target.c_str(), F_OK) == 0;
}

namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs of the same thing are compared with each other: a scenario by its
// absolute path, a URL by method and URL.
std::string run_key(const RunOptions& options, const RunDescription& description,
                    const scenario::Plan* scenario) {
  if (!scenario) return fmt::format("{} {}", description.method, description.url);
  char* real = realpath(options.url.c_str(), nullptr);
  std::string key = real ? real : options.url;
  free(real);
  return key;
}

nlohmann::json run_config_json(const RunOptions& options, const engine::RunPlan& plan) {
  nlohmann::json j = {{"target", options.url},
                      {"duration_ms", plan.duration_ms},
                      {"timeout_ms", plan.timeout_ms},
                      {"connect_timeout_ms", plan.connect_timeout_ms},
                      {"workers_requested", options.workers}};
  if (plan.scenario_source.empty()) {
    j["connections"] = options.connections;
    j["rate"] = options.rate;
    if (plan.grpc) {
      j["grpc"] = {{"path", plan.request.path}, {"message_bytes", plan.request.body.size()}};
    }
    if (plan.http2) {
      j["http2"] = true;
      j["streams"] = plan.streams;
      j["h2_window"] = plan.h2_window;
      j["h2_header_table"] = plan.h2_header_table;
    }
    j["method"] = options.method;
    j["headers"] = options.headers;
    j["body_bytes"] = options.body_file.empty() ? options.body.size() : 0;
    if (!options.body_file.empty()) j["body_file"] = options.body_file;
  } else {
    j["scenario_file"] = plan.scenario_path;
    j["scenario_source"] = plan.scenario_source;
    // Names only: parameter values are often credentials.
    nlohmann::json names = nlohmann::json::array();
    for (const auto& [name, value] : plan.scenario_parameters)
      names.push_back(name);
    j["parameters"] = names;
    if (plan.scenario_vus > 0) j["vus_override"] = plan.scenario_vus;
    if (plan.scenario_duration_us > 0) j["duration_override_ms"] = plan.scenario_duration_us / 1000;
    if (plan.scenario_rate > 0) j["rate_override"] = plan.scenario_rate;
    if (!options.target.empty()) j["target_override"] = options.target;
  }
  return j;
}

// The --out, --report, --junit and --timeseries files. Each failure is one
// line naming the flag and the file; false if any failed.
bool write_outputs(const RunOptions& options, const results::RunRecord& record) {
  bool ok = true;
  auto attempt = [&](const std::string& flag, const std::string& path, auto&& write) {
    if (path.empty()) return;
    try {
      write(path);
    } catch (const results::ResultsError& e) {
      fmt::print(stderr, "millstone run: {} {}: {}\n", flag, path, text::printable(e.what()));
      ok = false;
    }
  };
  attempt("--out", options.out, [&](const std::string& path) {
    if (path == "-") {
      std::cout << record.summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n"
                << std::flush;
      return;
    }
    std::ofstream out(path);
    out << record.summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!out) throw results::ResultsError(fmt::format("cannot write: {}", strerror(errno)));
  });
  attempt("--report", options.report,
          [&](const std::string& path) { results::write_html_report(record, path); });
  attempt("--junit", options.junit,
          [&](const std::string& path) { results::write_junit(record, path); });
  attempt("--timeseries", options.timeseries,
          [&](const std::string& path) { results::write_timeseries(record, path); });
  return ok;
}

// The output files are opened (and the --metrics-listen address read) before
// the run, so a typo in a path costs a second, not a whole run. A file this creates is removed
// again: the run may still stop before writing it.
bool check_outputs(const RunOptions& options) {
  const std::pair<const char*, const std::string*> outputs[] = {
      {"--out", &options.out},
      {"--report", &options.report},
      {"--junit", &options.junit},
      {"--timeseries", &options.timeseries}};
  for (const auto& [flag, path] : outputs) {
    if (path->empty() || (*path == "-" && std::string_view(flag) == "--out")) continue;
    const bool existed = access(path->c_str(), F_OK) == 0;
    const int fd = open(path->c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      usage_error(fmt::format("{} {}: cannot write: {}", flag, *path, strerror(errno)));
      return false;
    }
    close(fd);
    if (!existed) unlink(path->c_str());
  }
  std::string error;
  if (!options.metrics_listen.empty() &&
      !net::parse_listen_address(options.metrics_listen, &error)) {
    usage_error(fmt::format("--metrics-listen {}: {}", options.metrics_listen, error));
    return false;
  }
  results::SeriesFormat series_format;
  if (!options.timeseries.empty() &&
      !results::series_format_for(options.timeseries, &series_format)) {
    usage_error(fmt::format("--timeseries {}: expected a file name ending in .csv or .ndjson",
                            options.timeseries));
    return false;
  }
  return true;
}

// Starts the monitor's scrapes on the run's clock, at second 0.
class MonitorStarter final : public cluster::ProgressSink {
 public:
  MonitorStarter(monitor::Collector& collector, int64_t duration_ns)
      : collector_(collector), duration_ns_(duration_ns) {}
  void on_second(uint64_t, const metrics::Snapshot&, const metrics::Snapshot&) override {}
  void on_start(int64_t start_ns) override { collector_.start(start_ns, start_ns + duration_ns_); }

 private:
  monitor::Collector& collector_;
  int64_t duration_ns_;
};

// The scenario's monitor: entries and the --monitor URLs. False after
// printing why (a bad --monitor URL is a usage error).
bool monitor_targets(const RunOptions& options, const scenario::Plan* scenario,
                     std::vector<monitor::Target>* targets) {
  if (scenario) {
    for (const scenario::MonitorEndpoint& m : scenario->monitors) {
      targets->push_back({m.name, m.url, m.metrics, m.interval_us / 1000, m.location});
    }
  }
  for (const std::string& text : options.monitors) {
    std::string error;
    const std::optional<http::Url> url = http::parse_url(text, &error);
    if (!url) {
      usage_error(
          fmt::format("--monitor '{}': {}; expected a Prometheus text endpoint such as "
                      "http://127.0.0.1:9100/metrics",
                      text, error));
      return false;
    }
    std::string name = url->ipv6_literal ? fmt::format("[{}]:{}", url->host, url->port)
                                         : fmt::format("{}:{}", url->host, url->port);
    const std::string base = name;
    for (int n = 2; std::any_of(targets->begin(), targets->end(),
                                [&](const monitor::Target& t) { return t.name == name; });
         ++n) {
      name = fmt::format("{}#{}", base, n);
    }
    targets->push_back({name, text, {}, 1000, "--monitor"});
  }
  return true;
}

// Resolves the target, checks it accepts connections, starts the workers,
// prints and writes the summary. Shared by URL and scenario runs.
int execute(const RunOptions& options, engine::RunPlan plan, const http::Url& url,
            RunDescription description, const scenario::Plan* scenario, uint64_t connections,
            proxy::ProxyThread* run_proxies = nullptr) {
  std::string error;
  std::vector<monitor::Target> monitor_list;
  if (!monitor_targets(options, scenario, &monitor_list)) return kExitUsage;
  if (scenario) {
    // target.* thresholds and objectives need something monitored (--monitor
    // counts, so this is checked here rather than when the file is loaded).
    std::vector<const scenario::Threshold*> on_target;
    for (const scenario::Threshold& t : scenario->thresholds)
      on_target.push_back(&t);
    for (const scenario::Objective& o : scenario->objectives)
      on_target.push_back(&o.threshold);
    for (const scenario::Threshold* t : on_target) {
      if (t->metric != scenario::Threshold::Metric::kTarget) continue;
      if (const std::string problem = scenario::target_threshold_problem(*t, monitor_list);
          !problem.empty()) {
        fmt::print(stderr, "millstone run: {}\n", text::printable(problem));
        return kExitConfig;
      }
    }
  }
  auto endpoint = net::resolve(url.host, url.port, &error);
  if (!endpoint) {
    fmt::print(stderr, "millstone run: {} is unreachable: {}\n", text::printable(description.url),
               text::printable(error));
    return kExitUnreachable;
  }
  plan.address = net::numeric_host(*endpoint);
  plan.port = url.port;
  plan.io_backend = options.io;
  if (options.io == net::IoBackend::kUring) {
    // Checked here, once, so the run stops before any worker starts.
    if (const std::string reason = net::uring_unavailable_reason(); !reason.empty()) {
      fmt::print(stderr, "millstone run: --io uring: {} (use --io epoll)\n", reason);
      return kExitConfig;
    }
    if (plan.tls || plan.http2) {
      fmt::print(stderr,
                 "millstone run: note: --io uring moves plain HTTP/1.1 connections to io_uring "
                 "completions; {} connections keep epoll-style readiness on the uring loop\n",
                 plan.http2 ? "HTTP/2" : "TLS");
    }
  }

  if (!parse_source_flags(options.source_addresses, &plan.source_addresses, &error)) {
    return usage_error(error);
  }
  for (const std::string& source : plan.source_addresses) {
    auto local = net::make_endpoint(source, 0);
    if (local->family() != endpoint->family()) {
      return usage_error(fmt::format("--source-address {}: the target {} is {}", source,
                                     endpoint->to_string(),
                                     endpoint->family() == AF_INET ? "IPv4" : "IPv6"));
    }
  }
  bool loopback = net::is_loopback(*endpoint);
  // What the run planned by itself from the machine's limits, for the JSON
  // summary's `plan` (docs/scale.md): the warnings are the limits it could
  // not change.
  nlohmann::json run_plan = {{"connections", connections}, {"loopback_target", loopback}};
  std::vector<std::string> plan_warnings;
  run_plan["source_addresses_chosen"] = false;
  if (plan.source_addresses.empty() && loopback && endpoint->family() == AF_INET) {
    plan.source_addresses = loopback_sources(connections, local_port_count(nullptr));
    run_plan["source_addresses_chosen"] = !plan.source_addresses.empty();
  }
  std::string port_range;
  run_plan["ports_per_source"] = local_port_count(&port_range);
  run_plan["port_range"] = port_range;
  run_plan["source_addresses"] = plan.source_addresses.size();
  if (!plan.source_addresses.empty()) {
    run_plan["source_address_first"] = plan.source_addresses.front();
    run_plan["source_address_last"] = plan.source_addresses.back();
  }
  for (const std::string& warning :
       capacity_warnings(connections, plan.source_addresses.size(), loopback)) {
    fmt::print(stderr, "millstone run: warning: {}\n", warning);
    plan_warnings.push_back(warning);
  }

  const int64_t connect_timeout_us = static_cast<int64_t>(plan.connect_timeout_ms) * 1000;
  // amqp.* steps: the broker must answer (docs/amqp.md#scenario-steps). A
  // scenario of AMQP steps only never connects to its target:.
  if (scenario != nullptr && scenario->amqp.enabled) {
    const auto broker = net::resolve(scenario->amqp.host, scenario->amqp.port, &error);
    const int fd = broker ? preflight_connect(*broker, {}, connect_timeout_us, &error) : -1;
    if (fd < 0) {
      fmt::print(stderr, "millstone run: cannot connect to the AMQP broker {}: {}\n",
                 text::printable(scenario->amqp.url_display), text::printable(error));
      return kExitUnreachable;
    }
    if (!scenario->amqp.tls) {
      close(fd);
    } else {
      // amqps://: the handshake the workers will do, with the scenario's
      // defaults: tls:, so a refused certificate is one line and exit 8.
      tls::TlsClientOptions amqp_tls = scenario->tls;
      amqp_tls.alpn.clear();
      bool ok = false;
      try {
        const std::string& name =
            scenario->tls_server_name.empty() ? scenario->amqp.host : scenario->tls_server_name;
        ok = preflight_handshake(amqp_tls, name, scenario->amqp.port, fd, connect_timeout_us, true,
                                 false, &error);
      } catch (const tls::TlsSetupError& e) {
        close(fd);
        fmt::print(stderr, "millstone run: amqps: {}\n", text::printable(e.what()));
        return kExitConfig;
      }
      if (!ok) {
        fmt::print(stderr, "millstone run: AMQP broker {}: {}\n",
                   text::printable(scenario->amqp.url_display), text::printable(error));
        return kExitTls;
      }
    }
  }
  const bool uses_target = scenario == nullptr || scenario->uses_http_version(1) ||
                           scenario->uses_http_version(2) || scenario->has_socket_steps();
  if (uses_target) {
    const int preflight =
        preflight_connect(*endpoint, plan.source_addresses, connect_timeout_us, &error);
    if (preflight < 0) {
      fmt::print(stderr, "millstone run: cannot connect to {} ({}): {}\n", endpoint->to_string(),
                 text::printable(description.url), error);
      return kExitUnreachable;
    }
    if (!plan.tls) {
      close(preflight);
    } else if (!preflight_handshake(*plan.tls, plan.tls_server_name, plan.port, preflight,
                                    connect_timeout_us, scenario != nullptr, plan.http2, &error)) {
      fmt::print(stderr, "millstone run: {}: {}\n", text::printable(description.url),
                 text::printable(error));
      return kExitTls;
    }
  }
  uint64_t fd_limit = raise_fd_limit();
  uint32_t workers = options.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  // Keep some descriptors per worker for its event loop and channel.
  uint32_t needed = workers_for_descriptors(connections, fd_limit);
  // Agents size themselves (their cores and limits, docs/agents.md).
  std::unique_ptr<AgentFleet> fleet;
  std::FILE* text_out = options.out == "-" ? stderr : stdout;
  if (options.agents > 0) {
    if (const int code = AgentFleet::open(options, text_out, &fleet); code != 0) return code;
    if (const int code = fleet->gather(); code != 0) return code;
    needed = 0;
  }
  if (needed > workers) {
    if (options.workers != 0) {
      return usage_error(fmt::format(
          "{} connections on {} workers need {} descriptors per worker, above the open-file "
          "limit of {}; use --workers {} or more (or raise the hard limit: 'ulimit -Hn', "
          "LimitNOFILE= in systemd, nofile in /etc/security/limits.conf)",
          connections, workers, (connections + workers - 1) / workers, fd_limit, needed));
    }
    workers = needed;
  }
  if (scenario != nullptr && scenario->amqp.enabled && !scenario->amqp.consumed.empty() &&
      !scenario->amqp.queues_per_worker() && (workers > 1 || fleet)) {
    fmt::print(stderr,
               "millstone run: warning: amqp.expect queues are shared by {} workers: the broker "
               "gives each message to one worker, so others' VUs time out; use -w 1 or a queue "
               "per worker ({{{{ worker }}}} in its name, docs/amqp.md#scenario-steps)\n",
               workers);
  }
  const uint32_t cores = std::max(1u, std::thread::hardware_concurrency());
  if (auto warning = worker_count_warning(connections, fd_limit, cores); warning && !fleet) {
    fmt::print(stderr, "millstone run: warning: {}\n", *warning);
    plan_warnings.push_back(*warning);
  }
  run_plan["fd_limit"] = fd_limit;
  run_plan["cores"] = cores;
  run_plan["workers_for_descriptors"] = needed;
  run_plan["workers"] = fleet ? 0 : workers;
  run_plan["warnings"] = plan_warnings;
  // A large run says what it planned by itself, once, before it starts.
  if (!fleet && (workers > cores || !plan.source_addresses.empty())) {
    std::string sources;
    if (run_plan["source_addresses_chosen"].get<bool>()) {
      sources = fmt::format(", source addresses {}-{} ({} local ports each, range {})",
                            plan.source_addresses.front(), plan.source_addresses.back(),
                            run_plan["ports_per_source"].get<uint32_t>(), port_range);
    }
    fmt::print(stderr,
               "millstone run: plan: {} connections on {} worker processes (open-file limit {} "
               "per process, {} cores){}\n",
               connections, workers, fd_limit, cores, sources);
  }

  description.workers = workers;
  results::RunRecord record;
  record.env = results::current_environment();
  record.env.command_line = options.command_line;
  record.env.started_unix_ms = unix_ms_now();
  record.id = results::make_run_id(record.env.started_unix_ms);
  record.name = options.url;
  record.key = run_key(options, description, scenario);
  record.config = run_config_json(options, plan);

  bool terminal = isatty(STDERR_FILENO);
  ConsoleProgress console(stderr, terminal, static_cast<double>(plan.duration_ms) / 1e3);
  FanoutProgress progress;
  if (!options.quiet) progress.add(&console);
  std::unique_ptr<results::MetricsExporter> exporter;
  if (!options.metrics_listen.empty()) {
    results::ExporterLabels labels;
    labels.run_id = record.id;
    labels.name = record.name;
    if (scenario) {
      labels.step_names = scenario->step_names;
      labels.check_names = scenario->check_names;
      for (const scenario::Flow& flow : scenario->flows)
        labels.flow_names.push_back(flow.name);
      for (const scenario::Drill& d : scenario->drills)
        labels.drill_names.push_back(d.name);
    }
    if (!net::parse_listen_address(options.metrics_listen, &error))
      return usage_error(fmt::format("--metrics-listen {}: {}", options.metrics_listen, error));
    exporter = results::MetricsExporter::start(options.metrics_listen, labels, &error);
    if (!exporter) {
      fmt::print(stderr, "millstone run: --metrics-listen {}: {}\n", options.metrics_listen, error);
      return kExitCannotListen;
    }
    fmt::print(stderr, "millstone run: live metrics at http://{}/metrics\n",
               exporter->bound_address());
    progress.add(exporter.get());
  }
  // Workers (and agents) read no file: the data files travel with Start.
  std::vector<cluster::DataFile> data_files;
  if (scenario) {
    for (const scenario::DataSource& source : scenario->data) {
      if (std::any_of(data_files.begin(), data_files.end(),
                      [&](const cluster::DataFile& f) { return f.path == source.path; })) {
        continue;
      }
      std::ifstream in(source.path, std::ios::binary);
      std::ostringstream content;
      if (in) content << in.rdbuf();
      if (!in) {
        fmt::print(stderr, "millstone run: data file {}: cannot read: {}\n",
                   text::printable(source.path), strerror(errno));
        return kExitConfig;
      }
      data_files.push_back({source.path, content.str()});
    }
    // grpc steps: the descriptors the coordinator parsed from the .proto files.
    if (scenario->grpc.enabled()) {
      data_files.push_back({scenario->grpc.descriptor_key, scenario->grpc.descriptor_set});
    }
  }
  // Abort guards judge each second as it arrives and stop the run through `stop`.
  net::StopRequest stop;
  std::unique_ptr<GuardProgress> guards;
  if (scenario && std::any_of(scenario->objectives.begin(), scenario->objectives.end(),
                              [](const scenario::Objective& o) { return o.guard; })) {
    guards = std::make_unique<GuardProgress>(*scenario, &stop);
    progress.add(guards.get());
  }
  // `millstone serve` watches the run through these lines (docs/serve.md).
  std::unique_ptr<LiveEvents> live;
  if (!options.live_events.empty()) {
    live = LiveEvents::open(options.live_events, description,
                            scenario ? scenario->step_names : std::vector<std::string>{}, &error);
    if (!live) {
      fmt::print(stderr, "millstone run: --live-events: {}\n", text::printable(error));
      return kExitConfig;
    }
    live->watch_guards(guards.get());
    progress.add(live.get());
  }
  // The fault schedule runs here, in the coordinator, on the run's clock.
  std::unique_ptr<drill::SystemActions> drill_actions;
  std::unique_ptr<DrillLog> drill_log;
  std::unique_ptr<drill::DrillScheduler> drills;
  std::unique_ptr<DrillStarter> drill_starter;
  if (scenario && !scenario->drills.empty()) {
    drill_actions = std::make_unique<drill::SystemActions>(run_proxies);
    drill_log = std::make_unique<DrillLog>(stderr, terminal, exporter.get(), live.get());
    drills =
        std::make_unique<drill::DrillScheduler>(scenario->drills, *drill_actions, drill_log.get());
    drill_starter = std::make_unique<DrillStarter>(*drills);
    progress.add(drill_starter.get());
  }
  // Target monitoring (docs/monitoring.md): scraped from the coordinator on the run's clock.
  std::unique_ptr<monitor::Collector> collector;
  std::unique_ptr<MonitorStarter> monitor_starter;
  if (!monitor_list.empty()) {
    collector = std::make_unique<monitor::Collector>(std::move(monitor_list));
    monitor_starter = std::make_unique<MonitorStarter>(
        *collector, static_cast<int64_t>(plan.duration_ms) * 1'000'000);
    progress.add(monitor_starter.get());
  }
  cluster::RunResult result =
      fleet ? fleet->run(plan, &progress, std::move(data_files), &stop)
            : cluster::run_local(plan, workers, &progress, std::move(data_files), &stop);
  std::optional<monitor::MonitorResult> monitored;
  if (collector) {
    monitored = collector->finish();
    // A dead or garbage endpoint is one warning, never a failed run.
    for (const monitor::TargetOutcome& t : monitored->targets) {
      if (const std::string w = t.warning(); !w.empty()) {
        fmt::print(stderr, "millstone run: warning: {}\n", text::printable(w));
      }
    }
  }
  std::vector<drill::DrillRecord> drill_records;
  if (drills) {
    // Ended or interrupted: every fault still on is undone now.
    drills->finish();
    drill_records = drills->records();
    result.fault_windows = drills->windows();
  }
  description.workers = result.workers;
  for (const std::string& note : result.worker_notes)
    fmt::print(stderr, "millstone run: note: {}\n", note);

  std::vector<scenario::ThresholdOutcome> thresholds;
  bool slo_ok = true;
  std::string text = format_summary(description, result);
  text += format_generator_summary(result);
  nlohmann::json json = summary_json(description, result);
  if (fleet) {
    text += fleet->summary_text(result);
    json["agents"] = fleet->summary_json(result);
  }
  json["generator"] = generator_json(result);
  json["plan"] = run_plan;
  if (scenario && std::any_of(scenario->scenarios.begin(), scenario->scenarios.end(),
                              [](const scenario::ScenarioRun& r) {
                                return r.executor.kind == scenario::Executor::Kind::kRampingVus ||
                                       r.executor.kind ==
                                           scenario::Executor::Kind::kRampingArrivalRate;
                              })) {
    // A ramp: where throughput stopped growing and p99 turned up
    // (docs/scenarios.md#saturation-knee).
    const results::KneeRule rule;
    const std::vector<results::LoadWindow> windows =
        results::load_windows(result.seconds, result.duration_s, rule.window_s);
    const std::optional<results::Knee> knee = results::find_knee(windows, rule);
    text += fmt::format(
        "  knee         {}\n",
        knee ? results::knee_text(*knee)
        : windows.size() < static_cast<size_t>(rule.hold_windows) + 1
            ? fmt::format("too short to look for a saturation knee (it takes {} windows of {}s)",
                          rule.hold_windows + 1, rule.window_s)
            : std::string("no saturation knee: p99 did not turn up while throughput stopped "
                          "growing"));
    json["knee"] = knee ? results::knee_json(*knee, rule) : nlohmann::json();
  }
  if (scenario) {
    thresholds = scenario::evaluate_thresholds(*scenario, result.total, result.duration_s,
                                               monitored ? &*monitored : nullptr);
    text += format_scenario_summary(*scenario, result.total, thresholds, options.percentiles);
    add_scenario_json(*scenario, result.total, thresholds, &json);
    if (!scenario->drills.empty()) {
      text += format_drill_summary(drill_records);
      json["drills"] = drills_json(drill_records);
      // Before, during and after each fault, and the way back to before.
      const scenario::PhaseReport phases = scenario::report_phases(
          *scenario, result.seconds, result.fault_windows, result.duration_s);
      text += format_phase_summary(phases);
      json["drill_phases"] = phases_json(phases);
    }
    if (!scenario->objectives.empty()) {
      // The phases come from the run's drills; without any, the run is one phase.
      const scenario::FaultWindows& faults = result.fault_windows;
      const scenario::SloJudgment judgment = scenario::judge_objectives(
          *scenario, result.seconds, faults, result.duration_s, monitored ? &*monitored : nullptr);
      for (const scenario::ObjectiveJudgment& o : judgment.objectives) {
        if (!o.unevaluated) continue;
        fmt::print(stderr,
                   "millstone run: warning: SLO {} ({}) was not evaluated: no data from the "
                   "monitored target\n",
                   text::printable(o.objective->threshold.text), o.objective->threshold.location);
      }
      slo_ok = judgment.passed();
      const std::optional<scenario::GuardTrip> no_trip;
      const std::optional<scenario::GuardTrip>& trip = guards ? guards->trip() : no_trip;
      text += format_slo_summary(judgment, trip);
      add_slo_json(judgment, trip, &json);
    }
  }
  // A fault that did not happen (or may still be on) leaves the drill
  // incomplete, whatever the numbers say.
  std::vector<std::string> drill_failures;
  for (const drill::DrillRecord& r : drill_records) {
    if (r.status == drill::DrillRecord::Status::kFailed ||
        r.status == drill::DrillRecord::Status::kUndoFailed) {
      drill_failures.push_back(fmt::format(
          "drill {} {}: {}", text::printable(r.name),
          r.status == drill::DrillRecord::Status::kFailed ? "failed to start" : "was not undone",
          text::printable(r.status == drill::DrillRecord::Status::kFailed
                              ? r.start_result.detail
                              : (r.end_result ? r.end_result->detail : std::string()))));
    }
  }
  if (monitored) {
    json["monitor"] = monitor::to_json(*monitored);
    for (const monitor::TargetOutcome& t : monitored->targets) {
      size_t series = 0;
      for (const monitor::Series& one : monitored->series)
        series += one.target == t.target.name ? 1 : 0;
      text += fmt::format("  monitor      {} {}: {} of {} scrapes answered, {}\n",
                          text::printable(t.target.name), text::printable(t.target.url),
                          t.scrapes - t.failed, t.scrapes, count_of(series, "series", "series"));
    }
  }
  // With -o - stdout carries the JSON alone.
  fmt::print(options.out == "-" ? stderr : stdout, "{}", text);
  std::fflush(options.out == "-" ? stderr : stdout);

  int code = kExitOk;
  // A target.* threshold without data is a warning, never the verdict (docs/monitoring.md).
  for (const scenario::ThresholdOutcome& t : thresholds) {
    if (!t.unevaluated) continue;
    fmt::print(stderr,
               "millstone run: warning: threshold {} ({}) was not evaluated: no data from the "
               "monitored target\n",
               text::printable(t.threshold->text), t.threshold->location);
  }
  bool thresholds_ok = std::all_of(thresholds.begin(), thresholds.end(), scenario::threshold_ok);
  if (!result.worker_failures.empty()) {
    code = kExitIncomplete;
  } else if (!drill_failures.empty()) {
    for (const std::string& line : drill_failures)
      fmt::print(stderr, "millstone run: incomplete: {}\n", line);
    code = kExitIncomplete;
  } else if (result.interrupted) {
    code = kExitInterrupted;
  } else if (!result.stop_reason.empty()) {
    fmt::print(stderr, "millstone run: stopped early: {}\n", text::printable(result.stop_reason));
    code = kExitGuardAbort;
  } else if (measured_nothing(result.total)) {
    // A target that never answers must not look like a quiet success.
    fmt::print(stderr,
               "millstone run: no request succeeded: {} of {} connections established, no "
               "complete response\n",
               group_thousands(result.total.connections_established),
               group_thousands(result.total.connections_opened));
    code = kExitNoResponses;
  } else if (!result.losses.empty()) {
    // Thresholds judged a fleet that was missing a share: not a verdict to trust.
    fmt::print(stderr, "millstone run: completed degraded: {} lost\n",
               count_of(result.losses.size(), "agent", "agents"));
    code = kExitDegraded;
  } else if (!thresholds_ok || !slo_ok) {
    fmt::print(stderr, "millstone run: {} failed\n",
               !thresholds_ok && !slo_ok ? "thresholds and SLOs"
               : thresholds_ok           ? "SLOs"
                                         : "thresholds");
    code = kExitThresholds;
  }
  json["run_id"] = record.id;
  json["exit_code"] = code;
  json["environment"] = results::to_json(record.env);
  record.summary = std::move(json);
  record.exit_code = code;
  // Output files first: a file that cannot be written is a configuration
  // error, but the others are still written and the run is still recorded.
  if (!write_outputs(options, record)) code = code == kExitOk ? kExitConfig : code;
  record_in_history(options, record);
  if (!options.webhook.empty()) {
    if (!results::post_webhook(options.webhook, record, &error)) {
      fmt::print(stderr, "millstone run: --webhook {}: {}\n", options.webhook,
                 text::printable(error));  // may quote the receiver's answer
    }
  }
  return code;
}

// A drill's command that cannot run would fail minutes into the run: its
// program is looked for on PATH now, as posix_spawnp will. "" or the problem.
std::string missing_drill_program(const scenario::Drill& drill) {
  if (drill.kind != scenario::Drill::Kind::kExec) return {};
  for (const scenario::Command* command : {&drill.exec.command, &drill.exec.undo}) {
    if (command->empty()) continue;
    const std::string& program = command->front();
    bool found = false;
    if (program.find('/') != std::string::npos) {
      found = access(program.c_str(), X_OK) == 0;
    } else {
      const char* path = std::getenv("PATH");
      std::string_view dirs = path != nullptr ? path : "/usr/bin:/bin";
      while (!found) {
        const size_t colon = dirs.find(':');
        std::string dir(dirs.substr(0, colon));
        if (dir.empty()) dir = ".";
        found = access((dir + "/" + program).c_str(), X_OK) == 0;
        if (colon == std::string_view::npos) break;
        dirs.remove_prefix(colon + 1);
      }
    }
    if (!found) {
      return fmt::format(
          "{}: drill {} {} {} is not an executable program{}; expected a program "
          "on PATH or a path to one",
          drill.location, drill.name, command == &drill.exec.command ? "command" : "undo",
          config::shown(program), program.find('/') != std::string::npos ? "" : " on PATH");
    }
  }
  return {};
}

int run_scenario(const RunOptions& options) {
  if (options.url_only_flags) {
    return usage_error(
        "-c, -m, -H, --body and --body-file apply to a URL; a scenario file sets its requests in "
        "flows: (--vus, -d and --rate override its scenarios:, see docs/scenarios.md#overrides)");
  }
  if (options.http2 || options.h2_flags) {
    return usage_error(
        "--http2, --streams, --h2-window and --h2-header-table apply to a URL (quick mode) only, "
        "not to scenario files yet");
  }
  if (options.tls_flags() || options.no_keepalive) {
    return usage_error(
        "TLS flags (-k, --cacert, --cert, --key, --tls-min, --tls-max, --no-tls-resumption, "
        "--alpn) and --no-keepalive apply to a URL (quick mode); a scenario file sets TLS in "
        "defaults: tls: (docs/scenarios.md#tls)");
  }
  // Parameters are read here, once: workers get the values in the RunPlan.
  const scenario::Parameters parameters = scenario_parameters(options.env);
  scenario::Overrides overrides;
  overrides.vus = options.vus;
  if (options.duration_given) overrides.duration_us = options.duration_us;
  if (options.rate > 0) overrides.rate = options.rate;
  std::unique_ptr<scenario::Plan> plan;
  std::string source;
  const scenario::GrpcReflector reflector = [&options](const scenario::Plan& loading,
                                                       const std::vector<std::string>& services) {
    return reflect_for_scenario(options, loading, services);
  };
  try {
    plan = scenario::load_scenario_file(options.url, parameters, overrides, &reflector);
    std::ifstream in(options.url, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    source = content.str();
  } catch (const scenario::OverrideError& e) {
    return usage_error(e.what());
  } catch (const scenario::GrpcReflectionError& e) {
    fmt::print(stderr, "millstone run: {}\n", text::printable(e.what()));
    return e.exit_code();
  } catch (const scenario::ScenarioError& e) {
    fmt::print(stderr, "millstone run: {}\n", text::printable(e.what()));  // quotes the file
    return kExitConfig;
  }
  std::string error;
  if (!options.target.empty()) {
    auto url = http::parse_url(options.target, &error);
    if (!url) return usage_error(fmt::format("--target '{}': {}", options.target, error));
    if (url->target != "/") {
      return usage_error(fmt::format(
          "--target '{}': expected http[s]://HOST[:PORT] only; paths come from the scenario's "
          "steps",
          options.target));
    }
    plan->target = *url;
  }
  engine::RunPlan run;
  run.url = options.url;
  run.scenario_path = options.url;
  run.scenario_source = source;
  std::string dir = options.url.substr(0, options.url.find_last_of('/') + 1);
  run.scenario_base_dir = dir.empty() ? "." : dir;
  run.target_override = options.target;
  const scenario::Parameters& used = plan->variables.used_parameters();
  run.scenario_parameters.assign(used.begin(), used.end());
  run.scenario_vus = options.vus.value_or(0);
  run.scenario_duration_us =
      options.duration_given ? static_cast<uint64_t>(options.duration_us) : 0;
  run.scenario_rate = options.rate;
  run.duration_ms = static_cast<uint64_t>(plan->total_duration_us() / 1000);
  run.timeout_ms = static_cast<uint64_t>(plan->timeout_us / 1000);
  run.connect_timeout_ms =
      static_cast<uint64_t>(std::max<int64_t>(1, options.connect_timeout_us / 1000));
  // Workers are not limited by connections here: VUs are shared out per executor.
  run.connections = options.workers ? options.workers : 1024;
  uint64_t connections = peak_connections(*plan);
  if (plan->target.tls()) {
    // For the pre-flight handshake only: the workers build their contexts
    // from the scenario's own defaults: tls:, once each.
    run.tls = plan->tls;
    run.tls->alpn = {"http/1.1"};
    run.tls_server_name = plan->tls_server_name.empty() ? plan->target.host : plan->tls_server_name;
  }

  for (scenario::Drill& drill : plan->drills) {
    if (const std::string problem = missing_drill_program(drill); !problem.empty()) {
      fmt::print(stderr, "millstone run: {}\n", text::printable(problem));
      return kExitConfig;
    }
    // Tokens are read here, by the coordinator, which alone makes the calls:
    // workers and agents compile the same file without them.
    for (scenario::ApiToken* token : {&drill.mock.token, &drill.proxy.token}) {
      if (!drill::read_token(token, drill.name, &error)) {
        fmt::print(stderr, "millstone run: {}\n", text::printable(error));
        return kExitConfig;
      }
    }
  }
  // The file's own proxies listen before the pre-flight connect, which may
  // go through one of them, and close when the run (and its drills) is over.
  std::unique_ptr<proxy::ProxyThread> run_proxies;
  if (!plan->proxies.empty()) {
    std::vector<proxy::ProxyConfig> configs;
    for (const scenario::RunProxy& p : plan->proxies)
      configs.push_back({p.name, p.listen, p.upstream, true});
    proxy::Status status;
    std::string failed;
    run_proxies = proxy::ProxyThread::start(configs, plan->seed, &status, &failed);
    if (!run_proxies) {
      const auto it = std::find_if(plan->proxies.begin(), plan->proxies.end(),
                                   [&](const scenario::RunProxy& p) { return p.name == failed; });
      fmt::print(stderr, "millstone run: {}: proxy {}: {}\n",
                 it != plan->proxies.end() ? it->location : options.url, text::printable(failed),
                 text::printable(status.message));
      return status.cannot_listen ? kExitCannotListen : kExitConfig;
    }
    if (!options.quiet) {
      for (const scenario::RunProxy& p : plan->proxies) {
        fmt::print(stderr, "millstone run: proxy {} listening on {}, upstream {}\n",
                   text::printable(p.name), text::printable(p.listen), text::printable(p.upstream));
      }
    }
  }
  std::string target =
      fmt::format("{}://{}", plan->target.tls() ? "https" : "http", plan->target.host_header());
  std::FILE* text_out = options.out == "-" ? stderr : stdout;
  fmt::print(text_out, "millstone run {}: target {}, {}, {}, {}\n", options.url, target,
             count_of(plan->flows.size(), "flow", "flows"),
             count_of(plan->scenarios.size(), "scenario", "scenarios"),
             format_seconds(static_cast<double>(plan->total_duration_us()) / 1e6));
  std::fflush(text_out);
  RunDescription description{
      options.url + " -> " + target, "", 0, 0, 0, run.duration_ms, true, options.percentiles};
  description.http_steps = std::any_of(plan->flows.begin(), plan->flows.end(),
                                       [](const scenario::Flow& f) { return !f.requests.empty(); });
  return execute(options, run, plan->target, description, plan.get(), connections,
                 run_proxies.get());
}

}  // namespace

int run_command(const RunOptions& options) {
  if (!check_outputs(options)) return kExitUsage;
  if (options.agents > 0) {
    if (options.agent_listen.empty() || options.token_file.empty()) {
      return usage_error(
          "--agents needs --agent-listen ADDR:PORT (where agents dial) and --token-file FILE "
          "(the join secret: millstone token > FILE)");
    }
    if (options.workers > 0) {
      return usage_error(
          "--workers with --agents: each agent runs one worker per core; set it on the agent "
          "(millstone agent --workers N)");
    }
  } else if (!options.agent_listen.empty() || !options.token_file.empty() ||
             options.agent_loss_aborts) {
    return usage_error("--agent-listen, --token-file and --on-agent-loss need --agents N");
  }
  if (looks_like_scenario(options.url)) return run_scenario(options);
  std::string error;
  auto url = http::parse_url(options.url, &error);
  if (!url) return usage_error(fmt::format("bad URL '{}': {}", options.url, error));
  if (!options.target.empty()) return usage_error("--target applies to scenario files only");
  if (const std::optional<std::string> problem = http::method_problem(options.method)) {
    return usage_error(fmt::format("-m {} {}", config::shown(options.method), *problem));
  }
  std::vector<std::pair<std::string, std::string>> headers;
  for (const std::string& h : options.headers) {
    std::pair<std::string, std::string> header;
    if (!http::parse_header_arg(h, &header, &error)) {
      return usage_error(fmt::format("-H '{}': {}", h, error));
    }
    if (http::is_framing_header(header.first)) {
      return usage_error(fmt::format(
          "-H '{}': {} is set by millstone (from the body, and it keeps connections open); "
          "expected other headers",
          h, header.first));
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
    if (body.size() > 8 * 1024 * 1024) {
      return usage_error(
          fmt::format("--body-file {}: {} bytes; at most 8 MiB", options.body_file, body.size()));
    }
  }

  engine::RunPlan plan;
  plan.url = options.url;
  plan.request_bytes = http::build_request(options.method, *url, headers, body);
  plan.head_request = options.method == "HEAD";
  plan.connections = options.connections;
  plan.rate = options.rate;
  plan.duration_ms = static_cast<uint64_t>(std::max<int64_t>(1, options.duration_us / 1000));
  plan.timeout_ms = static_cast<uint64_t>(std::max<int64_t>(1, options.timeout_us / 1000));
  plan.connect_timeout_ms =
      static_cast<uint64_t>(std::max<int64_t>(1, options.connect_timeout_us / 1000));
  plan.keepalive = !options.no_keepalive;
  if (options.h2_flags && !options.http2) {
    return usage_error("--streams, --h2-window and --h2-header-table need --http2");
  }
  if (options.http2) {
    if (options.no_keepalive) {
      return usage_error(
          "--no-keepalive with --http2: a connection per request is not supported for HTTP/2; "
          "use -c to set the connections");
    }
    if (options.alpn) {
      return usage_error("--alpn with --http2: --http2 offers h2 alone; leave --alpn out");
    }
    plan.http2 = true;
    plan.streams = options.streams;
    plan.h2_window = options.h2_window;
    plan.h2_header_table = options.h2_header_table;
    plan.request.method = options.method;
    plan.request.scheme = url->tls() ? "https" : "http";
    plan.request.authority = url->host_header();
    plan.request.path = url->target;
    plan.request.headers = headers;
    plan.request.body = body;
  }
  if (const int code = prepare_tls(options, *url, &plan); code != 0) return code;
  RunDescription description{options.url,      options.method, options.connections, options.rate, 0,
                             plan.duration_ms, false,          options.percentiles};
  if (plan.http2) description.streams = plan.streams;
  return execute(options, plan, *url, description, nullptr, plan.connections);
}

bool check_run_outputs(const RunOptions& options) {
  return check_outputs(options);
}

int prepare_run_tls(const RunOptions& options, const http::Url& url, engine::RunPlan* plan) {
  return prepare_tls(options, url, plan);
}

int execute_run(const RunOptions& options, engine::RunPlan plan, const http::Url& url,
                RunDescription description) {
  const uint64_t connections = plan.connections;
  return execute(options, std::move(plan), url, std::move(description), nullptr, connections);
}

int validate_command(const std::string& path,
                     const std::vector<std::pair<std::string, std::string>>& env) {
  try {
    auto plan = scenario::load_scenario_file(path, scenario_parameters(env));
    fmt::print("{}: ok\n  target  {}://{}\n", path, plan->target.tls() ? "https" : "http",
               plan->target.host_header());
    if (plan->uses_tls()) {
      const tls::TlsClientOptions& t = plan->tls;
      const auto version = [](tls::TlsVersion v) {
        return v == tls::TlsVersion::k1_3 ? "1.3" : "1.2";
      };
      fmt::print("  tls     {}, TLS {}-{}, resumption {}{}{}\n",
                 t.insecure          ? "no verification (insecure)"
                 : t.ca_file.empty() ? "verified against the system's trust store"
                                     : "verified against " + text::printable(t.ca_file),
                 version(t.min_version), version(t.max_version), t.resume_sessions ? "on" : "off",
                 t.cert_file.empty() ? "" : ", client certificate " + text::printable(t.cert_file),
                 plan->tls_server_name.empty() ? "" : ", server name " + plan->tls_server_name);
    }
    for (const scenario::Flow& flow : plan->flows) {
      fmt::print("  flow    {} (weight {}): {}, {}, {}\n", flow.name, plain_number(flow.weight),
                 count_of(flow.requests.size(), "request", "requests"),
                 count_of(flow.socket_steps.size(), "socket step", "socket steps"),
                 count_of(flow.think_times.size(), "think time", "think times"));
    }
    if (plan->amqp.enabled) {
      size_t steps = 0;
      for (const scenario::Flow& flow : plan->flows)
        steps += flow.amqp_steps.size();
      std::string consumed;
      for (const auto& c : plan->amqp.consumed)
        consumed += (consumed.empty() ? "" : ", ") + text::printable(c.queue);
      fmt::print("  amqp    {}: {}, declares {} and {}, consumes {}\n",
                 text::printable(plan->amqp.url_display),
                 count_of(steps, "amqp step", "amqp steps"),
                 count_of(plan->amqp.exchanges.size(), "exchange", "exchanges"),
                 count_of(plan->amqp.queues.size(), "queue", "queues"),
                 consumed.empty() ? "nothing" : consumed);
    }
    for (const scenario::ScenarioRun& run : plan->scenarios) {
      fmt::print("  run     {}: from {:.1f}s to {:.1f}s\n", run.name,
                 static_cast<double>(run.start_us) / 1e6, static_cast<double>(run.end_us()) / 1e6);
    }
    for (const scenario::RunProxy& p : plan->proxies) {
      fmt::print("  proxy   {}: {} -> {}\n", text::printable(p.name), text::printable(p.listen),
                 text::printable(p.upstream));
    }
    for (const scenario::Drill& d : plan->drills) {
      fmt::print("  drill   {}: {} at {:.1f}s{}\n", text::printable(d.name),
                 scenario::drill_kind_name(d.kind), static_cast<double>(d.start_us) / 1e6,
                 d.has_duration()
                     ? fmt::format(" for {:.1f}s", static_cast<double>(d.duration_us) / 1e6)
                     : std::string());
    }
    fmt::print("  steps   {}; checks {}; thresholds {}; data sources {}\n", plan->step_names.size(),
               plan->check_names.size(), plan->thresholds.size(), plan->data.size());
    if (!plan->objectives.empty()) {
      const size_t guards = std::count_if(plan->objectives.begin(), plan->objectives.end(),
                                          [](const scenario::Objective& o) { return o.guard; });
      fmt::print("  slo     {}, {}\n", count_of(plan->objectives.size(), "objective", "objectives"),
                 count_of(guards, "abort guard", "abort guards"));
    }
    return kExitOk;
  } catch (const scenario::ScenarioError& e) {
    fmt::print(stderr, "millstone validate: {}\n", e.what());
    return kExitConfig;
  }
}

}  // namespace millstone::cli
