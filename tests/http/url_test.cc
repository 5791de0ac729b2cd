#include "http/url.h"

#include <gtest/gtest.h>

#include <string>

namespace millstone::http {
namespace url_test {

Url must_parse(std::string_view text) {
  std::string error;
  auto url = parse_url(text, &error);
  EXPECT_TRUE(url.has_value()) << text << ": " << error;
  return url.value_or(Url{});
}

std::string error_of(std::string_view text) {
  std::string error;
  auto url = parse_url(text, &error);
  EXPECT_FALSE(url.has_value()) << text << " should be rejected";
  EXPECT_FALSE(error.empty());
  return error;
}

TEST(UrlTest, HostOnly) {
  Url url = must_parse("http://example.com");
  EXPECT_EQ(url.scheme, "http");
  EXPECT_EQ(url.host, "example.com");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.target, "/");
  EXPECT_FALSE(url.ipv6_literal);
  EXPECT_EQ(url.host_header(), "example.com");
}

TEST(UrlTest, PortPathQuery) {
  Url url = must_parse("http://localhost:8080/api/v1/items?limit=10&sort=asc");
  EXPECT_EQ(url.host, "localhost");
  EXPECT_EQ(url.port, 8080);
  EXPECT_EQ(url.target, "/api/v1/items?limit=10&sort=asc");
  EXPECT_EQ(url.host_header(), "localhost:8080");
}

TEST(UrlTest, SchemeIsCaseInsensitive) {
  Url url = must_parse("HTTP://Example.COM/Path");
  EXPECT_EQ(url.scheme, "http");
  EXPECT_EQ(url.host, "Example.COM");
  EXPECT_EQ(url.target, "/Path");
}

TEST(UrlTest, QueryWithoutPathGetsSlash) {
  EXPECT_EQ(must_parse("http://h?x=1").target, "/?x=1");
  EXPECT_EQ(must_parse("http://h:81?x=1").target, "/?x=1");
}

TEST(UrlTest, FragmentIsDropped) {
  EXPECT_EQ(must_parse("http://h/page?a=b#section 2").target, "/page?a=b");
  EXPECT_EQ(must_parse("http://h#top").target, "/");
}

TEST(UrlTest, DefaultPortIsOmittedFromHostHeader) {
  EXPECT_EQ(must_parse("http://h:80/").host_header(), "h");
  EXPECT_EQ(must_parse("http://h:80/").port, 80);
  EXPECT_EQ(must_parse("http://h:08080/").port, 8080);
}

TEST(UrlTest, Ipv4) {
  Url url = must_parse("http://127.0.0.1:9000/");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 9000);
  EXPECT_FALSE(url.ipv6_literal);
}

TEST(UrlTest, Ipv6Literal) {
  Url url = must_parse("http://[::1]:8080/x");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 8080);
  EXPECT_TRUE(url.ipv6_literal);
  EXPECT_EQ(url.target, "/x");
  EXPECT_EQ(url.host_header(), "[::1]:8080");

  Url plain = must_parse("http://[2001:db8::a:1]");
  EXPECT_EQ(plain.host, "2001:db8::a:1");
  EXPECT_EQ(plain.port, 80);
  EXPECT_EQ(plain.host_header(), "[2001:db8::a:1]");
  EXPECT_EQ(must_parse("http://[::ffff:1.2.3.4]/").host, "::ffff:1.2.3.4");
}

TEST(UrlTest, PercentEscapesAndLenientCharactersPass) {
  EXPECT_EQ(must_parse("http://h/a%20b/%E2%82%AC").target, "/a%20b/%E2%82%AC");
  EXPECT_EQ(must_parse("http://h/a|b{c}?q=\"x\"").target, "/a|b{c}?q=\"x\"");
  EXPECT_EQ(must_parse("http://my_host-1.local~/").host, "my_host-1.local~");
}

TEST(UrlTest, MissingScheme) {
  EXPECT_EQ(error_of("localhost:8080/x"),
            "missing scheme: expected http[s]://HOST[:PORT]/PATH, got 'localhost:8080/x'");
  EXPECT_NE(error_of("example.com").find("missing scheme"), std::string::npos);
  EXPECT_NE(error_of("http:/example.com").find("missing scheme"), std::string::npos);
}

TEST(UrlTest, Empty) {
  EXPECT_NE(error_of("").find("empty URL"), std::string::npos);
}

TEST(UrlTest, Https) {
  auto url = parse_url("HTTPS://example.com/a", nullptr);
  ASSERT_TRUE(url.has_value());
  EXPECT_TRUE(url->tls());
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->host_header(), "example.com");
  url = parse_url("https://example.com:8443/", nullptr);
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->host_header(), "example.com:8443");
  url = parse_url("https://example.com:80/", nullptr);
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->host_header(), "example.com:80");
  url = parse_url("http://example.com/", nullptr);
  ASSERT_TRUE(url.has_value());
  EXPECT_FALSE(url->tls());
}

