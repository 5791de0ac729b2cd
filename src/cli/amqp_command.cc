// `millstone amqp URL`: the AMQP 0-9-1 throughput and latency test
// (docs/amqp.md), in the spirit of RabbitMQ's PerfTest. Flags are checked
// here, the run is amqp::run_perf on this process's event loop, and the
// summary is printed as text and, with -o, as JSON.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "amqp/perf.h"
#include "amqp/url.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/summary.h"
#include "net/socket.h"
#include "text/printable.h"
#include "tls/client_context.h"

namespace millstone::cli {

namespace {

// Ctrl-C and SIGTERM end publishing; the run drains, closes and reports.
std::atomic<bool> g_interrupted{false};

void on_interrupt(int) {
  g_interrupted.store(true, std::memory_order_relaxed);
}

double rate_of(uint64_t n, int64_t ns) {
  return ns > 0 ? static_cast<double>(n) * 1e9 / static_cast<double>(ns) : 0;
}

std::string latency_line(const char* label, const metrics::Histogram& h,
                         const std::vector<double>& percentiles) {
  if (h.count() == 0) return fmt::format("  {:<17} none recorded\n", label);
  std::string line = fmt::format("  {:<17}", label);
  for (double p : percentiles) {
    line += fmt::format(" p{} {}", plain_number(p), format_latency(h.value_at(p / 100.0)));
  }
  line +=
      fmt::format("  max {}  ({} samples)\n", format_latency(h.max()), group_thousands(h.count()));
  return line;
}

nlohmann::json latency_json(const metrics::Histogram& h, const std::vector<double>& percentiles) {
  nlohmann::json chosen = nlohmann::json::object();
  for (double p : percentiles)
    chosen[plain_number(p)] = ms(h.value_at(p / 100.0));
  return {{"count", h.count()},         {"min", ms(h.min())},          {"p50", ms(h.value_at(0.5))},
          {"p90", ms(h.value_at(0.9))}, {"p99", ms(h.value_at(0.99))}, {"max", ms(h.max())},
          {"mean", h.mean() / 1e3},     {"percentiles", chosen}};
}

std::string format_amqp_summary(const AmqpOptions& options, const std::string& target,
                                const amqp::PerfResult& r) {
  std::string out;
  out += fmt::format(
      "millstone amqp {}: {}, {}, {}, {}-byte messages, {}\n", text::printable(target),
      count_of(options.publishers, "publisher", "publishers"),
      count_of(options.consumers, "consumer", "consumers"),
      options.rate > 0 ? fmt::format("{} msg/s", plain_number(options.rate)) : "unpaced",
      options.size, format_seconds(static_cast<double>(options.duration_us) / 1e6));
  if (!r.broker_product.empty() || r.frame_max) {
    out += fmt::format("broker: {} {}, heartbeat {}s, frame_max {}\n",
                       text::printable(r.broker_product), text::printable(r.broker_version),
                       r.heartbeat_s, r.frame_max);
  }
  out += fmt::format("connections: {} ready of {} opened{}\n", r.connections_ready,
                     r.connections_opened, r.interrupted ? " (interrupted)" : "");
  out += fmt::format(
      "\n  published   {:>12} ({}/s)   confirmed {}  nacked {}  returned {}  unconfirmed {}\n",
      group_thousands(r.published), fmt::format("{:.1f}", rate_of(r.published, r.publish_ns)),
      group_thousands(r.confirmed), group_thousands(r.nacked), group_thousands(r.returned),
      group_thousands(r.unconfirmed));
  out += fmt::format("  consumed    {:>12} ({}/s)   redelivered {}  not from this run {}\n",
                     group_thousands(r.consumed),
                     fmt::format("{:.1f}", rate_of(r.consumed, r.publish_ns)),
                     group_thousands(r.redelivered), group_thousands(r.foreign));
  if (r.held_back > 0) {
    out += fmt::format(
        "  held back   {:>12} published >= 1 ms after due (confirm window, "
        "socket or broker flow control)\n",
        group_thousands(r.held_back));
  }
  if (r.blocked > 0) out += fmt::format("  blocked     {:>12} times by the broker\n", r.blocked);
  out += "\n";
  out += latency_line("confirm latency", r.confirm_latency, options.percentiles);
  out += latency_line("end-to-end", r.latency, options.percentiles);
  out += "\n";
  if (r.errors.empty()) {
    out += "errors: none\n";
  } else {
    std::string list;
    for (const auto& [name, count] : r.errors) {
      list += fmt::format("{}{} {}", list.empty() ? "" : ", ", name, group_thousands(count));
    }
    out += fmt::format("errors: {}\n", list);
  }
  for (const std::string& sample : r.error_samples)
    out += fmt::format("  {}\n", text::printable(sample));
  const uint64_t messages = r.published + r.consumed;
  out += fmt::format("cpu: {:.2f} s{}\n", r.cpu_seconds,
                     messages ? fmt::format(" ({:.1f} us per message published or consumed)",
                                            r.cpu_seconds * 1e6 / static_cast<double>(messages))
                              : "");
  return out;
}

nlohmann::json amqp_summary_json(const AmqpOptions& options, const std::string& target,
                                 const amqp::PerfResult& r) {
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [name, count] : r.errors)
    errors[name] = count;
  nlohmann::json timeline = nlohmann::json::array();
  for (const amqp::PerfSecond& s : r.timeline) {
    timeline.push_back({{"published", s.published},
                        {"confirmed", s.confirmed},
                        {"consumed", s.consumed},
                        {"errors", s.errors},
                        {"confirm_p50_ms", ms(s.confirm_p50_us)},
                        {"latency_p50_ms", ms(s.latency_p50_us)}});
  }
  return {
      {"command", "amqp"},
      {"target", target},
      {"publishers", options.publishers},
      {"consumers", options.consumers},
      {"rate", options.rate},
      {"size", options.size},
      {"duration_ms", options.duration_us / 1000},
      {"publish_s", static_cast<double>(r.publish_ns) / 1e9},
      {"elapsed_s", static_cast<double>(r.elapsed_ns) / 1e9},
      {"interrupted", r.interrupted},
      {"broker",
       {{"product", r.broker_product},
        {"version", r.broker_version},
        {"heartbeat_s", r.heartbeat_s},
        {"frame_max", r.frame_max}}},
      {"connections_opened", r.connections_opened},
      {"connections_ready", r.connections_ready},
      {"published", r.published},
      {"publish_rate", rate_of(r.published, r.publish_ns)},
      {"confirmed", r.confirmed},
      {"nacked", r.nacked},
      {"returned", r.returned},
      {"unconfirmed", r.unconfirmed},
      {"held_back", r.held_back},
      {"blocked", r.blocked},
      {"consumed", r.consumed},
      {"consume_rate", rate_of(r.consumed, r.publish_ns)},
      {"redelivered", r.redelivered},
      {"foreign", r.foreign},
      {"confirm_latency_ms", latency_json(r.confirm_latency, options.percentiles)},
      {"latency_ms", latency_json(r.latency, options.percentiles)},
      {"errors", errors},
      {"timeline", timeline},
      {"error_total", r.error_count()},
      {"error_samples", r.error_samples},
      {"bytes_sent", r.bytes_sent},
      {"bytes_received", r.bytes_received},
      {"cpu_s", r.cpu_seconds},
  };
}

}  // namespace

