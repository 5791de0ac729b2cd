#include "mock/amqp_link.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <simdjson.h>

#include "mock/counter.h"
#include "mock/socket_routes.h"
#include "net/clock.h"
#include "net/socket.h"
#include "text/printable.h"

namespace millstone::mock {

namespace {

constexpr int64_t kFirstBackoffNs = 250 * net::kNsPerMs;
constexpr int64_t kMaxBackoffNs = 5 * net::kNsPerSec;
constexpr int64_t kConnectTimeoutNs = 5 * net::kNsPerSec;
constexpr int64_t kTickNs = 500 * net::kNsPerMs;
constexpr size_t kReadBufferBytes = 64 * 1024;
// Publishes waiting for their due time, per worker: past this a route's
// publish is dropped and counted (publish_failed) rather than growing the
// worker without bound under a load the latency makes pile up.
constexpr size_t kMaxPending = 1'000'000;
constexpr uint16_t kPrefetch = 100;  // unacknowledged returns from the retry path

// Where the mock keeps a retried message's destination while it waits.
constexpr std::string_view kExchangeHeader = "x-millstone-exchange";
constexpr std::string_view kRoutingKeyHeader = "x-millstone-routing-key";
constexpr std::string_view kRetryTag = "millstone.retry.";
constexpr std::string_view kPushTag = "millstone.ws.";

// A header's value as text: strings as they are, integers in decimal;
// nullopt for other kinds.
std::optional<std::string> header_text(const amqp::BasicProperties& p, std::string_view name) {
  if (!p.headers) return std::nullopt;
  const amqp::FieldValue* v = amqp::find_field(*p.headers, name);
  if (v == nullptr) return std::nullopt;
  switch (v->kind) {
    case amqp::FieldValue::Kind::kString:
    case amqp::FieldValue::Kind::kBytes:
      return v->text;
    case amqp::FieldValue::Kind::kInt:
      return std::to_string(v->integer);
    case amqp::FieldValue::Kind::kUnsigned:
      return std::to_string(v->uinteger);
    default:
      return std::nullopt;
  }
}

// Headers the broker adds when it dead-letters a message (x-death and the
// first/last death summaries): a retried message comes back without them
// and without ours, as the processed message a service would publish.
bool added_on_the_way(std::string_view name) {
  return name == kExchangeHeader || name == kRoutingKeyHeader || name == "x-death" ||
         name.starts_with("x-first-death-") || name.starts_with("x-last-death-");
}

std::optional<size_t> index_after(std::string_view tag, std::string_view prefix) {
  if (!tag.starts_with(prefix) || tag.size() == prefix.size()) return std::nullopt;
  size_t value = 0;
  for (char c : tag.substr(prefix.size())) {
    if (c < '0' || c > '9' || value > 1'000'000) return std::nullopt;
    value = value * 10 + static_cast<size_t>(c - '0');
  }
  return value;
}

}  // namespace

// ---- shared counters ----

SharedAmqpCounters::SharedAmqpCounters(uint32_t workers) : workers_(workers) {
  bytes_ = sizeof(AmqpCounters) * workers_;
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  base_ = p == MAP_FAILED ? nullptr : static_cast<AmqpCounters*>(p);
  if (base_) {
    for (uint32_t i = 0; i < workers_; ++i)
      new (&base_[i]) AmqpCounters();
  }
}

SharedAmqpCounters::~SharedAmqpCounters() {
  if (base_) munmap(base_, bytes_);
}

uint64_t SharedAmqpCounters::sum(std::atomic<uint64_t> AmqpCounters::*field) const {
  uint64_t total = 0;
  for (uint32_t w = 0; w < workers_; ++w)
    total += (base_[w].*field).load(std::memory_order_relaxed);
  return total;
}

std::string SharedAmqpCounters::json(const MockAmqp& amqp) const {
  std::string url;
  for (char c : amqp.url_display) {
    if (c == '"' || c == '\\') url += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) url += c;
  }
  return fmt::format(
      ",\"amqp\":{{\"url\":\"{}\",\"connected\":{},\"workers\":{},\"connections\":{},"
      "\"connection_failures\":{},\"published\":{},\"publish_failed\":{},\"retried\":{},"
      "\"returned\":{},\"unroutable\":{},\"consumed\":{},\"pushed\":{},\"not_pushed\":{}}}",
      url, sum(&AmqpCounters::connected), workers_, sum(&AmqpCounters::connections),
      sum(&AmqpCounters::connection_failures), sum(&AmqpCounters::published),
      sum(&AmqpCounters::publish_failed), sum(&AmqpCounters::retried), sum(&AmqpCounters::returned),
      sum(&AmqpCounters::unroutable), sum(&AmqpCounters::consumed), sum(&AmqpCounters::pushed),
      sum(&AmqpCounters::not_pushed));
}

