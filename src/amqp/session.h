#pragma once
// One AMQP 0-9-1 client connection as a state machine over bytes
// (docs/design/protocol-sessions.md): the owner feeds it what the socket
// read, writes what it queued (take_output()), and ticks it for heartbeats.
// It opens the connection (PLAIN auth, vhost, tune: heartbeat, frame_max,
// channel_max) and one channel, runs synchronous calls one at a time
// (declare, bind, qos, consume, confirm.select), publishes, assembles
// deliveries from their method, header and body frames, and reports
// confirms. No I/O and no exceptions: bad bytes from a broker end the session
// with a classified Failure.
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "amqp/codec.h"
#include "amqp/methods.h"

namespace millstone::amqp {

// Why a session ended. Stable names (failure_name) for summaries and JSON.
enum class Failure : uint8_t {
  kNone,
  kProtocolError,       // bad frames, an undecodable or unexpected method
  kProtocolVersion,     // the broker answered with another protocol header
  kAuthFailed,          // closed during the handshake (403 ACCESS_REFUSED after start-ok)
  kVhostRefused,        // closed at connection.open (no such vhost, or no access to it)
  kConnectionForced,    // connection.close 320: the broker is shutting down or was told to
  kConnectionClosed,    // connection.close with another code
  kNotFound,            // channel.close 404 (no such queue or exchange)
  kPreconditionFailed,  // channel.close 406 (a redeclare with other arguments)
  kAccessRefused,       // channel.close 403
  kChannelClosed,       // channel.close with another code
  kHeartbeatTimeout,    // nothing from the broker for two heartbeat intervals
  kHandshakeTimeout,    // the connection was not open within the handshake timeout
  kMessageTooLarge,     // a delivery's body size above the limit
  kCount
};
const char* failure_name(Failure failure);

struct SessionOptions {
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  uint16_t heartbeat_s = 60;    // what we ask for; the broker's lower non-zero value wins
  uint32_t frame_max = 131072;  // what we ask for; the lower of both wins
  uint16_t channel_max = 2047;  // what we ask for
  int64_t handshake_timeout_ns = 10'000'000'000;
  uint64_t max_message_bytes = 128 * 1024 * 1024;  // a larger delivery is a protocol failure
};

// A message delivered to a consumer; valid during on_delivery only.
struct Delivery {
  std::string_view consumer_tag;
  uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string_view exchange;
  std::string_view routing_key;
  const BasicProperties* properties = nullptr;
  std::string_view body;
};

class Session;

class SessionListener {
 public:
  virtual ~SessionListener() = default;
  // The connection and its channel are open: calls and publishes may start.
  virtual void on_open(Session& session) = 0;
  // The reply to the oldest call (queue.declare-ok carries counts).
  virtual void on_reply(Session& session, const ServerMethod& reply) = 0;
  // Publisher confirms: the broker took (ack) or lost (nack) tags up to
  // `tag` when `multiple`, else `tag` alone.
  virtual void on_confirm(Session& session, uint64_t tag, bool multiple, bool ack) = 0;
  virtual void on_delivery(Session& session, const Delivery& delivery) = 0;
  // A mandatory message the broker could not route (its body is dropped).
  virtual void on_return(Session& session, const ServerMethod& returned) = 0;
  // connection.blocked / unblocked (a broker resource alarm): publishing stalls.
  virtual void on_blocked(Session& session, bool blocked) = 0;
  // The session ended with `failure` (the owner closes the socket); `code`
  // and `text` are the broker's reply when it closed, else 0 and a description.
  virtual void on_failed(Session& session, Failure failure, uint16_t code,
                         std::string_view text) = 0;
  // Our close() completed (close-ok): the owner closes the socket.
  virtual void on_closed(Session& session) = 0;
};

class Session {
 public:
  static constexpr uint16_t kChannel = 1;

