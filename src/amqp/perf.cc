#include "amqp/perf.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <random>

#include <fmt/format.h>

#include "http/client_connection.h"
#include "metrics/snapshot.h"
#include "net/clock.h"
#include "net/event_loop.h"
#include "tls/client_context.h"

namespace millstone::amqp {

namespace {

constexpr int64_t kTickNs = 50 * net::kNsPerMs;
constexpr int64_t kRetryNs = 250 * net::kNsPerMs;
constexpr int64_t kCloseWaitNs = 1000 * net::kNsPerMs;
constexpr int64_t kLateNs = net::kNsPerMs;
constexpr size_t kMaxUnsentBytes = 1 << 20;  // a publisher waits for the socket beyond this
constexpr int kBurst = 256;                  // publishes per publisher per turn of the loop
constexpr size_t kMaxSamples = 5;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void store_le64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t load_le64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Failures a new connection would meet again: counted once, not retried.
bool retryable(Failure failure) {
  switch (failure) {
    case Failure::kConnectionForced:
    case Failure::kConnectionClosed:
    case Failure::kHeartbeatTimeout:
    case Failure::kHandshakeTimeout:
      return true;
    default:
      return false;
  }
}

class PerfRun;

enum class Phase : uint8_t { kOpening, kRunning, kDraining, kClosing, kDone };

class Client final : private http::ClientListener, private SessionListener {
 public:
  enum class Role : uint8_t { kPublisher, kConsumer };

  Client(PerfRun& run, Role role, uint32_t index);
  void connect(int64_t now_ns);
  void tick(int64_t now_ns);
  // Publishes what is due (and allowed) now; true if more could go at once.
  bool pump(int64_t now_ns);
  // When the next publish is due, if this publisher can publish; else INT64_MAX.
  int64_t next_due() const;
  void start_schedule(int64_t first_due_ns, int64_t interval_ns) {
    next_due_ns_ = first_due_ns;
    interval_ns_ = interval_ns;
  }
  void close_gracefully();
  void abandon();  // end of run: close the socket, count what is unconfirmed

  Role role() const { return role_; }
  bool ready() const { return ready_; }
  bool dead() const { return dead_; }
  bool closed() const { return !conn_.connected() && !conn_.opening(); }
  size_t unconfirmed() const { return pending_.size() - settled_in_pending_; }
  int64_t last_delivery_ns() const { return last_delivery_ns_; }

 private:
  struct Pending {
    uint64_t tag;
    int64_t due_ns;
    bool settled;
  };

  // http::ClientListener (the transport, in raw mode).
  void on_connected(http::ClientConnection& connection) override;
  void on_response(http::ClientConnection&, int, int64_t) override {}
  void on_failure(http::ClientConnection& connection, metrics::ErrorCause cause,
                  bool had_request) override;
  void on_idle_close(http::ClientConnection& connection) override;
  size_t on_data(http::ClientConnection& connection, char* data, size_t size) override;
  void on_writable(http::ClientConnection& connection) override;
  // SessionListener.
  void on_open(Session& session) override;
  void on_reply(Session& session, const ServerMethod& reply) override;
  void on_confirm(Session& session, uint64_t tag, bool multiple, bool ack) override;
  void on_delivery(Session& session, const Delivery& delivery) override;
  void on_return(Session& session, const ServerMethod& returned) override;
  void on_blocked(Session& session, bool blocked) override;
  void on_failed(Session& session, Failure failure, uint16_t code, std::string_view text) override;
  void on_closed(Session& session) override;

  bool can_publish() const;
  void publish_one(int64_t due_ns, int64_t now_ns);
  void settle(Pending& pending, bool ack, int64_t now_ns);
  void flush();
  // After the session ran: act on a failure it reported, send what it queued.
  void after_session();
  // The connection is gone (transport or session failure): count it, maybe retry.
  void down(const std::string& cause, std::string_view detail, bool retry);
  void lose_unconfirmed();

  PerfRun& run_;
  Role role_;
  uint32_t index_;
  http::ClientConnection conn_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<Session> retired_;  // ended inside one of its own calls
  net::Timer retry_;
  bool ready_ = false;
  bool dead_ = false;
  bool closing_ = false;
  // A failure the session reported, acted on once it has returned.
  bool session_failed_ = false;
  bool session_closed_ = false;  // our close completed
  Failure failure_ = Failure::kNone;
  std::string failure_text_;
  // Publisher.
  std::string body_;
  std::deque<Pending> pending_;
  size_t settled_in_pending_ = 0;
  int64_t next_due_ns_ = 0;
  int64_t interval_ns_ = 0;
  // Consumer: the highest tag of this read, acked (multiple) after it.
  uint64_t ack_tag_ = 0;
  uint64_t ack_count_ = 0;
  int64_t last_delivery_ns_ = 0;
};

class PerfRun {
 public:
  explicit PerfRun(const PerfOptions& options);
  PerfResult run();