std::string SharedAmqpCounters::summary_line() const {
  return fmt::format(
      "millstone mock: amqp: {} published ({} through the retry queue, {} back from it), {} "
      "publish failed (broker down), {} unroutable; {} consumed for WebSocket pushes, {} copies "
      "pushed; {} connection failures\n",
      sum(&AmqpCounters::published), sum(&AmqpCounters::retried), sum(&AmqpCounters::returned),
      sum(&AmqpCounters::publish_failed), sum(&AmqpCounters::unroutable),
      sum(&AmqpCounters::consumed), sum(&AmqpCounters::pushed),
      sum(&AmqpCounters::connection_failures));
}

// ---- the link ----

MockAmqpLink::MockAmqpLink(net::EventLoop& loop, const MockConfig& config, uint32_t worker,
                           AmqpCounters& counters, Prng& prng, SocketRuntime& sockets)
    : loop_(loop),
      config_(config),
      amqp_(*config.amqp),
      worker_(worker),
      counters_(counters),
      prng_(prng),
      sockets_(sockets),
      due_timer_(loop, [this] { publish_due(); }),
      retry_timer_(loop, [this] { connect(); }),
      tick_timer_(loop, [this] {
        tick_timer_.arm_after(kTickNs);
        if (stopped_ || !conn_) return;
        const int64_t now = net::now_ns();
        if (conn_->opening() && now - conn_->connect_started_ns() >= kConnectTimeoutNs) {
          conn_->fail(metrics::ErrorCause::kConnectTimeout);
          return;
        }
        if (!session_ || !conn_->connected()) return;
        session_->tick(now);
        after_session();
      }) {
  options_.user = amqp_.user;
  options_.password = amqp_.password;
  options_.vhost = amqp_.vhost;
  options_.heartbeat_s = amqp_.heartbeat_s;
  context_.read_buffer.resize(kReadBufferBytes);
  context_.stats = &stats_;
  for (const Route& route : config.routes) {
    if (!route.publish || route.publish->retry_returns_to.empty()) continue;
    const std::string& q = route.publish->retry_returns_to;
    if (std::find(retry_queues_.begin(), retry_queues_.end(), q) == retry_queues_.end()) {
      retry_queues_.push_back(q);
    }
  }
}

MockAmqpLink::~MockAmqpLink() {
  stopped_ = true;
  if (conn_) conn_->close();
}

void MockAmqpLink::start() {
  tick_timer_.arm_after(kTickNs);
  connect();
}

void MockAmqpLink::stop() {
  if (stopped_) return;
  stopped_ = true;
  // Not yet due: they will not be sent, and are counted so that every
  // publish a route scheduled shows up somewhere.
  bump(counters_.publish_failed, pending_.size());
  pending_.clear();
  set_connected(false);
  retry_timer_.cancel();
  due_timer_.cancel();
  tick_timer_.cancel();
  if (session_ && session_->open() && conn_ && conn_->connected()) {
    session_->close();  // connection.close; the socket closes right after
    flush();
  }
  if (conn_) conn_->close();
}

void MockAmqpLink::connect() {
  if (stopped_) return;
  retired_.reset();
  if (!resolved_) {
    std::string error;
    const std::optional<net::Endpoint> endpoint = net::resolve(amqp_.host, amqp_.port, &error);
    if (!endpoint) {
      down(fmt::format("cannot resolve {}: {}", amqp_.host, error));
      return;
    }
    context_.endpoint = *endpoint;
    resolved_ = true;
    conn_ = std::make_unique<http::ClientConnection>(
        loop_, static_cast<http::ClientListener&>(*this), context_, 0);
  }
  conn_->connect(net::now_ns());
}

