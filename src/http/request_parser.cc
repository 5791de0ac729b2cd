#include "http/request_parser.h"

#include <algorithm>
#include <cstring>

#include "http/syntax.h"

namespace millstone::http {

const char* request_error_name(RequestError error) {
  switch (error) {
    case RequestError::kNone:
      return "none";
    case RequestError::kMalformedRequestLine:
      return "malformed_request_line";
    case RequestError::kMalformedHeader:
      return "malformed_header";
    case RequestError::kHeaderTooLarge:
      return "header_too_large";
    case RequestError::kBadChunk:
      return "bad_chunk";
    case RequestError::kBodyTooLarge:
      return "body_too_large";
  }
  return "unknown";
}

RequestParser::RequestParser(size_t max_header_bytes, size_t max_body_bytes)
    : max_header_bytes_(max_header_bytes), max_body_bytes_(max_body_bytes) {
  reset();
}

void RequestParser::reset() {
  head_.clear();
  scratch_.clear();
  line_start_ = 0;
  trailer_bytes_ = 0;
  headers_.clear();
  body_.clear();
  method_ = target_ = path_ = query_ = Span{};
  remaining_ = 0;
  content_length_ = 0;
  phase_ = Phase::kHeaders;
  error_ = RequestError::kNone;
  version_minor_ = 1;
  started_ = false;
  request_line_seen_ = false;
  has_content_length_ = false;
  has_transfer_encoding_ = false;
  chunked_ = false;
  connection_close_ = false;
  connection_keep_alive_ = false;
  expects_continue_ = false;
  keep_alive_ = true;
  implicit_root_path_ = false;
}

std::string_view RequestParser::path() const {
  if (implicit_root_path_) return "/";
  return view(path_);
}

std::string_view RequestParser::header(std::string_view name) const {
  for (const HeaderSpan& h : headers_) {
    if (syntax::iequals(view(h.name), name)) return view(h.value);
  }
  return {};
}

void RequestParser::fail(RequestError error) {
  error_ = error;
  phase_ = Phase::kError;
  keep_alive_ = false;
}

// Appends bytes up to the next LF to *sink (whose current line starts at
// line_start_). Returns true with the finished line (terminator stripped);
// false when the data ran out (all consumed) or *sink would pass limit
// (phase_ becomes kError). Checking the limit on partial lines makes
// byte-by-byte feeding fail exactly like one big read.
bool RequestParser::next_line(const char* data, size_t len, size_t* pos, std::string* sink,
                              size_t limit, RequestError too_long, std::string_view* line) {
  const char* start = data + *pos;
  size_t avail = len - *pos;
  if (avail == 0) return false;
  const char* lf = static_cast<const char*>(std::memchr(start, '\n', avail));
  size_t take = lf ? static_cast<size_t>(lf - start) + 1 : avail;
  if (take > limit || sink->size() > limit - take) {
    fail(too_long);
    return false;
  }
  sink->append(start, take);
  *pos += take;
  if (lf == nullptr) return false;
  std::string_view l(sink->data() + line_start_, sink->size() - line_start_ - 1);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  line_start_ = sink->size();
  *line = l;
  return true;
}

RequestParser::Result RequestParser::feed(const char* data, size_t len) {
  if (phase_ == Phase::kDone) return {0, State::kComplete};
  if (phase_ == Phase::kError) return {0, State::kError};
  if (len == 0) return {0, State::kNeedMore};
  started_ = true;
  size_t pos = 0;
  for (;;) {
    switch (phase_) {
      case Phase::kHeaders: {
        std::string_view line;
        if (!next_line(data, len, &pos, &head_, max_header_bytes_, RequestError::kHeaderTooLarge,
                       &line)) {
          return {pos, phase_ == Phase::kError ? State::kError : State::kNeedMore};
        }
        if (!request_line_seen_) {
          if (!line.empty()) on_request_line(line);
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
          body_.append(data + pos, n);
          pos += n;
          if (chunks_.expect() == ChunkedDecoder::Expect::kData) return {pos, State::kNeedMore};
          break;
        }
        if (chunks_.expect() == ChunkedDecoder::Expect::kDataEnd) {
          if (pos == len) return {pos, State::kNeedMore};
          if (chunks_.on_data_end(data[pos++]) != ChunkedDecoder::Status::kOk) {
            fail(RequestError::kBadChunk);
          }
          break;
        }
        std::string_view line;
        if (!next_line(data, len, &pos, &scratch_, syntax::kMaxChunkLineBytes,
                       RequestError::kBadChunk, &line)) {
          return {pos, phase_ == Phase::kError ? State::kError : State::kNeedMore};
        }
        on_chunk_size_line(line);
        scratch_.clear();
        line_start_ = 0;
        break;
      }
      case Phase::kTrailers: {
        std::string_view line;
        if (!next_line(data, len, &pos, &scratch_, max_header_bytes_ - trailer_bytes_,
                       RequestError::kHeaderTooLarge, &line)) {
          return {pos, phase_ == Phase::kError ? State::kError : State::kNeedMore};
        }
        trailer_bytes_ += scratch_.size();
        on_trailer_line(line);
        scratch_.clear();
        line_start_ = 0;
        break;
      }
      case Phase::kBodyLength: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, len - pos));
        body_.append(data + pos, n);
        pos += n;
        remaining_ -= n;
        if (remaining_ != 0) return {pos, State::kNeedMore};
        phase_ = Phase::kDone;
        break;
      }
      case Phase::kDone:
        return {pos, State::kComplete};
      case Phase::kError:
        return {pos, State::kError};
    }
  }
}