  const PerfOptions& options() const { return options_; }
  net::EventLoop& loop() { return loop_; }
  http::ClientContext& context() { return context_; }
  PerfResult& result() { return result_; }
  Phase phase() const { return phase_; }
  uint64_t run_id() const { return run_id_; }

  void count_error(const std::string& cause, std::string text) {
    ++result_.errors[cause];
    sample(std::move(text));
  }
  void sample(std::string text) {
    if (result_.error_samples.size() < kMaxSamples)
      result_.error_samples.push_back(std::move(text));
  }
  void record_confirm(uint64_t us) {
    result_.confirm_latency.record(us);
    second_confirms_.record(us);
  }
  void record_latency(uint64_t us) {
    result_.latency.record(us);
    second_latency_.record(us);
  }
  void client_ready(const Session& session);
  // A publisher can publish again (confirm, writable, unblocked): pace it.
  void wake(Client& client);
  void client_closed();

 private:
  void tick();
  void pace();
  void end_second();
  void rearm_pace(int64_t now_ns);
  void start_running(int64_t now_ns);
  void start_draining(int64_t now_ns);
  void start_closing(int64_t now_ns);
  void finish();
  bool all_settled_or_dead() const;

  const PerfOptions& options_;
  net::EventLoop loop_;
  metrics::Snapshot stats_;
  http::ClientContext context_;
  PerfResult result_;
  std::vector<std::unique_ptr<Client>> clients_;
  net::Timer tick_;
  net::Timer pace_;
  net::Timer second_;
  // Totals at the last second's end, and this second's latencies.
  PerfSecond seen_;
  uint64_t seen_errors_ = 0;
  metrics::Histogram second_confirms_;
  metrics::Histogram second_latency_;
  Phase phase_ = Phase::kOpening;
  uint64_t run_id_ = 0;
  int64_t begin_ns_ = 0;
  int64_t phase_ns_ = 0;  // when the current phase began
  int64_t running_ns_ = 0;
  bool have_broker_facts_ = false;
};

// --- Client -----------------------------------------------------------------

Client::Client(PerfRun& run, Role role, uint32_t index)
    : run_(run),
      role_(role),
      index_(index),
      conn_(run.loop(), *this, run.context(), index),
      retry_(run.loop(), [this] { connect(net::now_ns()); }) {
  if (role_ == Role::kPublisher) {
    body_.assign(std::max(run.options().size, kStampBytes), 'm');
    store_le64(body_.data() + 8, run.run_id());
  }
}

void Client::connect(int64_t now_ns) {
  ready_ = false;
  session_failed_ = false;
  session_closed_ = false;
  retired_.reset();  // not on its own stack any more: the retry timer or the run called us
  conn_.connect(now_ns);
}

void Client::on_connected(http::ClientConnection& connection) {
  connection.set_raw();
  if (session_) retired_ = std::move(session_);
  session_ =
      std::make_unique<Session>(run_.options().session, static_cast<SessionListener&>(*this));
  session_->start(net::now_ns());
  flush();
}

size_t Client::on_data(http::ClientConnection&, char* data, size_t size) {
  if (!session_) return size;
  const int64_t now = net::now_ns();
  const size_t consumed = session_->on_read(std::string_view(data, size), now);
  if (ack_count_ > 0 && session_->open()) {
    session_->ack(ack_tag_, true);
    run_.result().consumed += ack_count_;
  }
  ack_count_ = 0;
  after_session();
  return consumed;
}

void Client::after_session() {
  if (session_closed_) {
    session_closed_ = false;
    conn_.close();
    run_.client_closed();
    return;
  }
  if (session_failed_) {
    // Still set while flushing, so a write that fails now is not counted twice.
    flush();  // the close-ok the session may have queued
    session_failed_ = false;
    conn_.close();
    down(failure_name(failure_), failure_text_, retryable(failure_));
    return;
  }
  flush();
}

void Client::flush() {
  if (!session_ || session_->output().empty() || !conn_.connected()) return;
  Session* session = session_.get();
  conn_.send_raw(session->output());  // a failure comes back through on_failure
  session->output().clear();
}

void Client::on_writable(http::ClientConnection&) {
  if (role_ == Role::kPublisher) run_.wake(*this);
}

void Client::on_failure(http::ClientConnection&, metrics::ErrorCause cause, bool) {
  if (session_ && session_->state() == Session::State::kClosing) {
    session_->on_transport_closed();  // the broker closed first: as good as close-ok
    after_session();
    return;
  }
  if (session_ && session_->state() == Session::State::kClosed) {
    if (session_failed_) return;  // counted by after_session()
    if (closing_) return;
  }
  if (session_ && session_->on_transport_closed() == Failure::kAuthFailed) {
    down(failure_name(Failure::kAuthFailed), "the broker closed the connection after the login",
         false);
    return;
  }
  // A refused or timed-out connect before the run started: the broker is not
  // there, and retrying only delays the answer. A certificate or TLS version
  // that failed will fail again at any time.
  using metrics::ErrorCause;
  const bool tls_verdict =
      cause == ErrorCause::kTlsCertificateExpired || cause == ErrorCause::kTlsCertificateHostname ||
      cause == ErrorCause::kTlsCertificateUntrusted || cause == ErrorCause::kTlsCertificate ||
      cause == ErrorCause::kTlsProtocolVersion || cause == ErrorCause::kTlsAlertReceived;
  const bool retry = !tls_verdict &&
                     (run_.phase() != Phase::kOpening ||
                      (cause != ErrorCause::kConnectRefused &&
                       cause != ErrorCause::kConnectTimeout && cause != ErrorCause::kConnectOther));
  down(metrics::error_cause_name(cause), conn_.error_text(), retry);
}

void Client::on_idle_close(http::ClientConnection& connection) {
  on_failure(connection, metrics::ErrorCause::kClosed, false);
}

void Client::down(const std::string& cause, std::string_view detail, bool retry) {
  ready_ = false;
  if (session_) retired_ = std::move(session_);
  lose_unconfirmed();
  run_.count_error(
      cause, fmt::format("{} {}: {}{}{}", role_ == Role::kPublisher ? "publisher" : "consumer",
                         index_ + 1, cause, detail.empty() ? "" : ": ", detail));
  const Phase phase = run_.phase();
  if (retry && (phase == Phase::kOpening || phase == Phase::kRunning)) {
    retry_.arm_after(kRetryNs);
  } else {
    dead_ = true;
  }
  run_.client_closed();
}

void Client::lose_unconfirmed() {
  run_.result().unconfirmed += unconfirmed();
  pending_.clear();
  settled_in_pending_ = 0;
}

void Client::tick(int64_t now_ns) {
  if (conn_.opening() && now_ns - conn_.connect_started_ns() >= run_.options().connect_timeout_ns) {
    conn_.fail(metrics::ErrorCause::kConnectTimeout);
    return;
  }
  if (!session_ || !conn_.connected()) return;
  session_->tick(now_ns);
  after_session();
}

void Client::on_open(Session& session) {
  const PerfOptions& o = run_.options();
  if (!o.exchange.empty()) {
    ExchangeDeclare exchange;
    exchange.exchange = o.exchange;
    exchange.type = o.exchange_type;
    session.declare_exchange(exchange);
  }
  QueueDeclare queue;
  queue.queue = o.queue;
  session.declare_queue(queue);
  if (!o.exchange.empty()) {
    QueueBind bind;
    bind.queue = o.queue;
    bind.exchange = o.exchange;
    bind.routing_key = o.routing_key;
    session.bind_queue(bind);
  }
  if (role_ == Role::kPublisher) {
    if (o.confirm) session.confirm_select();
  } else {
    if (o.prefetch > 0) session.qos(o.prefetch);
    BasicConsume consume;
    consume.queue = o.queue;
    session.consume(consume);
  }
}

void Client::on_reply(Session& session, const ServerMethod&) {
  if (session.pending_calls() > 0) return;
  ready_ = true;
  run_.client_ready(session);
  if (role_ == Role::kPublisher) run_.wake(*this);
}

bool Client::can_publish() const {
  return ready_ && session_ && session_->open() && !session_->blocked() &&
         (!run_.options().confirm || unconfirmed() < run_.options().confirm_window) &&
         conn_.unsent_bytes() < kMaxUnsentBytes;
}

int64_t Client::next_due() const {
  if (role_ != Role::kPublisher || !can_publish()) return INT64_MAX;
  return interval_ns_ > 0 ? next_due_ns_ : 0;
}

bool Client::pump(int64_t now_ns) {
  if (role_ != Role::kPublisher || run_.phase() != Phase::kRunning) return false;
  int n = 0;
  while (n < kBurst && can_publish()) {
    if (interval_ns_ > 0) {
      if (next_due_ns_ > now_ns) break;
      publish_one(next_due_ns_, now_ns);
      next_due_ns_ += interval_ns_;
    } else {
      publish_one(now_ns, now_ns);
    }
    ++n;
  }
  flush();
  return n == kBurst && can_publish();
}

void Client::publish_one(int64_t due_ns, int64_t now_ns) {
  const PerfOptions& o = run_.options();
  store_le64(body_.data(), static_cast<uint64_t>(due_ns));
  BasicProperties properties;
  if (o.persistent) properties.delivery_mode = 2;
  const uint64_t tag = session_->publish(o.exchange, o.routing_key, true, properties, body_);
  ++run_.result().published;
  if (now_ns - due_ns >= kLateNs) ++run_.result().held_back;
  if (tag != 0) pending_.push_back({tag, due_ns, false});
}

void Client::settle(Pending& pending, bool ack, int64_t now_ns) {
  pending.settled = true;
  ++settled_in_pending_;
  if (ack) {
    ++run_.result().confirmed;
    run_.record_confirm(
        static_cast<uint64_t>(std::max<int64_t>(0, now_ns - pending.due_ns) / 1000));
  } else {
    ++run_.result().nacked;
  }
}

void Client::on_confirm(Session&, uint64_t tag, bool multiple, bool ack) {
  const int64_t now = net::now_ns();
  if (pending_.empty() || tag < pending_.front().tag ||
      tag - pending_.front().tag >= pending_.size()) {
    run_.count_error("unexpected_confirm",
                     fmt::format("publisher {}: a confirm for tag {} that was not outstanding",
                                 index_ + 1, tag));
    return;
  }
  if (multiple) {
    const size_t last = tag - pending_.front().tag;
    for (size_t i = 0; i <= last; ++i) {
      if (!pending_[i].settled) settle(pending_[i], ack, now);
    }
  } else if (!pending_[tag - pending_.front().tag].settled) {
    settle(pending_[tag - pending_.front().tag], ack, now);
  }
  while (!pending_.empty() && pending_.front().settled) {
    pending_.pop_front();
    --settled_in_pending_;
  }
  run_.wake(*this);
}

void Client::on_delivery(Session&, const Delivery& delivery) {
  const int64_t now = net::now_ns();
  last_delivery_ns_ = now;
  ack_tag_ = delivery.delivery_tag;
  ++ack_count_;
  if (delivery.redelivered) ++run_.result().redelivered;
  if (delivery.body.size() < kStampBytes || load_le64(delivery.body.data() + 8) != run_.run_id()) {
    ++run_.result().foreign;
    return;
  }
  const int64_t due = static_cast<int64_t>(load_le64(delivery.body.data()));
  if (due > now) {
    ++run_.result().foreign;  // not a time of ours after all
    return;
  }
  run_.record_latency(static_cast<uint64_t>((now - due) / 1000));
}

void Client::on_return(Session&, const ServerMethod& returned) {
  // Counted in `returned`, not as an error of the connection; one sample says why.
  if (++run_.result().returned == 1) {
    run_.sample(fmt::format("publisher {}: returned as unroutable: {} {}", index_ + 1,
                            returned.reply_code, returned.reply_text));
  }
}

void Client::on_blocked(Session&, bool blocked) {
  if (blocked) {
    ++run_.result().blocked;
  } else if (role_ == Role::kPublisher) {
    run_.wake(*this);
  }
}

void Client::on_failed(Session&, Failure failure, uint16_t code, std::string_view text) {
  session_failed_ = true;
  failure_ = failure;
  failure_text_ = code ? fmt::format("{} {}", code, text) : std::string(text);
}

void Client::on_closed(Session&) {
  session_closed_ = true;
}

void Client::close_gracefully() {
  closing_ = true;
  retry_.cancel();
  if (session_ && session_->open()) {
    session_->close();
    flush();
    return;
  }
  conn_.close();
}

void Client::abandon() {
  closing_ = true;
  retry_.cancel();
  lose_unconfirmed();
  conn_.close();
}

// --- PerfRun ----------------------------------------------------------------

PerfRun::PerfRun(const PerfOptions& options)
    : options_(options),
      tick_(loop_, [this] { tick(); }),
      pace_(loop_, [this] { pace(); }),
      second_(loop_, [this] { end_second(); }) {
  context_.endpoint = options.endpoint;
  context_.stats = &stats_;
  context_.read_buffer.resize(256 * 1024);  // the shared read buffer of every connection
  if (options.tls) {
    context_.tls = options.tls;
    context_.tls_target = &options.tls->target(options.tls_server_name, options.endpoint.port());
  }
  std::random_device random;
  run_id_ =
      (static_cast<uint64_t>(random()) << 32) ^ random() ^ static_cast<uint64_t>(net::now_ns());
  for (uint32_t i = 0; i < options.consumers; ++i) {
    clients_.push_back(std::make_unique<Client>(*this, Client::Role::kConsumer, i));
  }
  for (uint32_t i = 0; i < options.publishers; ++i) {
    clients_.push_back(std::make_unique<Client>(*this, Client::Role::kPublisher, i));
  }
}

PerfResult PerfRun::run() {
  const double cpu_before = cpu_seconds();
  begin_ns_ = net::now_ns();
  phase_ns_ = begin_ns_;
  for (auto& client : clients_)
    client->connect(begin_ns_);
  tick_.arm_after(kTickNs);
  if (clients_.empty()) finish();
  if (phase_ != Phase::kDone && !loop_.run()) count_error("io_error", "the event loop failed");
  for (auto& client : clients_)
    client->abandon();
  const int64_t end = net::now_ns();
  result_.elapsed_ns = end - begin_ns_;
  result_.cpu_seconds = cpu_seconds() - cpu_before;
  result_.connections_opened = stats_.connections_opened;
  result_.bytes_sent = stats_.bytes_sent;
  result_.bytes_received = stats_.bytes_received;
  return std::move(result_);
}

void PerfRun::client_ready(const Session& session) {
  ++result_.connections_ready;
  if (!have_broker_facts_) {
    have_broker_facts_ = true;
    auto text = [&session](const char* name) {
      const FieldValue* v = find_field(session.server_properties(), name);
      return v && (v->kind == FieldValue::Kind::kString) ? v->text : std::string();
    };
    result_.broker_product = text("product");
    result_.broker_version = text("version");
    result_.heartbeat_s = session.heartbeat_s();
    result_.frame_max = session.frame_max();
  }
  if (phase_ == Phase::kOpening) {
    for (auto& client : clients_) {
      if (!client->ready() && !client->dead()) return;
    }
    start_running(net::now_ns());
  }
}

void PerfRun::client_closed() {
  if (phase_ == Phase::kClosing) {
    for (auto& client : clients_) {
      if (!client->closed()) return;
    }
    finish();
    return;
  }
  bool all_dead = true;
  bool any_ready = false;
  for (auto& client : clients_) {
    all_dead = all_dead && client->dead();
    any_ready = any_ready || client->ready();
  }
  if (all_dead) {
    finish();
  } else if (phase_ == Phase::kOpening && any_ready) {
    // The last one not ready has just died: the others start without it.
    for (auto& client : clients_) {
      if (!client->ready() && !client->dead()) return;
    }
    start_running(net::now_ns());
  }
}

void PerfRun::start_running(int64_t now_ns) {
  phase_ = Phase::kRunning;
  phase_ns_ = now_ns;
  running_ns_ = now_ns;
  // The rate is shared by the publishers, their schedules staggered.
  const double per_publisher = options_.publishers ? options_.rate / options_.publishers : 0;
  const int64_t interval =
      per_publisher > 0 ? std::max<int64_t>(1, static_cast<int64_t>(1e9 / per_publisher)) : 0;
  uint32_t i = 0;
  for (auto& client : clients_) {
    if (client->role() != Client::Role::kPublisher) continue;
    client->start_schedule(now_ns + (interval * i) / std::max<uint32_t>(1, options_.publishers),
                           interval);
    ++i;
  }
  pace_.arm_at(now_ns);
  second_.arm_at(now_ns + net::kNsPerSec);
}

void PerfRun::end_second() {
  PerfSecond second;
  second.published = result_.published - seen_.published;
  second.confirmed = result_.confirmed - seen_.confirmed;
  second.consumed = result_.consumed - seen_.consumed;
  second.errors = result_.error_count() - seen_errors_;
  second.confirm_p50_us = second_confirms_.value_at(0.5);
  second.latency_p50_us = second_latency_.value_at(0.5);
  seen_.published = result_.published;
  seen_.confirmed = result_.confirmed;
  seen_.consumed = result_.consumed;
  seen_errors_ = result_.error_count();
  second_confirms_.reset();
  second_latency_.reset();
  result_.timeline.push_back(second);
  if (options_.on_second) options_.on_second(result_.timeline.size() - 1, second);
  second_.arm_at(running_ns_ + static_cast<int64_t>(result_.timeline.size() + 1) * net::kNsPerSec);
}

void PerfRun::wake(Client& client) {
  if (phase_ != Phase::kRunning) return;  // draining: the tick sees the confirms
  const int64_t now = net::now_ns();
  if (client.pump(now)) {
    pace_.arm_at(now);
  } else if (!pace_.armed() || client.next_due() < pace_.deadline()) {
    rearm_pace(now);
  }
}

void PerfRun::pace() {
  if (phase_ != Phase::kRunning) return;
  const int64_t now = net::now_ns();
  bool more = false;
  for (auto& client : clients_)
    more = client->pump(now) || more;
  if (more) {
    pace_.arm_at(now);
  } else {
    rearm_pace(now);
  }
}

void PerfRun::rearm_pace(int64_t now_ns) {
  int64_t next = INT64_MAX;
  for (auto& client : clients_)
    next = std::min(next, client->next_due());
  if (next == INT64_MAX) {
    pace_.cancel();  // every publisher waits for a confirm, the socket or the broker
  } else {
    pace_.arm_at(std::max(next, now_ns));
  }
}

bool PerfRun::all_settled_or_dead() const {
  for (const auto& client : clients_) {
    if (client->role() == Client::Role::kPublisher && !client->dead() && client->unconfirmed() > 0)
      return false;
  }
  return true;
}

void PerfRun::start_draining(int64_t now_ns) {
  phase_ = Phase::kDraining;
  phase_ns_ = now_ns;
  result_.publish_ns = now_ns - running_ns_;
  pace_.cancel();
}

void PerfRun::start_closing(int64_t now_ns) {
  phase_ = Phase::kClosing;
  phase_ns_ = now_ns;
  for (auto& client : clients_)
    client->close_gracefully();
  client_closed();
}

void PerfRun::finish() {
  if (phase_ == Phase::kRunning) result_.publish_ns = net::now_ns() - running_ns_;
  phase_ = Phase::kDone;
  tick_.cancel();
  pace_.cancel();
  second_.cancel();
  loop_.stop();
}

void PerfRun::tick() {
  const int64_t now = net::now_ns();
  if (phase_ == Phase::kDone) return;
  const bool stop = options_.stop && options_.stop->load(std::memory_order_relaxed);
  if (stop) result_.interrupted = true;
  for (auto& client : clients_)
    client->tick(now);
  if (phase_ == Phase::kDone) return;
  switch (phase_) {
    case Phase::kOpening: {
      // Not all ready within the connect and handshake time: go with those that are.
      const int64_t limit = options_.connect_timeout_ns + options_.session.handshake_timeout_ns;
      if (stop || now - phase_ns_ >= limit) {
        bool any_ready = false;
        for (auto& client : clients_)
          any_ready = any_ready || client->ready();
        if (any_ready && !stop) {
          start_running(now);
        } else {
          start_closing(now);
        }
      }
      break;
    }
    case Phase::kRunning:
      if (stop || now - running_ns_ >= options_.duration_ns) start_draining(now);
      break;
    case Phase::kDraining: {
      // Done when every confirm is in and the consumers have been quiet a while.
      int64_t last_delivery = phase_ns_;
      for (auto& client : clients_)
        last_delivery = std::max(last_delivery, client->last_delivery_ns());
      const bool quiet = options_.consumers == 0 || now - last_delivery >= 200 * net::kNsPerMs;
      if (stop || now - phase_ns_ >= options_.drain_ns || (all_settled_or_dead() && quiet)) {
        start_closing(now);
      }
      break;
    }
    case Phase::kClosing:
      if (now - phase_ns_ >= kCloseWaitNs) finish();
      break;
    case Phase::kDone:
      break;
  }
  if (phase_ != Phase::kDone) tick_.arm_after(kTickNs);
}

}  // namespace

PerfResult run_perf(const PerfOptions& options) {
  PerfRun run(options);
  return run.run();
}

}  // namespace millstone::amqp