void MockAmqpLink::on_connected(http::ClientConnection& connection) {
  connection.set_raw();
  if (session_) retired_ = std::move(session_);
  session_ = std::make_unique<amqp::Session>(options_, static_cast<amqp::SessionListener&>(*this));
  session_->start(net::now_ns());
  flush();
}

size_t MockAmqpLink::on_data(http::ClientConnection&, char* data, size_t size) {
  if (!session_) return size;
  const size_t consumed = session_->on_read(std::string_view(data, size), net::now_ns());
  after_session();
  return consumed;
}

void MockAmqpLink::flush() {
  if (!session_ || session_->output().empty() || !conn_ || !conn_->connected()) return;
  amqp::Session* session = session_.get();
  conn_->send_raw(session->output());  // a failure comes back through on_failure
  session->output().clear();
}

void MockAmqpLink::after_session() {
  if (session_failed_) {
    flush();  // the close-ok the session may have queued
    session_failed_ = false;
    conn_->close();
    down(failure_text_);
    return;
  }
  flush();
}

void MockAmqpLink::on_failure(http::ClientConnection&, metrics::ErrorCause cause, bool) {
  if (session_ && session_->state() == amqp::Session::State::kClosed && session_failed_) return;
  std::string why = metrics::error_cause_name(cause);
  if (session_ && session_->on_transport_closed() == amqp::Failure::kAuthFailed) {
    why = amqp::failure_name(amqp::Failure::kAuthFailed);
  }
  const std::string_view text = conn_->error_text();
  down(text.empty() ? why : fmt::format("{}: {}", why, text));
}

void MockAmqpLink::on_idle_close(http::ClientConnection& connection) {
  on_failure(connection, metrics::ErrorCause::kClosed, false);
}

void MockAmqpLink::set_connected(bool connected) {
  if (ready_ == connected) return;
  ready_ = connected;
  counters_.connected.store(connected ? 1 : 0, std::memory_order_relaxed);
}

void MockAmqpLink::down(const std::string& why) {
  set_connected(false);
  if (session_) retired_ = std::move(session_);
  if (stopped_) return;
  bump(counters_.connection_failures);
  backoff_ns_ = backoff_ns_ == 0 ? kFirstBackoffNs : std::min(backoff_ns_ * 2, kMaxBackoffNs);
  // Said once per outage (not at every attempt), on stderr.
  if (failures_in_a_row_++ == 0) {
    std::fprintf(stderr,
                 "millstone mock: worker %u: amqp %s: %s; publishes are dropped and counted "
                 "(publish_failed) until it is back; retrying with a backoff up to %lld s\n",
                 worker_, text::printable(amqp_.url_display).c_str(), text::printable(why).c_str(),
                 static_cast<long long>(kMaxBackoffNs / net::kNsPerSec));
    std::fflush(stderr);
  }
  retry_timer_.arm_after(backoff_ns_);
}

void MockAmqpLink::on_open(amqp::Session& session) {
  for (const MockAmqp::Exchange& e : amqp_.exchanges) {
    amqp::ExchangeDeclare m;
    m.exchange = e.name;
    m.type = e.type;
    m.durable = e.durable;
    session.declare_exchange(m);
  }
  for (const MockAmqp::Queue& q : amqp_.queues) {
    amqp::QueueDeclare m;
    m.queue = q.name;
    m.durable = q.durable;
    m.auto_delete = q.auto_delete;
    if (q.message_ttl_ms >= 0) {
      m.arguments.emplace_back("x-message-ttl", amqp::FieldValue::of_long(q.message_ttl_ms));
    }
    if (q.dead_letter_exchange) {
      m.arguments.emplace_back("x-dead-letter-exchange",
                               amqp::FieldValue::of_string(*q.dead_letter_exchange));
    }
    if (q.dead_letter_routing_key) {
      m.arguments.emplace_back("x-dead-letter-routing-key",
                               amqp::FieldValue::of_string(*q.dead_letter_routing_key));
    }
    session.declare_queue(m);
    for (const MockAmqp::Binding& b : q.bind) {
      amqp::QueueBind bind;
      bind.queue = q.name;
      bind.exchange = b.exchange;
      bind.routing_key = b.routing_key;
      session.bind_queue(bind);
    }
  }
  if (!retry_queues_.empty()) session.qos(kPrefetch);
  for (size_t i = 0; i < retry_queues_.size(); ++i) {
    amqp::BasicConsume c;
    c.queue = retry_queues_[i];
    c.consumer_tag = fmt::format("{}{}", kRetryTag, i);
    session.consume(c);  // acked once published again
  }
  // Each worker's own queue per pushing route: every worker sees every
  // message, and writes it to the connections it holds.
  for (size_t row = 0; row < config_.websockets.size(); ++row) {
    const std::optional<SocketAmqpPush>& push = config_.websockets[row].amqp_push;
    if (!push) continue;
    amqp::QueueDeclare q;
    q.queue = fmt::format("millstone.mock.{}.{}.ws{}", getpid(), worker_, row);
    q.exclusive = true;
    q.auto_delete = true;
    session.declare_queue(q);
    amqp::QueueBind b;
    b.queue = q.queue;
    b.exchange = push->exchange;
    b.routing_key = push->routing_key;
    session.bind_queue(b);
    amqp::BasicConsume c;
    c.queue = q.queue;
    c.consumer_tag = fmt::format("{}{}", kPushTag, row);
    c.no_ack = true;
    c.exclusive = true;
    session.consume(c);
  }
  if (session.pending_calls() == 0) on_reply(session, amqp::ServerMethod{});
}

