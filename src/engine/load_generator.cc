#include "engine/load_generator.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "grpc/session.h"
#include "http/http1_session.h"
#include "http2/session.h"
#include "net/clock.h"

namespace millstone::engine {

using metrics::ErrorCause;

namespace {
constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr int64_t kMaxReconnectBackoffNs = 1 * net::kNsPerSec;
constexpr int64_t kFirstReconnectBackoffNs = 10 * net::kNsPerMs;
// Connections opened per turn of the event loop. Opening tens of thousands in
// one go kept a worker from its timers for seconds (and from the end of the
// run); between batches the loop serves I/O and timers, so the run ends on time
// however many connections are still to open.
constexpr uint32_t kConnectBatch = 256;
}  // namespace

LoadGenerator::Slot::Slot(net::EventLoop& loop, LoadGenerator& owner, http::ClientContext& context,
                          http::SessionFactory& factory, uint32_t index)
    : connection(loop, owner, context, factory, index), reconnect(loop, [this, &owner] {
        if (owner.running_) {
          responses = 0;
          connection.connect(net::now_ns());
        }
      }) {}

LoadGenerator::LoadGenerator(net::EventLoop& loop, const RunPlan& plan, SnapshotSink sink)
    : loop_(loop),
      plan_(plan),
      sink_(std::move(sink)),
      second_timer_(loop, [this] { on_second(); }),
      end_timer_(loop, [this] { stop(); }),
      sweep_timer_(loop, [this] { on_sweep(); }),
      pace_timer_(loop, [this] { on_pace(); }),
      open_timer_(loop, [this] { open_next_connections(); }) {}

LoadGenerator::~LoadGenerator() = default;

bool LoadGenerator::start(int64_t start_ns, std::string* error) {
  auto endpoint = net::make_endpoint(plan_.address, plan_.port);
  if (!endpoint) {
    *error = "worker got a non-numeric target address '" + plan_.address + "'";
    return false;
  }
  context_.endpoint = *endpoint;
  if (!net::parse_sources(plan_.source_addresses, endpoint->family(), &context_.sources, error)) {
    return false;
  }
  context_.read_buffer.resize(kReadBufferBytes);
  context_.stats = &current_;
  if (plan_.tls) {
    // The coordinator built the same context from the same options before
    // starting workers, so a failure here is unexpected but still one line.
    try {
      tls_ = std::make_unique<tls::TlsClientContext>(*plan_.tls);
    } catch (const tls::TlsSetupError& e) {
      *error = e.what();
      return false;
    }
    context_.tls = tls_.get();
    context_.tls_target = &tls_->target(plan_.tls_server_name, plan_.port);
  }
  // The request is encoded once, by the protocol's own rules.
  if (plan_.grpc) {
    grpc::Settings settings;
    settings.h2 = http2::Settings{plan_.streams, plan_.h2_window, plan_.h2_header_table};
    settings.unary = !plan_.grpc_server_streaming;
    factory_ = std::make_unique<grpc::SessionFactory>(settings, current_);
    request_ = std::make_unique<http2::Request>(plan_.request);
  } else if (plan_.http2) {
    factory_ = std::make_unique<http2::SessionFactory>(
        http2::Settings{plan_.streams, plan_.h2_window, plan_.h2_header_table}, current_);
    request_ = std::make_unique<http2::Request>(plan_.request);
  } else {
    factory_ = std::make_unique<http::Http1SessionFactory>(plan_.keepalive);
    request_ = std::make_unique<http::Http1Request>(plan_.request_bytes, plan_.head_request);
  }

  running_ = true;
  const int64_t now = net::now_ns();
  start_ns_ = start_ns;
  end_ns_ = start_ns_ + static_cast<int64_t>(plan_.duration_ms) * net::kNsPerMs;
  end_timer_.arm_at(end_ns_);
  interval_index_ = interval_at(start_ns_, now);
  second_timer_.arm_at(start_ns_ + static_cast<int64_t>(interval_index_ + 1) * net::kNsPerSec);
  // Timeouts are found by a sweep rather than a timer per request: it costs
  // nothing on the request path, at a precision of a tenth of the timeout.
  int64_t sweep_ns = std::clamp<int64_t>(
      static_cast<int64_t>(std::min(plan_.timeout_ms, plan_.connect_timeout_ms)) * net::kNsPerMs /
          10,
      net::kNsPerMs, 100 * net::kNsPerMs);
  sweep_timer_.arm_at(std::max(start_ns_, now) + sweep_ns);

  slots_.reserve(plan_.connections);
  for (uint32_t i = 0; i < plan_.connections; ++i) {
    slots_.push_back(std::make_unique<Slot>(loop_, *this, context_, *factory_, i));
  }
  open_next_connections();
  if (open_model()) pace_timer_.arm_at(start_ns_);
  return true;
}

void LoadGenerator::open_next_connections() {
  if (!running_) return;
  int64_t now = net::now_ns();
  uint32_t end = std::min<uint32_t>(opened_slots_ + kConnectBatch, plan_.connections);
  for (; opened_slots_ < end; ++opened_slots_)
    slots_[opened_slots_]->connection.connect(now);
  if (opened_slots_ < plan_.connections) open_timer_.arm_at(now);
}

void LoadGenerator::stop() {
  if (finished_) return;
  running_ = false;
  finished_ = true;
  int64_t now = net::now_ns();
  // Requests that were due but never got a connection: the target (or this
  // generator) could not keep up. Count them; a silent drop would flatter.
  current_.not_started += backlog_.size();
  backlog_.clear();
  // Requests due up to now that the pacer has not reached yet are not started either.
  if (open_model()) {
    // Same window as on_pace(): due before the end, and already due now.
    for (int64_t due = due_time(next_due_index_); due < end_ns_ && due <= now;
         due = due_time(next_due_index_)) {
      ++current_.scheduled;
      ++current_.not_started;
      ++next_due_index_;
    }
  }
  for (auto& slot : slots_)
    current_.in_flight += slot->connection.in_flight();
  second_timer_.cancel();
  end_timer_.cancel();
  sweep_timer_.cancel();
  pace_timer_.cancel();
  open_timer_.cancel();
  current_.interval_index = interval_index_;
  // The result goes out before the connections close: closing tens of
  // thousands of sockets takes a while, and the run has ended.
  sink_(current_, true);
  current_.clear();
  for (auto& slot : slots_) {
    slot->reconnect.cancel();
    slot->connection.close();
  }
}

void LoadGenerator::on_second() {
  current_.interval_index = interval_index_++;
  sink_(current_, false);
  current_.clear();
  second_timer_.arm_at(start_ns_ + static_cast<int64_t>(interval_index_ + 1) * net::kNsPerSec);
}

void LoadGenerator::on_sweep() {
  int64_t now = net::now_ns();
  int64_t timeout_ns = static_cast<int64_t>(plan_.timeout_ms) * net::kNsPerMs;
  int64_t connect_timeout_ns = static_cast<int64_t>(plan_.connect_timeout_ms) * net::kNsPerMs;
  for (auto& slot : slots_) {
    http::SessionConnection& c = slot->connection;
    if (c.opening()) {
      // The connect timeout covers the TLS handshake too.
      if (now - c.connect_started_ns() >= connect_timeout_ns) {
        c.fail(c.handshaking() ? ErrorCause::kTlsHandshake : ErrorCause::kConnectTimeout);
      }
    } else {
      c.expire(now, timeout_ns);  // per request (per stream with HTTP/2)
    }
  }
  int64_t sweep_ns = std::clamp<int64_t>(std::min(timeout_ns, connect_timeout_ns) / 10,
                                         net::kNsPerMs, 100 * net::kNsPerMs);
  sweep_timer_.arm_at(now + sweep_ns);
}

int64_t LoadGenerator::due_time(uint64_t k) const {
  return due_time(start_ns_, plan_.rate, plan_.worker_index, plan_.worker_count, k);
}

int64_t LoadGenerator::due_time(int64_t start_ns, double worker_rate, uint32_t index,
                                uint32_t count, uint64_t k) {
  count = std::max<uint32_t>(1, count);
  const double fleet_rate = worker_rate * count;
  const double n = static_cast<double>(k) * count + index;
  return start_ns + static_cast<int64_t>(std::llround(n * 1e9 / fleet_rate));
}

void LoadGenerator::on_pace() {
  if (!running_) return;
  int64_t now = net::now_ns();
  int64_t due = due_time(next_due_index_);
  if (due <= now) {
    current_.max_schedule_lag_us =
        std::max<uint64_t>(current_.max_schedule_lag_us, static_cast<uint64_t>(now - due) / 1000);
  }
  while (due <= now && due < end_ns_) {
    ++current_.scheduled;
    ++next_due_index_;
    if (!dispatch(due, now)) backlog_.push_back(due);
    due = due_time(next_due_index_);
  }
  if (due < end_ns_) pace_timer_.arm_at(due);
}

bool LoadGenerator::dispatch(int64_t intended, int64_t now) {
  while (!ready_.empty()) {
    Slot& slot = *slots_[ready_.back()];
    if (slot.connection.capacity() == 0) {
      slot.in_ready = false;
      ready_.pop_back();
      continue;
    }
    send(slot.connection, intended, now);
    return true;
  }
  return false;
}

void LoadGenerator::send(http::SessionConnection& connection, int64_t intended, int64_t now) {
  if (now - intended >= kLateThresholdNs) ++current_.started_late;
  // The token is the due time: latency counts from it.
  connection.submit(*request_, static_cast<http::RequestToken>(intended), now);
}

void LoadGenerator::on_capacity(http::SessionConnection& connection) {
  if (!running_) return;
  Slot& slot = *slots_[connection.index()];
  const int64_t now = net::now_ns();
  if (!open_model()) {
    while (connection.capacity() > 0 && running_)
      send(connection, now, now);
    return;
  }
  while (connection.capacity() > 0 && !backlog_.empty()) {
    const int64_t intended = backlog_.front();
    backlog_.pop_front();
    send(connection, intended, now);
  }
  if (connection.capacity() > 0 && !slot.in_ready) {
    slot.in_ready = true;
    ready_.push_back(connection.index());
  }
}

void LoadGenerator::on_response(http::SessionConnection& connection, http::RequestToken token,
                                const http::ResponseInfo& response, int64_t done_ns) {
  ++current_.requests;
  ++current_.status_counts[static_cast<uint16_t>(response.status)];
  if (response.grpc_status >= 0) {
    ++current_.grpc_status[static_cast<uint32_t>(response.grpc_status)];
    current_.grpc_messages += response.grpc_messages;
  }
  const int64_t latency_ns = done_ns - static_cast<int64_t>(token);
  current_.latency.record(static_cast<uint64_t>(std::max<int64_t>(latency_ns, 0)) / 1000);
  Slot& slot = *slots_[connection.index()];
  ++slot.responses;
  slot.consecutive_failures = 0;
  // The freed stream is offered again through on_capacity once the session
  // has read everything that arrived.
}

void LoadGenerator::on_request_failed(http::SessionConnection&, http::RequestToken,
                                      ErrorCause cause) {
  // A lost request is not retried: it is counted as an error, as it happened.
  current_.add_error(cause);
}

void LoadGenerator::on_closed(http::SessionConnection& connection,
                              std::optional<ErrorCause> cause) {
  if (cause) current_.add_error(*cause);
  if (!running_) return;
  Slot& slot = *slots_[connection.index()];
  // --no-keepalive and servers that close after a response reconnect at
  // once. A connection that ended without one response (refused, TLS, a
  // server that sends GOAWAY at once) backs off, so a target that turns every
  // connection away is not hammered by a busy loop.
  if (!cause && slot.responses > 0) {
    slot.responses = 0;
    connection.connect(net::now_ns());
    return;
  }
  int64_t backoff = kFirstReconnectBackoffNs << std::min<uint32_t>(slot.consecutive_failures, 7);
  backoff = std::min(backoff, kMaxReconnectBackoffNs);
  ++slot.consecutive_failures;
  slot.reconnect.arm_after(backoff);
}

}  // namespace millstone::engine
