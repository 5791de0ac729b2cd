#include "cluster/agent_dial.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "cluster/agent_tls.h"
#include "cluster/link.h"
#include "net/socket.h"
#include "tls/tls_stream.h"

namespace millstone::cluster {

namespace {

struct Attempt {
  std::unique_ptr<AgentLink> link;
  ClockSample clock;
  std::string error;
};

Attempt attempt_join(const std::string& address, const std::string& host, uint16_t port,
                     const std::string& proof_key, AgentClientTls& tls, int64_t deadline_ns) {
  Attempt a;
  std::string error;
  const std::optional<net::Endpoint> endpoint = net::resolve(host, port, &error);
  if (!endpoint) {
    a.error = error;
    return a;
  }
  const int fd = net::tcp_socket(endpoint->family());
  if (fd < 0) {
    a.error = fmt::format("cannot make a socket: {}", std::strerror(errno));
    return a;
  }
  const int started = net::start_connect(fd, *endpoint);
  int connect_error = started < 0 ? errno : 0;
  if (started == 1) {
    if (!net::wait_until(fd, POLLOUT, deadline_ns)) {
      ::close(fd);
      a.error =
          fmt::format("cannot connect to {} within the attempt's time", endpoint->to_string());
      return a;
    }
    connect_error = net::connect_result(fd);
  }
  if (connect_error != 0) {
    ::close(fd);
    a.error = fmt::format("cannot connect to {}: {}", endpoint->to_string(),
                          std::strerror(connect_error));
    return a;
  }
  net::set_no_delay(fd);
  std::unique_ptr<tls::TlsStream> stream = tls::TlsStream::client(tls.context(), tls.target(), fd);
  if (!stream) {
    a.error = "out of memory for TLS";
    return a;
  }
  for (;;) {
    const net::StreamResult r = stream->handshake();
    if (r.status == net::StreamStatus::kOk) break;
    if (r.status == net::StreamStatus::kWouldBlock) {
      if (!net::wait_until(stream->fd(), r.wait == net::Readiness::kWritable ? POLLOUT : POLLIN,
                           deadline_ns)) {
        a.error = fmt::format("{} did not complete a TLS handshake in time", address);
        return a;
      }
      continue;
    }
    const std::string words(stream->error_text());
    if (r.cause == metrics::ErrorCause::kTlsCertificateUntrusted ||
        r.cause == metrics::ErrorCause::kTlsCertificate) {
      a.error = fmt::format(
          "{} is not the coordinator this token pins: its key is another (a wrong token, or "
          "another server at that address) ({})",
          address, words);
    } else {
      a.error = fmt::format("{} does not speak TLS 1.3 here ({}: {})", address,
                            metrics::error_cause_name(r.cause), words);
    }
    return a;
  }
  const std::string exporter = stream->export_keying_material(kExporterLabel, kExporterSize);
  if (exporter.size() != kExporterSize) {
    a.error = "no keying material could be exported from the TLS session";
    return a;
  }
  auto link = std::make_unique<StreamLink>(std::move(stream), "coordinator " + address);
  JoinHandshake join(proof_key, exporter);
  std::vector<OutFrame> out;
  join.start(&out);
  for (;;) {
    for (OutFrame& frame : out)
      link->send(frame.type, frame.payload);
    out.clear();
    if (join.state() == JoinHandshake::State::kJoined) break;
    if (join.state() == JoinHandshake::State::kRefused) {
      a.error = join.reason();
      return a;
    }
    MessageType type;
    std::string payload;
    switch (receive_until(*link, deadline_ns, &type, &payload)) {
      case WaitResult::kOk:
        join.on_frame(type, payload, net::now_ns(), &out);
        continue;
      case WaitResult::kTimedOut:
        a.error = fmt::format("{} did not complete the handshake in time", address);
        return a;
      case WaitResult::kClosed:
        a.error = fmt::format("{} closed the connection during the handshake{}", address,
                              join.state() == JoinHandshake::State::kAwaitProof
                                  ? " (it did not accept our proof)"
                                  : "");
        return a;
      case WaitResult::kBroken:
        a.error = link->error();
        return a;
    }
  }
  if (flush_until(*link, deadline_ns) != WaitResult::kOk) {
    a.error = link->error().empty() ? "the last pong could not be sent in time" : link->error();
    return a;
  }
  a.clock = join.clock();
  a.link = std::make_unique<AgentLink>(std::move(link), AgentLink::Role::kAgent, a.clock);
  return a;
}

}  // namespace

int64_t dial_backoff_ns(const DialOptions& options, int attempt, double unit) {
  int64_t base = options.first_backoff_ns;
  for (int i = 1; i < attempt && base < options.max_backoff_ns; ++i)
    base *= 2;
  base = std::min(base, options.max_backoff_ns);
  const double factor = 0.8 + 0.4 * std::clamp(unit, 0.0, 1.0);
  return static_cast<int64_t>(static_cast<double>(base) * factor);
}

DialResult dial_coordinator(const std::string& address, const Token& token, int64_t deadline_ns,
                            const DialOptions& options,
                            const std::function<void(const std::string&)>& log) {
  DialResult result;
  std::string host;
  uint16_t port = 0;
  if (!net::split_host_port(address, &host, &port, &result.error)) {
    result.error = "--join " + address + ": " + result.error;
    return result;
  }
  // The link's TLS stream uses the context's BIO method: the context lives
  // with the link, in the result.
  auto tls = std::make_unique<AgentClientTls>(token);
  const std::string proof_key = token.proof_key();
  std::random_device seed;
  std::mt19937_64 jitter(seed());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (;;) {
    ++result.attempts;
    const int64_t now = net::now_ns();
    Attempt a = attempt_join(address, host, port, proof_key, *tls,
                             std::min(deadline_ns, now + options.attempt_timeout_ns));
    if (a.link) {
      result.tls = std::move(tls);
      result.link = std::move(a.link);
      result.clock = a.clock;
      result.error.clear();
      return result;
    }
    result.error = std::move(a.error);
    const int64_t pause = dial_backoff_ns(options, result.attempts, unit(jitter));
    if (net::now_ns() + pause >= deadline_ns) {
      log(fmt::format("join {}: {}; giving up", address, result.error));
      return result;
    }
    log(fmt::format("join {}: {}; retrying in {}", address, result.error, seconds_text(pause)));
    std::this_thread::sleep_for(std::chrono::nanoseconds(pause));
  }
}

}  // namespace millstone::cluster
