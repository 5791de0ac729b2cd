// WebSocket and raw TCP steps of scenario flows (docs/scenarios.md#websocket-steps).
//
// A VU's socket is a second http::ClientConnection in raw mode: the same
// connect, shared read buffer and partial-write handling as HTTP. WebSocket
// connections start as HTTP (the upgrade request goes through the response
// parser) and switch to raw mode on the 101. Every wait (connect and
// handshake, expect, hold, close) runs on the VU's own timer; nothing here
// allocates per idle connection.
#include <re2/re2.h>

#include <algorithm>
#include <ctime>

#include "net/clock.h"
#include "scenario/delivery_stamp.h"
#include "scenario/virtual_user.h"
#include "ws/handshake.h"

namespace millstone::scenario {

using metrics::DisconnectCause;
using metrics::ErrorCause;
using Wait = SocketSession::Wait;

namespace {

// A TCP message (up to a delimiter or of a prefixed length) may be at most
// this long; more is a protocol error rather than unbounded buffering.
constexpr size_t kMaxTcpMessageBytes = 1024 * 1024;
constexpr size_t kMinMessageBytes = 64 * 1024;
// ws.send/tcp.send wait (back-pressure) while the connection holds more than
// this many bytes the socket would not take yet; the queue stays bounded by
// it plus one message, whatever the server's reading speed.
constexpr size_t kMaxUnsentBytes = 256 * 1024;
// WebSocket messages kept for the next ws.expect while none waits, per VU:
// at most this many, and this many payload bytes; beyond, unsolicited.
constexpr size_t kMaxEarlyMessages = 64;
constexpr size_t kMaxEarlyBytes = 256 * 1024;

int64_t unix_us_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

// Source addresses are chosen for the HTTP target; a socket step may connect
// elsewhere. Binding a source of another family fails, and so does connecting
// from a loopback address to anything but loopback: then the kernel chooses.
bool sources_suit(const std::vector<net::Endpoint>& sources, const net::Endpoint& endpoint) {
  if (sources.empty()) return false;
  const bool loopback = net::is_loopback(endpoint);
  return std::all_of(sources.begin(), sources.end(), [&](const net::Endpoint& source) {
    return source.family() == endpoint.family() && (loopback || !net::is_loopback(source));
  });
}

// The response parser's verdicts on an answer that is not a valid HTTP response.
bool answer_unparsable(ErrorCause cause) {
  switch (cause) {
    case ErrorCause::kMalformedStatus:
    case ErrorCause::kMalformedHeader:
    case ErrorCause::kHeaderTooLarge:
    case ErrorCause::kBadChunk:
    case ErrorCause::kShortBody:  // an answer, and not a 101
    case ErrorCause::kUnexpectedData:
      return true;
    default:
      return false;
  }
}

}  // namespace

// Receives a WebSocket connection's events while its bytes are parsed.
struct WsEvents final : ws::EventSink {
  WsEvents(ScenarioWorkload& w, VirtualUser& v)
      : workload(w), vu(v), generation(v.socket->generation) {}
  bool on_event(const ws::Event& event) override {
    SocketSession& s = *vu.socket;
    switch (event.kind) {
      case ws::Event::Kind::kPing:
        workload.send_ws_frame(vu, static_cast<uint8_t>(ws::Opcode::kPong), event.payload);
        break;
      case ws::Event::Kind::kPong:
        break;
      case ws::Event::Kind::kClose:
        workload.socket_server_close(vu, event.close_code);
        return false;
      case ws::Event::Kind::kText:
      case ws::Event::Kind::kBinary:
        workload.socket_message(vu, event.payload);
        break;
    }
    // The VU may have moved on to a new connection (or closed this one).
    return s.generation == generation && s.connection.connected();
  }
  ScenarioWorkload& workload;
  VirtualUser& vu;
  uint32_t generation;
};

bool ScenarioWorkload::prepare_sockets(std::string* error) {
  if (!plan_.has_socket_steps()) return true;
  current_.sockets.emplace();
  socket_paths_.assign(plan_.flows.size(), {});
  socket_targets_.assign(plan_.flows.size(), {});
  for (size_t f = 0; f < plan_.flows.size(); ++f) {
    for (const SocketStep& step : plan_.flows[f].socket_steps) {
      RequestPaths rp;
      for (const Check& check : step.match.json) {
        rp.check_path.push_back(static_cast<int>(rp.paths.size()));
        rp.paths.push_back(check.json_path());
      }
      for (const Extraction& e : step.extractions) {
        const JsonPath* path = e.extractor.json_path();
        rp.extraction_path.push_back(path ? static_cast<int>(rp.paths.size()) : -1);
        if (path) rp.paths.push_back(path);
      }
      if (step.latency_from) rp.paths.push_back(&*step.latency_from);
      socket_paths_[f].push_back(std::move(rp));

      net::Endpoint endpoint = context_.endpoint;
      if (step.kind == SocketStep::Kind::kWsConnect || step.kind == SocketStep::Kind::kTcpConnect) {
        const uint16_t port = step.port != 0 ? step.port : share_.port;
        std::optional<net::Endpoint> resolved;
        if (step.host.empty()) {
          resolved = net::make_endpoint(share_.address, port);
        } else {
          std::string why;
          resolved = net::resolve(step.host, port, &why);
          if (!resolved) {
            *error = "cannot resolve " + step.host + " for a socket step: " + why;
            return false;
          }
        }
        if (!resolved) {
          *error = "worker got a non-numeric target address '" + share_.address + "'";
          return false;
        }
        endpoint = *resolved;
      }
      SocketTarget target{endpoint, sources_suit(context_.sources, endpoint)};
      if (step.uses_tls(plan_.target.tls())) {
        tls::TlsClientContext* context = step.websocket() ? tls_http_.get() : tls_raw_.get();
        const uint16_t port = step.port != 0 ? step.port : share_.port;
        const std::string& host = !plan_.tls_server_name.empty() ? plan_.tls_server_name
                                  : step.host.empty()            ? plan_.target.host
                                                                 : step.host;
        target.tls = context;
        target.tls_target = &context->target(host, port);
      }
      socket_targets_[f].push_back(target);
    }
  }
  return true;
}

// One TLS context per worker (not per connection): the SSL_CTX with its
// trust store, client certificate and session cache is built here, once.
bool ScenarioWorkload::prepare_tls(std::string* error) {
  if (!plan_.uses_tls()) return true;
  bool raw = false;
  for (const Flow& flow : plan_.flows) {
    for (const SocketStep& step : flow.socket_steps) {
      raw = raw || (step.uses_tls(plan_.target.tls()) && !step.websocket());
    }
  }
  try {
    tls::TlsClientOptions options = plan_.tls;
    options.alpn = {"http/1.1"};
    tls_http_ = std::make_unique<tls::TlsClientContext>(options);
    if (raw) {
      options.alpn.clear();
      tls_raw_ = std::make_unique<tls::TlsClientContext>(options);
    }
  } catch (const tls::TlsSetupError& e) {
    *error = e.what();  // the loader checked the same options: only out of memory gets here
    return false;
  }
  if (plan_.target.tls()) {
    context_.tls = tls_http_.get();
    context_.tls_target = &tls_http_->target(
        plan_.tls_server_name.empty() ? plan_.target.host : plan_.tls_server_name,
        plan_.target.port);
  }
  return true;
}

const SocketStep& ScenarioWorkload::current_socket_step(const VirtualUser& vu) const {
  const Flow& flow = plan_.flows[vu.flow];
  return flow.socket_steps[flow.program[vu.pc].arg];
}

void ScenarioWorkload::run_socket_step(VirtualUser& vu) {
  const Flow& flow = plan_.flows[vu.flow];
  const uint32_t arg = flow.program[vu.pc].arg;
  const SocketStep& step = flow.socket_steps[arg];
  if (!vu.socket) {
    vu.socket = std::make_unique<SocketSession>(loop_, *this, context_, vu.connection.index(),
                                                std::max(kMinMessageBytes, plan_.max_body_capture));
  }
  SocketSession& s = *vu.socket;
  const int64_t now = net::now_ns();
  s.step_started_ns = now;
  mark_origin(vu, now);
  const int64_t timeout_ns =
      (step.timeout_us > 0 ? step.timeout_us : plan_.timeout_us) * net::kNsPerUs;
  const bool ready = s.open && s.connection.connected();
  static const ErrorCause kClosed = ErrorCause::kClosed;

  switch (step.kind) {
    case SocketStep::Kind::kWsConnect:
    case SocketStep::Kind::kTcpConnect:
      end_socket(vu, DisconnectCause::kLocalClose);  // a new connect replaces the old one
      ++s.generation;
      s.websocket = step.websocket();
      s.first_message = false;
      s.close_sent = false;
      s.wait = Wait::kConnect;
      s.connect_started_ns = now;
      vu.timer.arm_after(timeout_ns);
      s.connection.connect(
          now, socket_targets_[vu.flow][arg].endpoint, socket_targets_[vu.flow][arg].bind_sources,
          socket_targets_[vu.flow][arg].tls, socket_targets_[vu.flow][arg].tls_target);
      return;  // on_connected or on_failure continues
    case SocketStep::Kind::kWsSend:
    case SocketStep::Kind::kTcpSend: {
      if (!ready) {
        socket_step_failed(vu, &kClosed);
        return;
      }
      const RenderContext ctx = render_context(vu);
      scratch_.clear();
      step.payload.render(ctx, &scratch_);
      const uint32_t generation = s.generation;
      bool sent;
      if (s.websocket) {
        sent = send_ws_frame(
            vu, static_cast<uint8_t>(step.binary ? ws::Opcode::kBinary : ws::Opcode::kText),
            scratch_);
      } else {
        sent = s.connection.send_raw(scratch_);
      }
      if (!sent || s.generation != generation) {
        static const ErrorCause kReset = ErrorCause::kReset;
        if (vu.in_iteration && vu.socket->wait == Wait::kNone) socket_step_failed(vu, &kReset);
        return;
      }
      ++current_.sockets->messages_out;
      current_.sockets->bytes_out += scratch_.size();
      s.last_send_ns = now;
      if (s.connection.unsent_bytes() > kMaxUnsentBytes) {
        // The server reads slower than we send: wait until the socket has
        // taken the queue (on_writable), or fail at the step's timeout.
        s.wait = Wait::kSend;
        vu.timer.arm_after(timeout_ns);
        return;
      }
      socket_step_ok(vu, net::now_ns() - now);
      return;
    }
    case SocketStep::Kind::kWsExpect:
    case SocketStep::Kind::kTcpExpect:
      // A message kept from before may still be the one, even when the
      // server has closed since.
      if (!ready && s.early.empty()) {
        socket_step_failed(vu, &kClosed);
        return;
      }
      s.wait = Wait::kExpect;
      vu.timer.arm_after(timeout_ns);
      // Messages that came while the VU was busy elsewhere (a push answering
      // the HTTP request before its response came back), oldest first, at
      // their own arrival times.
      while (!s.early.empty() && s.wait == Wait::kExpect) {
        auto [arrived, message] = std::move(s.early.front());
        s.early.erase(s.early.begin());
        s.early_bytes -= message.size();
        const uint32_t generation = s.generation;
        match_message(vu, message, arrived);
        if (s.generation != generation) break;
      }
      if (s.wait == Wait::kExpect && !ready) socket_step_failed(vu, &kClosed);
      return;  // a message, the timer or the end of the connection continues
    case SocketStep::Kind::kWsHold:
    case SocketStep::Kind::kTcpHold:
      if (!ready) {
        socket_step_failed(vu, &kClosed);
        return;
      }
      s.wait = Wait::kHold;
      vu.timer.arm_after(step.duration_us * net::kNsPerUs);
      return;
    case SocketStep::Kind::kWsClose:
      if (!ready) {
        socket_step_ok(vu, 0);  // already closed (by the server): nothing to do
        return;
      }
      // Waiting first: a failed send ends the step through socket_failure.
      s.wait = Wait::kClose;
      vu.timer.arm_after(timeout_ns);
      send_ws_close(vu, step.close_code, step.close_reason);
      return;  // the server's close frame (or end of stream) completes it
    case SocketStep::Kind::kTcpClose:
      end_socket(vu, DisconnectCause::kLocalClose);
      socket_step_ok(vu, net::now_ns() - now);
      return;
  }
}

void ScenarioWorkload::socket_connected(VirtualUser& vu) {
  SocketSession& s = *vu.socket;
  if (s.wait != Wait::kConnect || !vu.in_iteration) {
    s.connection.close();
    return;
  }
  const int64_t now = net::now_ns();
  s.connected_ns = now;
  current_.sockets->connect_time.record(static_cast<uint64_t>(now - s.connect_started_ns) / 1000);
  const SocketStep& step = current_socket_step(vu);
  if (!s.websocket) {
    s.connection.set_raw();
    s.open = true;
    ++open_sockets_;
    ++current_.sockets->connected;
    s.open_ns = now;
    s.last_send_ns = now;
    socket_step_ok(vu, now - s.connect_started_ns);
    return;
  }
  const RenderContext ctx = render_context(vu);
  std::string target = step.path.render(ctx);
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& header : plan_.default_headers) {
    const std::string& name = header.first;
    const bool overridden =
        std::any_of(step.headers.begin(), step.headers.end(), [&](const auto& h) {
          return h.first.size() == name.size() &&
                 std::equal(name.begin(), name.end(), h.first.begin(),
                            [](char a, char b) { return std::tolower(a) == std::tolower(b); });
        });
    if (!overridden) headers.emplace_back(name, header.second);
  }
  for (const auto& [name, value] : step.headers)
    headers.emplace_back(name, value.render(ctx));
  const std::string key = ws::make_client_key(prng_(), prng_());
  s.handshake = key;
  s.handshake += ws::build_client_request(step.host.empty() ? host_header_ : step.host_header,
                                          target, key, step.subprotocol, headers);
  s.connection.set_capture(true, 0);  // the 101's headers, for the accept key
  s.connection.allow_upgrade(true);
  s.connection.send(std::string_view(s.handshake).substr(key.size()), false, now, now);
}

