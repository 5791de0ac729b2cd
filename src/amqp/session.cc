#include "amqp/session.h"

#include <algorithm>

#include <fmt/format.h>

namespace millstone::amqp {

const char* failure_name(Failure failure) {
  switch (failure) {
    case Failure::kNone:
      return "none";
    case Failure::kProtocolError:
      return "protocol_error";
    case Failure::kProtocolVersion:
      return "protocol_version";
    case Failure::kAuthFailed:
      return "auth_failed";
    case Failure::kVhostRefused:
      return "vhost_refused";
    case Failure::kConnectionForced:
      return "connection_forced";
    case Failure::kConnectionClosed:
      return "connection_closed";
    case Failure::kNotFound:
      return "not_found";
    case Failure::kPreconditionFailed:
      return "precondition_failed";
    case Failure::kAccessRefused:
      return "access_refused";
    case Failure::kChannelClosed:
      return "channel_closed";
    case Failure::kHeartbeatTimeout:
      return "heartbeat_timeout";
    case Failure::kHandshakeTimeout:
      return "handshake_timeout";
    case Failure::kMessageTooLarge:
      return "message_too_large";
    case Failure::kCount:
      break;
  }
  return "unknown";
}

void Session::start(int64_t now_ns) {
  started_ns_ = now_ns;
  last_read_ns_ = now_ns;
  last_heartbeat_sent_ns_ = now_ns;
  out_.append(kProtocolHeader);
}

size_t Session::on_read(std::string_view bytes, int64_t now_ns) {
  size_t consumed = 0;
  if (!bytes.empty()) last_read_ns_ = now_ns;
  while (state_ != State::kClosed) {
    // Before tune-ok the frame limit is the spec's minimum; a broker may send less.
    const CutResult cut = cut_frame(bytes.substr(consumed), std::max(frame_max_, kMinFrameMax));
    if (cut.status == CutResult::Status::kNeedMore) break;
    if (cut.status == CutResult::Status::kError) {
      fail(cut.error == FrameError::kNotAmqp ? Failure::kProtocolVersion : Failure::kProtocolError,
           0, frame_error_name(cut.error));
      return bytes.size();
    }
    consumed += cut.consumed;
    handle_frame(cut.frame, now_ns);
  }
  return state_ == State::kClosed ? bytes.size() : consumed;
}

Failure Session::on_transport_closed() {
  if (state_ == State::kClosed) return Failure::kNone;
  if (state_ == State::kClosing) {
    state_ = State::kClosed;
    listener_.on_closed(*this);
    return Failure::kNone;
  }
  const bool after_credentials = state_ == State::kAwaitTune;
  state_ = State::kClosed;
  return after_credentials ? Failure::kAuthFailed : Failure::kNone;
}

void Session::tick(int64_t now_ns) {
  if (state_ == State::kClosed) return;
  if (state_ < State::kOpen && now_ns - started_ns_ >= options_.handshake_timeout_ns) {
    fail(Failure::kHandshakeTimeout, 0, "the connection was not open in time");
    return;
  }
  if (heartbeat_s_ == 0) return;
  const int64_t interval_ns = static_cast<int64_t>(heartbeat_s_) * 1'000'000'000;
  if (now_ns - last_read_ns_ >= 2 * interval_ns) {
    fail(Failure::kHeartbeatTimeout, 0,
         fmt::format("nothing from the broker for {} s", 2 * heartbeat_s_));
    return;
  }
  // Sent every half interval whatever else went out: cheaper than tracking it.
  if (now_ns - last_heartbeat_sent_ns_ >= interval_ns / 2) {
    out_.append(kHeartbeatFrame);
    last_heartbeat_sent_ns_ = now_ns;
  }
}

void Session::handle_frame(const Frame& frame, int64_t now_ns) {
  (void)now_ns;
  switch (frame.type) {
    case FrameType::kHeartbeat:
      if (frame.channel != 0 || !frame.payload.empty()) {
        fail(Failure::kProtocolError, 0, "heartbeat frame on a channel or with a payload");
      }
      return;
    case FrameType::kHeader:
      handle_content_header(frame);
      return;
    case FrameType::kBody:
      handle_body(frame);
      return;
    case FrameType::kMethod:
      break;
  }
  if (content_ != Content::kNone) {
    fail(Failure::kProtocolError, 0, "a method frame inside a message's content");
    return;
  }
  ServerMethod m;
  if (!parse_server_method(frame.payload, &m)) {
    fail(Failure::kProtocolError, 0,
         m.key ? fmt::format("malformed or unexpected {}", method_name(m.key))
               : std::string("method frame too short"));
    return;
  }
  const bool connection_class = (m.key >> 16) == 10;
  if (connection_class ? frame.channel != 0 : frame.channel != kChannel) {
    fail(Failure::kProtocolError, 0,
         fmt::format("{} on channel {}", method_name(m.key), frame.channel));
    return;
  }
  handle_method(m);
}

void Session::handle_method(const ServerMethod& m) {
  if (m.key == method::kConnectionClose) {
    broker_closed_connection(m);
    return;
  }
  switch (state_) {
    case State::kAwaitStart: {
      if (m.key != method::kConnectionStart) break;
      if (m.version_major != 0 || m.version_minor != 9) {
        fail(Failure::kProtocolVersion, 0,
             fmt::format("broker speaks AMQP {}-{}", m.version_major, m.version_minor));
        return;
      }
      // PLAIN is "\0user\0password" (RFC 4616); every broker offers it.
      bool plain = false;
      std::string_view mechanisms = m.mechanisms;
      while (!mechanisms.empty()) {
        const size_t space = mechanisms.find(' ');
        plain = plain || mechanisms.substr(0, space) == "PLAIN";
        mechanisms.remove_prefix(space == std::string_view::npos ? mechanisms.size() : space + 1);
      }
      if (!plain) {
        fail(Failure::kAuthFailed, 0,
             fmt::format("the broker does not offer PLAIN (it offers '{}')", m.mechanisms));
        return;
      }
      server_properties_ = m.server_properties;
      FieldTable capabilities = {
          {"publisher_confirms", FieldValue::of_bool(true)},
          {"consumer_cancel_notify", FieldValue::of_bool(true)},
          {"connection.blocked", FieldValue::of_bool(true)},
          {"basic.nack", FieldValue::of_bool(true)},
          // A refused login then gets connection.close 403, not a bare close.
          {"authentication_failure_close", FieldValue::of_bool(true)}};
      FieldTable client = {{"product", FieldValue::of_string("millstone")},
                           {"version", FieldValue::of_string(MILLSTONE_VERSION)},
                           {"platform", FieldValue::of_string("C++")},
                           {"capabilities", FieldValue::of_table(std::move(capabilities))}};
      std::string response;
      response.push_back('\0');
      response += options_.user;
      response.push_back('\0');
      response += options_.password;
      append_start_ok(out_, client, "PLAIN", response);
      state_ = State::kAwaitTune;
      return;
    }
    case State::kAwaitTune: {
      if (m.key == method::kConnectionSecure) {
        fail(Failure::kAuthFailed, 0, "the broker asked for a SASL challenge (PLAIN has none)");
        return;
      }
      if (m.key != method::kConnectionTune) break;
      // 0 means "no limit" from either side: the other's value wins.
      auto lower = [](uint32_t a, uint32_t b) -> uint32_t {
        if (a == 0) return b;
        if (b == 0) return a;
        return std::min(a, b);
      };
      frame_max_ = lower(m.frame_max, options_.frame_max);
      if (frame_max_ == 0) frame_max_ = options_.frame_max ? options_.frame_max : 131072;
      frame_max_ = std::max(frame_max_, kMinFrameMax);
      heartbeat_s_ = static_cast<uint16_t>(lower(m.heartbeat, options_.heartbeat_s));
      if (options_.heartbeat_s == 0) heartbeat_s_ = 0;  // asked for none: none
      const uint16_t channel_max =
          static_cast<uint16_t>(lower(m.channel_max, options_.channel_max));
      append_tune_ok(out_, channel_max, frame_max_, heartbeat_s_);
      append_connection_open(out_, options_.vhost);
      state_ = State::kAwaitOpenOk;
      return;
    }
    case State::kAwaitOpenOk:
      if (m.key != method::kConnectionOpenOk) break;
      append_channel_open(out_, kChannel);
      state_ = State::kAwaitChannel;
      return;
    case State::kAwaitChannel:
      if (m.key != method::kChannelOpenOk) break;
      state_ = State::kOpen;
      listener_.on_open(*this);
      send_next_call();
      return;
    case State::kOpen:
    case State::kClosing:
      switch (m.key) {
        case method::kChannelClose: {
          append_channel_close_ok(out_, kChannel);
          const Failure f = m.reply_code == kNotFound             ? Failure::kNotFound
                            : m.reply_code == kPreconditionFailed ? Failure::kPreconditionFailed
                            : m.reply_code == kAccessRefused      ? Failure::kAccessRefused
                                                                  : Failure::kChannelClosed;
          fail(f, m.reply_code, m.reply_text);
          return;
        }
        case method::kConnectionCloseOk:
          if (state_ != State::kClosing) break;
          state_ = State::kClosed;
          listener_.on_closed(*this);
          return;
        case method::kBasicAck:
        case method::kBasicNack:
          if (!confirming_) break;
          listener_.on_confirm(*this, m.delivery_tag, m.multiple, m.key == method::kBasicAck);
          return;
        case method::kBasicDeliver:
        case method::kBasicReturn:
          content_method_ = m;
          content_ = Content::kAwaitHeader;
          return;
        case method::kConnectionBlocked:
        case method::kConnectionUnblocked:
          blocked_ = m.key == method::kConnectionBlocked;
          listener_.on_blocked(*this, blocked_);
          return;
        case method::kChannelFlow:
          append_channel_flow_ok(out_, kChannel, m.active);
          blocked_ = !m.active;
          listener_.on_blocked(*this, blocked_);
          return;
        case method::kBasicCancel:  // the broker dropped our consumer (its queue went away)
          fail(Failure::kNotFound, 0, "the broker cancelled the consumer");
          return;
        default:
          if (call_in_flight_ && !calls_.empty() && m.key == calls_.front().reply_key) {
            if (m.key == method::kConfirmSelectOk) confirming_ = true;
            calls_.pop_front();
            call_in_flight_ = false;
            listener_.on_reply(*this, m);
            if (state_ == State::kOpen) send_next_call();
            return;
          }
          break;
      }
      if (state_ == State::kClosing) return;  // replies still on their way: ignore
      break;
    case State::kClosed:
      return;
  }
  fail(Failure::kProtocolError, 0, fmt::format("unexpected {}", method_name(m.key)));
}

void Session::broker_closed_connection(const ServerMethod& m) {
  append_connection_close_ok(out_);
  Failure f = Failure::kConnectionClosed;
  if (state_ == State::kAwaitTune) {
    f = Failure::kAuthFailed;
  } else if (state_ == State::kAwaitOpenOk) {
    f = Failure::kVhostRefused;
  } else if (m.reply_code == 320) {
    f = Failure::kConnectionForced;
  }
  if (state_ == State::kClosing) {
    state_ = State::kClosed;
    listener_.on_closed(*this);
    return;
  }
  fail(f, m.reply_code, m.reply_text);
}

void Session::handle_content_header(const Frame& frame) {
  if (content_ != Content::kAwaitHeader || frame.channel != kChannel) {
    fail(Failure::kProtocolError, 0, "a content header without its method");
    return;
  }
  if (!parse_content_header(frame.payload, &content_header_) || content_header_.class_id != 60) {
    fail(Failure::kProtocolError, 0, "malformed content header");
    return;
  }
  if (content_header_.body_size > options_.max_message_bytes) {
    fail(Failure::kMessageTooLarge, 0, fmt::format("a {}-byte message", content_header_.body_size));
    return;
  }
  body_.clear();
  if (content_header_.body_size == 0) {
    deliver({});
    return;
  }
  content_ = Content::kAwaitBody;
}

void Session::handle_body(const Frame& frame) {
  if (content_ != Content::kAwaitBody || frame.channel != kChannel) {
    fail(Failure::kProtocolError, 0, "a body frame without its header");
    return;
  }
  const uint64_t have = body_.size() + frame.payload.size();
  if (have > content_header_.body_size) {
    fail(Failure::kProtocolError, 0, "more body bytes than the content header announced");
    return;
  }
  if (have == content_header_.body_size) {
    if (body_.empty()) {
      deliver(frame.payload);  // the whole body in one frame: no copy
    } else {
      body_.append(frame.payload);
      deliver(body_);
    }
    return;
  }
  body_.append(frame.payload);
}

void Session::deliver(std::string_view body) {
  content_ = Content::kNone;
  if (content_method_.key == method::kBasicReturn) {
    listener_.on_return(*this, content_method_);
  } else {
    Delivery d;
    d.consumer_tag = content_method_.consumer_tag;
    d.delivery_tag = content_method_.delivery_tag;
    d.redelivered = content_method_.redelivered;
    d.exchange = content_method_.exchange;
    d.routing_key = content_method_.routing_key;
    d.properties = &content_header_.properties;
    d.body = body;
    listener_.on_delivery(*this, d);
  }
  if (body_.capacity() > 65536) std::string().swap(body_);  // keep no large buffer idle
}

void Session::fail(Failure failure, uint16_t code, std::string_view text) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  listener_.on_failed(*this, failure, code, text);
}