namespace {

// "scheme://" at the start of an absolute-form target (RFC 3986 3.1).
size_t absolute_form_prefix(std::string_view target) {
  size_t sep = target.find("://");
  if (sep == std::string_view::npos || sep == 0) return 0;
  for (size_t i = 0; i < sep; ++i) {
    char c = target[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alpha && (i == 0 || !(syntax::is_digit(c) || c == '+' || c == '-' || c == '.'))) return 0;
  }
  return sep + 3;
}

}  // namespace

// method SP request-target SP HTTP-version, single spaces (RFC 9112 3).
void RequestParser::on_request_line(std::string_view line) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return fail(RequestError::kMalformedRequestLine);
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(RequestError::kMalformedRequestLine);
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!syntax::is_token(method) || target.empty() ||
      !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return fail(RequestError::kMalformedRequestLine);
  }
  if (version == "HTTP/1.1") {
    version_minor_ = 1;
  } else if (version == "HTTP/1.0") {
    version_minor_ = 0;
  } else {
    return fail(RequestError::kMalformedRequestLine);
  }

  std::string_view path = target;
  if (target[0] == '/' || target == "*") {
    // origin-form or asterisk-form: the target is the path.
  } else if (size_t prefix = absolute_form_prefix(target); prefix != 0) {
    size_t start = target.find_first_of("/?", prefix);
    path = start == std::string_view::npos ? target.substr(target.size()) : target.substr(start);
    implicit_root_path_ = path.empty() || path[0] == '?';
  } else if (method == "CONNECT") {
    // authority-form "host:port"
  } else {
    return fail(RequestError::kMalformedRequestLine);
  }
  size_t q = path.find('?');
  method_ = span_of(method);
  target_ = span_of(target);
  path_ = span_of(path.substr(0, q));
  if (q != std::string_view::npos) query_ = span_of(path.substr(q + 1));
  request_line_seen_ = true;
}

void RequestParser::on_header_line(std::string_view line) {
  std::string_view name, value;
  if (!syntax::split_header_line(line, &name, &value)) return fail(RequestError::kMalformedHeader);
  switch (name.size()) {
    case 14:
      if (syntax::iequals(name, "content-length")) {
        uint64_t n = 0;
        if (!syntax::parse_decimal(value, &n) || (has_content_length_ && n != content_length_)) {
          return fail(RequestError::kMalformedHeader);
        }
        has_content_length_ = true;
        content_length_ = n;
      }
      break;
    case 17:
      if (syntax::iequals(name, "transfer-encoding")) {
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
    case 6:
      if (syntax::iequals(name, "expect")) {
        expects_continue_ = syntax::iequals(value, "100-continue");
      }
      break;
    default:
      break;
  }
  headers_.push_back({span_of(name), span_of(value)});
}

void RequestParser::on_header_block_end() {
  keep_alive_ =
      version_minor_ == 1 ? !connection_close_ : connection_keep_alive_ && !connection_close_;
  if (has_transfer_encoding_) {
    // A request body must have a knowable length; anything but chunked last is unusable.
    if (!chunked_) return fail(RequestError::kMalformedHeader);
    if (has_content_length_) keep_alive_ = false;
    chunks_.reset();
    phase_ = Phase::kChunked;
    scratch_.clear();
    line_start_ = 0;
    return;
  }
  if (content_length_ > max_body_bytes_) return fail(RequestError::kBodyTooLarge);
  remaining_ = content_length_;
  body_.reserve(static_cast<size_t>(content_length_));
  phase_ = remaining_ == 0 ? Phase::kDone : Phase::kBodyLength;
}

void RequestParser::on_chunk_size_line(std::string_view line) {
  switch (chunks_.on_size_line(line, max_body_bytes_ - body_.size())) {
    case ChunkedDecoder::Status::kBadChunk:
      return fail(RequestError::kBadChunk);
    case ChunkedDecoder::Status::kTooLarge:
      return fail(RequestError::kBodyTooLarge);
    case ChunkedDecoder::Status::kOk:
      break;
  }
  if (chunks_.expect() == ChunkedDecoder::Expect::kTrailers) phase_ = Phase::kTrailers;
}

// Trailers are validated like headers and otherwise dropped: the mock server
// has no use for them and merging them into headers invites confusion.
void RequestParser::on_trailer_line(std::string_view line) {
  if (line.empty()) {
    phase_ = Phase::kDone;
    return;
  }
  std::string_view name, value;
  if (!syntax::split_header_line(line, &name, &value)) fail(RequestError::kMalformedHeader);
}

}  // namespace millstone::http