void ScenarioWorkload::socket_response(VirtualUser& vu, int status, int64_t done_ns) {
  SocketSession& s = *vu.socket;
  if (s.wait != Wait::kConnect || !vu.in_iteration) {
    s.connection.close();
    return;
  }
  const http::ResponseParser& response = s.connection.response();
  std::string head = "HTTP/1.1 " + std::to_string(status) + " -\r\n";
  for (size_t i = 0; i < response.header_count(); ++i) {
    head += response.header_name(i);
    head += ": ";
    head += response.header_value(i);
    head += "\r\n";
  }
  head += "\r\n";
  const size_t key_size = s.handshake.find("GET ");
  const std::string key = s.handshake.substr(0, key_size);
  std::string().swap(s.handshake);
  std::string subprotocol;
  std::string why;
  // A subprotocol the client did not offer (or any, when it offered none)
  // fails the connection too (RFC 6455 4.1).
  const bool ok =
      s.connection.raw() && s.connection.connected() &&
      ws::check_server_response(head, key, current_socket_step(vu).subprotocol, &subprotocol, &why);
  current_.sockets->handshake_time.record(static_cast<uint64_t>(done_ns - s.connected_ns) / 1000);
  if (!ok) {
    // The connection was never established as a WebSocket, so it is closed
    // without a close frame (RFC 6455 7.1.7: a close frame only on an
    // established connection).
    s.connection.close();
    ++s.generation;
    static const ErrorCause kHandshake = ErrorCause::kWsHandshake;
    socket_step_failed(vu, &kHandshake);
    return;
  }
  s.open = true;
  ++open_sockets_;
  ++current_.sockets->connected;
  s.open_ns = done_ns;
  s.last_send_ns = done_ns;
  socket_step_ok(vu, done_ns - s.connect_started_ns);
}

