#include "cli/socket_summary.h"

#include <fmt/format.h>

#include "cli/summary.h"

namespace millstone::cli {

namespace {

std::string latency_line(const metrics::Histogram& h) {
  if (h.count() == 0) return "-";
  return fmt::format("p50 {}  p99 {}  max {}  ({} samples)", format_latency(h.value_at(0.5)),
                     format_latency(h.value_at(0.99)), format_latency(h.max()),
                     group_thousands(h.count()));
}

nlohmann::json histogram_json(const metrics::Histogram& h) {
  auto ms = [](uint64_t us) { return static_cast<double>(us) / 1e3; };
  return {{"count", h.count()},          {"min", ms(h.min())},
          {"p50", ms(h.value_at(0.5))},  {"p90", ms(h.value_at(0.9))},
          {"p99", ms(h.value_at(0.99))}, {"p999", ms(h.value_at(0.999))},
          {"max", ms(h.max())},          {"mean", h.mean() / 1e3}};
}

}  // namespace

std::string format_socket_summary(const scenario::Plan& plan, const metrics::Snapshot& total) {
  if (!plan.has_socket_steps()) return "";
  const metrics::SocketStats empty;
  const metrics::SocketStats& s = total.sockets ? *total.sockets : empty;
  std::string out = "\n  sockets\n";
  out += fmt::format("    connected       {}\n", group_thousands(s.connected));
  out += fmt::format("    messages        {} in ({} bytes), {} out ({} bytes)\n",
                     group_thousands(s.messages_in), group_thousands(s.bytes_in),
                     group_thousands(s.messages_out), group_thousands(s.bytes_out));
  if (s.unmatched || s.unsolicited) {
    out += fmt::format(
        "                    {} did not match an expect, {} arrived with no step "
        "waiting\n",
        group_thousands(s.unmatched), group_thousands(s.unsolicited));
  }
  out += fmt::format("    connect         {}\n", latency_line(s.connect_time));
  if (s.handshake_time.count()) {
    out += fmt::format("    handshake       {}\n", latency_line(s.handshake_time));
  }
  out += fmt::format("    first message   {}\n", latency_line(s.first_message));
  if (s.delivery.count()) {
    out += fmt::format("    delivery        {}\n", latency_line(s.delivery));
  }
  if (s.delivery_invalid) {
    out += fmt::format(
        "    invalid stamps  {} messages whose latency_from stamp gave no latency (not a "
        "positive number, in the future, or over 19 hours old): not recorded\n",
        group_thousands(s.delivery_invalid));
  }
  std::string causes;
  for (size_t i = 0; i < metrics::kDisconnectCauseCount; ++i) {
    if (s.disconnects[i] == 0) continue;
    causes += fmt::format("{}{} {}", causes.empty() ? "" : ", ",
                          metrics::disconnect_cause_name(static_cast<metrics::DisconnectCause>(i)),
                          group_thousands(s.disconnects[i]));
  }
  out += fmt::format("    disconnects     {}\n", causes.empty() ? "none" : causes);
  if (!s.close_codes.empty()) {
    std::string codes;
    for (const auto& [code, count] : s.close_codes) {
      codes += fmt::format("{}{}: {}", codes.empty() ? "" : ", ", code, group_thousands(count));
    }
    out += fmt::format("    server closes   {}\n", codes);
  }
  return out;
}

void add_socket_json(const scenario::Plan& plan, const metrics::Snapshot& total,
                     nlohmann::json* summary) {
  if (!plan.has_socket_steps()) return;
  const metrics::SocketStats empty;
  const metrics::SocketStats& s = total.sockets ? *total.sockets : empty;
  nlohmann::json disconnects = nlohmann::json::object();
  for (size_t i = 0; i < metrics::kDisconnectCauseCount; ++i) {
    disconnects[metrics::disconnect_cause_name(static_cast<metrics::DisconnectCause>(i))] =
        s.disconnects[i];
  }
  nlohmann::json codes = nlohmann::json::object();
  for (const auto& [code, count] : s.close_codes)
    codes[std::to_string(code)] = count;
  (*summary)["sockets"] = {{"connected", s.connected},
                           {"messages_in", s.messages_in},
                           {"messages_out", s.messages_out},
                           {"bytes_in", s.bytes_in},
                           {"bytes_out", s.bytes_out},
                           {"unmatched", s.unmatched},
                           {"unsolicited", s.unsolicited},
                           {"disconnects", disconnects},
                           {"close_codes", codes},
                           {"connect_ms", histogram_json(s.connect_time)},
                           {"handshake_ms", histogram_json(s.handshake_time)},
                           {"first_message_ms", histogram_json(s.first_message)},
                           {"delivery_ms", histogram_json(s.delivery)},
                           {"delivery_invalid", s.delivery_invalid}};
}

}  // namespace millstone::cli
