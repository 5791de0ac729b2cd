#include "amqp/methods.h"

#include <fmt/format.h>

namespace millstone::amqp {

std::string method_name(uint32_t key) {
  switch (key) {
    case method::kConnectionStart:
      return "connection.start";
    case method::kConnectionStartOk:
      return "connection.start-ok";
    case method::kConnectionSecure:
      return "connection.secure";
    case method::kConnectionTune:
      return "connection.tune";
    case method::kConnectionTuneOk:
      return "connection.tune-ok";
    case method::kConnectionOpen:
      return "connection.open";
    case method::kConnectionOpenOk:
      return "connection.open-ok";
    case method::kConnectionClose:
      return "connection.close";
    case method::kConnectionCloseOk:
      return "connection.close-ok";
    case method::kConnectionBlocked:
      return "connection.blocked";
    case method::kConnectionUnblocked:
      return "connection.unblocked";
    case method::kChannelOpen:
      return "channel.open";
    case method::kChannelOpenOk:
      return "channel.open-ok";
    case method::kChannelFlow:
      return "channel.flow";
    case method::kChannelFlowOk:
      return "channel.flow-ok";
    case method::kChannelClose:
      return "channel.close";
    case method::kChannelCloseOk:
      return "channel.close-ok";
    case method::kExchangeDeclare:
      return "exchange.declare";
    case method::kExchangeDeclareOk:
      return "exchange.declare-ok";
    case method::kQueueDeclare:
      return "queue.declare";
    case method::kQueueDeclareOk:
      return "queue.declare-ok";
    case method::kQueueBind:
      return "queue.bind";
    case method::kQueueBindOk:
      return "queue.bind-ok";
    case method::kQueuePurge:
      return "queue.purge";
    case method::kQueuePurgeOk:
      return "queue.purge-ok";
    case method::kBasicQos:
      return "basic.qos";
    case method::kBasicQosOk:
      return "basic.qos-ok";
    case method::kBasicConsume:
      return "basic.consume";
    case method::kBasicConsumeOk:
      return "basic.consume-ok";
    case method::kBasicCancel:
      return "basic.cancel";
    case method::kBasicCancelOk:
      return "basic.cancel-ok";
    case method::kBasicPublish:
      return "basic.publish";
    case method::kBasicReturn:
      return "basic.return";
    case method::kBasicDeliver:
      return "basic.deliver";
    case method::kBasicAck:
      return "basic.ack";
    case method::kBasicReject:
      return "basic.reject";
    case method::kBasicNack:
      return "basic.nack";
    case method::kConfirmSelect:
      return "confirm.select";
    case method::kConfirmSelectOk:
      return "confirm.select-ok";
    default:
      return fmt::format("{}.{}", key >> 16, key & 0xffff);
  }
}

bool parse_server_method(std::string_view payload, ServerMethod* out) {
  Reader r(payload);
  const uint16_t class_id = r.short_uint();
  const uint16_t method_id = r.short_uint();
  if (!r.ok()) return false;
  out->key = method_key(class_id, method_id);
  switch (out->key) {
    case method::kConnectionStart:
      out->version_major = r.octet();
      out->version_minor = r.octet();
      r.table(&out->server_properties);
      out->mechanisms = std::string(r.long_string());
      r.long_string();  // locales
      break;
    case method::kConnectionSecure:
      r.long_string();  // challenge
      break;
    case method::kConnectionTune:
      out->channel_max = r.short_uint();
      out->frame_max = r.long_uint();
      out->heartbeat = r.short_uint();
      break;
    case method::kConnectionOpenOk:
      r.short_string();  // reserved
      break;
    case method::kConnectionClose:
    case method::kChannelClose:
      out->reply_code = r.short_uint();
      out->reply_text = std::string(r.short_string());
      out->failed_class = r.short_uint();
      out->failed_method = r.short_uint();
      break;
    case method::kConnectionCloseOk:
    case method::kConnectionUnblocked:
    case method::kChannelCloseOk:
    case method::kExchangeDeclareOk:
    case method::kQueueBindOk:
    case method::kBasicQosOk:
    case method::kConfirmSelectOk:
      break;
    case method::kConnectionBlocked:
      out->reason = std::string(r.short_string());
      break;
    case method::kChannelOpenOk:
      r.long_string();  // reserved
      break;
    case method::kChannelFlow:
    case method::kChannelFlowOk:
      out->active = (r.octet() & 1) != 0;
      break;
    case method::kQueueDeclareOk:
      out->queue = std::string(r.short_string());
      out->message_count = r.long_uint();
      out->consumer_count = r.long_uint();
      break;
    case method::kQueuePurgeOk:
      out->message_count = r.long_uint();
      break;
    case method::kBasicConsumeOk:
    case method::kBasicCancelOk:
      out->consumer_tag = std::string(r.short_string());
      break;
    case method::kBasicCancel:  // the broker cancels a consumer (queue deleted)
      out->consumer_tag = std::string(r.short_string());
      r.octet();  // no-wait
      break;
    case method::kBasicReturn:
      out->reply_code = r.short_uint();
      out->reply_text = std::string(r.short_string());
      out->exchange = std::string(r.short_string());
      out->routing_key = std::string(r.short_string());
      break;
    case method::kBasicDeliver:
      out->consumer_tag = std::string(r.short_string());
      out->delivery_tag = r.longlong_uint();
      out->redelivered = (r.octet() & 1) != 0;
      out->exchange = std::string(r.short_string());
      out->routing_key = std::string(r.short_string());
      break;
    case method::kBasicAck: {
      out->delivery_tag = r.longlong_uint();
      out->multiple = (r.octet() & 1) != 0;
      break;
    }
    case method::kBasicNack: {
      out->delivery_tag = r.longlong_uint();
      const uint8_t bits = r.octet();
      out->multiple = (bits & 1) != 0;
      out->requeue = (bits & 2) != 0;
      break;
    }
    default:
      return false;  // not a method a broker sends a client
  }
  return r.ok() && r.at_end();
}

namespace {

// Writes a method frame in place: header with a size patched by the destructor.
class MethodFrame {
 public:
  MethodFrame(std::string& out, uint16_t channel, uint32_t key) : out_(out), w_(out) {
    w_.octet(static_cast<uint8_t>(FrameType::kMethod));
    w_.short_uint(channel);
    size_at_ = out_.size();
    w_.long_uint(0);
    w_.short_uint(static_cast<uint16_t>(key >> 16));
    w_.short_uint(static_cast<uint16_t>(key & 0xffff));
  }
  ~MethodFrame() {
    const uint32_t size = static_cast<uint32_t>(out_.size() - size_at_ - 4);
    for (int i = 0; i < 4; ++i) {
      out_[size_at_ + i] = static_cast<char>((size >> (24 - 8 * i)) & 0xff);
    }
    out_.push_back(static_cast<char>(kFrameEnd));
  }
  MethodFrame(const MethodFrame&) = delete;
  MethodFrame& operator=(const MethodFrame&) = delete;
  Writer& w() { return w_; }

