#include "http/response_parser.h"

#include <algorithm>
#include <cstring>

#include "http/syntax.h"

namespace millstone::http {

const char* parse_error_name(ParseError error) {
  switch (error) {
    case ParseError::kNone:
      return "none";
    case ParseError::kMalformedStatus:
      return "malformed_status";
    case ParseError::kMalformedHeader:
      return "malformed_header";
    case ParseError::kHeaderTooLarge:
      return "header_too_large";
    case ParseError::kBadChunk:
      return "bad_chunk";
    case ParseError::kShortBody:
      return "short_body";
    case ParseError::kNoResponse:
      return "no_response";
  }
  return "unknown";
}

ResponseParser::ResponseParser(size_t max_header_bytes) : max_header_bytes_(max_header_bytes) {
  reset(false);
}

void ResponseParser::reset(bool head_request) {
  head_request_ = head_request;
  started_ = false;
  body_bytes_ = 0;
  remaining_ = 0;
  error_ = ParseError::kNone;
  partial_.clear();
  partial_complete_ = false;
  captured_body_.clear();
  start_header_block();
}

// Also runs after each skipped 1xx response: the final response's headers
// start from a clean slate and a fresh size budget.
void ResponseParser::start_header_block() {
  phase_ = Phase::kHeaders;
  header_bytes_ = 0;
  status_ = 0;
  version_minor_ = 1;
  status_seen_ = false;
  has_content_length_ = false;
  has_transfer_encoding_ = false;
  chunked_ = false;
  content_length_ = 0;
  connection_close_ = false;
  connection_keep_alive_ = false;
  keep_alive_ = true;
  captured_header_bytes_.clear();
  captured_headers_.clear();
}

void ResponseParser::set_capture(bool capture, size_t max_body_bytes) {
  capture_ = capture;
  capture_body_limit_ = capture ? max_body_bytes : 0;
  if (!capture) {
    captured_header_bytes_.clear();
    captured_headers_.clear();
    captured_body_.clear();
  }
}

std::string_view ResponseParser::header(std::string_view name) const {
  for (const HeaderSpan& h : captured_headers_) {
    std::string_view n(captured_header_bytes_.data() + h.name_offset, h.name_size);
    if (syntax::iequals(n, name)) {
      return {captured_header_bytes_.data() + h.value_offset, h.value_size};
    }
  }
  return {};
}

void ResponseParser::fail(ParseError error) {
  error_ = error;
  phase_ = Phase::kError;
  keep_alive_ = false;
}

// Finds the next line. The fast path hands out a view into the caller's data;
// a line split across feed() calls is assembled in partial_. Returns false
// when the data ran out mid-line (everything consumed) or the line would
// exceed the budget (phase_ becomes kError). The budget check counts the
// partial line too, so byte-by-byte feeding fails exactly like one big read.
bool ResponseParser::next_line(const char* data, size_t len, size_t* pos, size_t budget,
                               ParseError too_long, std::string_view* line, size_t* line_bytes) {
  if (partial_complete_) {
    partial_.clear();
    partial_complete_ = false;
  }
  const char* start = data + *pos;
  size_t avail = len - *pos;
  if (avail == 0) return false;
  const char* lf = static_cast<const char*>(std::memchr(start, '\n', avail));
  size_t take = lf ? static_cast<size_t>(lf - start) + 1 : avail;
  if (take > budget || partial_.size() > budget - take) {
    fail(too_long);
    return false;
  }
  *pos += take;
  if (lf == nullptr) {
    partial_.append(start, take);
    return false;
  }
  std::string_view l;
  if (partial_.empty()) {
    l = std::string_view(start, take - 1);
  } else {
    partial_.append(start, take);
    partial_complete_ = true;
    l = std::string_view(partial_.data(), partial_.size() - 1);
  }
  *line_bytes = l.size() + 1;
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  *line = l;
  return true;
}

ResponseParser::Result ResponseParser::feed(const char* data, size_t len) {
  if (phase_ == Phase::kDone) return {0, State::kComplete};
  if (phase_ == Phase::kError) return {0, State::kError};
  if (len == 0) return {0, State::kNeedMore};
  started_ = true;
  size_t pos = 0;
  for (;;) {
    switch (phase_) {
      case Phase::kHeaders:
      case Phase::kTrailers: {
        std::string_view line;
        size_t line_bytes = 0;
        if (!next_line(data, len, &pos, max_header_bytes_ - header_bytes_,
                       ParseError::kHeaderTooLarge, &line, &line_bytes)) {
          return {pos, phase_ == Phase::kError ? State::kError : State::kNeedMore};
        }
        header_bytes_ += line_bytes;
        if (phase_ == Phase::kTrailers) {
          on_trailer_line(line);
        } else if (!status_seen_) {
          on_status_line(line);
        } else if (line.empty()) {
          on_header_block_end();
        } else {
          on_header_line(line);
        }
        break;
      }
      case Phase::kChunked: {
        if (chunks_.expect() == ChunkedDecoder::Expect::kData) {
          const size_t n = chunks_.take_data(len - pos);
          take_body(data + pos, n);
          pos += n;
          if (chunks_.expect() == ChunkedDecoder::Expect::kData) return {pos, State::kNeedMore};
          break;
        }
        if (chunks_.expect() == ChunkedDecoder::Expect::kDataEnd) {
          if (pos == len) return {pos, State::kNeedMore};
          if (chunks_.on_data_end(data[pos++]) != ChunkedDecoder::Status::kOk) {
            fail(ParseError::kBadChunk);
          }
          break;
        }
        std::string_view line;
        size_t line_bytes = 0;
        if (!next_line(data, len, &pos, syntax::kMaxChunkLineBytes, ParseError::kBadChunk, &line,
                       &line_bytes)) {
          return {pos, phase_ == Phase::kError ? State::kError : State::kNeedMore};
        }
        on_chunk_size_line(line);
        break;
      }
      case Phase::kBodyLength: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, len - pos));
        take_body(data + pos, n);
        pos += n;
        remaining_ -= n;
        if (remaining_ != 0) return {pos, State::kNeedMore};
        phase_ = Phase::kDone;
        break;
      }
      case Phase::kBodyUntilClose:
        take_body(data + pos, len - pos);
        return {len, State::kNeedMore};
      case Phase::kDone:
        return {pos, State::kComplete};
      case Phase::kError:
        return {pos, State::kError};
    }
  }
}

