#include "cli/summary.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "grpc/status.h"
#include "http2/session.h"
#include "metrics/snapshot.h"
#include "text/printable.h"

namespace millstone::cli {

using metrics::ErrorCause;

namespace {

// "no_error 3, cancel 2": HTTP/2 frames by error code.
std::string format_h2_codes(const std::map<uint32_t, uint64_t>& codes) {
  if (codes.empty()) return "none";
  std::string out;
  for (const auto& [code, count] : codes) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", http2::error_code_name(code), count);
  }
  return out;
}

// "OK 980, UNAVAILABLE 20": gRPC calls by status, OK first (codes ascend).
std::string format_grpc_codes(const std::map<uint32_t, uint64_t>& codes) {
  if (codes.empty()) return "no call ended with a grpc-status";
  std::string out;
  for (const auto& [code, count] : codes) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", grpc::status_name(code),
                       group_thousands(count));
  }
  return out;
}

nlohmann::json h2_codes_json(const std::map<uint32_t, uint64_t>& codes) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [code, count] : codes)
    j[http2::error_code_name(code)] = count;
  return j;
}

}  // namespace

std::string group_thousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string plain_number(double value) {
  if (!std::isfinite(value)) return fmt::format("{}", value);
  std::string text = fmt::format("{:.4f}", value);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text;
}

std::string count_of(uint64_t n, std::string_view singular, std::string_view plural) {
  return fmt::format("{} {}", group_thousands(n), n == 1 ? singular : plural);
}

std::string format_seconds(double seconds) {
  return plain_number(std::round(seconds * 10) / 10) + "s";
}

