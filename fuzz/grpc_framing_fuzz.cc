// Feeds arbitrary bytes to gRPC's length-prefixed message reader
// (grpc/framing.h) as DATA chunks would bring them: byte 0 sets the chunk
// size and the message size limit, the rest is the stream. The same stream
// read whole and read in chunks must give the same messages, bytes and error;
// a stream read without error accounts for every byte (5 per prefix plus the
// payloads); split_messages() on the whole stream agrees. The grpc-status and grpc-message field
// parsers get the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "grpc/framing.h"
#include "grpc/status.h"

using millstone::grpc::FramingError;
using millstone::grpc::MessageReader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + (data[0] & 0x1f);
  const uint32_t limit = (data[0] & 0x80) ? 64 : millstone::grpc::kDefaultMaxMessageBytes;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  MessageReader whole(limit, true);
  const bool whole_ok = whole.feed(stream) && whole.finish();
  MessageReader pieces(limit, true);
  bool pieces_ok = true;
  for (size_t at = 0; at < stream.size() && pieces_ok; at += chunk) {
    pieces_ok = pieces.feed(stream.substr(at, chunk));
  }
  pieces_ok = pieces_ok && pieces.finish();
  if (whole_ok != pieces_ok || whole.error() != pieces.error() ||
      whole.messages() != pieces.messages() || whole.message_bytes() != pieces.message_bytes() ||
      whole.last_message() != pieces.last_message()) {
    abort();
  }
  if (whole_ok && whole.message_bytes() + 5 * whole.messages() != stream.size()) abort();
  if (!whole_ok && whole.error() == FramingError::kNone) abort();
  if (whole_ok && whole.messages() > 0) {
    // The last message re-framed is the stream's tail.
    const std::string framed = millstone::grpc::frame_message(whole.last_message());
    if (stream.substr(stream.size() - framed.size()) != framed) abort();
  }

  // The whole-stream splitter (scenario steps) agrees with the reader.
  std::vector<std::string_view> split;
  const FramingError split_error = millstone::grpc::split_messages(stream, limit, &split);
  if (split_error != whole.error()) abort();
  if (whole_ok && (split.size() != whole.messages() ||
                   (!split.empty() && split.back() != whole.last_message()))) {
    abort();
  }
  for (std::string_view message : split) {
    if (message.data() < stream.data() || message.data() + message.size() > stream.end()) abort();
  }

  if (auto code = millstone::grpc::parse_status_field(stream)) {
    if (std::to_string(*code).size() > stream.size()) abort();
  }
  const std::string decoded = millstone::grpc::decode_message_field(stream);
  if (decoded.size() > stream.size()) abort();
  if (millstone::grpc::decode_message_field(millstone::grpc::encode_message_field(stream)) !=
      stream) {
    abort();
  }
  return 0;
}