void ResponseParser::take_body(const char* data, size_t n) {
  body_bytes_ += n;
  if (capture_ && captured_body_.size() < capture_body_limit_) {
    captured_body_.append(data, std::min(n, capture_body_limit_ - captured_body_.size()));
  }
}

// "HTTP/1.x SSS[ reason]"; a missing space before an empty reason is tolerated.
void ResponseParser::on_status_line(std::string_view line) {
  static constexpr std::string_view kPrefix = "HTTP/1.";
  if (line.size() < 12 || line.substr(0, kPrefix.size()) != kPrefix ||
      (line[7] != '0' && line[7] != '1') || line[8] != ' ' || line[9] < '1' || line[9] > '9' ||
      !syntax::is_digit(line[10]) || !syntax::is_digit(line[11]) ||
      (line.size() > 12 && (line[12] != ' ' || !syntax::is_field_value(line.substr(13))))) {
    fail(ParseError::kMalformedStatus);
    return;
  }
  version_minor_ = static_cast<uint8_t>(line[7] - '0');
  status_ = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  status_seen_ = true;
}

void ResponseParser::on_header_line(std::string_view line) {
  std::string_view name, value;
  if (!syntax::split_header_line(line, &name, &value)) {
    fail(ParseError::kMalformedHeader);
    return;
  }
  // Dispatch on length first so most headers cost one compare, not three.
  switch (name.size()) {
    case 14:
      if (syntax::iequals(name, "content-length")) {
        uint64_t n = 0;
        if (!syntax::parse_decimal(value, &n) || (has_content_length_ && n != content_length_)) {
          fail(ParseError::kMalformedHeader);
          return;
        }
        has_content_length_ = true;
        content_length_ = n;
      }
      break;
    case 17:
      if (syntax::iequals(name, "transfer-encoding")) {
        // With several Transfer-Encoding headers the last one holds the final coding.
        has_transfer_encoding_ = true;
        chunked_ = syntax::iequals(syntax::list_last(value), "chunked");
      }
      break;
    case 10:
      if (syntax::iequals(name, "connection")) {
        syntax::for_each_list_token(value, [this](std::string_view token) {
          if (syntax::iequals(token, "close")) connection_close_ = true;
          if (syntax::iequals(token, "keep-alive")) connection_keep_alive_ = true;
          return true;
        });
      }
      break;
    default:
      break;
  }
  if (capture_) {
    HeaderSpan span;
    span.name_offset = static_cast<uint32_t>(captured_header_bytes_.size());
    span.name_size = static_cast<uint32_t>(name.size());
    captured_header_bytes_.append(name);
    span.value_offset = static_cast<uint32_t>(captured_header_bytes_.size());
    span.value_size = static_cast<uint32_t>(value.size());
    captured_header_bytes_.append(value);
    captured_headers_.push_back(span);
  }
}

