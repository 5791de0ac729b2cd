#include "http/http1_session.h"

#include "net/clock.h"

namespace millstone::http {

using metrics::ErrorCause;

ErrorCause parse_error_cause(ParseError error) {
  switch (error) {
    case ParseError::kMalformedStatus:
      return ErrorCause::kMalformedStatus;
    case ParseError::kMalformedHeader:
      return ErrorCause::kMalformedHeader;
    case ParseError::kHeaderTooLarge:
      return ErrorCause::kHeaderTooLarge;
    case ParseError::kBadChunk:
      return ErrorCause::kBadChunk;
    case ParseError::kShortBody:
      return ErrorCause::kShortBody;
    case ParseError::kNoResponse:
      return ErrorCause::kClosed;
    case ParseError::kNone:
      break;
  }
  return ErrorCause::kIoOther;
}

bool Http1Session::submit(const PreparedRequest& prepared, RequestToken token, int64_t now_ns,
                          Output& out) {
  if (capacity() == 0) return false;
  const auto& request = static_cast<const Http1Request&>(prepared);
  token_ = token;
  sent_ns_ = now_ns;
  busy_ = true;
  parser_.reset(request.head());
  out.write(request.bytes());  // one send; what the socket refuses is kept by the connection
  return true;
}

SessionStatus Http1Session::on_read(std::span<const char> bytes, Output&) {
  // We never pipeline: bytes with no request in flight, or after the
  // response, are garbage.
  if (!busy_) return {false, ErrorCause::kUnexpectedData};
  const ResponseParser::Result result = parser_.feed(bytes.data(), bytes.size());
  if (result.state == ResponseParser::State::kError) {
    return {false, parse_error_cause(parser_.error())};
  }
  if (result.state != ResponseParser::State::kComplete) return {};
  if (result.consumed != bytes.size()) return {false, ErrorCause::kUnexpectedData};
  complete(net::now_ns());
  return {};
}

SessionStatus Http1Session::on_end() {
  done_ = true;
  if (!busy_) return {};
  // A response delimited by the end of the connection completes now.
  if (parser_.finish_eof() == ResponseParser::State::kComplete) {
    complete(net::now_ns());
    return {};
  }
  return {false, parser_.started() ? parse_error_cause(parser_.error()) : ErrorCause::kClosed};
}

void Http1Session::complete(int64_t done_ns) {
  busy_ = false;
  if (!keepalive_ || !parser_.keep_alive()) done_ = true;
  listener_.on_response(token_, {parser_.status(), parser_.body_bytes()}, done_ns);
}

void Http1Session::expire(int64_t now_ns, int64_t timeout_ns, Output&) {
  if (!busy_ || now_ns - sent_ns_ < timeout_ns) return;
  // A late answer would arrive as unexpected data: this connection is done.
  busy_ = false;
  done_ = true;
  listener_.on_request_failed(token_, ErrorCause::kTimeout);
}

void Http1Session::fail_all(ErrorCause cause) {
  done_ = true;
  if (!busy_) return;
  busy_ = false;
  listener_.on_request_failed(token_, cause);
}

}  // namespace millstone::http