void ScenarioWorkload::socket_failure(VirtualUser& vu, ErrorCause cause) {
  SocketSession& s = *vu.socket;
  if (s.websocket && s.wait == Wait::kConnect && answer_unparsable(cause)) {
    // Bytes that are no HTTP response where the 101 should be: the upgrade
    // failed, and is counted as such rather than as an HTTP error.
    cause = ErrorCause::kWsHandshake;
  }
  ++s.generation;
  std::string().swap(s.handshake);
  const Wait wait = s.wait;
  if (s.open) {
    s.open = false;
    --open_sockets_;
    if (cause == ErrorCause::kReset) {
      current_.sockets->add_disconnect(DisconnectCause::kReset);
    } else if (s.close_sent) {
      current_.sockets->add_disconnect(DisconnectCause::kLocalClose);
    } else {
      current_.sockets->add_disconnect(DisconnectCause::kServerClose);
      // A WebSocket stream that ends without a close frame: 1006, as
      // browsers report it.
      if (s.websocket) ++current_.sockets->close_codes[1006];
    }
  }
  if (!running_ || !vu.in_iteration) {
    s.wait = Wait::kNone;
    return;
  }
  switch (wait) {
    case Wait::kNone:
      return;  // the next socket step finds it closed
    case Wait::kClose:
      socket_step_ok(vu, net::now_ns() - s.step_started_ns);
      return;
    case Wait::kConnect:
      ++vu.failures;  // back off before the next iteration, as for HTTP
      [[fallthrough]];
    case Wait::kExpect:
    case Wait::kHold:
    case Wait::kSend:
      socket_step_failed(vu, &cause);
      return;
  }
}

