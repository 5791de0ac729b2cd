#pragma once
// Incremental HTTP/1.1 request parser for the mock server.
//
// The header block is copied into one owned buffer and every accessor returns
// a view into it (headers are offsets, so the buffer may grow while parsing);
// the buffer, the header index and the body keep their capacity across
// requests on a connection, so a steady stream of requests does not allocate.
//
// Leniency choices:
//  * A bare LF ends a line, like CRLF (RFC 9112 2.2), which keeps `nc` and
//    hand-written test clients usable; a lone CR inside a line is rejected.
//  * Empty lines before the request line are skipped (RFC 9112 2.2: clients
//    sometimes send an extra CRLF after a body); they count against the
//    header budget.
//  * Transfer-Encoding with a final coding other than chunked is an error
//    (the length cannot be known). Chunked wins over Content-Length, and such
//    a request closes the connection afterwards (RFC 9112 6.1, smuggling).
//  * Host is not required: the mock server answers by path.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/chunked.h"

namespace millstone::http {

enum class RequestError : uint8_t {
  kNone,
  kMalformedRequestLine,
  kMalformedHeader,
  kHeaderTooLarge,
  kBadChunk,
  kBodyTooLarge,
};

// Stable lower-case name for logs ("malformed_request_line", ...).
const char* request_error_name(RequestError error);

class RequestParser {
 public:
  explicit RequestParser(size_t max_header_bytes = 64 * 1024, size_t max_body_bytes = 1024 * 1024);

  // Prepares for the next request on the connection (keeps buffer capacity).
  void reset();

  enum class State : uint8_t { kNeedMore, kComplete, kError };
  struct Result {
    size_t consumed;
    State state;
  };

  // Consumes bytes of the current request and stops exactly at its end, so a
  // pipelined next request is left to the caller. On kNeedMore everything was
  // consumed. Once complete or failed, further calls consume nothing until
  // reset().
  Result feed(const char* data, size_t len);

  std::string_view method() const { return view(method_); }
  std::string_view target() const { return view(target_); }  // as sent: path and query
  // Target without "?query"; for an absolute-form target ("http://h/p?q")
  // just the path, "/" when it has none.
  std::string_view path() const;
  std::string_view query() const { return view(query_); }  // after '?', may be empty
  int version_minor() const { return version_minor_; }
  bool keep_alive() const { return keep_alive_; }
  // First header with that name (case-insensitive), empty when absent.
  std::string_view header(std::string_view name) const;
  size_t header_count() const { return headers_.size(); }
  std::string_view header_name(size_t i) const { return view(headers_[i].name); }
  std::string_view header_value(size_t i) const { return view(headers_[i].value); }
  std::string_view body() const { return body_; }
  // "Expect: 100-continue": once headers_complete(), the server should send
  // "100 Continue" before the client sends the body.
  bool expects_continue() const { return expects_continue_; }
  bool headers_complete() const { return phase_ > Phase::kHeaders; }
  bool started() const { return started_; }
  RequestError error() const { return error_; }

 private:
  enum class Phase : uint8_t {
    kHeaders,
    kBodyLength,
    kChunked,  // chunks_ says where in the chunked body
    kTrailers,
    kDone,
    kError,
  };
  struct Span {
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  struct HeaderSpan {
    Span name;
    Span value;
  };

  std::string_view view(Span s) const {
    return s.size == 0 ? std::string_view() : std::string_view(head_.data() + s.offset, s.size);
  }
  Span span_of(std::string_view part) const {
    return {static_cast<uint32_t>(part.data() - head_.data()), static_cast<uint32_t>(part.size())};
  }
  bool next_line(const char* data, size_t len, size_t* pos, std::string* sink, size_t limit,
                 RequestError too_long, std::string_view* line);
  void on_request_line(std::string_view line);
  void on_header_line(std::string_view line);
  void on_header_block_end();
  void on_chunk_size_line(std::string_view line);
  void on_trailer_line(std::string_view line);
  void fail(RequestError error);

  size_t max_header_bytes_;
  size_t max_body_bytes_;
  std::string head_;       // request line and header lines, terminators included
  size_t line_start_ = 0;  // in the sink of next_line: where the current line begins
  std::string scratch_;    // chunk-size and trailer lines
  ChunkedDecoder chunks_;
  size_t trailer_bytes_ = 0;
  std::vector<HeaderSpan> headers_;
  std::string body_;
  Span method_, target_, path_, query_;
  uint64_t remaining_ = 0;
  uint64_t content_length_ = 0;
  Phase phase_ = Phase::kHeaders;
  RequestError error_ = RequestError::kNone;
  int version_minor_ = 1;
  bool started_ = false;
  bool request_line_seen_ = false;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  bool chunked_ = false;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  bool expects_continue_ = false;
  bool keep_alive_ = true;
  bool implicit_root_path_ = false;  // absolute-form target without a path
};

}  // namespace millstone::http
