#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace millstone::http {
namespace request_parser_test {

using State = RequestParser::State;

struct Outcome {
  State state = State::kNeedMore;
  RequestError error = RequestError::kNone;
  std::string method, target, path, query, body;
  int version_minor = 0;
  bool keep_alive = false;
  bool expects_continue = false;
  size_t header_count = 0;
  size_t consumed = 0;

  bool operator==(const Outcome& o) const {
    return state == o.state && error == o.error && method == o.method && target == o.target &&
           path == o.path && query == o.query && body == o.body &&
           version_minor == o.version_minor && keep_alive == o.keep_alive &&
           expects_continue == o.expects_continue && header_count == o.header_count &&
           (state != State::kComplete || consumed == o.consumed);
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{state=" << static_cast<int>(o.state) << " error=" << request_error_name(o.error)
            << " " << o.method << " " << o.target << " path=" << o.path << " query=" << o.query
            << " 1." << o.version_minor << " keep_alive=" << o.keep_alive
            << " headers=" << o.header_count << " body='" << o.body << "' consumed=" << o.consumed
            << "}";
}

struct Limits {
  size_t max_header_bytes = 64 * 1024;
  size_t max_body_bytes = 1024 * 1024;
};

Outcome parse_pieces(std::string_view input, const std::vector<size_t>& cuts, Limits limits = {}) {
  RequestParser parser(limits.max_header_bytes, limits.max_body_bytes);
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
    EXPECT_EQ(r.consumed, end - start);
    start = end;
  }
  out.error = parser.error();
  out.method = parser.method();
  out.target = parser.target();
  out.path = parser.path();
  out.query = parser.query();
  out.body = parser.body();
  out.version_minor = parser.version_minor();
  out.keep_alive = parser.keep_alive();
  out.expects_continue = parser.expects_continue();
  out.header_count = parser.header_count();
  return out;
}

Outcome parse_all(std::string_view input, Limits limits = {}) {
  return parse_pieces(input, {}, limits);
}

struct Case {
  const char* name;
  std::string input;
  Limits limits;
  State state;
  RequestError error;
  std::string method, target, path, query, body;
  bool keep_alive;
};

// Keeps gtest from dumping the struct's bytes when a case fails.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> cases() {
  const Limits tiny_head{.max_header_bytes = 64};
  const Limits tiny_body{.max_body_bytes = 8};
  constexpr State kOk = State::kComplete;
  constexpr State kErr = State::kError;
  constexpr RequestError kNone = RequestError::kNone;
  return {
      {"simple_get",
       "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "/",
       "/",
       "",
       "",
       true},
      {"query",
       "GET /search?q=1&r=2 HTTP/1.1\r\nHost: a\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "/search?q=1&r=2",
       "/search",
       "q=1&r=2",
       "",
       true},
      {"empty_query", "GET /p? HTTP/1.1\r\n\r\n", {}, kOk, kNone, "GET", "/p?", "/p", "", "", true},
      {"http10", "GET /x HTTP/1.0\r\n\r\n", {}, kOk, kNone, "GET", "/x", "/x", "", "", false},
      {"http10_keep_alive",
       "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "/x",
       "/x",
       "",
       "",
       true},
      {"http11_close",
       "GET /x HTTP/1.1\r\nConnection: Close\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "/x",
       "/x",
       "",
       "",
       false},
      {"post_length",
       "POST /form HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world",
       {},
       kOk,
       kNone,
       "POST",
       "/form",
       "/form",
       "",
       "hello world",
       true},
      {"post_chunked",
       "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n"
       "0\r\nTrailer: x\r\n\r\n",
       {},
       kOk,
       kNone,
       "POST",
       "/up",
       "/up",
       "",
       "hello!",
       true},
      {"chunked_wins_and_closes",
       "POST /up HTTP/1.1\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\nhi\r\n0\r\n\r\n",
       {},
       kOk,
       kNone,
       "POST",
       "/up",
       "/up",
       "",
       "hi",
       false},
      {"bare_lf",
       "PUT /a HTTP/1.1\nContent-Length: 2\n\nok",
       {},
       kOk,
       kNone,
       "PUT",
       "/a",
       "/a",
       "",
       "ok",
       true},
      {"leading_empty_lines",
       "\r\n\r\nGET / HTTP/1.1\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "/",
       "/",
       "",
       "",
       true},
      {"absolute_form",
       "GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "http://example.com:8080/p/q?x=1",
       "/p/q",
       "x=1",
       "",
       true},
      {"absolute_form_no_path",
       "GET http://example.com HTTP/1.1\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "http://example.com",
       "/",
       "",
       "",
       true},
      {"absolute_form_query_only",
       "GET http://example.com?a HTTP/1.1\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "http://example.com?a",
       "/",
       "a",
       "",
       true},
      {"asterisk", "OPTIONS * HTTP/1.1\r\n\r\n", {}, kOk, kNone, "OPTIONS", "*", "*", "", "", true},
      {"connect",
       "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
       {},
       kOk,
       kNone,
       "CONNECT",
       "example.com:443",
       "example.com:443",
       "",
       "",
       true},
      {"custom_method",
       "PURGE /cache HTTP/1.1\r\n\r\n",
       {},
       kOk,
       kNone,
       "PURGE",
       "/cache",
       "/cache",
       "",
       "",
       true},
      {"pipelined",
       "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
       {},
       kOk,
       kNone,
       "GET",
       "/1",
       "/1",
       "",
       "",
       true},
      {"body_at_limit", "POST / HTTP/1.1\r\nContent-Length: 8\r\n\r\n12345678", tiny_body, kOk,
       kNone, "POST", "/", "/", "", "12345678", true},
      {"chunked_body_at_limit",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n1234\r\n4\r\n5678\r\n0\r\n\r\n",
       tiny_body, kOk, kNone, "POST", "/", "/", "", "12345678", true},

      {"lowercase_version",
       "GET / http/1.1\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"http2_preface",
       "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"http09",
       "GET /\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"double_space",
       "GET  / HTTP/1.1\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"trailing_space",
       "GET / HTTP/1.1 \r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"bad_method",
       "G(T / HTTP/1.1\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"relative_target",
       "GET foo HTTP/1.1\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"control_in_target",
       "GET /a\x01 HTTP/1.1\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"non_ascii_target",
       "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedRequestLine,
       "",
       "",
       "",
       "",
       "",
       false},
      {"obs_fold",
       "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedHeader,
       "GET",
       "/",
       "/",
       "",
       "",
       false},
      {"header_space_before_colon",
       "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedHeader,
       "GET",
       "/",
       "/",
       "",
       "",
       false},
      {"header_no_colon",
       "GET / HTTP/1.1\r\nHost\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedHeader,
       "GET",
       "/",
       "/",
       "",
       "",
       false},
      {"bad_length",
       "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedHeader,
       "POST",
       "/",
       "/",
       "",
       "",
       false},
      {"conflicting_lengths",
       "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedHeader,
       "POST",
       "/",
       "/",
       "",
       "",
       false},
      {"gzip_only_encoding",
       "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedHeader,
       "POST",
       "/",
       "/",
       "",
       "",
       false},
      {"head_too_large", "GET / HTTP/1.1\r\nX-Pad: " + std::string(100, 'x') + "\r\n\r\n",
       tiny_head, kErr, RequestError::kHeaderTooLarge, "GET", "/", "/", "", "", false},
      {"request_line_too_large", "GET /" + std::string(100, 'x'), tiny_head, kErr,
       RequestError::kHeaderTooLarge, "", "", "", "", "", false},
      {"empty_lines_count_toward_limit", std::string(70, '\n'), tiny_head, kErr,
       RequestError::kHeaderTooLarge, "", "", "", "", "", false},
      {"body_too_large", "POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n123456789", tiny_body, kErr,
       RequestError::kBodyTooLarge, "POST", "/", "/", "", "", false},
      {"chunked_body_too_large",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n1234\r\n5\r\n56789\r\n0\r\n\r\n",
       tiny_body, kErr, RequestError::kBodyTooLarge, "POST", "/", "/", "", "1234", false},
      {"bad_chunk_size",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
       {},
       kErr,
       RequestError::kBadChunk,
       "POST",
       "/",
       "/",
       "",
       "",
       false},
      {"chunk_overflow",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n",
       {},
       kErr,
       RequestError::kBadChunk,
       "POST",
       "/",
       "/",
       "",
       "",
       false},
      {"chunk_missing_crlf",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
       {},
       kErr,
       RequestError::kBadChunk,
       "POST",
       "/",
       "/",
       "",
       "a",
       false},
      {"chunk_line_too_long",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(5000, 'e'),
       {},
       kErr,
       RequestError::kBadChunk,
       "POST",
       "/",
       "/",
       "",
       "",
       false},
      {"bad_trailer",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
       {},
       kErr,
       RequestError::kMalformedHeader,
       "POST",
       "/",
       "/",
       "",
       "",
       false},
      {"trailers_too_large",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(70, 't') +
           "\r\n\r\n",
       tiny_head, kErr, RequestError::kHeaderTooLarge, "POST", "/", "/", "", "", false},
      {"incomplete_body",
       "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345",
       {},
       State::kNeedMore,
       kNone,
       "POST",
       "/",
       "/",
       "",
       "12345",
       true},
  };
}

class RequestCaseTest : public ::testing::TestWithParam<Case> {};

TEST_P(RequestCaseTest, AllAtOnce) {
  const Case& c = GetParam();
  Outcome got = parse_all(c.input, c.limits);
  EXPECT_EQ(got.state, c.state) << got;
  EXPECT_EQ(got.error, c.error) << got;
  if (c.state != State::kError || c.error != RequestError::kMalformedRequestLine) {
    EXPECT_EQ(got.method, c.method) << got;
    EXPECT_EQ(got.target, c.target) << got;
    EXPECT_EQ(got.path, c.path) << got;
    EXPECT_EQ(got.query, c.query) << got;
  }
  EXPECT_EQ(got.body, c.body) << got;
  EXPECT_EQ(got.keep_alive, c.keep_alive) << got;
}

TEST_P(RequestCaseTest, EverySplitMatchesAllAtOnce) {
  const Case& c = GetParam();
  Outcome whole = parse_all(c.input, c.limits);
  std::vector<size_t> bytewise;
  for (size_t i = 1; i < c.input.size(); ++i)
    bytewise.push_back(i);
  EXPECT_EQ(parse_pieces(c.input, bytewise, c.limits), whole);
  for (size_t i = 0; i <= c.input.size(); ++i) {
    ASSERT_EQ(parse_pieces(c.input, {i}, c.limits), whole) << "split at " << i;
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::vector<size_t> cuts;
    for (size_t at = 0; at < c.input.size();) {
      at += 1 + rng() % 11;
      cuts.push_back(std::min(at, c.input.size()));
    }
    ASSERT_EQ(parse_pieces(c.input, cuts, c.limits), whole) << "random round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, RequestCaseTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(RequestParserTest, ErrorNames) {
  EXPECT_STREQ(request_error_name(RequestError::kNone), "none");
  EXPECT_STREQ(request_error_name(RequestError::kMalformedRequestLine), "malformed_request_line");
  EXPECT_STREQ(request_error_name(RequestError::kMalformedHeader), "malformed_header");
  EXPECT_STREQ(request_error_name(RequestError::kHeaderTooLarge), "header_too_large");
  EXPECT_STREQ(request_error_name(RequestError::kBadChunk), "bad_chunk");
  EXPECT_STREQ(request_error_name(RequestError::kBodyTooLarge), "body_too_large");
}

TEST(RequestParserTest, HeadersAreCaseInsensitiveAndOrdered) {
  RequestParser parser;
  std::string wire =
      "GET / HTTP/1.1\r\nHost: example.com\r\nX-Dup: one\r\nx-dup: two\r\n"
      "Accept:   */*  \r\nX-Empty:\r\n\r\n";
  ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
  EXPECT_EQ(parser.header("HOST"), "example.com");
  EXPECT_EQ(parser.header("x-DUP"), "one");
  EXPECT_EQ(parser.header("accept"), "*/*");
  EXPECT_EQ(parser.header("x-empty"), "");
  EXPECT_EQ(parser.header("missing"), "");
  ASSERT_EQ(parser.header_count(), 5u);
  EXPECT_EQ(parser.header_name(2), "x-dup");
  EXPECT_EQ(parser.header_value(2), "two");
}

TEST(RequestParserTest, HeadersSurviveByteByByteFeeding) {
  RequestParser parser;
  std::string wire = "GET /a?b HTTP/1.1\r\nHost: h\r\nX-Long: " + std::string(3000, 'v') +
                     "\r\nContent-Length: 3\r\n\r\nabc";
  State state = State::kNeedMore;
  for (char c : wire)
    state = parser.feed(&c, 1).state;
  ASSERT_EQ(state, State::kComplete);
  EXPECT_EQ(parser.header("host"), "h");
  EXPECT_EQ(parser.header("x-long"), std::string(3000, 'v'));
  EXPECT_EQ(parser.target(), "/a?b");
  EXPECT_EQ(parser.body(), "abc");
}

TEST(RequestParserTest, ExpectContinueIsVisibleBeforeTheBody) {
  RequestParser parser;
  std::string head = "POST /up HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n";
  auto r = parser.feed(head.data(), head.size());
  EXPECT_EQ(r.state, State::kNeedMore);
  EXPECT_TRUE(parser.headers_complete());
  EXPECT_TRUE(parser.expects_continue());
  r = parser.feed("data", 4);
  EXPECT_EQ(r.state, State::kComplete);
  EXPECT_EQ(parser.body(), "data");

  parser.reset();
  EXPECT_FALSE(parser.headers_complete());
  EXPECT_FALSE(parser.expects_continue());
  std::string other = "POST /up HTTP/1.1\r\nExpect: something-else\r\n\r\n";
  parser.feed(other.data(), other.size());
  EXPECT_FALSE(parser.expects_continue());
}

TEST(RequestParserTest, PipelinedRequestsParseInTurnAndReuseState) {
  std::string wire =
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "DELETE /3?x HTTP/1.0\r\n\r\n";
  RequestParser parser;
  std::string_view rest = wire;
  std::vector<std::string> seen;
  while (!rest.empty()) {
    parser.reset();
    auto r = parser.feed(rest.data(), rest.size());
    ASSERT_EQ(r.state, State::kComplete);
    seen.push_back(std::string(parser.method()) + " " + std::string(parser.path()) + " " +
                   std::string(parser.body()) + " " + std::to_string(parser.keep_alive()));
    rest.remove_prefix(r.consumed);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"GET /1  1", "POST /2 abc 1", "DELETE /3  0"}));
}

TEST(RequestParserTest, StartedAndFeedAfterDone) {
  RequestParser parser;
  EXPECT_FALSE(parser.started());
  std::string wire = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_EQ(parser.feed(wire.data(), wire.size()).state, State::kComplete);
  EXPECT_TRUE(parser.started());
  auto r = parser.feed(wire.data(), wire.size());
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(r.state, State::kComplete);
  parser.reset();
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.method(), "");
  EXPECT_EQ(parser.header_count(), 0u);
}

TEST(RequestParserTest, LargeBodyAcrossReads) {
  RequestParser parser(64 * 1024, 2 << 20);
  std::string body(1 << 20, 'b');
  std::string wire =
      "PUT /big HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  size_t pos = 0;
  RequestParser::Result r{0, State::kNeedMore};
  while (r.state == State::kNeedMore && pos < wire.size()) {
    r = parser.feed(wire.data() + pos, std::min<size_t>(65536, wire.size() - pos));
    pos += r.consumed;
  }
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(parser.body().size(), body.size());
}

}  // namespace request_parser_test
}  // namespace millstone::http