size_t ScenarioWorkload::socket_data(VirtualUser& vu, char* data, size_t size) {
  SocketSession& s = *vu.socket;
  if (s.websocket) {
    WsEvents events(*this, vu);
    const uint32_t generation = s.generation;
    ws::FrameParser::Result result = s.frames.parse(data, size, events);
    if (s.generation != generation || !s.connection.connected()) return size;
    if (result.error != ws::FrameError::kNone) {
      socket_protocol_error(vu, ws::close_code_for(result.error));
      return size;
    }
    return result.consumed;
  }
  // TCP: cut messages out of the stream by the waiting step's framing.
  size_t pos = 0;
  const uint32_t generation = s.generation;
  while (pos < size) {
    if (s.wait != Wait::kExpect && s.wait != Wait::kHold) {
      // Nobody waits: count and drop, so an idle connection keeps nothing.
      ++current_.sockets->unsolicited;
      ++current_.sockets->messages_in;
      current_.sockets->bytes_in += size - pos;
      return size;
    }
    const SocketStep& step = current_socket_step(vu);
    std::string_view rest(data + pos, size - pos);
    std::string_view message;
    size_t used = 0;
    switch (step.framing) {
      case SocketStep::Framing::kNone:
        message = rest;
        used = rest.size();
        break;
      case SocketStep::Framing::kDelimiter: {
        const size_t at = rest.find(step.delimiter);
        if (at == std::string_view::npos) {
          if (rest.size() > kMaxTcpMessageBytes) {
            socket_protocol_error(vu, 0);
            return size;
          }
          return pos;  // the rest of the message is still to come
        }
        message = rest.substr(0, at);
        used = at + step.delimiter.size();
        break;
      }
      case SocketStep::Framing::kLengthPrefix: {
        const size_t n = step.length_prefix;
        if (rest.size() < n) return pos;
        uint64_t length = 0;
        for (size_t i = 0; i < n; ++i)
          length = length << 8 | static_cast<unsigned char>(rest[i]);
        if (length > kMaxTcpMessageBytes) {
          socket_protocol_error(vu, 0);
          return size;
        }
        if (rest.size() - n < length) return pos;
        message = rest.substr(n, length);
        used = n + length;
        break;
      }
    }
    pos += used;
    socket_message(vu, message);
    if (s.generation != generation || !s.connection.connected()) return size;
  }
  return pos;
}