int amqp_command(const AmqpOptions& options) {
  std::string error;
  const auto url = amqp::parse_amqp_url(options.url, &error);
  if (!url) {
    fmt::print(stderr, "millstone amqp: bad URL '{}': {}\n", text::printable(options.url), error);
    return kExitUsage;
  }
  const bool tls_flags =
      options.insecure || !options.cacert.empty() || !options.cert.empty() || !options.key.empty();
  if (tls_flags && !url->tls) {
    fmt::print(stderr,
               "millstone amqp: -k, --cacert, --cert and --key need an amqps:// URL, not '{}'\n",
               text::printable(options.url));
    return kExitUsage;
  }
  if (options.cert.empty() != options.key.empty()) {
    fmt::print(stderr, "millstone amqp: --cert and --key go together\n");
    return kExitUsage;
  }
  std::unique_ptr<tls::TlsClientContext> tls;
  if (url->tls) {
    tls::TlsClientOptions tls_options;
    tls_options.insecure = options.insecure;
    tls_options.ca_file = options.cacert;
    tls_options.cert_file = options.cert;
    tls_options.key_file = options.key;
    try {
      tls = std::make_unique<tls::TlsClientContext>(tls_options);
    } catch (const tls::TlsSetupError& e) {
      fmt::print(stderr, "millstone amqp: {}\n", text::printable(e.what()));
      return kExitConfig;
    }
  }
  if (options.publishers == 0 && options.consumers == 0) {
    fmt::print(stderr, "millstone amqp: --publishers and --consumers are both 0: nothing to do\n");
    return kExitUsage;
  }
  if (options.size < amqp::kStampBytes) {
    fmt::print(stderr,
               "millstone amqp: --size {}: expected at least {} bytes (the due time and the "
               "run's id travel in the body)\n",
               options.size, amqp::kStampBytes);
    return kExitUsage;
  }
  const auto endpoint = net::resolve(url->host, url->port, &error);
  if (!endpoint) {
    fmt::print(stderr, "millstone amqp: cannot resolve '{}': {}\n", text::printable(url->host),
               error);
    return kExitUnreachable;
  }

  amqp::PerfOptions perf;
  perf.endpoint = *endpoint;
  perf.tls = tls.get();
  perf.tls_server_name = url->host;
  perf.session.user = url->user;
  perf.session.password = url->password;
  perf.session.vhost = url->vhost;
  perf.session.heartbeat_s = options.heartbeat_s;
  perf.session.frame_max = options.frame_max;
  perf.publishers = options.publishers;
  perf.consumers = options.consumers;
  perf.rate = options.rate;
  perf.size = options.size;
  perf.duration_ns = options.duration_us * 1000;
  perf.connect_timeout_ns = options.connect_timeout_us * 1000;
  perf.drain_ns = options.drain_us * 1000;
  perf.exchange = options.exchange;
  perf.queue = options.queue;
  perf.routing_key = options.routing_key.empty() ? options.queue : options.routing_key;
  if (perf.exchange.empty())
    perf.routing_key = options.queue;  // the default exchange routes by queue name
  perf.confirm = !options.no_confirm;
  perf.confirm_window = options.confirm_window;
  perf.prefetch = options.prefetch;
  perf.persistent = options.persistent;
  perf.stop = &g_interrupted;
  // The live line: rewritten in place on a terminal, every 5 s in a log.
  const bool terminal = isatty(STDERR_FILENO) == 1;
  bool line_open = false;
  if (!options.quiet) {
    perf.on_second = [&](uint64_t index, const amqp::PerfSecond& s) {
      if (!terminal && (index + 1) % 5 != 0) return;
      const std::string line = fmt::format(
          "[{}s] published {}/s  confirmed {}/s  consumed {}/s  confirm p50 {}  end-to-end p50 "
          "{}  errors {}",
          index + 1, group_thousands(s.published), group_thousands(s.confirmed),
          group_thousands(s.consumed), format_latency(s.confirm_p50_us),
          format_latency(s.latency_p50_us), s.errors);
      if (terminal) {
        fmt::print(stderr, "\r\x1b[K{}", line);
      } else {
        fmt::print(stderr, "{}\n", line);
      }
      line_open = terminal;
    };
  }

  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  const amqp::PerfResult result = amqp::run_perf(perf);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (line_open) fmt::print(stderr, "\r\x1b[K");

  const std::string target = url->display();
  const std::string text = format_amqp_summary(options, target, result);
  const bool json_to_stdout = options.out == "-";
  fmt::print(json_to_stdout ? stderr : stdout, "{}", text);
  if (!options.out.empty()) {
    const std::string json = amqp_summary_json(options, target, result)
                                 .dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    if (json_to_stdout) {
      fmt::print("{}\n", json);
    } else {
      std::ofstream file(options.out);
      file << json << '\n';
      if (!file) {
        fmt::print(stderr, "millstone amqp: -o {}: cannot write\n", text::printable(options.out));
        return kExitConfig;
      }
    }
  }
  if (result.interrupted) return kExitInterrupted;
  if (result.connections_ready == 0) {
    // Never open: unreachable when it never connected, else refused by the broker.
    for (const char* cause : {"connect_refused", "connect_timeout", "connect_error"}) {
      if (result.errors.count(cause)) return kExitUnreachable;
    }
    for (const auto& [cause, count] : result.errors) {
      if (cause.starts_with("tls_")) return kExitTls;
    }
    return kExitNoResponses;
  }
  if (result.confirmed + result.consumed == 0 && (result.published == 0 || perf.confirm)) {
    return kExitNoResponses;
  }
  return kExitOk;
}

}  // namespace millstone::cli
