#include "scenario/amqp_link.h"

#include <fmt/format.h>

#include "net/clock.h"
#include "net/socket.h"

namespace millstone::scenario {

namespace {
constexpr int64_t kRetryNs = 250 * net::kNsPerMs;
constexpr int64_t kConnectTimeoutNs = 5 * net::kNsPerSec;
constexpr size_t kReadBufferBytes = 64 * 1024;
}  // namespace

AmqpLink::AmqpLink(net::EventLoop& loop, const AmqpSettings& settings, uint32_t worker,
                   AmqpLinkListener& listener, metrics::Snapshot* stats, tls::TlsClientContext* tls,
                   std::string_view server_name)
    : loop_(loop), settings_(settings), worker_(worker), listener_(listener), retry_(loop, [this] {
        retired_.reset();
        conn_->connect(net::now_ns());
      }) {
  options_.user = settings.user;
  options_.password = settings.password;
  options_.vhost = settings.vhost;
  options_.heartbeat_s = settings.heartbeat_s;
  context_.read_buffer.resize(kReadBufferBytes);
  context_.stats = stats;
  if (tls != nullptr) {
    context_.tls = tls;
    context_.tls_target = &tls->target(
        server_name.empty() ? std::string_view(settings.host) : server_name, settings.port);
  }
}

AmqpLink::~AmqpLink() = default;

bool AmqpLink::start(int64_t now_ns, std::string* error) {
  std::optional<net::Endpoint> endpoint = net::resolve(settings_.host, settings_.port, error);
  if (!endpoint) return false;
  context_.endpoint = *endpoint;
  conn_ = std::make_unique<http::ClientConnection>(loop_, static_cast<http::ClientListener&>(*this),
                                                   context_, 0);
  conn_->connect(now_ns);
  return true;
}

void AmqpLink::stop() {
  stopped_ = true;
  ready_ = false;
  retry_.cancel();
  if (conn_) conn_->close();
}

void AmqpLink::tick(int64_t now_ns) {
  if (stopped_ || !conn_) return;
  if (conn_->opening() && now_ns - conn_->connect_started_ns() >= kConnectTimeoutNs) {
    conn_->fail(metrics::ErrorCause::kConnectTimeout);
    return;
  }
  if (!session_ || !conn_->connected()) return;
  session_->tick(now_ns);
  after_session();
}

bool AmqpLink::publish(std::string_view exchange, std::string_view routing_key,
                       const amqp::BasicProperties& properties, std::string_view body,
                       uint64_t* confirm_tag) {
  if (!ready_ || !session_ || !session_->open()) return false;
  *confirm_tag = session_->publish(exchange, routing_key, false, properties, body);
  flush();
  return true;
}

void AmqpLink::settle(uint64_t delivery_tag, AmqpStep::Settle how, bool requeue) {
  if (!session_ || !session_->open()) return;  // lost with the connection: the broker requeues
  switch (how) {
    case AmqpStep::Settle::kAck:
      session_->ack(delivery_tag, false);
      break;
    case AmqpStep::Settle::kNack:
      session_->nack(delivery_tag, false, requeue);
      break;
    case AmqpStep::Settle::kReject:
      session_->reject(delivery_tag, requeue);
      break;
  }
  flush();
}

void AmqpLink::on_confirm(amqp::Session&, uint64_t tag, bool multiple, bool ack) {
  listener_.on_amqp_confirm(tag, multiple, ack);
}

void AmqpLink::on_connected(http::ClientConnection& connection) {
  connection.set_raw();
  if (session_) retired_ = std::move(session_);
  session_ = std::make_unique<amqp::Session>(options_, static_cast<amqp::SessionListener&>(*this));
  session_->start(net::now_ns());
  flush();
}

size_t AmqpLink::on_data(http::ClientConnection&, char* data, size_t size) {
  if (!session_) return size;
  const size_t consumed = session_->on_read(std::string_view(data, size), net::now_ns());
  after_session();
  return consumed;
}

void AmqpLink::flush() {
  if (!session_ || session_->output().empty() || !conn_->connected()) return;
  amqp::Session* session = session_.get();
  conn_->send_raw(session->output());  // a failure comes back through on_failure
  session->output().clear();
}

void AmqpLink::after_session() {
  if (session_failed_) {
    flush();  // the close-ok the session may have queued
    session_failed_ = false;
    conn_->close();
    down(failure_text_, metrics::ErrorCause::kAmqpError, false);
    return;
  }
  flush();
}

void AmqpLink::on_failure(http::ClientConnection&, metrics::ErrorCause cause, bool) {
  if (session_ && session_->state() == amqp::Session::State::kClosed && session_failed_) return;
  std::string why = metrics::error_cause_name(cause);
  if (session_ && session_->on_transport_closed() == amqp::Failure::kAuthFailed) {
    why = amqp::failure_name(amqp::Failure::kAuthFailed);
  }
  // A certificate or TLS version the options refuse fails the same way
  // every time: counted by its cause, not retried (as `millstone amqp`).
  const bool tls_verdict = cause == metrics::ErrorCause::kTlsCertificateExpired ||
                           cause == metrics::ErrorCause::kTlsCertificateHostname ||
                           cause == metrics::ErrorCause::kTlsCertificateUntrusted ||
                           cause == metrics::ErrorCause::kTlsCertificate ||
                           cause == metrics::ErrorCause::kTlsProtocolVersion ||
                           cause == metrics::ErrorCause::kTlsAlertReceived;
  const bool tls_cause = tls_verdict || cause == metrics::ErrorCause::kTlsHandshake;
  down(fmt::format("{}: {}", why, conn_->error_text()),
       tls_cause ? cause : metrics::ErrorCause::kAmqpError, tls_verdict);
}

void AmqpLink::on_idle_close(http::ClientConnection& connection) {
  on_failure(connection, metrics::ErrorCause::kClosed, false);
}

void AmqpLink::down(std::string why, metrics::ErrorCause cause, bool for_good) {
  ready_ = false;
  if (session_) retired_ = std::move(session_);
  if (stopped_) return;
  listener_.on_amqp_down(why, cause, for_good);
  if (for_good) {
    stopped_ = true;
    return;
  }
  retry_.arm_after(kRetryNs);
}

void AmqpLink::on_open(amqp::Session& session) {
  for (const AmqpSettings::Exchange& e : settings_.exchanges) {
    amqp::ExchangeDeclare m;
    m.exchange = e.name;
    m.type = e.type;
    m.durable = e.durable;
    session.declare_exchange(m);
  }
  for (const AmqpSettings::Queue& q : settings_.queues) {
    amqp::QueueDeclare m;
    m.queue = AmqpSettings::for_worker(q.name, worker_);
    m.durable = q.durable;
    m.auto_delete = q.auto_delete;
    m.arguments = q.arguments;
    session.declare_queue(m);
    if (!q.bind_exchange.empty()) {
      amqp::QueueBind b;
      b.queue = AmqpSettings::for_worker(q.name, worker_);
      b.exchange = q.bind_exchange;
      b.routing_key = AmqpSettings::for_worker(q.bind_key, worker_);
      session.bind_queue(b);
    }
  }
  if (settings_.confirms) session.confirm_select();
  for (size_t i = 0; i < settings_.consumed.size(); ++i) {
    const AmqpSettings::Consumed& consumed = settings_.consumed[i];
    amqp::BasicConsume m;
    m.queue = AmqpSettings::for_worker(consumed.queue, worker_);
    m.consumer_tag = fmt::format("millstone.{}", i);
    // Without ack: manual, no acks: the broker forgets a message once it
    // is written to us, so a VU's wait is not lengthened by our own
    // acknowledgements. With it, basic.qos (global false) bounds the
    // unacknowledged messages of the consumer that follows (RabbitMQ's
    // per-consumer prefetch), so each queue gets its own.
    m.no_ack = !consumed.manual_ack;
    if (consumed.manual_ack) session.qos(consumed.prefetch);
    session.consume(m);
  }
  if (session.pending_calls() == 0) on_reply(session, amqp::ServerMethod{});
}

void AmqpLink::on_reply(amqp::Session& session, const amqp::ServerMethod&) {
  if (session.pending_calls() > 0 || ready_) return;
  ready_ = true;
  listener_.on_amqp_ready();
}

void AmqpLink::on_delivery(amqp::Session&, const amqp::Delivery& delivery) {
  std::string_view tag = delivery.consumer_tag;
  constexpr std::string_view kPrefix = "millstone.";
  if (tag.substr(0, kPrefix.size()) != kPrefix) return;
  uint32_t queue = 0;
  for (char c : tag.substr(kPrefix.size())) {
    if (c < '0' || c > '9') return;
    queue = queue * 10 + static_cast<uint32_t>(c - '0');
    if (queue >= settings_.consumed.size()) return;
  }
  listener_.on_amqp_delivery(queue, delivery, net::now_ns());
}

void AmqpLink::on_failed(amqp::Session&, amqp::Failure failure, uint16_t code,
                         std::string_view text) {
  session_failed_ = true;
  failure_text_ = code != 0 ? fmt::format("{} ({} {})", amqp::failure_name(failure), code, text)
                            : fmt::format("{}: {}", amqp::failure_name(failure), text);
}

void AmqpLink::on_closed(amqp::Session&) {
  session_failed_ = true;
  failure_text_ = "closed";
}

}  // namespace millstone::scenario