void ScenarioWorkload::socket_message(VirtualUser& vu, std::string_view message) {
  SocketSession& s = *vu.socket;
  metrics::SocketStats& stats = *current_.sockets;
  ++stats.messages_in;
  stats.bytes_in += message.size();
  const int64_t now = net::now_ns();
  if (!s.first_message) {
    s.first_message = true;
    stats.first_message.record(static_cast<uint64_t>(std::max<int64_t>(0, now - s.open_ns)) / 1000);
  }
  if (!running_ || !vu.in_iteration) {
    ++stats.unsolicited;
    return;
  }
  if (s.wait != Wait::kExpect && s.wait != Wait::kHold) {
    // Kept for the next ws.expect (bounded). TCP bytes are framed by the
    // waiting step, so they cannot be kept as messages: unsolicited.
    if (s.websocket && s.early.size() < kMaxEarlyMessages &&
        s.early_bytes + message.size() <= kMaxEarlyBytes) {
      s.early.emplace_back(now, std::string(message));
      s.early_bytes += message.size();
    } else {
      ++stats.unsolicited;
    }
    return;
  }
  match_message(vu, message, now);
}

void ScenarioWorkload::match_message(VirtualUser& vu, std::string_view message, int64_t now) {
  SocketSession& s = *vu.socket;
  metrics::SocketStats& stats = *current_.sockets;
  const Flow& flow = plan_.flows[vu.flow];
  const uint32_t arg = flow.program[vu.pc].arg;
  const SocketStep& step = flow.socket_steps[arg];
  const RequestPaths& rp = socket_paths_[vu.flow][arg];
  std::vector<JsonEvaluator::Outcome> outcomes;
  std::vector<JsonEvaluator::Value> values;
  if (!rp.paths.empty()) json_.evaluate(message, rp.paths, &outcomes, &values);
  auto record_delivery = [&] {
    if (!step.latency_from) return;
    const JsonEvaluator::Value& v = values.back();
    if (outcomes.back() != JsonEvaluator::Outcome::kFound) return;  // another kind of message
    // At the message's arrival on the wall clock (it may have been kept).
    const int64_t arrived_unix_us = unix_us_now() - (net::now_ns() - now) / 1000;
    const std::optional<uint64_t> latency_us = delivery_latency_us(v, arrived_unix_us);
    if (latency_us) {
      stats.delivery.record(*latency_us);
    } else {
      ++stats.delivery_invalid;
    }
  };
  if (s.wait == Wait::kHold) {
    record_delivery();
    return;
  }

  // An expect: every condition must hold.
  const RenderContext ctx = render_context(vu);
  bool matched = true;
  if (step.match.equals) {
    scratch_.clear();
    step.match.equals->render(ctx, &scratch_);
    matched = message == scratch_;
  }
  if (matched && step.match.contains) {
    scratch_.clear();
    step.match.contains->render(ctx, &scratch_);
    matched = message.find(scratch_) != std::string_view::npos;
  }
  for (size_t i = 0; matched && i < step.match.regexes.size(); ++i) {
    matched = RE2::PartialMatch(message, *step.match.regexes[i].regex);
  }
  const int64_t origin = origin_of(vu, s.last_send_ns);
  ResponseView view;
  view.body = message;
  view.latency_us = (now - origin) / 1000;
  for (size_t i = 0; matched && i < step.match.json.size(); ++i) {
    std::string why;
    const int p = rp.check_path[i];
    matched = step.match.json[i].evaluate(view, outcomes[p], &values[p], &why);
  }
  if (!matched) {
    if (step.unmatched == SocketStep::Unmatched::kSkip) return;
    ++stats.unmatched;
    if (step.unmatched == SocketStep::Unmatched::kFail) socket_step_failed(vu, nullptr);
    return;
  }
  record_delivery();
  for (size_t i = 0; i < step.extractions.size(); ++i) {
    const Extraction& e = step.extractions[i];
    const int p = rp.extraction_path[i];
    std::string& target = vu.variables[e.slot];
    bool found;
    if (p >= 0) {
      found = outcomes[p] == JsonEvaluator::Outcome::kFound;
      if (found) target = values[p].text;
    } else {
      found = e.extractor.apply(view, &target);
    }
    if (!found) {
      if (e.default_value) {
        target = *e.default_value;
      } else {
        ++current_.steps[flow.program[vu.pc].metric].extract_failed;
        socket_step_failed(vu, nullptr);
        return;
      }
    }
  }
  socket_step_ok(vu, now - origin);
}

