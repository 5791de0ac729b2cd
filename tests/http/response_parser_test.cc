#include "http/response_parser.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

// Counts heap allocations so the "no allocation per response" promise is a
// test, not a comment. Replacing operator new is binary-wide, but it only
// counts and forwards to malloc.
namespace response_parser_test {
std::atomic<size_t> g_allocations{0};
}  // namespace response_parser_test

// noinline keeps GCC from pairing the inlined free() with operator new and
// warning about a mismatch that is not one.
[[gnu::noinline]] void* operator new(size_t size) {
  ++::response_parser_test::g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept {
  std::free(p);
}

namespace millstone::http {
namespace response_parser_test {

using State = ResponseParser::State;

struct Outcome {
  State state = State::kNeedMore;
  ParseError error = ParseError::kNone;
  int status = 0;
  bool keep_alive = false;
  uint64_t body_bytes = 0;
  size_t consumed = 0;
  std::string body;  // captured

  bool operator==(const Outcome& o) const {
    return state == o.state && error == o.error && status == o.status &&
           keep_alive == o.keep_alive && body_bytes == o.body_bytes &&
           (state != State::kComplete || consumed == o.consumed) && body == o.body;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{state=" << static_cast<int>(o.state) << " error=" << parse_error_name(o.error)
            << " status=" << o.status << " keep_alive=" << o.keep_alive
            << " body_bytes=" << o.body_bytes << " consumed=" << o.consumed << " body='" << o.body
            << "'}";
}

struct Options {
  bool head = false;
  bool eof = false;  // call finish_eof() when the input runs out mid-response
  size_t max_header_bytes = 64 * 1024;
};

// Feeds `input` in pieces that end at the given cut points.
Outcome parse_pieces(std::string_view input, const std::vector<size_t>& cuts, Options opt) {
  ResponseParser parser(opt.max_header_bytes);
  parser.set_capture(true, 1 << 20);
  parser.reset(opt.head);
  Outcome out;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    if (end < start) continue;
    auto r = parser.feed(input.data() + start, end - start);
    out.consumed += r.consumed;
    out.state = r.state;
    if (r.state != State::kNeedMore) break;
    EXPECT_EQ(r.consumed, end - start) << "kNeedMore must consume everything";
    start = end;
  }
  if (out.state == State::kNeedMore && opt.eof) out.state = parser.finish_eof();
  out.error = parser.error();
  out.status = parser.status();
  out.keep_alive = parser.keep_alive();
  out.body_bytes = parser.body_bytes();
  out.body = std::string(parser.body());
  return out;
}

Outcome parse_all(std::string_view input, Options opt = {}) {
  return parse_pieces(input, {}, opt);
}

Outcome parse_bytewise(std::string_view input, Options opt = {}) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < input.size(); ++i)
    cuts.push_back(i);
  return parse_pieces(input, cuts, opt);
}

struct Case {
  const char* name;
  std::string input;
  Options opt;
  State state;
  ParseError error;
  int status;
  uint64_t body_bytes;
  bool keep_alive;
  std::string body;
  size_t consumed;  // for kComplete; npos = the whole input
};

// Keeps gtest from dumping the struct's bytes when a case fails.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

constexpr size_t kAll = std::string::npos;

std::vector<Case> cases() {
  const Options eof{.eof = true};
  const Options head{.head = true};
  const Options tiny{.max_header_bytes = 64};
  return {
      {"content_length",
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       5,
       true,
       "hello",
       kAll},
      {"content_length_zero",
       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       true,
       "",
       kAll},
      {"name_case_insensitive",
       "HTTP/1.1 404 Not Found\r\ncOnTeNt-LeNgTh: 3\r\n\r\nabc",
       {},
       State::kComplete,
       ParseError::kNone,
       404,
       3,
       true,
       "abc",
       kAll},
      {"duplicate_equal_lengths",
       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       2,
       true,
       "ok",
       kAll},
      {"value_whitespace_trimmed",
       "HTTP/1.1 200 OK\r\nContent-Length: \t 2 \t\r\n\r\nok",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       2,
       true,
       "ok",
       kAll},
      {"chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
       "world\r\n0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       11,
       true,
       "hello world",
       kAll},
      {"chunked_ext_trailers_case",
       "HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\nA;name=val;x\r\n0123456789\r\n"
       "00 ; last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       10,
       true,
       "0123456789",
       kAll},
      {"chunked_uppercase_hex_and_leading_zeros",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000001F\r\n"
       "0123456789012345678901234567890\r\n0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       31,
       true,
       "0123456789012345678901234567890",
       kAll},
      {"gzip_then_chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       2,
       true,
       "ab",
       kAll},
      {"chunked_wins_over_length",
       "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\nab\r\n0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       2,
       true,
       "ab",
       kAll},
      {"non_chunked_encoding_reads_until_close",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nabcdef", eof,
       State::kComplete, ParseError::kNone, 200, 6, false, "abcdef", kAll},
      {"until_close", "HTTP/1.1 200 OK\r\nServer: old\r\n\r\nall of it", eof, State::kComplete,
       ParseError::kNone, 200, 9, false, "all of it", kAll},
      {"until_close_without_eof",
       "HTTP/1.1 200 OK\r\n\r\nsome",
       {},
       State::kNeedMore,
       ParseError::kNone,
       200,
       4,
       false,
       "some",
       kAll},
      {"until_close_empty", "HTTP/1.0 200 OK\r\n\r\n", eof, State::kComplete, ParseError::kNone,
       200, 0, false, "", kAll},
      {"no_content",
       "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nNEXT",
       {},
       State::kComplete,
       ParseError::kNone,
       204,
       0,
       true,
       "",
       47},
      {"not_modified",
       "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       304,
       0,
       true,
       "",
       kAll},
      {"head", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", head, State::kComplete,
       ParseError::kNone, 200, 0, true, "", kAll},
      {"head_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", head,
       State::kComplete, ParseError::kNone, 200, 0, true, "", kAll},
      {"continue_then_final",
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
       {},
       State::kComplete,
       ParseError::kNone,
       201,
       2,
       true,
       "ok",
       kAll},
      {"two_interim_with_headers",
       "HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
       "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       1,
       false,
       "z",
       kAll},
      {"switching_protocols",
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
       "\x81\x05hello",
       {},
       State::kComplete,
       ParseError::kNone,
       101,
       0,
       false,
       "",
       77},
      {"http10_default_close",
       "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       false,
       "",
       kAll},
      {"http10_keep_alive",
       "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       true,
       "",
       kAll},
      {"http11_close",
       "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       false,
       "",
       kAll},
      {"http11_close_in_list",
       "HTTP/1.1 200 OK\r\nConnection: Upgrade ,  CLOSE\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       false,
       "",
       kAll},
      {"close_token_substring_is_not_close",
       "HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       true,
       "",
       kAll},
      {"bare_lf",
       "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       2,
       true,
       "ok",
       kAll},
      {"bare_lf_chunked",
       "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       2,
       true,
       "ok",
       kAll},
      {"empty_reason_with_space",
       "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       true,
       "",
       kAll},
      {"empty_reason_without_space",
       "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       true,
       "",
       kAll},
      {"reason_obs_text",
       "HTTP/1.1 500 Fehler \xe4\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       500,
       0,
       true,
       "",
       kAll},
      {"empty_header_value",
       "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       true,
       "",
       kAll},
      {"pipelined_leftover",
       "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       1,
       true,
       "a",
       39},
      {"pipelined_after_chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n",
       {},
       State::kComplete,
       ParseError::kNone,
       200,
       0,
       true,
       "",
       52},

      // Status line errors.
      {"http2_version",
       "HTTP/2.0 200 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"http12_version",
       "HTTP/1.2 200 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"lowercase_http",
       "http/1.1 200 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"two_digit_status",
       "HTTP/1.1 20 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"four_digit_status",
       "HTTP/1.1 2000 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"status_below_100",
       "HTTP/1.1 099 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"status_letters",
       "HTTP/1.1 2x0 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"double_space",
       "HTTP/1.1  200 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"reason_control_char",
       "HTTP/1.1 200 O\x01K\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"garbage",
       "<html>hello</html>\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},
      {"leading_empty_line",
       "\r\nHTTP/1.1 200 OK\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedStatus,
       0,
       0,
       false,
       "",
       0},

      // Header errors.
      {"no_colon",
       "HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"space_before_colon",
       "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"empty_name",
       "HTTP/1.1 200 OK\r\n: 5\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"obs_fold",
       "HTTP/1.1 200 OK\r\nX-Long: a\r\n b\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"control_char_in_value",
       "HTTP/1.1 200 OK\r\nX: a\x01z\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"lone_cr_in_value",
       "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"negative_length",
       "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"plus_length",
       "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"letters_length",
       "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"empty_length",
       "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"list_length",
       "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"overflow_length",
       "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"conflicting_lengths",
       "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"too_large", "HTTP/1.1 200 OK\r\nX-Padding: " + std::string(100, 'p') + "\r\n\r\n", tiny,
       State::kError, ParseError::kHeaderTooLarge, 200, 0, false, "", 0},
      {"too_large_no_newline", "HTTP/1.1 200 OK" + std::string(100, 'p'), tiny, State::kError,
       ParseError::kHeaderTooLarge, 0, 0, false, "", 0},
      {"exactly_at_limit",
       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: " + std::string(21, 'p') + "\r\n\r\n", tiny,
       State::kComplete, ParseError::kNone, 200, 0, true, "", kAll},
      {"one_over_limit",
       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: " + std::string(22, 'p') + "\r\n\r\n", tiny,
       State::kError, ParseError::kHeaderTooLarge, 200, 0, false, "", 0},
      {"interim_blocks_have_own_budget",
       "HTTP/1.1 100 Continue\r\nX: " + std::string(30, 'p') +
           "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
       tiny, State::kComplete, ParseError::kNone, 200, 0, true, "", kAll},

      // Chunk errors.
      {"chunk_size_not_hex",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       0,
       false,
       "",
       0},
      {"chunk_size_empty",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       0,
       false,
       "",
       0},
      {"chunk_size_negative",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       0,
       false,
       "",
       0},
      {"chunk_size_overflow",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       0,
       false,
       "",
       0},
      {"chunk_size_just_below_limit",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFF\r\nab", eof,
       State::kError, ParseError::kShortBody, 200, 2, false, "ab", 0},
      {"chunk_size_at_limit",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       0,
       false,
       "",
       0},
      {"chunk_missing_crlf",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       2,
       false,
       "ab",
       0},
      {"chunk_cr_without_lf",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\rX0\r\n\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       2,
       false,
       "ab",
       0},
      {"chunk_garbage_after_size",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\nab\r\n0\r\n\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       0,
       false,
       "",
       0},
      {"chunk_ext_control_char",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x01\r\nab\r\n0\r\n\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       0,
       false,
       "",
       0},
      {"chunk_line_too_long",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + std::string(5000, 'e') +
           "\r\nab\r\n0\r\n\r\n",
       {},
       State::kError,
       ParseError::kBadChunk,
       200,
       0,
       false,
       "",
       0},
      {"bad_trailer",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon here\r\n\r\n",
       {},
       State::kError,
       ParseError::kMalformedHeader,
       200,
       0,
       false,
       "",
       0},
      {"trailers_too_large",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + std::string(80, 't') +
           "\r\n\r\n",
       tiny, State::kError, ParseError::kHeaderTooLarge, 200, 0, false, "", 0},

      // Connection closed early.
      {"eof_nothing", "", eof, State::kError, ParseError::kNoResponse, 0, 0, false, "", 0},
      {"eof_in_status", "HTTP/1.1 20", eof, State::kError, ParseError::kMalformedStatus, 0, 0,
       false, "", 0},
      {"eof_in_headers", "HTTP/1.1 200 OK\r\nContent-Len", eof, State::kError,
       ParseError::kMalformedHeader, 200, 0, false, "", 0},
      {"eof_after_interim", "HTTP/1.1 100 Continue\r\n\r\n", eof, State::kError,
       ParseError::kMalformedStatus, 0, 0, false, "", 0},
      {"eof_short_length_body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", eof,
       State::kError, ParseError::kShortBody, 200, 5, false, "12345", 0},
      {"eof_in_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", eof,
       State::kError, ParseError::kShortBody, 200, 3, false, "hel", 0},
      {"eof_before_last_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
       eof, State::kError, ParseError::kShortBody, 200, 2, false, "ab", 0},
      {"eof_in_trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", eof,
       State::kError, ParseError::kShortBody, 200, 0, false, "", 0},
      {"need_more_in_body",
       "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345",
       {},
       State::kNeedMore,
       ParseError::kNone,
       200,
       5,
       true,
       "12345",
       kAll},
  };
}

class ResponseCaseTest : public ::testing::TestWithParam<Case> {};

TEST_P(ResponseCaseTest, AllAtOnce) {
  const Case& c = GetParam();
  Outcome got = parse_all(c.input, c.opt);
  EXPECT_EQ(got.state, c.state) << got;
  EXPECT_EQ(got.error, c.error) << got;
  EXPECT_EQ(got.status, c.status) << got;
  EXPECT_EQ(got.body_bytes, c.body_bytes) << got;
  EXPECT_EQ(got.keep_alive, c.keep_alive) << got;
  EXPECT_EQ(got.body, c.body) << got;
  if (c.state == State::kComplete) {
    EXPECT_EQ(got.consumed, c.consumed == kAll ? c.input.size() : c.consumed) << got;
  }
}

// The property that keeps the parser honest: however the bytes are cut into
// reads, the outcome is the same.
TEST_P(ResponseCaseTest, EverySplitMatchesAllAtOnce) {
  const Case& c = GetParam();
  Outcome whole = parse_all(c.input, c.opt);
  EXPECT_EQ(parse_bytewise(c.input, c.opt), whole);
  for (size_t i = 0; i <= c.input.size(); ++i) {
    ASSERT_EQ(parse_pieces(c.input, {i}, c.opt), whole) << "split at " << i;
  }
  if (c.input.size() < 200) {
    for (size_t i = 0; i <= c.input.size(); i += 3) {
      for (size_t j = i; j <= c.input.size(); j += 2) {
        ASSERT_EQ(parse_pieces(c.input, {i, j}, c.opt), whole) << "split at " << i << "," << j;
      }
    }
  }
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::vector<size_t> cuts;
    for (size_t at = 0; at < c.input.size();) {
      at += 1 + rng() % 17;
      cuts.push_back(std::min(at, c.input.size()));
    }
    ASSERT_EQ(parse_pieces(c.input, cuts, c.opt), whole) << "random round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ResponseCaseTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ResponseParserTest, ParseErrorNames) {
  EXPECT_STREQ(parse_error_name(ParseError::kNone), "none");
  EXPECT_STREQ(parse_error_name(ParseError::kMalformedStatus), "malformed_status");
  EXPECT_STREQ(parse_error_name(ParseError::kMalformedHeader), "malformed_header");
  EXPECT_STREQ(parse_error_name(ParseError::kHeaderTooLarge), "header_too_large");
  EXPECT_STREQ(parse_error_name(ParseError::kBadChunk), "bad_chunk");
  EXPECT_STREQ(parse_error_name(ParseError::kShortBody), "short_body");
  EXPECT_STREQ(parse_error_name(ParseError::kNoResponse), "no_response");
}

TEST(ResponseParserTest, PipelinedResponsesParseInTurn) {
  std::string wire =
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"
      "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nthree";
  ResponseParser parser;
  parser.set_capture(true, 100);
  std::vector<std::pair<int, std::string>> seen;
  std::string_view rest = wire;
  while (!rest.empty()) {
    parser.reset(false);
    auto r = parser.feed(rest.data(), rest.size());
    ASSERT_EQ(r.state, State::kComplete);
    seen.emplace_back(parser.status(), std::string(parser.body()));
    rest.remove_prefix(r.consumed);
  }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(200, std::string("one")));
  EXPECT_EQ(seen[1], std::make_pair(200, std::string("two")));
  EXPECT_EQ(seen[2], std::make_pair(404, std::string("three")));
}

TEST(ResponseParserTest, FeedAfterCompleteOrErrorConsumesNothing) {
  ResponseParser parser;
  std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(parser.feed(ok.data(), ok.size()).state, State::kComplete);
  auto again = parser.feed(ok.data(), ok.size());
  EXPECT_EQ(again.consumed, 0u);
  EXPECT_EQ(again.state, State::kComplete);
  EXPECT_EQ(parser.finish_eof(), State::kComplete);

  parser.reset(false);
  std::string bad = "NOPE\r\n";
  ASSERT_EQ(parser.feed(bad.data(), bad.size()).state, State::kError);
  again = parser.feed(ok.data(), ok.size());
  EXPECT_EQ(again.consumed, 0u);
  EXPECT_EQ(again.state, State::kError);
  EXPECT_EQ(parser.finish_eof(), State::kError);
  EXPECT_EQ(parser.error(), ParseError::kMalformedStatus);
}

TEST(ResponseParserTest, StartedTracksAnyByte) {
  ResponseParser parser;
  EXPECT_FALSE(parser.started());
  parser.feed("", 0);
  EXPECT_FALSE(parser.started());
  parser.feed("H", 1);
  EXPECT_TRUE(parser.started());
  parser.reset(false);
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.error(), ParseError::kNone);
}

TEST(ResponseParserTest, ResetClearsEverything) {
  ResponseParser parser;
  parser.set_capture(true, 10);
  std::string a = "HTTP/1.0 500 X\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nab";
  ASSERT_EQ(parser.feed(a.data(), a.size()).state, State::kComplete);
  EXPECT_FALSE(parser.keep_alive());
  parser.reset(false);
  EXPECT_EQ(parser.status(), 0);
  EXPECT_EQ(parser.body_bytes(), 0u);
  EXPECT_EQ(parser.header("x-a"), "");
  EXPECT_EQ(parser.body(), "");
  std::string partial = "HTTP/1.1 200 OK\r\nX-B: 1";  // leaves a partial line behind
  parser.feed(partial.data(), partial.size());
  parser.reset(false);
  std::string b = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(parser.feed(b.data(), b.size()).state, State::kComplete);
  EXPECT_EQ(parser.status(), 201);
  EXPECT_TRUE(parser.keep_alive());
  EXPECT_EQ(parser.header("x-b"), "");
}

TEST(ResponseParserTest, CaptureKeepsHeadersAndBodyPrefix) {
  ResponseParser parser;
  parser.set_capture(true, 4);
  parser.reset(false);
  std::string wire =
      "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\nX-Dup: first\r\nx-dup: second\r\n"
      "X-Empty:\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
  ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
  EXPECT_EQ(parser.header("content-type"), "text/plain");
  EXPECT_EQ(parser.header("CONTENT-TYPE"), "text/plain");
  EXPECT_EQ(parser.header("X-Dup"), "first");
  EXPECT_EQ(parser.header("x-empty"), "");
  EXPECT_EQ(parser.header("x-interim"), "") << "interim response headers are not kept";
  EXPECT_EQ(parser.header("missing"), "");
  EXPECT_EQ(parser.body(), "abcd");
  EXPECT_EQ(parser.body_bytes(), 6u);
}

TEST(ResponseParserTest, CaptureOffKeepsNothing) {
  ResponseParser parser;
  std::string wire = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
  ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
  EXPECT_EQ(parser.header("content-type"), "");
  EXPECT_EQ(parser.body(), "");
  EXPECT_EQ(parser.body_bytes(), 2u);

  parser.set_capture(true, 100);
  parser.reset(false);
  ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
  EXPECT_EQ(parser.body(), "hi");
  parser.set_capture(false, 100);
  EXPECT_EQ(parser.body(), "");
  EXPECT_EQ(parser.header("content-type"), "");
}

TEST(ResponseParserTest, CapturedHeadersSurviveSplitReads) {
  ResponseParser parser;
  parser.set_capture(true, 100);
  parser.reset(false);
  std::string wire = "HTTP/1.1 200 OK\r\nX-Split: value\r\nContent-Length: 0\r\n\r\n";
  for (char c : wire)
    parser.feed(&c, 1);
  EXPECT_EQ(parser.header("x-split"), "value");
}

TEST(ResponseParserTest, HeaderLimitAppliesWhenFedByteByByte) {
  ResponseParser parser(128);
  std::string wire = "HTTP/1.1 200 OK\r\nX-Padding: " + std::string(1000, 'p');
  size_t fed = 0;
  State state = State::kNeedMore;
  for (char c : wire) {
    state = parser.feed(&c, 1).state;
    ++fed;
    if (state != State::kNeedMore) break;
  }
  EXPECT_EQ(state, State::kError);
  EXPECT_EQ(parser.error(), ParseError::kHeaderTooLarge);
  EXPECT_LE(fed, 129u) << "must stop at the limit, not buffer without bound";
}

TEST(ResponseParserTest, ManyEmptyishHeadersStillHitTheLimit) {
  ResponseParser parser(1024);
  std::string wire = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 500; ++i)
    wire += "A:\r\n";
  EXPECT_EQ(parser.feed(wire.data(), wire.size()).state, State::kError);
  EXPECT_EQ(parser.error(), ParseError::kHeaderTooLarge);
}

