#pragma once
// The chunked transfer coding (RFC 9112 7.1) from the end of the header block
// to the trailer section: chunk-size lines, chunk data and the CRLF after
// each chunk. One implementation for the request parser (the mock's side)
// and the response parser (the load generator's side), fuzzed through both.
//
// The parsers keep their own line assembly (the response parser's reads in
// place without copying) and hand finished chunk-size lines in; the trailer
// section is theirs too, since each counts it against its own header budget.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace millstone::http {

class ChunkedDecoder {
 public:
  enum class Expect : uint8_t {
    kSizeLine,  // a chunk-size line (at most syntax::kMaxChunkLineBytes): on_size_line()
    kData,      // chunk data: take_data()
    kDataEnd,   // the CRLF (or bare LF) after chunk data: on_data_end()
    kTrailers,  // the last chunk was read; the trailer section follows
  };
  enum class Status : uint8_t { kOk, kBadChunk, kTooLarge };

  void reset() {
    expect_ = Expect::kSizeLine;
    remaining_ = 0;
    cr_seen_ = false;
  }
  Expect expect() const { return expect_; }

  // A chunk-size line without its line terminator. `allowance` is how many
  // more payload bytes the caller accepts; a bigger chunk is kTooLarge.
  Status on_size_line(std::string_view line, uint64_t allowance);
  // How many of `available` bytes are chunk data; the caller takes them.
  // After a chunk's last byte, expect() is kDataEnd.
  size_t take_data(size_t available) {
    const size_t n = remaining_ < available ? static_cast<size_t>(remaining_) : available;
    remaining_ -= n;
    if (remaining_ == 0) expect_ = Expect::kDataEnd;
    return n;
  }
  // One byte of the line end after chunk data: CR then LF, or a bare LF.
  Status on_data_end(char c);

 private:
  uint64_t remaining_ = 0;  // of the current chunk's data
  Expect expect_ = Expect::kSizeLine;
  bool cr_seen_ = false;
};

}  // namespace millstone::http
