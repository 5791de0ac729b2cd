#include "amqp/codec.h"

#include <bit>
#include <cstring>

namespace millstone::amqp {

const char* frame_error_name(FrameError error) {
  switch (error) {
    case FrameError::kNone:
      return "none";
    case FrameError::kBadType:
      return "bad_frame_type";
    case FrameError::kTooLarge:
      return "frame_too_large";
    case FrameError::kBadFrameEnd:
      return "bad_frame_end";
    case FrameError::kNotAmqp:
      return "protocol_version";
  }
  return "unknown";
}

namespace {

uint16_t load16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

uint32_t load32(const char* p) {
  return (static_cast<uint32_t>(load16(p)) << 16) | load16(p + 2);
}

void store16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void store32(std::string& out, uint32_t v) {
  store16(out, static_cast<uint16_t>(v >> 16));
  store16(out, static_cast<uint16_t>(v & 0xffff));
}

void store64(std::string& out, uint64_t v) {
  store32(out, static_cast<uint32_t>(v >> 32));
  store32(out, static_cast<uint32_t>(v & 0xffffffff));
}

}  // namespace

CutResult cut_frame(std::string_view bytes, uint32_t frame_max) {
  CutResult result;
  if (bytes.empty()) return result;
  // A server that refuses our version answers with its own protocol header.
  if (bytes[0] == 'A') {
    result.status = CutResult::Status::kError;
    result.error = FrameError::kNotAmqp;
    return result;
  }
  const uint8_t type = static_cast<uint8_t>(bytes[0]);
  if (type != 1 && type != 2 && type != 3 && type != 8) {
    result.status = CutResult::Status::kError;
    result.error = FrameError::kBadType;
    return result;
  }
  if (bytes.size() < kFrameHeaderSize) return result;
  const uint32_t size = load32(bytes.data() + 3);
  if (static_cast<uint64_t>(size) + kFrameHeaderSize + 1 > frame_max) {
    result.status = CutResult::Status::kError;
    result.error = FrameError::kTooLarge;
    return result;
  }
  const size_t total = kFrameHeaderSize + size + 1;
  if (bytes.size() < total) return result;
  if (static_cast<uint8_t>(bytes[total - 1]) != kFrameEnd) {
    result.status = CutResult::Status::kError;
    result.error = FrameError::kBadFrameEnd;
    return result;
  }
  result.status = CutResult::Status::kFrame;
  result.frame.type = static_cast<FrameType>(type);
  result.frame.channel = load16(bytes.data() + 1);
  result.frame.payload = bytes.substr(kFrameHeaderSize, size);
  result.consumed = total;
  return result;
}

void append_frame(std::string& out, FrameType type, uint16_t channel, std::string_view payload) {
  out.push_back(static_cast<char>(type));
  store16(out, channel);
  store32(out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
  out.push_back(static_cast<char>(kFrameEnd));
}

// --- field values -----------------------------------------------------------

FieldValue FieldValue::of_bool(bool v) {
  FieldValue f;
  f.kind = Kind::kBool;
  f.letter = 't';
  f.boolean = v;
  return f;
}

FieldValue FieldValue::of_long(int64_t v) {
  FieldValue f;
  f.kind = Kind::kInt;
  f.letter = 'l';
  f.integer = v;
  return f;
}

FieldValue FieldValue::of_int(int32_t v) {
  FieldValue f;
  f.kind = Kind::kInt;
  f.letter = 'I';
  f.integer = v;
  return f;
}

FieldValue FieldValue::of_string(std::string v) {
  FieldValue f;
  f.kind = Kind::kString;
  f.letter = 'S';
  f.text = std::move(v);
  return f;
}

FieldValue FieldValue::of_table(FieldTable v) {
  FieldValue f;
  f.kind = Kind::kTable;
  f.letter = 'F';
  f.table = std::move(v);
  return f;
}

FieldValue FieldValue::of_timestamp(uint64_t seconds) {
  FieldValue f;
  f.kind = Kind::kTimestamp;
  f.letter = 'T';
  f.uinteger = seconds;
  return f;
}

const FieldValue* find_field(const FieldTable& table, std::string_view name) {
  for (const auto& [key, value] : table) {
    if (key == name) return &value;
  }
  return nullptr;
}

// --- Reader -----------------------------------------------------------------

std::string_view Reader::take(size_t n) {
  if (!ok_ || bytes_.size() - at_ < n) {
    ok_ = false;
    return {};
  }
  std::string_view out = bytes_.substr(at_, n);
  at_ += n;
  return out;
}

uint8_t Reader::octet() {
  const std::string_view b = take(1);
  return b.empty() ? 0 : static_cast<uint8_t>(b[0]);
}

uint16_t Reader::short_uint() {
  const std::string_view b = take(2);
  return b.empty() ? 0 : load16(b.data());
}

uint32_t Reader::long_uint() {
  const std::string_view b = take(4);
  return b.empty() ? 0 : load32(b.data());
}

uint64_t Reader::longlong_uint() {
  const std::string_view b = take(8);
  return b.empty() ? 0 : (static_cast<uint64_t>(load32(b.data())) << 32) | load32(b.data() + 4);
}

std::string_view Reader::short_string() {
  const uint8_t n = octet();
  return take(n);
}

std::string_view Reader::long_string() {
  const uint32_t n = long_uint();
  return take(n);
}

bool Reader::read_table(FieldTable* out, int depth) {
  if (depth > kMaxTableDepth) {
    ok_ = false;
    return false;
  }
  const std::string_view body = long_string();
  if (!ok_) return false;
  Reader inner(body);
  out->clear();
  while (inner.ok_ && !inner.at_end()) {
    std::string name(inner.short_string());
    FieldValue value;
    if (!inner.read_value(&value, depth)) break;
    out->emplace_back(std::move(name), std::move(value));
  }
  if (!inner.ok_) ok_ = false;
  return ok_;
}

bool Reader::read_value(FieldValue* out, int depth) {
  using Kind = FieldValue::Kind;
  const char letter = static_cast<char>(octet());
  if (!ok_) return false;
  out->letter = letter;
  switch (letter) {
    case 't':
      out->kind = Kind::kBool;
      out->boolean = octet() != 0;
      break;
    case 'b':
      out->kind = Kind::kInt;
      out->integer = static_cast<int8_t>(octet());
      break;
    case 'B':
      out->kind = Kind::kUnsigned;
      out->uinteger = octet();
      break;
    case 's':
      out->kind = Kind::kInt;
      out->integer = static_cast<int16_t>(short_uint());
      break;
    case 'u':
      out->kind = Kind::kUnsigned;
      out->uinteger = short_uint();
      break;
    case 'I':
      out->kind = Kind::kInt;
      out->integer = static_cast<int32_t>(long_uint());
      break;
    case 'i':
      out->kind = Kind::kUnsigned;
      out->uinteger = long_uint();
      break;
    case 'l':
      out->kind = Kind::kInt;
      out->integer = static_cast<int64_t>(longlong_uint());
      break;
    case 'f':
      out->kind = Kind::kFloat;
      out->real = std::bit_cast<float>(long_uint());
      break;
    case 'd':
      out->kind = Kind::kDouble;
      out->real = std::bit_cast<double>(longlong_uint());
      break;
    case 'D': {
      out->kind = Kind::kDecimal;
      const uint8_t scale = octet();
      out->integer = (static_cast<int64_t>(scale) << 32) | long_uint();
      break;
    }
    case 'S':
      out->kind = Kind::kString;
      out->text = std::string(long_string());
      break;
    case 'x':
      out->kind = Kind::kBytes;
      out->text = std::string(long_string());
      break;
    case 'T':
      out->kind = Kind::kTimestamp;
      out->uinteger = longlong_uint();
      break;
    case 'F':
      out->kind = Kind::kTable;
      read_table(&out->table, depth + 1);
      break;
    case 'A': {
      out->kind = Kind::kArray;
      if (depth + 1 > kMaxTableDepth) {
        ok_ = false;
        break;
      }
      Reader inner(long_string());
      while (ok_ && inner.ok_ && !inner.at_end()) {
        FieldValue element;
        if (!inner.read_value(&element, depth + 1)) break;
        out->array.push_back(std::move(element));
      }
      if (!inner.ok_) ok_ = false;
      break;
    }
    case 'V':
      out->kind = Kind::kVoid;
      break;
    default:
      ok_ = false;  // an unknown type letter: the value's size is unknown
  }
  return ok_;
}

// --- Writer -----------------------------------------------------------------

void Writer::short_uint(uint16_t v) {
  store16(out_, v);
}
void Writer::long_uint(uint32_t v) {
  store32(out_, v);
}
void Writer::longlong_uint(uint64_t v) {
  store64(out_, v);
}

void Writer::short_string(std::string_view v) {
  if (v.size() > 255) v = v.substr(0, 255);
  octet(static_cast<uint8_t>(v.size()));
  out_.append(v);
}

void Writer::long_string(std::string_view v) {
  long_uint(static_cast<uint32_t>(v.size()));
  out_.append(v);
}

void Writer::bits(std::initializer_list<bool> flags) {
  uint8_t v = 0;
  int bit = 0;
  for (bool f : flags) {
    if (f) v = static_cast<uint8_t>(v | (1u << bit));
    ++bit;
  }
  octet(v);
}

void Writer::table(const FieldTable& table) {
  const size_t size_at = out_.size();
  long_uint(0);  // patched below
  for (const auto& [name, value] : table) {
    short_string(name);
    this->value(value);
  }
  const uint32_t size = static_cast<uint32_t>(out_.size() - size_at - 4);
  out_[size_at] = static_cast<char>(size >> 24);
  out_[size_at + 1] = static_cast<char>((size >> 16) & 0xff);
  out_[size_at + 2] = static_cast<char>((size >> 8) & 0xff);
  out_[size_at + 3] = static_cast<char>(size & 0xff);
}

void Writer::value(const FieldValue& value) {
  octet(static_cast<uint8_t>(value.letter));
  switch (value.letter) {
    case 't':
      octet(value.boolean ? 1 : 0);
      break;
    case 'b':
      octet(static_cast<uint8_t>(value.integer));
      break;
    case 'B':
      octet(static_cast<uint8_t>(value.uinteger));
      break;
    case 's':
      short_uint(static_cast<uint16_t>(value.integer));
      break;
    case 'u':
      short_uint(static_cast<uint16_t>(value.uinteger));
      break;
    case 'I':
      long_uint(static_cast<uint32_t>(value.integer));
      break;
    case 'i':
      long_uint(static_cast<uint32_t>(value.uinteger));
      break;
    case 'l':
      longlong_uint(static_cast<uint64_t>(value.integer));
      break;
    case 'f':
      long_uint(std::bit_cast<uint32_t>(static_cast<float>(value.real)));
      break;
    case 'd':
      longlong_uint(std::bit_cast<uint64_t>(value.real));
      break;
    case 'D':
      octet(static_cast<uint8_t>(value.integer >> 32));
      long_uint(static_cast<uint32_t>(value.integer & 0xffffffff));
      break;
    case 'S':
    case 'x':
      long_string(value.text);
      break;
    case 'T':
      longlong_uint(value.uinteger);
      break;
    case 'F':
      table(value.table);
      break;
    case 'A': {
      std::string inner;
      Writer w(inner);
      for (const FieldValue& element : value.array)
        w.value(element);
      long_string(inner);
      break;
    }
    default:  // 'V' and anything unknown: no value bytes
      if (value.letter != 'V') out_.back() = 'V';
      break;
  }
}

// --- content header ---------------------------------------------------------

namespace {

// Property flag bits of the basic class, most significant first (spec 1.8).
enum : uint16_t {
  kContentType = 1u << 15,
  kContentEncoding = 1u << 14,
  kHeaders = 1u << 13,
  kDeliveryMode = 1u << 12,
  kPriority = 1u << 11,
  kCorrelationId = 1u << 10,
  kReplyTo = 1u << 9,
  kExpiration = 1u << 8,
  kMessageId = 1u << 7,
  kTimestamp = 1u << 6,
  kType = 1u << 5,
  kUserId = 1u << 4,
  kAppId = 1u << 3,
  kClusterId = 1u << 2,
  kContinuation = 1u << 0,
};

constexpr uint16_t kBasicClass = 60;

}  // namespace

void append_content_header(std::string& out, uint64_t body_size, const BasicProperties& p) {
  Writer w(out);
  w.short_uint(kBasicClass);
  w.short_uint(0);  // weight
  w.longlong_uint(body_size);
  uint16_t flags = 0;
  if (p.content_type) flags |= kContentType;
  if (p.content_encoding) flags |= kContentEncoding;
  if (p.headers) flags |= kHeaders;
  if (p.delivery_mode) flags |= kDeliveryMode;
  if (p.priority) flags |= kPriority;
  if (p.correlation_id) flags |= kCorrelationId;
  if (p.reply_to) flags |= kReplyTo;
  if (p.expiration) flags |= kExpiration;
  if (p.message_id) flags |= kMessageId;
  if (p.timestamp) flags |= kTimestamp;
  if (p.type) flags |= kType;
  if (p.user_id) flags |= kUserId;
  if (p.app_id) flags |= kAppId;
  if (p.cluster_id) flags |= kClusterId;
  w.short_uint(flags);
  if (p.content_type) w.short_string(*p.content_type);
  if (p.content_encoding) w.short_string(*p.content_encoding);
  if (p.headers) w.table(*p.headers);
  if (p.delivery_mode) w.octet(*p.delivery_mode);
  if (p.priority) w.octet(*p.priority);
  if (p.correlation_id) w.short_string(*p.correlation_id);
  if (p.reply_to) w.short_string(*p.reply_to);
  if (p.expiration) w.short_string(*p.expiration);
  if (p.message_id) w.short_string(*p.message_id);
  if (p.timestamp) w.longlong_uint(*p.timestamp);
  if (p.type) w.short_string(*p.type);
  if (p.user_id) w.short_string(*p.user_id);
  if (p.app_id) w.short_string(*p.app_id);
  if (p.cluster_id) w.short_string(*p.cluster_id);
}

bool parse_content_header(std::string_view payload, ContentHeader* out) {
  Reader r(payload);
  out->class_id = r.short_uint();
  r.short_uint();  // weight
  out->body_size = r.longlong_uint();
  const uint16_t flags = r.short_uint();
  if (!r.ok() || (flags & kContinuation)) return false;
  BasicProperties& p = out->properties;
  p = {};
  auto str = [&r](std::optional<std::string>& field) { field = std::string(r.short_string()); };
  if (flags & kContentType) str(p.content_type);
  if (flags & kContentEncoding) str(p.content_encoding);
  if (flags & kHeaders) {
    p.headers.emplace();
    r.table(&*p.headers);
  }
  if (flags & kDeliveryMode) p.delivery_mode = r.octet();
  if (flags & kPriority) p.priority = r.octet();
  if (flags & kCorrelationId) str(p.correlation_id);
  if (flags & kReplyTo) str(p.reply_to);
  if (flags & kExpiration) str(p.expiration);
  if (flags & kMessageId) str(p.message_id);
  if (flags & kTimestamp) p.timestamp = r.longlong_uint();
  if (flags & kType) str(p.type);
  if (flags & kUserId) str(p.user_id);
  if (flags & kAppId) str(p.app_id);
  if (flags & kClusterId) str(p.cluster_id);
  return r.ok() && r.at_end();
}

}  // namespace millstone::amqp
