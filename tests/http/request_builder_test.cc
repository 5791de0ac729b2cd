#include "http/request_builder.h"

#include <gtest/gtest.h>

#include <string>

#include "http/request_parser.h"

namespace millstone::http {
namespace request_builder_test {

Url url_of(std::string_view text) {
  auto url = parse_url(text, nullptr);
  EXPECT_TRUE(url.has_value()) << text;
  return url.value_or(Url{});
}

TEST(BuildRequestTest, MinimalGet) {
  EXPECT_EQ(build_request("GET", url_of("http://example.com:8080/a?b=1"), {}, ""),
            "GET /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\n"
            "User-Agent: millstone/" MILLSTONE_VERSION "\r\n\r\n");
}

TEST(BuildRequestTest, UserHeadersKeepOrderAndReplaceDefaults) {
  HeaderList headers = {{"Accept", "*/*"}, {"host", "virtual.example"}, {"USER-AGENT", "me"}};
  EXPECT_EQ(build_request("GET", url_of("http://10.0.0.1/"), headers, ""),
            "GET / HTTP/1.1\r\nAccept: */*\r\nhost: virtual.example\r\nUSER-AGENT: me\r\n\r\n");
}

TEST(BuildRequestTest, BodyGetsContentLength) {
  EXPECT_EQ(build_request("POST", url_of("http://h/p"), {{"Content-Type", "application/json"}},
                          "{\"a\":1}"),
            "POST /p HTTP/1.1\r\nHost: h\r\nUser-Agent: millstone/" MILLSTONE_VERSION
            "\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
}

TEST(BuildRequestTest, EmptyBodyContentLengthDependsOnMethod) {
  for (const char* method : {"POST", "PUT", "PATCH"}) {
    EXPECT_NE(build_request(method, url_of("http://h/"), {}, "").find("Content-Length: 0\r\n"),
              std::string::npos)
        << method;
  }
  for (const char* method : {"GET", "HEAD", "DELETE", "OPTIONS"}) {
    EXPECT_EQ(build_request(method, url_of("http://h/"), {}, "").find("Content-Length"),
              std::string::npos)
        << method;
  }
  EXPECT_NE(build_request("DELETE", url_of("http://h/"), {}, "x").find("Content-Length: 1\r\n"),
            std::string::npos);
}

TEST(BuildRequestTest, UserFramingHeadersAreRespected) {
  std::string chunked =
      build_request("POST", url_of("http://h/"), {{"Transfer-Encoding", "chunked"}}, "0\r\n\r\n");
  EXPECT_EQ(chunked.find("Content-Length"), std::string::npos);
  std::string explicit_length =
      build_request("POST", url_of("http://h/"), {{"content-length", "2"}}, "ab");
  EXPECT_EQ(explicit_length.find("Content-Length"), std::string::npos);
  EXPECT_NE(explicit_length.find("content-length: 2\r\n"), std::string::npos);
}

TEST(BuildRequestTest, Ipv6HostHeader) {
  EXPECT_NE(build_request("GET", url_of("http://[::1]:9000/"), {}, "").find("Host: [::1]:9000\r\n"),
            std::string::npos);
  EXPECT_NE(build_request("GET", url_of("http://[::1]/"), {}, "").find("Host: [::1]\r\n"),
            std::string::npos);
}

TEST(BuildRequestTest, ParsesBackWithTheServerParser) {
  std::string wire = build_request("PUT", url_of("http://h:81/x?y"), {{"X-Id", "7"}}, "payload");
  RequestParser parser;
  auto r = parser.feed(wire.data(), wire.size());
  ASSERT_EQ(r.state, RequestParser::State::kComplete);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(parser.method(), "PUT");
  EXPECT_EQ(parser.path(), "/x");
  EXPECT_EQ(parser.query(), "y");
  EXPECT_EQ(parser.header("host"), "h:81");
  EXPECT_EQ(parser.header("x-id"), "7");
  EXPECT_EQ(parser.body(), "payload");
  EXPECT_TRUE(parser.keep_alive());
}

std::pair<std::string, std::string> header_ok(std::string_view arg) {
  std::pair<std::string, std::string> out;
  std::string error;
  EXPECT_TRUE(parse_header_arg(arg, &out, &error)) << arg << ": " << error;
  return out;
}

std::string header_error(std::string_view arg) {
  std::pair<std::string, std::string> out{"untouched", "untouched"};
  std::string error;
  EXPECT_FALSE(parse_header_arg(arg, &out, &error)) << arg;
  EXPECT_EQ(out.first, "untouched");
  return error;
}

TEST(ParseHeaderArgTest, Valid) {
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(header_ok("Accept: application/json"), P("Accept", "application/json"));
  EXPECT_EQ(header_ok("X-Token:abc"), P("X-Token", "abc"));
  EXPECT_EQ(header_ok("  X-Pad  :   spaced out \t"), P("X-Pad", "spaced out"));
  EXPECT_EQ(header_ok("X-Empty:"), P("X-Empty", ""));
  EXPECT_EQ(header_ok("X-Url: http://a:b/c"), P("X-Url", "http://a:b/c"));
  EXPECT_EQ(header_ok("!#$%&'*+-.^_`|~09aZ: v"), P("!#$%&'*+-.^_`|~09aZ", "v"));
  EXPECT_EQ(header_ok("X-Latin: caf\xe9"), P("X-Latin", "caf\xe9"));
  EXPECT_EQ(header_ok("X-Tab: a\tb"), P("X-Tab", "a\tb"));
}

TEST(ParseHeaderArgTest, Invalid) {
  EXPECT_EQ(header_error("Accept application/json"),
            "missing ':' in header 'Accept application/json': expected 'Name: value'");
  EXPECT_EQ(header_error(": value"), "empty header name in ': value': expected 'Name: value'");
  EXPECT_EQ(header_error("X Y: z"),
            "bad character byte 0x20 in header name 'X Y': names are letters, digits and "
            "!#$%&'*+-.^_`|~");
  EXPECT_NE(header_error("X(Y): z").find("bad character '('"), std::string::npos);
  EXPECT_EQ(header_error("X: a\r\nEvil: 1"), "header 'X' has a line break (CR or LF) in its value");
  EXPECT_EQ(header_error("X: a\nb"), "header 'X' has a line break (CR or LF) in its value");
  EXPECT_EQ(header_error(std::string_view("X: a\0b", 6)),
            "header 'X' has control character 0x00 in its value");
}

TEST(ParseHeaderArgTest, NullErrorPointerIsAllowed) {
  std::pair<std::string, std::string> out;
  EXPECT_FALSE(parse_header_arg("nope", &out, nullptr));
}

}  // namespace request_builder_test
}  // namespace millstone::http