  enum class State : uint8_t {
    kAwaitStart,   // protocol header sent
    kAwaitTune,    // start-ok sent
    kAwaitOpenOk,  // tune-ok and connection.open sent
    kAwaitChannel,
    kOpen,
    kClosing,  // connection.close sent
    kClosed,   // close-ok received, or failed
  };

  Session(const SessionOptions& options, SessionListener& listener)
      : options_(options), listener_(listener) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The socket is connected: queues the protocol header.
  void start(int64_t now_ns);
  // Bytes from the broker; returns how many were consumed (whole frames).
  // The rest must be passed again with what arrives next.
  size_t on_read(std::string_view bytes, int64_t now_ns);
  // The socket ended (FIN or error). Returns kAuthFailed when it ended right
  // after our credentials (the spec's way to refuse a login), else kNone:
  // the transport's own cause stands.
  Failure on_transport_closed();
  // Heartbeats (send ours, notice the broker's silence) and the handshake timeout.
  void tick(int64_t now_ns);

  // Synchronous calls, sent one at a time; each reply comes to on_reply in order.
  void declare_exchange(const ExchangeDeclare& m);
  void declare_queue(const QueueDeclare& m);
  void bind_queue(const QueueBind& m);
  void purge_queue(std::string_view queue);
  void qos(uint16_t prefetch_count);
  void consume(const BasicConsume& m);
  // Publisher confirms from now on: publish() returns the delivery tag to wait for.
  void confirm_select();
  size_t pending_calls() const { return calls_.size(); }

  // Queues one message. Returns its confirm tag (1, 2, ...) once
  // confirm_select() is done; 0 without confirms or when the session is not open.
  uint64_t publish(std::string_view exchange, std::string_view routing_key, bool mandatory,
                   const BasicProperties& properties, std::string_view body);
  void ack(uint64_t delivery_tag, bool multiple);
  void nack(uint64_t delivery_tag, bool multiple, bool requeue);
  // basic.reject: one message, like nack without multiple.
  void reject(uint64_t delivery_tag, bool requeue);
  // Starts the closing handshake; on_closed follows close-ok.
  void close();

  // Bytes to write; the owner sends and clears them.
  std::string& output() { return out_; }
  State state() const { return state_; }
  bool open() const { return state_ == State::kOpen; }
  bool blocked() const { return blocked_; }
  bool confirming() const { return confirming_; }
  uint32_t frame_max() const { return frame_max_; }
  uint16_t heartbeat_s() const { return heartbeat_s_; }
  const FieldTable& server_properties() const { return server_properties_; }

 private:
  struct Call {
    std::string frame;
    uint32_t reply_key;
  };
  void enqueue_call(uint32_t reply_key);
  void send_next_call();
  void handle_frame(const Frame& frame, int64_t now_ns);
  void handle_method(const ServerMethod& m);
  void handle_content_header(const Frame& frame);
  void handle_body(const Frame& frame);
  void deliver(std::string_view body);
  void broker_closed_connection(const ServerMethod& m);
  void fail(Failure failure, uint16_t code, std::string_view text);

  const SessionOptions& options_;
  SessionListener& listener_;
  State state_ = State::kAwaitStart;
  std::string out_;
  std::deque<Call> calls_;
  bool call_in_flight_ = false;
  std::string scratch_;  // the call being built
  uint32_t frame_max_ = kMinFrameMax;
  uint16_t heartbeat_s_ = 0;
  int64_t started_ns_ = 0;
  int64_t last_read_ns_ = 0;
  int64_t last_heartbeat_sent_ns_ = 0;
  uint64_t publish_seq_ = 0;
  bool confirming_ = false;
  bool blocked_ = false;
  FieldTable server_properties_;
  // A content-carrying method waiting for its header and body frames.
  enum class Content : uint8_t { kNone, kAwaitHeader, kAwaitBody };
  Content content_ = Content::kNone;
  ServerMethod content_method_;
  ContentHeader content_header_;
  std::string body_;
};

}  // namespace millstone::amqp