TEST(ResponseParserTest, LargeBodyInPieces) {
  ResponseParser parser;
  std::string body(1 << 20, 'x');
  std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + body + "HTTP/1.1";
  size_t pos = 0;
  ResponseParser::Result r{0, State::kNeedMore};
  while (r.state == State::kNeedMore) {
    size_t n = std::min<size_t>(4096, wire.size() - pos);
    r = parser.feed(wire.data() + pos, n);
    pos += r.consumed;
  }
  EXPECT_EQ(r.state, State::kComplete);
  EXPECT_EQ(parser.body_bytes(), body.size());
  EXPECT_EQ(pos, wire.size() - 8);
}

TEST(ResponseParserTest, NoAllocationWhenHeaderBlockArrivesWhole) {
  ResponseParser parser;
  std::string wire =
      "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
      "Content-Type: text/html\r\nContent-Length: 10\r\nConnection: keep-alive\r\n"
      "Cache-Control: no-cache\r\nX-Request-Id: 1234\r\nVary: Accept-Encoding\r\n\r\n"
      "0123456789";
  std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: x\r\n\r\n";
  size_t before = ::response_parser_test::g_allocations.load();
  for (int i = 0; i < 100; ++i) {
    parser.reset(false);
    ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
    parser.reset(false);
    ASSERT_EQ(parser.feed(chunked.data(), chunked.size()).state, State::kComplete);
    // The body may arrive in separate reads without cost too.
    parser.reset(false);
    ASSERT_EQ(parser.feed(wire.data(), wire.size() - 5).state, State::kNeedMore);
    ASSERT_EQ(parser.feed(wire.data() + wire.size() - 5, 5).state, State::kComplete);
  }
  EXPECT_EQ(::response_parser_test::g_allocations.load() - before, 0u);
}

