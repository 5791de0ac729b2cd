#include "ws/frame.h"

#include <simdjson.h>

#include <cstring>

namespace millstone::ws {

const char* frame_error_name(FrameError error) {
  switch (error) {
    case FrameError::kNone:
      return "none";
    case FrameError::kReservedBits:
      return "reserved_bits";
    case FrameError::kBadOpcode:
      return "bad_opcode";
    case FrameError::kControlTooLong:
      return "control_too_long";
    case FrameError::kControlFragmented:
      return "control_fragmented";
    case FrameError::kMaskMissing:
      return "mask_missing";
    case FrameError::kMaskUnexpected:
      return "mask_unexpected";
    case FrameError::kNonMinimalLength:
      return "non_minimal_length";
    case FrameError::kTooLarge:
      return "too_large";
    case FrameError::kUnexpectedContinuation:
      return "unexpected_continuation";
    case FrameError::kExpectedContinuation:
      return "expected_continuation";
    case FrameError::kInvalidUtf8:
      return "invalid_utf8";
    case FrameError::kBadClosePayload:
      return "bad_close_payload";
    case FrameError::kBadCloseCode:
      return "bad_close_code";
  }
  return "unknown";
}

uint16_t close_code_for(FrameError error) {
  switch (error) {
    case FrameError::kInvalidUtf8:
      return kCloseInvalidPayload;
    case FrameError::kTooLarge:
      return kCloseTooBig;
    default:
      return kCloseProtocolError;
  }
}

bool close_code_allowed(uint16_t code) {
  // RFC 6455 7.4.1 plus the IANA registry (1012-1014); 1004-1006 and 1015
  // are reserved and must never appear on the wire; 3000-4999 belong to
  // libraries and applications.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

namespace {

bool is_control(uint8_t opcode) {
  return (opcode & 0x8) != 0;
}

bool known_opcode(uint8_t opcode) {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA);
}

// XORs data with the 4-byte key, starting at key phase 0. Eight bytes at a
// time: pushed messages are unmasked on every read of every connection.
void apply_mask(char* data, size_t size, const uint8_t key[4]) {
  uint8_t wide[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  uint64_t mask64;
  std::memcpy(&mask64, wide, 8);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, data + i, 8);
    chunk ^= mask64;
    std::memcpy(data + i, &chunk, 8);
  }
  for (; i < size; ++i)
    data[i] = static_cast<char>(static_cast<uint8_t>(data[i]) ^ key[i & 3]);
}

bool valid_utf8(std::string_view text) {
  return simdjson::validate_utf8(text.data(), text.size());
}

}  // namespace

void FrameParser::trim() {
  if (!fragmented_ && fragments_.capacity() != 0) std::string().swap(fragments_);
}