// --- calls ------------------------------------------------------------------

void Session::enqueue_call(uint32_t reply_key) {
  calls_.push_back({std::move(scratch_), reply_key});
  scratch_.clear();
  if (state_ == State::kOpen) send_next_call();
}

void Session::send_next_call() {
  if (call_in_flight_ || calls_.empty()) return;
  out_.append(calls_.front().frame);
  call_in_flight_ = true;
}

void Session::declare_exchange(const ExchangeDeclare& m) {
  append_exchange_declare(scratch_, kChannel, m);
  enqueue_call(method::kExchangeDeclareOk);
}

void Session::declare_queue(const QueueDeclare& m) {
  append_queue_declare(scratch_, kChannel, m);
  enqueue_call(method::kQueueDeclareOk);
}

void Session::bind_queue(const QueueBind& m) {
  append_queue_bind(scratch_, kChannel, m);
  enqueue_call(method::kQueueBindOk);
}

void Session::purge_queue(std::string_view queue) {
  append_queue_purge(scratch_, kChannel, queue);
  enqueue_call(method::kQueuePurgeOk);
}

void Session::qos(uint16_t prefetch_count) {
  append_basic_qos(scratch_, kChannel, prefetch_count);
  enqueue_call(method::kBasicQosOk);
}

void Session::consume(const BasicConsume& m) {
  append_basic_consume(scratch_, kChannel, m);
  enqueue_call(method::kBasicConsumeOk);
}