void ScenarioWorkload::socket_server_close(VirtualUser& vu, uint16_t code) {
  SocketSession& s = *vu.socket;
  const Wait wait = s.wait;
  if (!s.close_sent) {
    ++current_.sockets->close_codes[code];
    // Echo the close (RFC 6455 5.5.1); 1005 means "no code" and is never sent.
    const uint32_t generation = s.generation;
    send_ws_close(vu, code == ws::kCloseNoStatus ? ws::kCloseNormal : code, "");
    if (s.generation != generation) return;  // the echo failed, and was reported
    end_socket(vu, DisconnectCause::kServerClose);
  } else {
    end_socket(vu, DisconnectCause::kLocalClose);  // the answer to our close
  }
  if (!running_ || !vu.in_iteration) return;
  static const ErrorCause kClosed = ErrorCause::kClosed;
  if (wait == Wait::kClose) {
    socket_step_ok(vu, net::now_ns() - s.step_started_ns);
  } else if (wait == Wait::kExpect || wait == Wait::kHold || wait == Wait::kSend) {
    socket_step_failed(vu, &kClosed);
  }
}

void ScenarioWorkload::socket_protocol_error(VirtualUser& vu, uint16_t close_code) {
  SocketSession& s = *vu.socket;
  const uint32_t generation = s.generation;
  if (s.websocket && close_code != 0) send_ws_close(vu, close_code, "");
  if (s.generation != generation) return;  // the close failed, and was reported
  const Wait wait = s.wait;
  end_socket(vu, DisconnectCause::kProtocolError);
  current_.add_error(ErrorCause::kProtocolError);
  if (!running_ || !vu.in_iteration) return;
  if (wait == Wait::kNone) return;  // no step to blame; counted as an error above
  // Counted once: as the waiting step's error.
  --current_.error_counts[static_cast<size_t>(ErrorCause::kProtocolError)];
  --current_.errors;
  static const ErrorCause kProtocol = ErrorCause::kProtocolError;
  socket_step_failed(vu, &kProtocol);
}

