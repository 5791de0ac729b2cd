// amqp: -> Plan::amqp, and the amqp.publish / amqp.expect steps
// (docs/amqp.md#scenario-steps). Checked here: the URL, names the broker
// would refuse (over 255 bytes), that every expect on a queue finds its
// correlation value the same way, and that steps have an amqp: block.
#include <algorithm>

#include <fmt/format.h>

#include "amqp/url.h"
#include "scenario/loader_context.h"

namespace millstone::scenario::detail {

namespace {

using yaml::Field;
using yaml::MapFields;
using yaml::shown;

constexpr std::string_view kAmqpKeys[] = {"url", "heartbeat", "exchanges", "queues"};
constexpr std::string_view kExchangeKeys[] = {"name", "type", "durable"};
constexpr std::string_view kQueueKeys[] = {
    "name",       "durable",     "auto_delete",          "bind",
    "type",       "message_ttl", "dead_letter_exchange", "dead_letter_routing_key",
    "max_length", "arguments"};
constexpr std::string_view kBindKeys[] = {"exchange", "routing_key"};
constexpr std::string_view kPublishKeys[] = {
    "exchange",     "routing_key", "correlation_id", "message_id", "reply_to",
    "content_type", "persistent",  "headers",        "body",       "confirm"};
constexpr std::string_view kExpectKeys[] = {"queue",    "correlation_id", "message_id", "header",
                                            "json",     "contains",       "timeout",    "ack",
                                            "on_match", "requeue",        "prefetch",   "from"};
constexpr size_t kMaxShortString = 255;  // AMQP short strings: names, routing keys
constexpr size_t kMaxDeclared = 64;

// Queue names and binding keys are fixed per worker: of templates they take
// {{ worker }} only (a queue per worker).
void check_per_worker(yaml::Reader& reader, const Field& field, const std::string& text) {
  std::string_view rest = text;
  while (true) {
    const size_t at = rest.find("{{");
    if (at == std::string_view::npos) return;
    const size_t end = rest.find("}}", at);
    std::string_view inside =
        end == std::string_view::npos ? rest.substr(at + 2) : rest.substr(at + 2, end - at - 2);
    while (!inside.empty() && inside.front() == ' ')
      inside.remove_prefix(1);
    while (!inside.empty() && inside.back() == ' ')
      inside.remove_suffix(1);
    if (end == std::string_view::npos || inside != "worker") {
      reader.fail(field.mark, fmt::format("{} {} is a template; expected fixed text, where only "
                                          "{{{{ worker }}}} may appear (a queue per worker)",
                                          field.key, shown(text)));
    }
    rest.remove_prefix(end + 2);
  }
}

std::string short_string(yaml::Reader& reader, const Field& field, std::string_view expected) {
  std::string text = reader.scalar(field, expected);
  if (text.size() > kMaxShortString) {
    reader.fail(field.mark, fmt::format("{} is {} bytes; expected at most 255 (an AMQP short "
                                        "string)",
                                        field.key, text.size()));
  }
  return text;
}

std::string name_of(yaml::Reader& reader, const MapFields& map, std::string_view what) {
  const Field* name = map.find("name");
  if (name == nullptr) {
    reader.fail(map.mark, fmt::format("{} has no name; expected name: NAME", what));
  }
  std::string text = short_string(reader, *name, "a name");
  check_per_worker(reader, *name, text);
  if (text.empty()) {
    reader.fail(name->mark, fmt::format("{} name is empty; expected a name", what));
  }
  return text;
}

const std::vector<YAML::Node> list_of(yaml::Reader& reader, const Field& field,
                                      std::string_view example) {
  if (!field.value.IsSequence()) {
    reader.fail(field.mark, fmt::format("amqp {} is {}; expected a list such as {}", field.key,
                                        yaml::kind_of(field.value), example));
  }
  std::vector<YAML::Node> items(field.value.begin(), field.value.end());
  if (items.size() > kMaxDeclared) {
    reader.fail(field.mark, fmt::format("amqp {} has {} entries; expected at most {}", field.key,
                                        items.size(), kMaxDeclared));
  }
  return items;
}

// A queue argument from YAML: a boolean (true/false), an integer (a 64-bit
// 'l', as RabbitMQ expects for x-message-ttl, x-max-length...) or, quoted or
// otherwise, a string.
amqp::FieldValue argument_value(yaml::Reader& reader, const Field& field) {
  const std::string text = reader.scalar(field, "a number, true/false or text");
  const bool plain = field.value.Tag() != "!";  // quoted scalars stay text
  if (plain && (text == "true" || text == "false"))
    return amqp::FieldValue::of_bool(text == "true");
  if (plain && !text.empty()) {
    size_t digits = text.front() == '-' ? 1 : 0;
    bool integer = digits < text.size() && text.size() - digits <= 18;
    for (size_t i = digits; i < text.size() && integer; ++i)
      integer = text[i] >= '0' && text[i] <= '9';
    if (integer) return amqp::FieldValue::of_long(std::stoll(text));
  }
  if (text.size() > 65535) {
    reader.fail(field.mark, fmt::format("argument {} is {} bytes; expected at most 65535",
                                        field.key, text.size()));
  }
  return amqp::FieldValue::of_string(text);
}

void add_argument(yaml::Reader& reader, const Field& field, AmqpSettings::Queue& queue,
                  const std::string& name, amqp::FieldValue value) {
  if (amqp::find_field(queue.arguments, name) != nullptr) {
    reader.fail(field.key_mark, fmt::format("amqp queue {} sets {} twice; expected it once "
                                            "(by its own key, such as message_ttl:, or under "
                                            "arguments:)",
                                            shown(queue.name), name));
  }
  queue.arguments.emplace_back(name, std::move(value));
}

// The queue's type and the x-arguments its convenience keys stand for.
void compile_queue_arguments(yaml::Reader& reader, const MapFields& q, AmqpSettings::Queue& queue) {
  auto positive = [&](const Field& f) {
    return static_cast<int64_t>(reader.number(f, 0, 9.0e15, true));
  };
  if (const Field* f = q.find("message_ttl")) {
    const int64_t us = reader.duration_us(*f);
    if (us < 0 || us % 1000 != 0) {
      reader.fail(f->mark, "message_ttl is not whole milliseconds; expected e.g. 500ms or 30s");
    }
    add_argument(reader, *f, queue, "x-message-ttl", amqp::FieldValue::of_long(us / 1000));
  }
  if (const Field* f = q.find("dead_letter_exchange")) {
    add_argument(reader, *f, queue, "x-dead-letter-exchange",
                 amqp::FieldValue::of_string(short_string(reader, *f, "an exchange name")));
  }
  if (const Field* f = q.find("dead_letter_routing_key")) {
    if (q.find("dead_letter_exchange") == nullptr) {
      reader.fail(f->key_mark,
                  "dead_letter_routing_key without dead_letter_exchange; expected both "
                  "(the key is used when a message is dead-lettered to that exchange)");
    }
    std::string key = short_string(reader, *f, "a routing key");
    check_per_worker(reader, *f, key);
    add_argument(reader, *f, queue, "x-dead-letter-routing-key",
                 amqp::FieldValue::of_string(std::move(key)));
  }
  if (const Field* f = q.find("max_length")) {
    add_argument(reader, *f, queue, "x-max-length", amqp::FieldValue::of_long(positive(*f)));
  }
  if (const Field* f = q.find("type")) {
    const std::string type = reader.scalar(*f, "classic, quorum or stream");
    if (type != "classic" && type != "quorum" && type != "stream") {
      reader.fail(f->mark, fmt::format("amqp queue type {} is unknown; expected classic, quorum or "
                                       "stream",
                                       shown(type)));
    }
    if (type != "classic") {
      // The broker refuses non-durable or auto-delete replicated queues (406).
      if (const Field* d = q.find("durable"); d != nullptr && !queue.durable) {
        reader.fail(d->mark, fmt::format("a {} queue is durable; expected durable: true or no "
                                         "durable: key",
                                         type));
      }
      if (queue.auto_delete) {
        reader.fail(
            q.find("auto_delete")->mark,
            fmt::format("a {} queue cannot be auto_delete; expected auto_delete: false", type));
      }
      queue.durable = true;
    }
    add_argument(reader, *f, queue, "x-queue-type", amqp::FieldValue::of_string(type));
  }
  if (const Field* arguments = q.find("arguments")) {
    const MapFields a = reader.read_map(arguments->value, arguments->mark, "arguments", {});
    for (const Field& arg : a.fields) {
      if (arg.key.empty() || arg.key.size() > kMaxShortString) {
        reader.fail(arg.key_mark,
                    "argument name is empty or over 255 bytes; expected a short name");
      }
      add_argument(reader, arg, queue, arg.key, argument_value(reader, arg));
    }
  }
}

}  // namespace

void compile_amqp(LoadContext& ctx, const Field& field) {
  yaml::Reader& reader = ctx.reader;
  AmqpSettings& amqp = ctx.plan.amqp;
  amqp.location = reader.location(field.mark);
  MapFields map;
  const Field* url = nullptr;
  if (field.value.IsScalar()) {
    url = &field;
  } else {
    map = reader.read_map(field.value, field.mark, "amqp", kAmqpKeys);
    url = map.find("url");
    if (url == nullptr) {
      reader.fail(map.mark,
                  "amqp has no url; expected e.g. url: amqp://guest:guest@127.0.0.1:5672/");
    }
  }
  const std::string text = reader.scalar(*url, "an amqp:// or amqps:// URL");
  std::string error;
  const std::optional<amqp::AmqpUrl> parsed = amqp::parse_amqp_url(text, &error);
  if (!parsed) {
    reader.fail(url->mark, fmt::format("amqp url {}: {}", shown(text), error));
  }
  amqp.enabled = true;
  amqp.url_display = parsed->display();
  amqp.tls = parsed->tls;
  amqp.host = parsed->host;
  amqp.port = parsed->port;
  amqp.user = parsed->user;
  amqp.password = parsed->password;
  amqp.vhost = parsed->vhost;
  if (field.value.IsScalar()) return;

  if (const Field* heartbeat = map.find("heartbeat")) {
    const int64_t us = reader.duration_us(*heartbeat);
    if (us < 1'000'000 || us > 3600'000'000) {
      reader.fail(heartbeat->mark, "heartbeat is out of range; expected 1s to 1h");
    }
    amqp.heartbeat_s = static_cast<uint16_t>(us / 1'000'000);
  }
  if (const Field* exchanges = map.find("exchanges")) {
    for (const YAML::Node& item : list_of(reader, *exchanges, "[{name: orders, type: topic}]")) {
      const YAML::Mark mark = item.Mark().is_null() ? exchanges->mark : item.Mark();
      const MapFields e = reader.read_map(item, mark, "amqp exchange", kExchangeKeys);
      AmqpSettings::Exchange exchange;
      exchange.name = name_of(reader, e, "amqp exchange");
      if (exchange.name.rfind("amq.", 0) == 0) {
        reader.fail(e.mark, fmt::format("amqp exchange {} is one of the broker's own (amq.*); "
                                        "expected it under exchanges: only if declared by you",
                                        shown(exchange.name)));
      }
      if (const Field* type = e.find("type")) {
        exchange.type = reader.scalar(*type, "direct, fanout, topic or headers");
        if (exchange.type != "direct" && exchange.type != "fanout" && exchange.type != "topic" &&
            exchange.type != "headers") {
          reader.fail(type->mark, fmt::format("amqp exchange type {} is unknown; expected "
                                              "direct, fanout, topic or headers",
                                              shown(exchange.type)));
        }
      }
      if (const Field* durable = e.find("durable")) exchange.durable = reader.boolean(*durable);
      amqp.exchanges.push_back(std::move(exchange));
    }
  }
  if (const Field* queues = map.find("queues")) {
    for (const YAML::Node& item :
         list_of(reader, *queues, "[{name: done, bind: {exchange: orders, routing_key: done}}]")) {
      const YAML::Mark mark = item.Mark().is_null() ? queues->mark : item.Mark();
      const MapFields q = reader.read_map(item, mark, "amqp queue", kQueueKeys);
      AmqpSettings::Queue queue;
      queue.name = name_of(reader, q, "amqp queue");
      if (const Field* durable = q.find("durable")) queue.durable = reader.boolean(*durable);
      if (const Field* ad = q.find("auto_delete")) queue.auto_delete = reader.boolean(*ad);
      compile_queue_arguments(reader, q, queue);
      if (const Field* bind = q.find("bind")) {
        const MapFields b = reader.read_map(bind->value, bind->mark, "bind", kBindKeys);
        const Field* exchange = b.find("exchange");
        if (exchange == nullptr) {
          reader.fail(b.mark,
                      "bind has no exchange; expected bind: {exchange: NAME, "
                      "routing_key: KEY}");
        }
        queue.bind_exchange = short_string(reader, *exchange, "an exchange name");
        if (queue.bind_exchange.empty()) {
          reader.fail(exchange->mark,
                      "bind exchange is empty; expected a named exchange (every "
                      "queue is bound to the default one already)");
        }
        if (const Field* key = b.find("routing_key")) {
          queue.bind_key = short_string(reader, *key, "a routing key");
          check_per_worker(reader, *key, queue.bind_key);
        }
      }
      amqp.queues.push_back(std::move(queue));
    }
  }
}

AmqpStep compile_amqp_step(LoadContext& ctx, const Field& action) {
  yaml::Reader& reader = ctx.reader;
  AmqpSettings& amqp = ctx.plan.amqp;
  if (!amqp.enabled) {
    reader.fail(action.key_mark, fmt::format("{} needs a connection; expected an amqp: block at "
                                             "the top of the file (amqp: {{url: "
                                             "amqp://127.0.0.1:5672/}})",
                                             action.key));
  }
  AmqpStep step;
  auto templ = [&](const Field& f) {
    return compile_template(ctx, f.value, f.mark, reader.scalar(f, "text"), f.key);
  };
  if (action.key == "amqp.publish") {
    step.kind = AmqpStep::Kind::kPublish;
    const MapFields map = reader.read_map(action.value, action.mark, action.key, kPublishKeys);
    if (const Field* exchange = map.find("exchange")) {
      step.exchange = short_string(reader, *exchange, "an exchange name");
    }
    const Field* key = map.find("routing_key");
    if (key == nullptr && step.exchange.empty()) {
      reader.fail(map.mark,
                  "amqp.publish has neither exchange nor routing_key; expected "
                  "exchange: NAME and routing_key: KEY, or routing_key: QUEUE alone "
                  "(the default exchange)");
    }
    if (key != nullptr) step.routing_key = templ(*key);
    if (const Field* f = map.find("correlation_id")) step.correlation_id = templ(*f);
    if (const Field* f = map.find("message_id")) step.message_id = templ(*f);
    if (const Field* f = map.find("reply_to")) step.reply_to = templ(*f);
    if (const Field* f = map.find("content_type")) {
      step.content_type = short_string(reader, *f, "a media type");
    }
    if (const Field* f = map.find("persistent")) step.delivery_mode = reader.boolean(*f) ? 2 : 1;
    if (const Field* headers = map.find("headers")) {
      const MapFields h = reader.read_map(headers->value, headers->mark, "headers", {});
      for (const Field& header : h.fields) {
        if (header.key.empty() || header.key.size() > kMaxShortString) {
          reader.fail(header.key_mark,
                      "header name is empty or over 255 bytes; expected a "
                      "short name");
        }
        step.headers.emplace_back(header.key, templ(header));
      }
    }
    if (const Field* body = map.find("body")) step.body = templ(*body);
    if (const Field* f = map.find("confirm")) {
      step.confirm = reader.boolean(*f);
      amqp.confirms = amqp.confirms || step.confirm;
    }
    return step;
  }

  step.kind = AmqpStep::Kind::kExpect;
  const MapFields map = reader.read_map(action.value, action.mark, action.key, kExpectKeys);
  const Field* queue = map.find("queue");
  if (queue == nullptr) {
    reader.fail(map.mark,
                "amqp.expect has no queue; expected queue: NAME (the queue the "
                "matching message arrives on)");
  }
  AmqpSettings::Consumed consumed;
  consumed.queue = short_string(reader, *queue, "a queue name");
  check_per_worker(reader, *queue, consumed.queue);
  consumed.location = reader.location(map.mark);
  if (consumed.queue.empty()) {
    reader.fail(queue->mark, "amqp.expect queue is empty; expected a queue name");
  }
  const Field* by = nullptr;
  for (std::string_view name : {"correlation_id", "message_id", "header", "json"}) {
    const Field* f = map.find(name);
    if (f == nullptr) continue;
    if (by != nullptr) {
      reader.fail(f->key_mark, fmt::format("amqp.expect has both {} and {}; expected one way to "
                                           "find the correlation id",
                                           by->key, f->key));
    }
    by = f;
  }
  if (by == nullptr) {
    reader.fail(map.mark,
                "amqp.expect has nothing to match; expected one of correlation_id: "
                "\"{{ corr }}\", message_id:, header: {NAME: VALUE} or json: {$.PATH: "
                "VALUE}");
  }
  if (by->key == "correlation_id" || by->key == "message_id") {
    consumed.by = by->key == "correlation_id" ? AmqpSettings::Consumed::By::kCorrelationId
                                              : AmqpSettings::Consumed::By::kMessageId;
    step.key = templ(*by);
  } else {
    const MapFields inner = reader.read_map(by->value, by->mark, by->key, {});
    if (inner.fields.size() != 1) {
      reader.fail(by->mark, fmt::format("amqp.expect {} has {} entries; expected one, such as "
                                        "{}",
                                        by->key, inner.fields.size(),
                                        by->key == "json" ? "{$.order_id: \"{{ corr }}\"}"
                                                          : "{x-order: \"{{ corr }}\"}"));
    }
    const Field& entry = inner.fields.front();
    if (by->key == "header") {
      consumed.by = AmqpSettings::Consumed::By::kHeader;
      consumed.field = entry.key;
    } else {
      consumed.by = AmqpSettings::Consumed::By::kJson;
      consumed.field = entry.key;
      std::string error;
      consumed.path = JsonPath::compile(entry.key, &error);
      if (!consumed.path) {
        reader.fail(entry.key_mark,
                    fmt::format("amqp.expect json path {}: {}", shown(entry.key), error));
      }
    }
    step.key = templ(entry);
  }
  if (const Field* contains = map.find("contains")) step.contains = templ(*contains);
  if (const Field* timeout = map.find("timeout")) {
    step.timeout_us = reader.duration_us(*timeout);
    if (step.timeout_us <= 0) {
      reader.fail(timeout->mark, "timeout is 0; expected a duration above 0, such as 5s");
    }
  }

  const Field* ack = map.find("ack");
  const Field* on_match = map.find("on_match");
  const Field* requeue = map.find("requeue");
  const Field* prefetch = map.find("prefetch");
  if (ack != nullptr) {
    const std::string mode = reader.scalar(*ack, "auto or manual");
    if (mode != "auto" && mode != "manual") {
      reader.fail(ack->mark, fmt::format("ack {} is unknown; expected auto (the broker forgets a "
                                         "message once sent) or manual",
                                         shown(mode)));
    }
    consumed.manual_ack = mode == "manual";
    consumed.ack_given = true;
  }
  if (on_match != nullptr) {
    const std::string what = reader.scalar(*on_match, "ack, nack or reject");
    if (what == "ack") {
      step.on_match = AmqpStep::Settle::kAck;
    } else if (what == "nack") {
      step.on_match = AmqpStep::Settle::kNack;
    } else if (what == "reject") {
      step.on_match = AmqpStep::Settle::kReject;
    } else {
      reader.fail(on_match->mark,
                  fmt::format("on_match {} is unknown; expected ack, nack or reject", shown(what)));
    }
    if (ack != nullptr && !consumed.manual_ack) {
      reader.fail(on_match->key_mark, "on_match with ack: auto; expected ack: manual (or no ack:)");
    }
    consumed.manual_ack = true;
    consumed.ack_given = true;
  }
  if (requeue != nullptr) {
    step.requeue = reader.boolean(*requeue);
    if (step.on_match == AmqpStep::Settle::kAck) {
      reader.fail(requeue->key_mark,
                  "requeue is for on_match: nack or reject; expected it with one of them");
    }
  }
  if (prefetch != nullptr) {
    consumed.prefetch = static_cast<uint16_t>(reader.number(*prefetch, 0, 65535, true));
    if (ack != nullptr && !consumed.manual_ack) {
      reader.fail(prefetch->key_mark,
                  "prefetch with ack: auto; expected ack: manual (the broker does not bound "
                  "what it sends without acknowledgements)");
    }
    consumed.manual_ack = true;
    consumed.ack_given = true;
  }

  auto same = std::find_if(amqp.consumed.begin(), amqp.consumed.end(),
                           [&](const auto& c) { return c.queue == consumed.queue; });
  if (same == amqp.consumed.end()) {
    step.queue = static_cast<uint32_t>(amqp.consumed.size());
    amqp.consumed.push_back(std::move(consumed));
  } else {
    if (same->by != consumed.by || same->field != consumed.field) {
      reader.fail(by->key_mark, fmt::format("amqp.expect on queue {} matches by {} {}, but the "
                                            "expect at {} on that queue matches otherwise; "
                                            "expected one way per queue (each delivery is looked "
                                            "up once)",
                                            shown(consumed.queue), by->key, shown(consumed.field),
                                            same->location));
    }
    if (same->ack_given && consumed.ack_given &&
        (same->manual_ack != consumed.manual_ack || same->prefetch != consumed.prefetch)) {
      reader.fail(
          map.mark,
          fmt::format("amqp.expect on queue {} acknowledges {} (prefetch {}), "
                      "but the expect at {} on that queue {} (prefetch {}); "
                      "expected one way per queue (one consumer reads it)",
                      shown(consumed.queue), consumed.manual_ack ? "manually" : "automatically",
                      consumed.prefetch, same->location,
                      same->manual_ack ? "manually" : "automatically", same->prefetch));
    }
    if (!same->ack_given && consumed.ack_given) {
      same->manual_ack = consumed.manual_ack;
      same->prefetch = consumed.prefetch;
      same->ack_given = true;
    }
    step.queue = static_cast<uint32_t>(same - amqp.consumed.begin());
  }
  return step;
}

}  // namespace millstone::scenario::detail