TEST(ResponseParserTest, SplitHeadersReuseBufferCapacity) {
  ResponseParser parser;
  std::string wire = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n";
  auto parse_split = [&] {
    parser.reset(false);
    parser.feed(wire.data(), 20);
    return parser.feed(wire.data() + 20, wire.size() - 20).state;
  };
  ASSERT_EQ(parse_split(), State::kComplete);  // warms the partial-line buffer
  size_t before = ::response_parser_test::g_allocations.load();
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(parse_split(), State::kComplete);
  EXPECT_EQ(::response_parser_test::g_allocations.load() - before, 0u);
}

}  // namespace response_parser_test
}  // namespace millstone::http

namespace millstone::http {
namespace response_parser_test {

TEST(ResponseParserTest, HeaderIterationListsEveryCapturedHeaderInOrder) {
  ResponseParser parser;
  parser.set_capture(true, 100);
  parser.reset(false);
  std::string wire =
      "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
      "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nContent-Length: 0\r\n"
      "set-cookie: b=2\r\nX-Empty:\r\n\r\n";
  ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
  ASSERT_EQ(parser.header_count(), 4u) << "interim response headers are not kept";
  EXPECT_EQ(parser.header_name(0), "Set-Cookie");
  EXPECT_EQ(parser.header_value(0), "a=1; Path=/");
  EXPECT_EQ(parser.header_name(1), "Content-Length");
  EXPECT_EQ(parser.header_value(1), "0");
  EXPECT_EQ(parser.header_name(2), "set-cookie");
  EXPECT_EQ(parser.header_value(2), "b=2");
  EXPECT_EQ(parser.header_name(3), "X-Empty");
  EXPECT_EQ(parser.header_value(3), "");

  // The next response starts from an empty list.
  parser.reset(false);
  std::string next = "HTTP/1.1 204 No Content\r\nX-Only: 1\r\n\r\n";
  ASSERT_EQ(parser.feed(next.data(), next.size()).state, State::kComplete);
  ASSERT_EQ(parser.header_count(), 1u);
  EXPECT_EQ(parser.header_name(0), "X-Only");
  EXPECT_EQ(parser.header_value(0), "1");
}

TEST(ResponseParserTest, HeaderIterationSurvivesSplitReads) {
  ResponseParser parser;
  parser.set_capture(true, 100);
  parser.reset(false);
  std::string wire = "HTTP/1.1 200 OK\r\nX-A: one\r\nX-B: two\r\nContent-Length: 0\r\n\r\n";
  for (char c : wire)
    parser.feed(&c, 1);
  ASSERT_EQ(parser.header_count(), 3u);
  EXPECT_EQ(parser.header_name(1), "X-B");
  EXPECT_EQ(parser.header_value(1), "two");
}

TEST(ResponseParserTest, HeaderIterationIsEmptyWhenCaptureIsOff) {
  ResponseParser parser;
  std::string wire = "HTTP/1.1 200 OK\r\nX-A: one\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
  EXPECT_EQ(parser.header_count(), 0u);

  parser.set_capture(true, 100);
  parser.reset(false);
  ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
  EXPECT_EQ(parser.header_count(), 2u);
  parser.set_capture(false, 100);
  EXPECT_EQ(parser.header_count(), 0u);
}

}  // namespace response_parser_test
}  // namespace millstone::http