std::string format_latency(uint64_t us) {
  if (us < 10'000) return fmt::format("{:.2f}ms", us / 1e3);
  if (us < 1'000'000) return fmt::format("{:.1f}ms", us / 1e3);
  return fmt::format("{:.2f}s", us / 1e6);
}

namespace {

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

double rate_of(uint64_t n, double seconds) {
  return seconds > 0 ? n / seconds : 0;
}

}  // namespace

nlohmann::json percentile_curve_json(const metrics::Histogram& h) {
  nlohmann::json curve = nlohmann::json::array();
  if (!h.count()) return curve;
  std::vector<double> percentiles = {0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100};
  // Ten points per decade of 1 / (1 - q), up to 99.99%.
  for (int k = 1; k < 40; ++k)
    percentiles.push_back(100.0 * (1.0 - std::pow(10.0, -k / 10.0)));
  // Rounded to 4 decimals so that 99.9 is 99.9 and duplicates collapse.
  for (double& p : percentiles)
    p = std::round(p * 1e4) / 1e4;
  std::sort(percentiles.begin(), percentiles.end());
  percentiles.erase(std::unique(percentiles.begin(), percentiles.end()), percentiles.end());
  for (double p : percentiles)
    curve.push_back({p, ms(h.value_at(p / 100.0))});
  return curve;
}

uint64_t peak_vus(const cluster::RunResult& result) {
  uint64_t peak = 0;
  for (const auto& [index, second] : result.seconds)
    peak = std::max({peak, second.peak_vus, second.vus});
  return peak;
}

bool measured_nothing(const metrics::Snapshot& total) {
  if (total.requests) return false;
  return std::none_of(total.steps.begin(), total.steps.end(),
                      [](const metrics::StepStats& s) { return s.requests > 0; });
}

std::string format_summary(const RunDescription& run, const cluster::RunResult& result) {
  const metrics::Snapshot& t = result.total;
  const metrics::Histogram& h = t.latency;
  std::string out;
  if (run.scenario) {
    out += fmt::format("\n{}  (scenario, up to {}, {}, {:.1f}s{})\n\n", text::printable(run.url),
                       count_of(peak_vus(result), "VU", "VUs"),
                       count_of(result.workers, "worker", "workers"), result.duration_s,
                       result.interrupted            ? ", interrupted"
                       : !result.stop_reason.empty() ? ", stopped early"
                                                     : "");
  } else {
    std::string model = run.rate > 0 ? fmt::format("open model, {} req/s", plain_number(run.rate))
                                     : std::string("closed model");
    out += fmt::format("\n{} {}  ({}, {}, {}, {:.1f}s{})\n\n", text::printable(run.method),
                       text::printable(run.url), model,
                       count_of(run.connections, "connection", "connections"),
                       count_of(result.workers, "worker", "workers"), result.duration_s,
                       result.interrupted ? ", interrupted" : "");
  }
  if (!run.http_steps) {
    // Socket steps only: no HTTP request to count; the steps are the results.
    uint64_t succeeded = 0;
    uint64_t failed = 0;
    for (const metrics::StepStats& s : t.steps) {
      succeeded += s.requests;
      failed += s.failed;
    }
    out += fmt::format("  {:<13}{} succeeded, {} failed (socket steps: see below)\n", "steps",
                       group_thousands(succeeded), group_thousands(failed));
  } else {
    out += fmt::format("  {:<13}{}  ({:.1f} req/s)\n", "requests", group_thousands(t.requests),
                       rate_of(t.requests, result.duration_s));
  }
  if (!run.http_steps) {
    // No latency or status line: the socket section below has both.
  } else if (h.count()) {
    std::string line = fmt::format("min {}", format_latency(h.min()));
    for (double p : run.percentiles) {
      line += fmt::format("  p{} {}", plain_number(p), format_latency(h.value_at(p / 100.0)));
    }
    line += fmt::format("  max {}  mean {}", format_latency(h.max()),
                        format_latency(static_cast<uint64_t>(h.mean())));
    out += fmt::format("  {:<13}{}\n", "latency", line);
  } else {
    out += fmt::format("  {:<13}no complete responses\n", "latency");
  }
  std::string statuses;
  for (const auto& [code, count] : t.status_counts) {
    statuses += fmt::format("{}{}: {}", statuses.empty() ? "" : "  ", code, group_thousands(count));
  }
  if (run.http_steps) {
    out += fmt::format("  {:<13}{}\n", "status", statuses.empty() ? "none" : statuses);
  }
  // One definition everywhere (docs/summary-json.md, "Errors"): the rate of
  // failed attempts, split into HTTP failures and transport errors.
  metrics::Failures f = t.failures();
  if (f.attempts == 0) {
    out += fmt::format("  {:<13}none: no request completed or failed\n", "errors");
  } else {
    const uint64_t counted = f.http_failures + f.grpc_failures + f.transport_errors;
    const uint64_t other = f.failed > counted ? f.failed - counted : 0;
    // Quick-mode gRPC leads with gRPC failures; a scenario's grpc steps add them.
    const std::string http_text =
        count_of(f.http_failures, "HTTP failure", "HTTP failures") + " (status >= 400)";
    const std::string grpc_text =
        count_of(f.grpc_failures, "gRPC failure", "gRPC failures") + " (status not OK)";
    std::string failures;
    if (!run.grpc_call.empty()) {
      failures = grpc_text;
      if (f.http_failures > 0) {
        failures += ", " + count_of(f.http_failures, "HTTP failure", "HTTP failures");
      }
    } else {
      failures = http_text;
      if (!t.grpc_status.empty()) failures += ", " + grpc_text;
    }
    out += fmt::format(
        "  {:<13}{:.2f}% of {} failed: {}, {}{}\n", "errors", 100 * f.rate(),
        count_of(f.attempts, "attempt", "attempts"), failures,
        count_of(f.transport_errors, "transport error", "transport errors"),
        other > 0 ? ", " + count_of(other, "failed socket step", "failed socket steps") : "");
  }
  std::string errors;
  for (size_t i = 0; i < static_cast<size_t>(ErrorCause::kCount); ++i) {
    if (!t.error_counts[i]) continue;
    errors += fmt::format("{}{}: {}", errors.empty() ? "" : "  ",
                          metrics::error_cause_name(static_cast<ErrorCause>(i)),
                          group_thousands(t.error_counts[i]));
  }
  if (!errors.empty()) out += fmt::format("  {:<13}transport errors by cause: {}\n", "", errors);
  // Machine limits, not the target: say which one and how to raise it.
  if (t.error_counts[static_cast<size_t>(ErrorCause::kLocalPorts)] > 0) {
    out += fmt::format(
        "  {:<13}{}\n", "",
        "local_ports_exhausted: no free local port towards the target; spread connections over "
        "more --source-address values or widen net.ipv4.ip_local_port_range (docs/scale.md)");
  }
  if (t.error_counts[static_cast<size_t>(ErrorCause::kFdLimit)] > 0) {
    out += fmt::format(
        "  {:<13}{}\n", "",
        "fd_limit: a worker ran out of file descriptors; raise the hard limit (ulimit -Hn) or "
        "use more --workers (docs/scale.md)");
  }
  out += fmt::format("  {:<13}sent {} ({}/s)  received {} ({}/s)\n", "bytes",
                     format_bytes(static_cast<double>(t.bytes_sent)),
                     format_bytes(rate_of(t.bytes_sent, result.duration_s)),
                     format_bytes(static_cast<double>(t.bytes_received)),
                     format_bytes(rate_of(t.bytes_received, result.duration_s)));
  out += fmt::format("  {:<13}{} established of {} attempted\n", "connections",
                     group_thousands(t.connections_established),
                     group_thousands(t.connections_opened));
  if (t.tls_handshakes > 0) {
    const metrics::Histogram& hs = t.tls_handshake;
    out += fmt::format(
        "  {:<13}{} handshakes, {} resumed ({:.1f}%), handshake p50 {}  p99 {}  max {}\n", "tls",
        group_thousands(t.tls_handshakes), group_thousands(t.tls_resumed),
        100.0 * static_cast<double>(t.tls_resumed) / static_cast<double>(t.tls_handshakes),
        format_latency(hs.value_at(0.5)), format_latency(hs.value_at(0.99)),
        format_latency(hs.max()));
  }
  if (!run.grpc_call.empty()) {
    out += fmt::format("  {:<13}{} calls by status: {}; {} received\n", "grpc",
                       text::printable(run.grpc_call), format_grpc_codes(t.grpc_status),
                       count_of(t.grpc_messages, "message", "messages"));
  } else if (!t.grpc_status.empty()) {
    // A scenario's grpc steps, all methods together (per step in the step table).
    out += fmt::format("  {:<13}calls by status: {}; {} received\n", "grpc",
                       format_grpc_codes(t.grpc_status),
                       count_of(t.grpc_messages, "message", "messages"));
  }
  if (run.streams > 0 || !t.h2_goaway.empty() || !t.h2_rst_stream.empty()) {
    out += fmt::format("  {:<13}{} per connection; GOAWAY received: {}; RST_STREAM received: {}\n",
                       "http/2", count_of(run.streams, "stream", "streams"),
                       format_h2_codes(t.h2_goaway), format_h2_codes(t.h2_rst_stream));
  }
  if (!run.scenario && t.connections_opened < run.connections) {
    out += fmt::format(
        "  {:<13}only {} of the {} connections asked for were attempted before the run "
        "ended\n",
        "", group_thousands(t.connections_opened), group_thousands(run.connections));
  }
  if (t.in_flight) {
    out += fmt::format(
        "  {:<13}{} requests were still waiting for a response when the run ended (neither "
        "results nor errors)\n",
        "in flight", group_thousands(t.in_flight));
  }
  if (run.rate > 0) {
    double late_pct = t.scheduled ? 100.0 * t.started_late / t.scheduled : 0;
    out += fmt::format(
        "  {:<13}{} due, {} started late ({:.2f}%), {} not started; generator lag max {}\n",
        "schedule", group_thousands(t.scheduled), group_thousands(t.started_late), late_pct,
        group_thousands(t.not_started), format_latency(t.max_schedule_lag_us));
    if (t.started_late || t.not_started) {
      out +=
          "               (late or missing requests mean the target, or too few connections,"
          " could not keep up;\n                latency above is measured from when each was "
          "due)\n";
    }
  }
  if (measured_nothing(t) && !result.interrupted) {
    out += fmt::format(
        "\n  NO RESULTS: {} in {:.1f}s ({} of {} connections established); nothing was "
        "measured.\n",
        run.http_steps ? "not one request got a complete response"
                       : "not one socket step succeeded",
        result.duration_s, group_thousands(t.connections_established),
        group_thousands(t.connections_opened));
  }
  for (const std::string& failure : result.worker_failures) {
    out += fmt::format("\n  WARNING: {}\n", text::printable(failure));
  }
  if (!result.worker_failures.empty()) {
    out += "  The results above are incomplete.\n";
  }
  for (const cluster::AgentLoss& loss : result.losses) {
    out += fmt::format(
        "\n  AGENT LOST: {}{} at second {}: {}; {}% of the load is missing from then on\n",
        text::printable(loss.agent),
        loss.host.empty() ? std::string() : " (" + text::printable(loss.host) + ")", loss.at_second,
        text::printable(loss.cause), plain_number(std::round(loss.missing_share * 1000) / 10));
  }
  if (!result.losses.empty() && result.worker_failures.empty()) {
    out += "  The run completed degraded: the seconds from each loss on lack that agent's share.\n";
  }
  return out;
}

nlohmann::json second_json(const RunDescription& run, uint64_t index, const metrics::Snapshot& s,
                           double length) {
  nlohmann::json causes = nlohmann::json::object();
  for (size_t i = 0; i < metrics::kErrorCauseCount; ++i) {
    if (s.error_counts[i])
      causes[metrics::error_cause_name(static_cast<ErrorCause>(i))] = s.error_counts[i];
  }
  uint64_t checks_passed = 0;
  uint64_t checks_failed = 0;
  for (const metrics::CheckStats& c : s.checks) {
    checks_passed += c.passed;
    checks_failed += c.failed;
  }
  const metrics::Histogram& l = s.latency;
  nlohmann::json entry = {{"second", index},
                          {"requests", s.requests},
                          {"rps", static_cast<double>(s.requests) / length},
                          {"errors", s.errors},
                          {"http_failures", s.http_failures()},
                          {"error_causes", causes},
                          {"p50_ms", ms(l.value_at(0.5))},
                          {"p90_ms", ms(l.value_at(0.9))},
                          {"p95_ms", ms(l.value_at(0.95))},
                          {"p99_ms", ms(l.value_at(0.99))},
                          {"max_ms", ms(l.max())},
                          {"bytes_sent", s.bytes_sent},
                          {"bytes_received", s.bytes_received},
                          {"connections_opened", s.connections_opened},
                          {"connections_established", s.connections_established},
                          {"vus", s.vus},
                          {"peak_vus", s.peak_vus},
                          {"dropped_iterations", s.dropped_iterations},
                          {"checks_passed", checks_passed},
                          {"checks_failed", checks_failed}};
  // The generator's own load in this second: its busiest worker's
  // (docs/monitoring.md#the-generator).
  if (s.generator.wall_us > 0) {
    entry["generator_cpu_percent"] = static_cast<double>(s.generator.max_cpu_permille) / 10;
    entry["generator_loop_busy_percent"] = static_cast<double>(s.generator.max_busy_permille) / 10;
    entry["generator_loop_lag_ms"] = ms(s.generator.max_loop_lag_us);
  }
  if (run.scenario) {
    nlohmann::json steps = nlohmann::json::array();
    for (const metrics::StepStats& step : s.steps) {
      steps.push_back({{"requests", step.requests},
                       {"failed", step.failed},
                       {"p50_ms", ms(step.latency.value_at(0.5))},
                       {"p99_ms", ms(step.latency.value_at(0.99))}});
    }
    entry["steps"] = steps;
  }
  return entry;
}

nlohmann::json summary_json(const RunDescription& run, const cluster::RunResult& result) {
  const metrics::Snapshot& t = result.total;
  const metrics::Histogram& h = t.latency;
  nlohmann::json j;
  j["schema_version"] = 1;
  j["millstone_version"] = MILLSTONE_VERSION;
  j["url"] = run.url;
  if (run.scenario) {
    j["model"] = "scenario";
    j["peak_vus"] = peak_vus(result);
  } else {
    j["method"] = run.method;
    j["model"] = run.rate > 0 ? "open" : "closed";
    j["connections"] = run.connections;
  }
  if (run.rate > 0) j["rate"] = run.rate;
  j["workers"] = result.workers;
  j["planned_duration_s"] = static_cast<double>(run.duration_ms) / 1e3;
  j["duration_s"] = result.duration_s;
  j["interrupted"] = result.interrupted;
  j["complete"] = result.worker_failures.empty();
  j["worker_failures"] = result.worker_failures;
  if (!result.losses.empty()) {
    nlohmann::json losses = nlohmann::json::array();
    for (const cluster::AgentLoss& loss : result.losses) {
      losses.push_back({{"agent", loss.agent},
                        {"host", loss.host},
                        {"at_second", loss.at_second},
                        {"missing_share", loss.missing_share},
                        {"cause", loss.cause}});
    }
    j["agent_losses"] = losses;
  }
  j["requests"] = t.requests;
  j["rps"] = rate_of(t.requests, result.duration_s);
  nlohmann::json errors = nlohmann::json::object();
  for (size_t i = 0; i < static_cast<size_t>(ErrorCause::kCount); ++i) {
    if (t.error_counts[i]) {
      errors[metrics::error_cause_name(static_cast<ErrorCause>(i))] = t.error_counts[i];
    }
  }
  j["errors"] = errors;
  j["error_total"] = t.errors;
  metrics::Failures failures = t.failures();
  j["transport_errors"] = failures.transport_errors;
  j["http_failures"] = failures.http_failures;
  j["failed"] = failures.failed;
  j["attempts"] = failures.attempts;
  j["error_rate"] = failures.rate();
  nlohmann::json status = nlohmann::json::object();
  for (const auto& [code, count] : t.status_counts)
    status[std::to_string(code)] = count;
  j["status"] = status;
  j["latency_ms"] = {
      {"min", ms(h.min())},          {"p50", ms(h.value_at(0.5))},  {"p90", ms(h.value_at(0.9))},
      {"p95", ms(h.value_at(0.95))}, {"p99", ms(h.value_at(0.99))}, {"p999", ms(h.value_at(0.999))},
      {"max", ms(h.max())},          {"mean", h.mean() / 1e3},      {"count", h.count()},
  };
  nlohmann::json chosen = nlohmann::json::object();
  for (double p : run.percentiles)
    chosen[plain_number(p)] = ms(h.value_at(p / 100.0));
  j["percentiles_ms"] = chosen;
  j["bytes_sent"] = t.bytes_sent;
  j["bytes_received"] = t.bytes_received;
  j["connections_opened"] = t.connections_opened;
  j["connections_attempted"] = t.connections_opened;
  j["connections_established"] = t.connections_established;
  j["in_flight"] = t.in_flight;
  if (t.tls_handshakes > 0) {
    const metrics::Histogram& hs = t.tls_handshake;
    j["tls"] = {{"handshakes", t.tls_handshakes},
                {"resumed", t.tls_resumed},
                {"handshake_ms",
                 {{"p50", ms(hs.value_at(0.5))},
                  {"p90", ms(hs.value_at(0.9))},
                  {"p99", ms(hs.value_at(0.99))},
                  {"max", ms(hs.max())}}}};
  }
  if (!run.grpc_call.empty() || !t.grpc_status.empty()) {
    nlohmann::json codes = nlohmann::json::object();
    uint64_t calls = 0;
    for (const auto& [code, count] : t.grpc_status) {
      codes[grpc::status_name(code)] = count;
      calls += count;
    }
    j["grpc"] = {{"calls", calls},
                 {"ok", calls - t.grpc_failures()},
                 {"failed", t.grpc_failures()},
                 {"messages", t.grpc_messages},
                 {"status", codes}};
    if (!run.grpc_call.empty()) j["grpc"]["call"] = run.grpc_call;  // a scenario has many
  }
  if (run.streams > 0) {
    j["http2"] = {{"streams", run.streams},
                  {"goaway", h2_codes_json(t.h2_goaway)},
                  {"rst_stream", h2_codes_json(t.h2_rst_stream)}};
  }
  j["measured_nothing"] = measured_nothing(t);
  if (run.rate > 0) {
    j["schedule"] = {{"scheduled", t.scheduled},
                     {"started_late", t.started_late},
                     {"not_started", t.not_started},
                     {"max_generator_lag_ms", ms(t.max_schedule_lag_us)}};
  }
  nlohmann::json timeline = nlohmann::json::array();
  for (const auto& [index, s] : result.seconds) {
    // The last second is usually cut short by the end of the run; a sliver
    // under 0.1 s (workers and coordinator clocks differ a little) counts whole
    // rather than inflating the rate.
    double length = result.duration_s - static_cast<double>(index);
    if (length >= 1 || length < 0.1) length = 1;
    nlohmann::json entry = second_json(run, index, s, length);
    if (const double missing = cluster::missing_share(result, index); missing > 0) {
      entry["missing_share"] = missing;
    }
    timeline.push_back(std::move(entry));
  }
  j["timeline"] = timeline;
  j["latency_percentiles"] = percentile_curve_json(h);
  return j;
}

}  // namespace millstone::cli