TEST(UrlTest, OtherSchemes) {
  EXPECT_EQ(error_of("ftp://example.com/"),
            "unsupported scheme 'ftp': only http:// and https:// are");
  EXPECT_NE(error_of("://example.com/").find("bad scheme"), std::string::npos);
  EXPECT_NE(error_of("1http://example.com/").find("bad scheme '1http'"), std::string::npos);
}

TEST(UrlTest, EmptyHost) {
  EXPECT_EQ(error_of("http://"), "empty host: expected http[s]://HOST[:PORT]/PATH");
  EXPECT_EQ(error_of("http:///path"), "empty host: expected http[s]://HOST[:PORT]/PATH");
  EXPECT_EQ(error_of("http://:8080/"), "empty host: expected http[s]://HOST[:PORT]/PATH");
  EXPECT_EQ(error_of("http://[]/"), "empty host: expected http[s]://HOST[:PORT]/PATH");
}

TEST(UrlTest, Ports) {
  EXPECT_EQ(error_of("http://h:99999/"), "port 99999 out of range 1-65535");
  EXPECT_EQ(error_of("http://h:0/"), "port 0 out of range 1-65535");
  EXPECT_EQ(error_of("http://h:65536/"), "port 65536 out of range 1-65535");
  EXPECT_EQ(error_of("http://h:123456789012345678901234567890/"),
            "port 123456789012345678901234567890 out of range 1-65535");
  EXPECT_EQ(error_of("http://h:/"), "empty port after ':': expected a number 1-65535");
  EXPECT_EQ(error_of("http://h:80a/"), "bad port '80a': expected a number 1-65535");
  EXPECT_EQ(error_of("http://h:-1/"), "bad port '-1': expected a number 1-65535");
  EXPECT_EQ(must_parse("http://h:65535/").port, 65535);
  EXPECT_EQ(must_parse("http://h:1/").port, 1);
}

TEST(UrlTest, Userinfo) {
  std::string error = error_of("http://user:pass@example.com/");
  EXPECT_NE(error.find("credentials"), std::string::npos) << error;
  EXPECT_NE(error.find("Authorization"), std::string::npos) << error;
  EXPECT_NE(error_of("http://@h/").find("credentials"), std::string::npos);
}

TEST(UrlTest, BadHostCharacters) {
  EXPECT_EQ(error_of("http://exa mple.com/"), "bad character ' ' in host 'exa mple.com'");
  EXPECT_EQ(error_of("http://a!b/"), "bad character '!' in host 'a!b'");
  EXPECT_EQ(error_of("http://h\n/"), "bad character byte 0x0a in host 'h\n'");
  EXPECT_EQ(error_of("http://::1/"), "empty host: expected http[s]://HOST[:PORT]/PATH");
  EXPECT_EQ(error_of("http://fe80::1/"), "an IPv6 address must be in brackets: http://[fe80::1]/");
}

TEST(UrlTest, BadIpv6) {
  EXPECT_NE(error_of("http://[::1/").find("unterminated IPv6"), std::string::npos);
  EXPECT_EQ(error_of("http://[::g]/"), "bad character 'g' in IPv6 address");
  EXPECT_NE(error_of("http://[fe80::1%25eth0]/").find("zone"), std::string::npos);
  EXPECT_NE(error_of("http://[1.2.3.4]/").find("not an IPv6 address"), std::string::npos);
  EXPECT_EQ(error_of("http://[::1]x/"),
            "unexpected 'x' after IPv6 address: expected ':PORT' or '/'");
  EXPECT_EQ(error_of("http://[::1]:99999/"), "port 99999 out of range 1-65535");
}

TEST(UrlTest, BadPathCharacters) {
  EXPECT_EQ(error_of("http://h/a b"), "bad character ' ' in path: percent-encode spaces as %20");
  EXPECT_EQ(error_of("http://h/a?b c"), "bad character ' ' in query: percent-encode spaces as %20");
  EXPECT_EQ(error_of("http://h/a\tb"), "bad character byte 0x09 in path");
  EXPECT_EQ(error_of("http://h/a\r\nHost: evil"), "bad character byte 0x0d in path");
  EXPECT_EQ(error_of("http://h/caf\xc3\xa9"), "non-ASCII byte 0xc3 in path: percent-encode it");
  EXPECT_EQ(error_of("http://h/%zz"),
            "bad percent-escape '%zz' in path: expected % and two hex digits");
  EXPECT_EQ(error_of("http://h/?a=%4"),
            "bad percent-escape '%4' in query: expected % and two hex digits");
}

TEST(UrlTest, NullErrorPointerIsAllowed) {
  EXPECT_FALSE(parse_url("nope", nullptr).has_value());
  EXPECT_TRUE(parse_url("http://h/", nullptr).has_value());
}

}  // namespace url_test
}  // namespace millstone::http