void ScenarioWorkload::socket_timer(VirtualUser& vu) {
  SocketSession& s = *vu.socket;
  const Wait wait = s.wait;
  if (wait == Wait::kHold) {
    socket_step_ok(vu, net::now_ns() - s.step_started_ns);
    return;
  }
  ErrorCause cause = ErrorCause::kTimeout;
  if (wait == Wait::kConnect) {
    if (s.connection.state() == http::ClientConnection::State::kConnecting) {
      cause = ErrorCause::kConnectTimeout;
    }
    s.connection.close();
    ++s.generation;
    std::string().swap(s.handshake);
  } else {
    end_socket(vu, wait == Wait::kClose ? DisconnectCause::kLocalClose : DisconnectCause::kTimeout);
  }
  s.wait = wait;  // end_socket cleared it; the step below still fails
  socket_step_failed(vu, &cause);
}

void ScenarioWorkload::socket_writable(VirtualUser& vu) {
  SocketSession& s = *vu.socket;
  if (s.wait != Wait::kSend || !running_ || !vu.in_iteration) return;
  socket_step_ok(vu, net::now_ns() - s.step_started_ns);
}

void ScenarioWorkload::socket_step_ok(VirtualUser& vu, int64_t latency_ns) {
  SocketSession& s = *vu.socket;
  if (s.wait != Wait::kNone) vu.timer.cancel();
  s.wait = Wait::kNone;
  const Flow& flow = plan_.flows[vu.flow];
  metrics::StepStats& step = current_.steps[flow.program[vu.pc].metric];
  ++step.requests;
  step.latency.record(static_cast<uint64_t>(std::max<int64_t>(0, latency_ns)) / 1000);
  vu.failures = 0;
  ++vu.pc;
  execute(vu);
}