 private:
  std::string& out_;
  Writer w_;
  size_t size_at_ = 0;
};

}  // namespace

void append_start_ok(std::string& out, const FieldTable& client_properties,
                     std::string_view mechanism, std::string_view response) {
  MethodFrame f(out, 0, method::kConnectionStartOk);
  f.w().table(client_properties);
  f.w().short_string(mechanism);
  f.w().long_string(response);
  f.w().short_string("en_US");
}

void append_tune_ok(std::string& out, uint16_t channel_max, uint32_t frame_max,
                    uint16_t heartbeat) {
  MethodFrame f(out, 0, method::kConnectionTuneOk);
  f.w().short_uint(channel_max);
  f.w().long_uint(frame_max);
  f.w().short_uint(heartbeat);
}

void append_connection_open(std::string& out, std::string_view vhost) {
  MethodFrame f(out, 0, method::kConnectionOpen);
  f.w().short_string(vhost);
  f.w().short_string("");  // capabilities (reserved)
  f.w().bits({false});     // insist (reserved)
}

void append_connection_close(std::string& out, uint16_t code, std::string_view text) {
  MethodFrame f(out, 0, method::kConnectionClose);
  f.w().short_uint(code);
  f.w().short_string(text);
  f.w().short_uint(0);
  f.w().short_uint(0);
}

void append_connection_close_ok(std::string& out) {
  MethodFrame f(out, 0, method::kConnectionCloseOk);
}

void append_channel_open(std::string& out, uint16_t channel) {
  MethodFrame f(out, channel, method::kChannelOpen);
  f.w().short_string("");  // reserved
}

void append_channel_close(std::string& out, uint16_t channel, uint16_t code,
                          std::string_view text) {
  MethodFrame f(out, channel, method::kChannelClose);
  f.w().short_uint(code);
  f.w().short_string(text);
  f.w().short_uint(0);
  f.w().short_uint(0);
}

void append_channel_close_ok(std::string& out, uint16_t channel) {
  MethodFrame f(out, channel, method::kChannelCloseOk);
}

void append_channel_flow_ok(std::string& out, uint16_t channel, bool active) {
  MethodFrame f(out, channel, method::kChannelFlowOk);
  f.w().bits({active});
}

void append_exchange_declare(std::string& out, uint16_t channel, const ExchangeDeclare& m) {
  MethodFrame f(out, channel, method::kExchangeDeclare);
  f.w().short_uint(0);  // ticket (reserved)
  f.w().short_string(m.exchange);
  f.w().short_string(m.type);
  f.w().bits({m.passive, m.durable, m.auto_delete, m.internal, false});
  f.w().table(m.arguments);
}

void append_queue_declare(std::string& out, uint16_t channel, const QueueDeclare& m) {
  MethodFrame f(out, channel, method::kQueueDeclare);
  f.w().short_uint(0);
  f.w().short_string(m.queue);
  f.w().bits({m.passive, m.durable, m.exclusive, m.auto_delete, false});
  f.w().table(m.arguments);
}

void append_queue_bind(std::string& out, uint16_t channel, const QueueBind& m) {
  MethodFrame f(out, channel, method::kQueueBind);
  f.w().short_uint(0);
  f.w().short_string(m.queue);
  f.w().short_string(m.exchange);
  f.w().short_string(m.routing_key);
  f.w().bits({false});
  f.w().table(m.arguments);
}

void append_queue_purge(std::string& out, uint16_t channel, std::string_view queue) {
  MethodFrame f(out, channel, method::kQueuePurge);
  f.w().short_uint(0);
  f.w().short_string(queue);
  f.w().bits({false});
}

void append_basic_qos(std::string& out, uint16_t channel, uint16_t prefetch_count) {
  MethodFrame f(out, channel, method::kBasicQos);
  f.w().long_uint(0);  // prefetch-size: no byte limit
  f.w().short_uint(prefetch_count);
  f.w().bits({false});  // per consumer, not per channel
}

void append_basic_consume(std::string& out, uint16_t channel, const BasicConsume& m) {
  MethodFrame f(out, channel, method::kBasicConsume);
  f.w().short_uint(0);
  f.w().short_string(m.queue);
  f.w().short_string(m.consumer_tag);
  f.w().bits({false, m.no_ack, m.exclusive, false});
  f.w().table(m.arguments);
}

void append_basic_ack(std::string& out, uint16_t channel, uint64_t delivery_tag, bool multiple) {
  MethodFrame f(out, channel, method::kBasicAck);
  f.w().longlong_uint(delivery_tag);
  f.w().bits({multiple});
}

void append_basic_nack(std::string& out, uint16_t channel, uint64_t delivery_tag, bool multiple,
                       bool requeue) {
  MethodFrame f(out, channel, method::kBasicNack);
  f.w().longlong_uint(delivery_tag);
  f.w().bits({multiple, requeue});
}

void append_basic_reject(std::string& out, uint16_t channel, uint64_t delivery_tag, bool requeue) {
  MethodFrame f(out, channel, method::kBasicReject);
  f.w().longlong_uint(delivery_tag);
  f.w().bits({requeue});
}

void append_confirm_select(std::string& out, uint16_t channel) {
  MethodFrame f(out, channel, method::kConfirmSelect);
  f.w().bits({false});
}

void append_publish(std::string& out, uint16_t channel, std::string_view exchange,
                    std::string_view routing_key, bool mandatory, const BasicProperties& properties,
                    std::string_view body, uint32_t frame_max) {
  {
    MethodFrame f(out, channel, method::kBasicPublish);
    f.w().short_uint(0);
    f.w().short_string(exchange);
    f.w().short_string(routing_key);
    f.w().bits({mandatory, false});
  }
  std::string header;
  append_content_header(header, body.size(), properties);
  append_frame(out, FrameType::kHeader, channel, header);
  const size_t chunk = frame_max > kFrameHeaderSize + 1 ? frame_max - kFrameHeaderSize - 1 : 1;
  for (size_t at = 0; at < body.size(); at += chunk) {
    append_frame(out, FrameType::kBody, channel, body.substr(at, chunk));
  }
}

}  // namespace millstone::amqp