FrameParser::Result FrameParser::parse(char* data, size_t size, EventSink& sink) {
  // A reassembled payload handed out by the previous call may now be dropped:
  // an idle connection should not keep its last fragmented message.
  trim();
  Result result;
  size_t pos = 0;
  while (size - pos >= 2) {
    const uint8_t b0 = static_cast<uint8_t>(data[pos]);
    const uint8_t b1 = static_cast<uint8_t>(data[pos + 1]);
    const bool fin = (b0 & 0x80) != 0;
    const uint8_t opcode = b0 & 0x0F;
    const bool masked = (b1 & 0x80) != 0;
    const uint8_t len7 = b1 & 0x7F;
    // Every check below depends only on the header bytes seen so far, so the
    // outcome is the same however the stream is cut into reads.
    auto fail = [&](FrameError error) {
      result.consumed = pos;
      result.error = error;
      return result;
    };
    if (b0 & 0x70) return fail(FrameError::kReservedBits);
    if (!known_opcode(opcode)) return fail(FrameError::kBadOpcode);
    if (is_control(opcode)) {
      if (!fin) return fail(FrameError::kControlFragmented);
      if (len7 > 125) return fail(FrameError::kControlTooLong);
    } else if (opcode == 0) {
      if (!fragmented_) return fail(FrameError::kUnexpectedContinuation);
    } else if (fragmented_) {
      return fail(FrameError::kExpectedContinuation);
    }
    if (role_ == Role::kServer && !masked) return fail(FrameError::kMaskMissing);
    if (role_ == Role::kClient && masked) return fail(FrameError::kMaskUnexpected);

    size_t header = 2;
    uint64_t length = len7;
    if (len7 == 126) {
      if (size - pos < 4) break;
      length = (static_cast<uint64_t>(static_cast<uint8_t>(data[pos + 2])) << 8) |
               static_cast<uint8_t>(data[pos + 3]);
      if (length < 126) return fail(FrameError::kNonMinimalLength);
      header = 4;
    } else if (len7 == 127) {
      if (size - pos < 10) break;
      length = 0;
      for (int i = 0; i < 8; ++i)
        length = (length << 8) | static_cast<uint8_t>(data[pos + 2 + i]);
      if ((length >> 63) != 0 || length <= 0xFFFF) return fail(FrameError::kNonMinimalLength);
      header = 10;
    }
    if (!is_control(opcode)) {
      const uint64_t held = opcode == 0 ? fragments_.size() : 0;
      if (length > max_message_bytes_ || held + length > max_message_bytes_) {
        return fail(FrameError::kTooLarge);
      }
    }
    if (masked) header += 4;
    if (size - pos < header || size - pos - header < length) break;

    char* payload = data + pos + header;
    const size_t payload_size = static_cast<size_t>(length);
    if (masked) {
      uint8_t key[4];
      std::memcpy(key, data + pos + header - 4, 4);
      apply_mask(payload, payload_size, key);
      // The bytes stay consumed-and-unmasked only if the whole frame is
      // accepted; a caller never re-feeds a consumed frame, and an erroring
      // connection is closed, so unmasking before the checks is safe.
    }
    const size_t frame_end = pos + header + payload_size;
    std::string_view body(payload, payload_size);

    Event event;
    bool emit = false;
    switch (static_cast<Opcode>(opcode)) {
      case Opcode::kPing:
        event.kind = Event::Kind::kPing;
        event.payload = body;
        emit = true;
        break;
      case Opcode::kPong:
        event.kind = Event::Kind::kPong;
        event.payload = body;
        emit = true;
        break;
      case Opcode::kClose:
        event.kind = Event::Kind::kClose;
        event.payload = body;
        if (payload_size == 1) return fail(FrameError::kBadClosePayload);
        if (payload_size >= 2) {
          const uint16_t code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                                      static_cast<uint8_t>(payload[1]));
          if (!close_code_allowed(code)) return fail(FrameError::kBadCloseCode);
          event.close_code = code;
          event.close_reason = body.substr(2);
          if (!valid_utf8(event.close_reason)) return fail(FrameError::kInvalidUtf8);
        }
        emit = true;
        break;
      case Opcode::kText:
      case Opcode::kBinary:
        if (fin) {
          if (opcode == 0x1 && !valid_utf8(body)) return fail(FrameError::kInvalidUtf8);
          event.kind = opcode == 0x1 ? Event::Kind::kText : Event::Kind::kBinary;
          event.payload = body;
          emit = true;
        } else {
          fragmented_ = true;
          fragment_opcode_ = static_cast<Opcode>(opcode);
          fragments_.assign(body);
        }
        break;
      case Opcode::kContinuation:
        fragments_.append(body);
        if (fin) {
          fragmented_ = false;
          if (fragment_opcode_ == Opcode::kText && !valid_utf8(fragments_)) {
            return fail(FrameError::kInvalidUtf8);
          }
          event.kind =
              fragment_opcode_ == Opcode::kText ? Event::Kind::kText : Event::Kind::kBinary;
          event.payload = fragments_;
          emit = true;
        }
        break;
    }
    pos = frame_end;
    if (emit && !sink.on_event(event)) {
      result.consumed = pos;
      result.stopped = true;
      return result;
    }
  }
  result.consumed = pos;
  return result;
}

namespace {

void append_header(std::string* out, uint8_t first, size_t length,
                   std::optional<uint32_t> mask_key) {
  const uint8_t mask_bit = mask_key ? 0x80 : 0;
  out->push_back(static_cast<char>(first));
  if (length < 126) {
    out->push_back(static_cast<char>(mask_bit | length));
  } else if (length <= 0xFFFF) {
    out->push_back(static_cast<char>(mask_bit | 126));
    out->push_back(static_cast<char>(length >> 8));
    out->push_back(static_cast<char>(length & 0xFF));
  } else {
    out->push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out->push_back(static_cast<char>((static_cast<uint64_t>(length) >> shift) & 0xFF));
  }
  if (mask_key) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out->push_back(static_cast<char>((*mask_key >> shift) & 0xFF));
  }
}

void append_payload(std::string* out, std::string_view payload, std::optional<uint32_t> mask_key) {
  const size_t start = out->size();
  out->append(payload);
  if (mask_key) {
    const uint8_t key[4] = {static_cast<uint8_t>(*mask_key >> 24),
                            static_cast<uint8_t>(*mask_key >> 16),
                            static_cast<uint8_t>(*mask_key >> 8), static_cast<uint8_t>(*mask_key)};
    apply_mask(out->data() + start, payload.size(), key);
  }
}

}  // namespace

void append_frame(std::string* out, Opcode opcode, std::string_view payload, bool fin,
                  std::optional<uint32_t> mask_key) {
  append_header(out, static_cast<uint8_t>((fin ? 0x80 : 0) | static_cast<uint8_t>(opcode)),
                payload.size(), mask_key);
  append_payload(out, payload, mask_key);
}

void append_close(std::string* out, uint16_t code, std::string_view reason,
                  std::optional<uint32_t> mask_key) {
  if (code == kCloseNoStatus) {
    // 1005 means "no code": an empty close body says exactly that.
    append_frame(out, Opcode::kClose, {}, true, mask_key);
    return;
  }
  // 125 bytes of control payload minus the code; cut at a character boundary
  // so the peer does not reject a truncated reason as invalid UTF-8.
  if (reason.size() > 123) {
    size_t cut = 123;
    while (cut > 0 && (static_cast<uint8_t>(reason[cut]) & 0xC0) == 0x80)
      --cut;
    reason = reason.substr(0, cut);
  }
  char body[125];
  body[0] = static_cast<char>(code >> 8);
  body[1] = static_cast<char>(code & 0xFF);
  std::memcpy(body + 2, reason.data(), reason.size());
  append_frame(out, Opcode::kClose, std::string_view(body, 2 + reason.size()), true, mask_key);
}

}  // namespace millstone::ws
