#pragma once
// The AMQP 0-9-1 methods a client needs (the specification's method table):
// encoders for what a client sends, one decoder for what a broker sends.
// Classes: connection (10), channel (20), exchange (40), queue (50),
// basic (60), confirm (85).
#include <cstdint>
#include <string>
#include <string_view>

#include "amqp/codec.h"

namespace millstone::amqp {

// (class id << 16) | method id: one number per method, for switches.
constexpr uint32_t method_key(uint16_t class_id, uint16_t method_id) {
  return (static_cast<uint32_t>(class_id) << 16) | method_id;
}

namespace method {
inline constexpr uint32_t kConnectionStart = method_key(10, 10);
inline constexpr uint32_t kConnectionStartOk = method_key(10, 11);
inline constexpr uint32_t kConnectionSecure = method_key(10, 20);
inline constexpr uint32_t kConnectionTune = method_key(10, 30);
inline constexpr uint32_t kConnectionTuneOk = method_key(10, 31);
inline constexpr uint32_t kConnectionOpen = method_key(10, 40);
inline constexpr uint32_t kConnectionOpenOk = method_key(10, 41);
inline constexpr uint32_t kConnectionClose = method_key(10, 50);
inline constexpr uint32_t kConnectionCloseOk = method_key(10, 51);
inline constexpr uint32_t kConnectionBlocked = method_key(10, 60);
inline constexpr uint32_t kConnectionUnblocked = method_key(10, 61);
inline constexpr uint32_t kChannelOpen = method_key(20, 10);
inline constexpr uint32_t kChannelOpenOk = method_key(20, 11);
inline constexpr uint32_t kChannelFlow = method_key(20, 20);
inline constexpr uint32_t kChannelFlowOk = method_key(20, 21);
inline constexpr uint32_t kChannelClose = method_key(20, 40);
inline constexpr uint32_t kChannelCloseOk = method_key(20, 41);
inline constexpr uint32_t kExchangeDeclare = method_key(40, 10);
inline constexpr uint32_t kExchangeDeclareOk = method_key(40, 11);
inline constexpr uint32_t kQueueDeclare = method_key(50, 10);
inline constexpr uint32_t kQueueDeclareOk = method_key(50, 11);
inline constexpr uint32_t kQueueBind = method_key(50, 20);
inline constexpr uint32_t kQueueBindOk = method_key(50, 21);
inline constexpr uint32_t kQueuePurge = method_key(50, 30);
inline constexpr uint32_t kQueuePurgeOk = method_key(50, 31);
inline constexpr uint32_t kBasicQos = method_key(60, 10);
inline constexpr uint32_t kBasicQosOk = method_key(60, 11);
inline constexpr uint32_t kBasicConsume = method_key(60, 20);
inline constexpr uint32_t kBasicConsumeOk = method_key(60, 21);
inline constexpr uint32_t kBasicCancel = method_key(60, 30);
inline constexpr uint32_t kBasicCancelOk = method_key(60, 31);
inline constexpr uint32_t kBasicPublish = method_key(60, 40);
inline constexpr uint32_t kBasicReturn = method_key(60, 50);
inline constexpr uint32_t kBasicDeliver = method_key(60, 60);
inline constexpr uint32_t kBasicAck = method_key(60, 80);
inline constexpr uint32_t kBasicReject = method_key(60, 90);
inline constexpr uint32_t kBasicNack = method_key(60, 120);
inline constexpr uint32_t kConfirmSelect = method_key(85, 10);
inline constexpr uint32_t kConfirmSelectOk = method_key(85, 11);
}  // namespace method

// "connection.start", "basic.deliver"...; "class.method" numbers when unknown.
std::string method_name(uint32_t key);

// Reply codes the spec names (section 1.9).
inline constexpr uint16_t kReplySuccess = 200;
inline constexpr uint16_t kAccessRefused = 403;
inline constexpr uint16_t kNotFound = 404;
inline constexpr uint16_t kPreconditionFailed = 406;
inline constexpr uint16_t kFrameErrorCode = 501;
inline constexpr uint16_t kSyntaxError = 502;
inline constexpr uint16_t kCommandInvalid = 503;
inline constexpr uint16_t kUnexpectedFrame = 505;
inline constexpr uint16_t kNotAllowed = 530;

// One method from a broker, decoded. Only the fields of `key`'s method are
// meaningful; the content methods (deliver, return) are followed by a content
// header and body frames.
struct ServerMethod {
  uint32_t key = 0;
  // connection.start
  uint8_t version_major = 0;
  uint8_t version_minor = 0;
  FieldTable server_properties;
  std::string mechanisms;  // space-separated
  // connection.tune
  uint16_t channel_max = 0;
  uint32_t frame_max = 0;
  uint16_t heartbeat = 0;
  // connection.close, channel.close, basic.return
  uint16_t reply_code = 0;
  std::string reply_text;
  uint16_t failed_class = 0;
  uint16_t failed_method = 0;
  // connection.blocked
  std::string reason;
  // channel.flow
  bool active = true;
  // queue.declare-ok, queue.purge-ok
  std::string queue;
  uint32_t message_count = 0;
  uint32_t consumer_count = 0;
  // basic.consume-ok, basic.deliver, basic.cancel
  std::string consumer_tag;
  // basic.deliver, basic.ack, basic.nack
  uint64_t delivery_tag = 0;
  bool redelivered = false;
  bool multiple = false;
  bool requeue = false;
  // basic.deliver, basic.return
  std::string exchange;
  std::string routing_key;
};

// Decodes a method frame's payload. False on bad bytes, trailing bytes, or a
// method a broker does not send to a client (the key is still set when the
// first four bytes were there, for the error text).
bool parse_server_method(std::string_view payload, ServerMethod* out);
// Whether a content header and body follow this method.
inline bool carries_content(uint32_t key) {
  return key == method::kBasicDeliver || key == method::kBasicReturn;
}

// --- what a client sends: each appends one whole method frame ----------------

struct ExchangeDeclare {
  std::string exchange;
  std::string type = "direct";
  bool passive = false;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  FieldTable arguments;
};

struct QueueDeclare {
  std::string queue;  // empty: the broker names it
  bool passive = false;
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  FieldTable arguments;  // x-message-ttl, x-dead-letter-exchange, x-queue-type...
};

struct QueueBind {
  std::string queue;
  std::string exchange;
  std::string routing_key;
  FieldTable arguments;
};

struct BasicConsume {
  std::string queue;
  std::string consumer_tag;  // empty: the broker makes one
  bool no_ack = false;
  bool exclusive = false;
  FieldTable arguments;
};

void append_start_ok(std::string& out, const FieldTable& client_properties,
                     std::string_view mechanism, std::string_view response);
void append_tune_ok(std::string& out, uint16_t channel_max, uint32_t frame_max, uint16_t heartbeat);
void append_connection_open(std::string& out, std::string_view vhost);
void append_connection_close(std::string& out, uint16_t code, std::string_view text);
void append_connection_close_ok(std::string& out);
void append_channel_open(std::string& out, uint16_t channel);
void append_channel_close(std::string& out, uint16_t channel, uint16_t code, std::string_view text);
void append_channel_close_ok(std::string& out, uint16_t channel);
void append_channel_flow_ok(std::string& out, uint16_t channel, bool active);
void append_exchange_declare(std::string& out, uint16_t channel, const ExchangeDeclare& m);
void append_queue_declare(std::string& out, uint16_t channel, const QueueDeclare& m);
void append_queue_bind(std::string& out, uint16_t channel, const QueueBind& m);
void append_queue_purge(std::string& out, uint16_t channel, std::string_view queue);
void append_basic_qos(std::string& out, uint16_t channel, uint16_t prefetch_count);
void append_basic_consume(std::string& out, uint16_t channel, const BasicConsume& m);
void append_basic_ack(std::string& out, uint16_t channel, uint64_t delivery_tag, bool multiple);
void append_basic_nack(std::string& out, uint16_t channel, uint64_t delivery_tag, bool multiple,
                       bool requeue);
void append_basic_reject(std::string& out, uint16_t channel, uint64_t delivery_tag, bool requeue);
void append_confirm_select(std::string& out, uint16_t channel);
// basic.publish, its content header and as many body frames as frame_max
// needs: one message, ready to write.
void append_publish(std::string& out, uint16_t channel, std::string_view exchange,
                    std::string_view routing_key, bool mandatory, const BasicProperties& properties,
                    std::string_view body, uint32_t frame_max);

}  // namespace millstone::amqp