void MockAmqpLink::on_reply(amqp::Session& session, const amqp::ServerMethod&) {
  if (session.pending_calls() > 0 || ready_) return;
  set_connected(true);
  bump(counters_.connections);
  if (failures_in_a_row_ > 0) {
    std::fprintf(stderr, "millstone mock: worker %u: amqp %s: connected again\n", worker_,
                 text::printable(amqp_.url_display).c_str());
    std::fflush(stderr);
  }
  failures_in_a_row_ = 0;
  backoff_ns_ = 0;
}

void MockAmqpLink::on_failed(amqp::Session&, amqp::Failure failure, uint16_t code,
                             std::string_view text) {
  session_failed_ = true;
  failure_text_ = code != 0 ? fmt::format("{} ({} {})", amqp::failure_name(failure), code, text)
                            : fmt::format("{}: {}", amqp::failure_name(failure), text);
}

void MockAmqpLink::on_closed(amqp::Session&) {
  session_failed_ = true;
  failure_text_ = "closed";
}

void MockAmqpLink::on_return(amqp::Session&, const amqp::ServerMethod&) {
  bump(counters_.unroutable);
}

// ---- publishing ----

void MockAmqpLink::schedule(const RoutePublish& publish, TemplateRenderer& renderer,
                            int64_t answer_delay_us) {
  if (stopped_ || pending_.size() >= kMaxPending) {
    bump(counters_.publish_failed);
    return;
  }
  Pending p;
  const int64_t delay_us = std::max<int64_t>(0, answer_delay_us) + publish.latency.sample_us(prng_);
  p.due_ns = net::now_ns() + delay_us * net::kNsPerUs;
  p.sequence = sequence_++;
  p.retry = publish.fail > 0 && prng_.uniform() < publish.fail;
  p.exchange = publish.exchange;
  renderer.render(publish.routing_key, &p.routing_key);
  if (p.routing_key.size() > 255) p.routing_key.resize(255);  // a short string on the wire
  p.retry_queue = publish.retry_queue;
  renderer.render(publish.body, &p.body);
  if (!publish.content_type.empty()) p.properties.content_type = publish.content_type;
  if (publish.persistent) p.properties.delivery_mode = 2;
  auto short_text = [&](const Template& t) {
    std::string out;
    renderer.render(t, &out);
    if (out.size() > 255) out.resize(255);
    return out;
  };
  if (publish.correlation_id) p.properties.correlation_id = short_text(*publish.correlation_id);
  if (publish.message_id) p.properties.message_id = short_text(*publish.message_id);
  if (!publish.headers.empty()) {
    amqp::FieldTable headers;
    for (const auto& [name, value] : publish.headers) {
      std::string text;
      renderer.render(value, &text);
      headers.emplace_back(name, amqp::FieldValue::of_string(std::move(text)));
    }
    p.properties.headers = std::move(headers);
  }
  pending_.push_back(std::move(p));
  std::push_heap(pending_.begin(), pending_.end(), Later{});
  const int64_t first = pending_.front().due_ns;
  if (!due_timer_.armed() || first < due_timer_.deadline()) due_timer_.arm_at(first);
}

