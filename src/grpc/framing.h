#pragma once
// gRPC's message framing over HTTP/2 DATA (PROTOCOL-HTTP2.md,
// "Length-Prefixed-Message"): a one-byte compressed flag, a four-byte
// big-endian length, then that many bytes of the message. A stream of DATA
// chunks may split a message anywhere, or carry several; MessageReader takes
// them in whatever pieces arrive. Data plane: no exceptions, an error enum.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace millstone::grpc {

inline constexpr size_t kPrefixBytes = 5;
// What a reader accepts by default, as grpc-go and grpc-java receive (4 MiB).
inline constexpr uint32_t kDefaultMaxMessageBytes = 4 * 1024 * 1024;

// Appends `message` to *out as one uncompressed length-prefixed message.
void append_message(std::string* out, std::string_view message);
std::string frame_message(std::string_view message);

enum class FramingError : uint8_t {
  kNone,
  kBadFlag,     // the compressed flag is neither 0 nor 1
  kCompressed,  // flag 1, but no grpc-encoding was agreed (we never offer one)
  kTooLarge,    // the length is above the reader's limit
  kTruncated,   // the stream ended inside a message (finish())
};
// Stable snake_case name ("bad_flag").
const char* framing_error_name(FramingError error);

// A whole stream's DATA, already gathered (a scenario step's captured
// response): every message in order, as views into `bytes`. The same rules
// and errors as MessageReader (kTruncated when it ends inside a message);
// *messages holds those before the error.
FramingError split_messages(std::string_view bytes, uint32_t max_message_bytes,
                            std::vector<std::string_view>* messages);

class MessageReader {
 public:
  // keep_payload: the last complete message's bytes stay readable through
  // last_message() (the mock and tests); quick mode only counts.
  explicit MessageReader(uint32_t max_message_bytes = kDefaultMaxMessageBytes,
                         bool keep_payload = false)
      : max_message_bytes_(max_message_bytes), keep_payload_(keep_payload) {}

  // Consumes every byte of `bytes`; false once a framing error was found
  // (the reader then stays in error and ignores further bytes).
  bool feed(std::string_view bytes);
  // The stream ended: false (kTruncated) when it ended inside a message.
  bool finish();

  uint64_t messages() const { return messages_; }
  uint64_t message_bytes() const { return message_bytes_; }
  FramingError error() const { return error_; }
  // keep_payload only: the most recent complete message.
  const std::string& last_message() const { return last_; }
  void reset();

 private:
  uint32_t max_message_bytes_;
  bool keep_payload_;
  FramingError error_ = FramingError::kNone;
  unsigned char prefix_[kPrefixBytes] = {};
  size_t prefix_filled_ = 0;
  uint32_t remaining_ = 0;  // payload bytes of the current message still to come
  bool in_payload_ = false;
  uint64_t messages_ = 0;
  uint64_t message_bytes_ = 0;
  std::string current_;  // keep_payload: the message being read
  std::string last_;
};

}  // namespace millstone::grpc
