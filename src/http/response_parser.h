#pragma once
// Incremental HTTP/1.1 response parser for the load generator's hot path.
//
// Cost model: when a whole header block arrives in one read (the usual case)
// lines are parsed in place, straight from the caller's buffer, with memchr to
// find line ends, and nothing is allocated. Only a line split across reads is
// copied (into a buffer whose capacity is kept across responses). Header
// names are compared only for the three that decide framing (Content-Length,
// Transfer-Encoding, Connection); everything else is validated and skipped
// unless capture is turned on.
//
// Leniency choices (documented because they differ between parsers):
//  * A bare LF ends a line, like CRLF (RFC 9112 2.2 allows this). Servers that
//    get this wrong are still worth load testing; a lone CR inside a line is
//    still rejected.
//  * 1xx responses other than 101 are skipped; 101 Switching Protocols is a
//    final response with no body and the connection is not reusable.
//  * Transfer-Encoding whose final coding is not "chunked" means the body runs
//    until the peer closes (RFC 9112 6.3), and chunked wins over Content-Length.
//  * Duplicate Content-Length headers with the same value are accepted,
//    different values are an error; list values ("5, 5") are rejected.
//  * Status codes are any three digits 100-999.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/chunked.h"

namespace millstone::http {

enum class ParseError : uint8_t {
  kNone,
  kMalformedStatus,
  kMalformedHeader,
  kHeaderTooLarge,
  kBadChunk,
  kShortBody,
  kNoResponse,
};

// Stable lower-case name for reports ("malformed_status", ...).
const char* parse_error_name(ParseError error);

class ResponseParser {
 public:
  explicit ResponseParser(size_t max_header_bytes = 64 * 1024);

  // Prepares for the next response on the connection. A HEAD response has
  // headers that describe a body which is never sent.
  void reset(bool head_request);

  enum class State : uint8_t { kNeedMore, kComplete, kError };
  struct Result {
    size_t consumed;
    State state;
  };

  // Consumes bytes of the current response and stops exactly at its end, so
  // bytes of a pipelined next response are left to the caller (consumed <
  // len). On kNeedMore everything was consumed; the caller never keeps bytes.
  // Once complete or failed, further calls consume nothing until reset().
  Result feed(const char* data, size_t len);

  // The peer closed the connection. Completes a body delimited by the close;
  // otherwise fails with kNoResponse (nothing received), kMalformedStatus or
  // kMalformedHeader (closed inside the header block) or kShortBody (closed
  // inside a framed body).
  State finish_eof();

  int status() const { return status_; }
  // HTTP/1.1 keeps the connection unless "Connection: close"; HTTP/1.0 closes
  // it unless "Connection: keep-alive"; a body read until close never does.
  bool keep_alive() const { return keep_alive_; }
  // Payload bytes so far (chunked framing excluded).
  uint64_t body_bytes() const { return body_bytes_; }
  ParseError error() const { return error_; }
  bool started() const { return started_; }

  // Keeps the final response's headers and the first max_body_bytes of its
  // body (de-chunked) for checks. Set it between responses, not mid-way.
  void set_capture(bool capture, size_t max_body_bytes);
  // First header with that name (case-insensitive); empty when absent or when
  // capture is off.
  std::string_view header(std::string_view name) const;
  // Every captured header of the final response in arrival order, names as
  // sent, duplicates kept (several Set-Cookie lines matter). 0 headers when
  // capture is off; i must be < header_count().
  size_t header_count() const { return captured_headers_.size(); }
  std::string_view header_name(size_t i) const {
    const HeaderSpan& h = captured_headers_[i];
    return {captured_header_bytes_.data() + h.name_offset, h.name_size};
  }
  std::string_view header_value(size_t i) const {
    const HeaderSpan& h = captured_headers_[i];
    return {captured_header_bytes_.data() + h.value_offset, h.value_size};
  }
  std::string_view body() const { return captured_body_; }

 private:
  enum class Phase : uint8_t {
    kHeaders,
    kBodyLength,
    kChunked,  // chunks_ says where in the chunked body
    kTrailers,
    kBodyUntilClose,
    kDone,
    kError,
  };

  bool next_line(const char* data, size_t len, size_t* pos, size_t budget, ParseError too_long,
                 std::string_view* line, size_t* line_bytes);
  void on_status_line(std::string_view line);
  void on_header_line(std::string_view line);
  void on_header_block_end();
  void on_chunk_size_line(std::string_view line);
  void on_trailer_line(std::string_view line);
  void take_body(const char* data, size_t n);
  void start_header_block();
  void fail(ParseError error);

  size_t max_header_bytes_;
  size_t header_bytes_ = 0;        // of the current header or trailer block
  std::string partial_;            // a line split across feed() calls
  bool partial_complete_ = false;  // partial_ holds a finished line, clear it next
  uint64_t remaining_ = 0;         // of the Content-Length body
  ChunkedDecoder chunks_;
  uint64_t content_length_ = 0;
  uint64_t body_bytes_ = 0;
  int status_ = 0;
  Phase phase_ = Phase::kHeaders;
  ParseError error_ = ParseError::kNone;
  uint8_t version_minor_ = 1;
  bool head_request_ = false;
  bool started_ = false;
  bool status_seen_ = false;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  bool chunked_ = false;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  bool keep_alive_ = true;

  struct HeaderSpan {
    uint32_t name_offset;
    uint32_t name_size;
    uint32_t value_offset;
    uint32_t value_size;
  };
  bool capture_ = false;
  size_t capture_body_limit_ = 0;
  std::string captured_header_bytes_;
  std::vector<HeaderSpan> captured_headers_;
  std::string captured_body_;
};

}  // namespace millstone::http