void ScenarioWorkload::socket_step_failed(VirtualUser& vu, const ErrorCause* cause) {
  SocketSession& s = *vu.socket;
  if (s.wait != Wait::kNone) vu.timer.cancel();
  s.wait = Wait::kNone;
  const Flow& flow = plan_.flows[vu.flow];
  metrics::StepStats& step = current_.steps[flow.program[vu.pc].metric];
  ++step.failed;
  if (cause != nullptr) {
    ++step.errors;
    current_.add_error(*cause);
  }
  finish_iteration(vu, false);
}

void ScenarioWorkload::end_socket(VirtualUser& vu, DisconnectCause cause) {
  SocketSession& s = *vu.socket;
  if (s.wait != Wait::kNone) vu.timer.cancel();
  s.wait = Wait::kNone;
  if (s.open) {
    s.open = false;
    --open_sockets_;
    current_.sockets->add_disconnect(cause);
    if (s.websocket && !s.close_sent && cause == DisconnectCause::kLocalClose &&
        s.connection.connected()) {
      send_ws_close(vu, ws::kCloseNormal, "");  // best effort: we do not wait for the answer
    }
  }
  if (s.connection.state() != http::ClientConnection::State::kClosed) {
    ++s.generation;
    s.connection.close();
  }
  std::string().swap(s.handshake);
  // Kept messages outlive a server's close (the next ws.expect may still
  // take them), not the end of the iteration or a new connect.
  if (cause == DisconnectCause::kLocalClose || cause == DisconnectCause::kTimeout) drop_early(vu);
  if (s.frames.in_fragmented_message()) {
    s.frames =
        ws::FrameParser(ws::Role::kClient, std::max(kMinMessageBytes, plan_.max_body_capture));
  }
}

void ScenarioWorkload::drop_early(VirtualUser& vu) {
  SocketSession& s = *vu.socket;
  if (s.early.empty()) return;
  // No ws.expect came for them: they were unsolicited after all.
  current_.sockets->unsolicited += s.early.size();
  std::vector<std::pair<int64_t, std::string>>().swap(s.early);
  s.early_bytes = 0;
}

bool ScenarioWorkload::send_ws_frame(VirtualUser& vu, uint8_t opcode, std::string_view payload) {
  frame_.clear();
  ws::append_frame(&frame_, static_cast<ws::Opcode>(opcode), payload, true,
                   static_cast<uint32_t>(prng_()));
  return vu.socket->connection.send_raw(frame_);
}

bool ScenarioWorkload::send_ws_close(VirtualUser& vu, uint16_t code, std::string_view reason) {
  SocketSession& s = *vu.socket;
  if (s.close_sent) return true;
  s.close_sent = true;
  frame_.clear();
  ws::append_close(&frame_, code, reason, static_cast<uint32_t>(prng_()));
  return s.connection.send_raw(frame_);
}

}  // namespace millstone::scenario
