// Fuzzes parse_url and parse_header_arg, and checks that whatever they accept
// round-trips: the URL re-parses from its own parts, and a request built from
// it (and from an accepted -H header) parses back to the same target, Host and
// header value on our own server-side parser.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/request_builder.h"
#include "http/request_parser.h"
#include "http/syntax.h"
#include "http/url.h"

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "url_fuzz: %s\n", what);
  std::abort();
}

using namespace millstone::http;

void check_url(std::string_view text) {
  std::string error;
  auto url = parse_url(text, &error);
  if (!url) {
    if (error.empty()) die("rejected without a message");
    if (parse_url(text, nullptr)) die("result depends on the error pointer");
    return;
  }
  if (url->host.empty() || url->port == 0 || url->target.empty() || url->target[0] != '/') {
    die("accepted URL with empty parts");
  }
  // host_header() leaves out the scheme's default port, so the same scheme
  // must be used to read it back (https://h/ is port 443, not 80).
  auto again = parse_url(url->scheme + "://" + url->host_header() + url->target, &error);
  if (!again || again->host != url->host || again->port != url->port ||
      again->target != url->target || again->ipv6_literal != url->ipv6_literal) {
    die("URL does not round-trip through host_header()");
  }
  std::string wire = build_request("GET", *url, {}, "");
  RequestParser parser;
  auto r = parser.feed(wire.data(), wire.size());
  if (r.state != RequestParser::State::kComplete || r.consumed != wire.size() ||
      parser.target() != url->target || parser.header("host") != url->host_header()) {
    die("built request does not parse back");
  }
}

void check_header(std::string_view arg) {
  std::pair<std::string, std::string> header;
  std::string error;
  if (!parse_header_arg(arg, &header, &error)) {
    if (error.empty()) die("header rejected without a message");
    return;
  }
  const std::string& name = header.first;
  if (syntax::iequals(name, "content-length") || syntax::iequals(name, "transfer-encoding")) {
    return;  // framing headers are the user's responsibility
  }
  Url url;
  url.scheme = "http";
  url.host = "h";
  std::string wire = build_request("POST", url, {header}, "body");
  RequestParser parser;
  auto r = parser.feed(wire.data(), wire.size());
  if (r.state != RequestParser::State::kComplete || r.consumed != wire.size()) {
    die("request with an accepted header does not parse");
  }
  if (parser.header(name) != header.second) die("header value changed on the wire");
  if (!syntax::iequals(name, "expect") && parser.body() != "body") die("body changed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(bytes), size);
  check_url(text);
  check_header(text);
  return 0;
}