void MockAmqpLink::publish_due() {
  const int64_t now = net::now_ns();
  bool wrote = false;
  while (!pending_.empty() && pending_.front().due_ns <= now) {
    std::pop_heap(pending_.begin(), pending_.end(), Later{});
    Pending p = std::move(pending_.back());
    pending_.pop_back();
    if (!ready_ || !session_ || !session_->open()) {
      bump(counters_.publish_failed);
      continue;
    }
    if (p.retry) {
      // To the retry queue (the default exchange routes by queue name), with
      // its real destination in our headers for when it comes back.
      if (!p.properties.headers) p.properties.headers.emplace();
      p.properties.headers->emplace_back(std::string(kExchangeHeader),
                                         amqp::FieldValue::of_string(p.exchange));
      p.properties.headers->emplace_back(std::string(kRoutingKeyHeader),
                                         amqp::FieldValue::of_string(p.routing_key));
      session_->publish("", p.retry_queue, true, p.properties, p.body);
      bump(counters_.retried);
    } else {
      session_->publish(p.exchange, p.routing_key, true, p.properties, p.body);
      bump(counters_.published);
    }
    wrote = true;
  }
  if (!pending_.empty()) due_timer_.arm_at(pending_.front().due_ns);
  if (wrote) flush();
}

void MockAmqpLink::returned_from_retry(const amqp::Delivery& d) {
  const amqp::BasicProperties& in = *d.properties;
  const std::optional<std::string> exchange = header_text(in, kExchangeHeader);
  const std::optional<std::string> key = header_text(in, kRoutingKeyHeader);
  if (exchange && key) {
    amqp::BasicProperties out = in;
    if (out.headers) {
      std::erase_if(*out.headers, [](const auto& h) { return added_on_the_way(h.first); });
      if (out.headers->empty()) out.headers.reset();
    }
    session_->publish(*exchange, *key, true, out, d.body);
    bump(counters_.returned);
    bump(counters_.published);
  }
  // Not ours (no destination): acknowledged all the same, or it would come back forever.
  session_->ack(d.delivery_tag, false);
}

void MockAmqpLink::on_delivery(amqp::Session&, const amqp::Delivery& d) {
  if (stopped_) return;
  if (index_after(d.consumer_tag, kRetryTag)) {
    returned_from_retry(d);
    flush();
    return;
  }
  const std::optional<size_t> row = index_after(d.consumer_tag, kPushTag);
  if (row && *row < config_.websockets.size() && config_.websockets[*row].amqp_push) {
    push_delivery(*row, d);
  }
}

void MockAmqpLink::push_delivery(size_t row, const amqp::Delivery& d) {
  const SocketAmqpPush& push = *config_.websockets[row].amqp_push;
  bump(counters_.consumed);
  std::optional<std::string> key;
  const amqp::BasicProperties& props = *d.properties;
  switch (push.match) {
    case SocketAmqpPush::Match::kNone:
      break;
    case SocketAmqpPush::Match::kCorrelationId:
      key = props.correlation_id;
      break;
    case SocketAmqpPush::Match::kMessageId:
      key = props.message_id;
      break;
    case SocketAmqpPush::Match::kHeader:
      key = header_text(props, push.match_name);
      break;
    case SocketAmqpPush::Match::kJson: {
      static thread_local simdjson::dom::parser parser;
      json_scratch_.assign(d.body);
      json_scratch_.append(simdjson::SIMDJSON_PADDING, '\0');
      simdjson::dom::element root;
      simdjson::dom::element value;
      if (parser.parse(json_scratch_.data(), d.body.size(), false).get(root) == simdjson::SUCCESS &&
          root.at_pointer(push.match_name).get(value) == simdjson::SUCCESS) {
        std::string_view text;
        if (value.get_string().get(text) == simdjson::SUCCESS) {
          key = std::string(text);
        } else {
          key = simdjson::minify(value);  // a number, true/false: as written
        }
      }
      break;
    }
  }
  if (push.match != SocketAmqpPush::Match::kNone && !key) {
    bump(counters_.not_pushed);  // no key in the message: nobody waits for it
    return;
  }
  const size_t copies = sockets_.push_amqp(row, key.has_value(), key.value_or(""), d.body);
  if (copies == 0) {
    bump(counters_.not_pushed);
  } else {
    bump(counters_.pushed, copies);
  }
}

}  // namespace millstone::mock
