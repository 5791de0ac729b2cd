#include "http/chunked.h"

#include "http/syntax.h"

namespace millstone::http {

ChunkedDecoder::Status ChunkedDecoder::on_size_line(std::string_view line, uint64_t allowance) {
  uint64_t size = 0;
  if (syntax::parse_chunk_size_line(line, &size) != syntax::ChunkLine::kOk) {
    return Status::kBadChunk;
  }
  if (size > allowance) return Status::kTooLarge;
  if (size == 0) {
    expect_ = Expect::kTrailers;
    return Status::kOk;
  }
  remaining_ = size;
  expect_ = Expect::kData;
  return Status::kOk;
}

ChunkedDecoder::Status ChunkedDecoder::on_data_end(char c) {
  if (c == '\n') {
    cr_seen_ = false;
    expect_ = Expect::kSizeLine;
    return Status::kOk;
  }
  if (c == '\r' && !cr_seen_) {
    cr_seen_ = true;
    return Status::kOk;
  }
  return Status::kBadChunk;
}

}  // namespace millstone::http