void ResponseParser::on_header_block_end() {
  if (status_ < 200 && status_ != 101) {
    // Interim response (100 Continue, 103 Early Hints...): the final one follows.
    start_header_block();
    return;
  }
  keep_alive_ =
      version_minor_ == 1 ? !connection_close_ : connection_keep_alive_ && !connection_close_;
  if (status_ == 101) keep_alive_ = false;  // the connection now speaks another protocol
  if (head_request_ || status_ < 200 || status_ == 204 || status_ == 304) {
    phase_ = Phase::kDone;
  } else if (chunked_) {
    chunks_.reset();
    phase_ = Phase::kChunked;
  } else if (has_transfer_encoding_ || !has_content_length_) {
    phase_ = Phase::kBodyUntilClose;
    keep_alive_ = false;
  } else {
    remaining_ = content_length_;
    phase_ = remaining_ == 0 ? Phase::kDone : Phase::kBodyLength;
  }
}

void ResponseParser::on_chunk_size_line(std::string_view line) {
  // No size limit: a response body is counted, not kept (captured bodies are capped apart).
  if (chunks_.on_size_line(line, UINT64_MAX) != ChunkedDecoder::Status::kOk) {
    fail(ParseError::kBadChunk);
    return;
  }
  if (chunks_.expect() == ChunkedDecoder::Expect::kTrailers) {
    phase_ = Phase::kTrailers;
    header_bytes_ = 0;  // trailers get their own budget
  }
}

// Trailers are validated like headers and otherwise ignored.
void ResponseParser::on_trailer_line(std::string_view line) {
  if (line.empty()) {
    phase_ = Phase::kDone;
    return;
  }
  std::string_view name, value;
  if (!syntax::split_header_line(line, &name, &value)) fail(ParseError::kMalformedHeader);
}

ResponseParser::State ResponseParser::finish_eof() {
  switch (phase_) {
    case Phase::kDone:
      return State::kComplete;
    case Phase::kError:
      return State::kError;
    case Phase::kBodyUntilClose:
      phase_ = Phase::kDone;
      return State::kComplete;
    case Phase::kHeaders:
      fail(!started_      ? ParseError::kNoResponse
           : status_seen_ ? ParseError::kMalformedHeader
                          : ParseError::kMalformedStatus);
      return State::kError;
    default:
      fail(ParseError::kShortBody);
      return State::kError;
  }
}

}  // namespace millstone::http
