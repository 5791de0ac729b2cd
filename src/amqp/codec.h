#pragma once
// AMQP 0-9-1 wire format (the specification's "General Frame Format" and
// "Data Types" sections, with RabbitMQ's field-table type letters): frames
// cut from a byte stream without copying, the primitive types, field tables,
// and the basic class's content properties. Bytes in, values out; no I/O, no
// exceptions: a decoder that meets bad bytes says so and stops.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace millstone::amqp {

// "AMQP" 0 0 9 1: what a client sends first.
inline constexpr std::string_view kProtocolHeader{"AMQP\x00\x00\x09\x01", 8};
inline constexpr uint8_t kFrameEnd = 0xCE;
inline constexpr size_t kFrameHeaderSize = 7;  // type, channel, size
// The smallest frame_max a peer may set (spec: 4096); what is allowed before tune.
inline constexpr uint32_t kMinFrameMax = 4096;

enum class FrameType : uint8_t { kMethod = 1, kHeader = 2, kBody = 3, kHeartbeat = 8 };

struct Frame {
  FrameType type = FrameType::kMethod;
  uint16_t channel = 0;
  std::string_view payload;  // points into the bytes given to cut_frame
};

enum class FrameError : uint8_t {
  kNone,
  kBadType,      // a frame type the spec does not define
  kTooLarge,     // payload beyond the negotiated frame_max
  kBadFrameEnd,  // the octet after the payload is not 0xCE
  kNotAmqp,      // the peer answered our header with its own: another protocol version
};
const char* frame_error_name(FrameError error);

struct CutResult {
  enum class Status : uint8_t { kFrame, kNeedMore, kError };
  Status status = Status::kNeedMore;
  Frame frame;
  size_t consumed = 0;  // with kFrame: header + payload + frame end
  FrameError error = FrameError::kNone;
};

// The first complete frame at the start of `bytes`. `frame_max` bounds the
// whole frame (header and end included), as the spec counts it.
CutResult cut_frame(std::string_view bytes, uint32_t frame_max);

// Appends one frame with `payload` (header, payload, end octet).
void append_frame(std::string& out, FrameType type, uint16_t channel, std::string_view payload);
// The heartbeat frame (type 8, channel 0, empty).
inline constexpr std::string_view kHeartbeatFrame{"\x08\x00\x00\x00\x00\x00\x00\xCE", 8};

// --- field tables ----------------------------------------------------------

struct FieldValue;
using FieldTable = std::vector<std::pair<std::string, FieldValue>>;

// One field value. RabbitMQ's type letters (the spec's errata table): t bool,
// b/B 8-bit, s/u 16-bit, I/i 32-bit, l 64-bit signed, f float, d double,
// D decimal, S long string, x byte array, A array, T timestamp, F table, V void.
struct FieldValue {
  enum class Kind : uint8_t {
    kVoid,
    kBool,
    kInt,        // b s I l (signed), kept as int64
    kUnsigned,   // B u i, kept as uint64
    kFloat,      // f
    kDouble,     // d
    kDecimal,    // D: scale in `integer` bits 32..39, value in `integer` low 32 bits
    kString,     // S
    kBytes,      // x
    kTimestamp,  // T: seconds, in `uinteger`
    kTable,      // F
    kArray,      // A
  };
  Kind kind = Kind::kVoid;
  char letter = 'V';  // the type letter it came with (encode() writes it back)
  bool boolean = false;
  int64_t integer = 0;
  uint64_t uinteger = 0;
  double real = 0;
  std::string text;
  FieldTable table;
  std::vector<FieldValue> array;

  static FieldValue of_bool(bool v);
  static FieldValue of_long(int64_t v);  // 'l'
  static FieldValue of_int(int32_t v);   // 'I'
  static FieldValue of_string(std::string v);
  static FieldValue of_table(FieldTable v);
  static FieldValue of_timestamp(uint64_t seconds);
  friend bool operator==(const FieldValue&, const FieldValue&) = default;
};

// The value of `name` in `table`, or null.
const FieldValue* find_field(const FieldTable& table, std::string_view name);

// --- primitive types --------------------------------------------------------

// Reads the spec's types in network byte order from a payload. The first
// failure (truncated, a short string over 255, an unknown field type, tables
// nested deeper than kMaxTableDepth) sets ok() false; later reads return zero
// values, so a decode function checks ok() once at its end.
class Reader {
 public:
  static constexpr int kMaxTableDepth = 16;

  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  uint8_t octet();
  uint16_t short_uint();
  uint32_t long_uint();
  uint64_t longlong_uint();
  std::string_view short_string();
  std::string_view long_string();
  // Consecutive bit fields share octets: read the octet once, then pick bits.
  bool table(FieldTable* out) { return read_table(out, 0); }
  bool ok() const { return ok_; }
  bool at_end() const { return at_ == bytes_.size(); }
  size_t remaining() const { return bytes_.size() - at_; }
  // Fails the reader (a value out of range seen by the caller).
  void fail() { ok_ = false; }

 private:
  bool read_table(FieldTable* out, int depth);
  bool read_value(FieldValue* out, int depth);
  std::string_view take(size_t n);

  std::string_view bytes_;
  size_t at_ = 0;
  bool ok_ = true;
};

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void octet(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void short_uint(uint16_t v);
  void long_uint(uint32_t v);
  void longlong_uint(uint64_t v);
  // Longer than 255 bytes is the caller's bug: truncated to 255 (callers check).
  void short_string(std::string_view v);
  void long_string(std::string_view v);
  // Bits packed into one octet, least significant first (the spec's order).
  void bits(std::initializer_list<bool> flags);
  void table(const FieldTable& table);
  void value(const FieldValue& value);

 private:
  std::string& out_;
};

// --- content (basic class properties) ---------------------------------------

struct BasicProperties {
  std::optional<std::string> content_type;
  std::optional<std::string> content_encoding;
  std::optional<FieldTable> headers;
  std::optional<uint8_t> delivery_mode;  // 1 transient, 2 persistent
  std::optional<uint8_t> priority;
  std::optional<std::string> correlation_id;
  std::optional<std::string> reply_to;
  std::optional<std::string> expiration;
  std::optional<std::string> message_id;
  std::optional<uint64_t> timestamp;  // seconds
  std::optional<std::string> type;
  std::optional<std::string> user_id;
  std::optional<std::string> app_id;
  std::optional<std::string> cluster_id;
  friend bool operator==(const BasicProperties&, const BasicProperties&) = default;
};

struct ContentHeader {
  uint16_t class_id = 0;
  uint64_t body_size = 0;
  BasicProperties properties;
};

// The payload of a content header frame (class 60, weight 0).
void append_content_header(std::string& out, uint64_t body_size, const BasicProperties& properties);
// Parses a header frame's payload; false on bad bytes (including a
// continuation flag, which the basic class never needs).
bool parse_content_header(std::string_view payload, ContentHeader* out);

}  // namespace millstone::amqp
