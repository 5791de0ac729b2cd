#pragma once
// WebSocket framing (RFC 6455 section 5), shared by the client (scenario
// steps) and the mock server. Hand-written because it is on the hot path of
// every pushed message; fuzzed by fuzz/ws_frame_fuzz.cc.
//
// The parser holds no buffer of its own between reads unless a message is
// fragmented: a connection idle in `hold` costs only sizeof(FrameParser).
// The caller keeps the bytes of an incomplete frame (parse() tells how many
// it consumed) and passes them again with the next read.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace millstone::ws {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes (RFC 6455 section 7.4.1) used by millstone itself.
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseNoStatus = 1005;  // never sent; reported when a close had no code
inline constexpr uint16_t kCloseInvalidPayload = 1007;
inline constexpr uint16_t kCloseTooBig = 1009;

// Why a peer's bytes are not valid WebSocket. Stable snake_case names.
enum class FrameError : uint8_t {
  kNone,
  kReservedBits,            // RSV1-3 set without a negotiated extension
  kBadOpcode,               // 0x3-0x7, 0xB-0xF
  kControlTooLong,          // control frame payload over 125 bytes
  kControlFragmented,       // control frame without FIN
  kMaskMissing,             // server role: a client frame was not masked
  kMaskUnexpected,          // client role: a server frame was masked
  kNonMinimalLength,        // 16/64-bit length where a shorter form fits, or 64-bit MSB set
  kTooLarge,                // frame or reassembled message over max_message_bytes
  kUnexpectedContinuation,  // continuation with no message in progress
  kExpectedContinuation,    // new text/binary frame while a fragmented message is in progress
  kInvalidUtf8,             // text message or close reason that is not UTF-8
  kBadClosePayload,         // close payload of 1 byte
  kBadCloseCode,            // close code not allowed on the wire (e.g. 1005, 1006, 999, 5000)
};
const char* frame_error_name(FrameError error);
// The close code to send back for an error (1002, 1007 or 1009).
uint16_t close_code_for(FrameError error);
// Whether a close code may be sent on the wire (1000-1003, 1007-1014,
// 3000-4999): 1005, 1006 and 1015 are reserved for reporting.
bool close_code_allowed(uint16_t code);

// A complete message or a control frame.
struct Event {
  enum class Kind : uint8_t { kText, kBinary, kPing, kPong, kClose };
  Kind kind = Kind::kText;
  // Unmasked. A single-frame message points into the caller's buffer; a
  // reassembled one into the parser, valid until the next parse() call or
  // until a later fragmented message in the same call starts. Copy to keep.
  std::string_view payload;
  uint16_t close_code = kCloseNoStatus;  // kClose only
  std::string_view close_reason;         // kClose only
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Return false to stop parsing (the connection is being closed).
  virtual bool on_event(const Event& event) = 0;
};

enum class Role : uint8_t {
  kClient,  // reads frames a server sent: they must not be masked
  kServer,  // reads frames a client sent: they must be masked
};

class FrameParser {
 public:
  explicit FrameParser(Role role, size_t max_message_bytes = 16 * 1024 * 1024)
      : role_(role), max_message_bytes_(max_message_bytes) {}

  struct Result {
    size_t consumed = 0;  // bytes of whole frames; the rest starts an incomplete frame
    FrameError error = FrameError::kNone;
    bool stopped = false;  // a sink returned false
  };
  // Parses the complete frames at the start of data[0, size), unmasking them
  // in place, and reports each message (reassembled from fragments) and
  // control frame. Control frames may arrive between fragments.
  Result parse(char* data, size_t size, EventSink& sink);

  bool in_fragmented_message() const { return fragmented_; }
  // Bytes held for a fragmented message (0 when none is in progress).
  size_t buffered_bytes() const { return fragments_.size(); }
  // Frees the reassembly buffer when no fragmented message is in progress
  // (parse() also does this on entry). For servers holding many idle
  // connections.
  void trim();

 private:
  Role role_;
  bool fragmented_ = false;
  Opcode fragment_opcode_ = Opcode::kText;
  size_t max_message_bytes_;
  std::string fragments_;
};

// Appends one frame. Clients must mask (pass a key; RFC 6455 5.3 wants it
// unpredictable); servers must not (nullopt).
void append_frame(std::string* out, Opcode opcode, std::string_view payload, bool fin,
                  std::optional<uint32_t> mask_key);
// Close frame with a code and a reason (truncated to fit 125 bytes).
void append_close(std::string* out, uint16_t code, std::string_view reason,
                  std::optional<uint32_t> mask_key);

}  // namespace millstone::ws
