#pragma once
// Target URLs as users type them on the command line: http[s]://HOST[:PORT]/PATH.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace millstone::http {

struct Url {
  std::string scheme;  // lower case: "http" or "https"
  std::string host;    // as given, without brackets for an IPv6 literal
  uint16_t port = 80;
  std::string target = "/";  // path and query as sent on the request line; never empty
  bool ipv6_literal = false;

  // Value for the Host header: host[:port], brackets around an IPv6 literal,
  // the port left out when it is the scheme's default.
  std::string host_header() const;
  bool tls() const { return scheme == "https"; }
  uint16_t default_port() const { return tls() ? 443 : 80; }
};

// Parses an absolute http URL. A fragment ("#...") is dropped, as browsers
// do. On failure returns nullopt and, when error is not null, a message that
// says what is wrong and what was expected, fit to show the user as is.
// Path and query characters are checked leniently: only spaces, control
// characters, non-ASCII bytes and broken %-escapes are refused, because
// servers commonly accept characters RFC 3986 reserves (e.g. '|', '{').
std::optional<Url> parse_url(std::string_view text, std::string* error);

}  // namespace millstone::http