void Session::confirm_select() {
  append_confirm_select(scratch_, kChannel);
  enqueue_call(method::kConfirmSelectOk);
}

uint64_t Session::publish(std::string_view exchange, std::string_view routing_key, bool mandatory,
                          const BasicProperties& properties, std::string_view body) {
  if (state_ != State::kOpen) return 0;
  append_publish(out_, kChannel, exchange, routing_key, mandatory, properties, body, frame_max_);
  // Confirm tags count publishes after confirm.select-ok.
  return confirming_ ? ++publish_seq_ : 0;
}

void Session::ack(uint64_t delivery_tag, bool multiple) {
  if (state_ != State::kOpen) return;
  append_basic_ack(out_, kChannel, delivery_tag, multiple);
}

void Session::nack(uint64_t delivery_tag, bool multiple, bool requeue) {
  if (state_ != State::kOpen) return;
  append_basic_nack(out_, kChannel, delivery_tag, multiple, requeue);
}

void Session::reject(uint64_t delivery_tag, bool requeue) {
  if (state_ != State::kOpen) return;
  append_basic_reject(out_, kChannel, delivery_tag, requeue);
}

void Session::close() {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  append_connection_close(out_, kReplySuccess, "millstone: done");
  state_ = State::kClosing;
}

}  // namespace millstone::amqp
