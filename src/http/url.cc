#include "http/url.h"

#include <cstdio>

#include "http/syntax.h"

namespace millstone::http {

namespace {

constexpr std::string_view kExpected = "expected http[s]://HOST[:PORT]/PATH";

// Quotes a character for an error message; invisible bytes are shown in hex
// so a stray newline or tab in a pasted URL is recognisable.
std::string describe_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u > 0x20 && u < 0x7f) return std::string("'") + c + "'";
  if (c == ' ') return "' '";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02x", u);
  return buf;
}

bool set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool parse_scheme(std::string_view text, Url* url, std::string* error) {
  std::string_view scheme = text;
  bool valid = !scheme.empty() && is_alpha(scheme[0]);
  for (char c : scheme) {
    valid = valid && (is_alpha(c) || syntax::is_digit(c) || c == '+' || c == '-' || c == '.');
  }
  if (!valid) {
    return set_error(error, "bad scheme '" + std::string(scheme) + "': " + std::string(kExpected));
  }
  for (char c : scheme)
    url->scheme.push_back(syntax::to_lower(c));
  if (url->scheme == "https") {
    url->port = 443;
  } else if (url->scheme != "http") {
    return set_error(error,
                     "unsupported scheme '" + url->scheme + "': only http:// and https:// are");
  }
  return true;
}

bool parse_port(std::string_view text, Url* url, std::string* error) {
  if (text.empty()) return set_error(error, "empty port after ':': expected a number 1-65535");
  for (char c : text) {
    if (!syntax::is_digit(c)) {
      return set_error(error, "bad port '" + std::string(text) + "': expected a number 1-65535");
    }
  }
  uint64_t value = 0;
  if (!syntax::parse_decimal(text, &value) || value == 0 || value > 65535) {
    return set_error(error, "port " + std::string(text) + " out of range 1-65535");
  }
  url->port = static_cast<uint16_t>(value);
  return true;
}

bool parse_ipv6(std::string_view authority, Url* url, std::string* error) {
  size_t close = authority.find(']');
  if (close == std::string_view::npos) {
    return set_error(error, "unterminated IPv6 address: expected http://[ADDRESS]:PORT/PATH");
  }
  std::string_view address = authority.substr(1, close - 1);
  if (address.empty()) return set_error(error, "empty host: " + std::string(kExpected));
  for (char c : address) {
    if (c == '%') return set_error(error, "IPv6 zone IDs ('%') are not supported");
    if (syntax::hex_value(c) < 0 && c != ':' && c != '.') {
      return set_error(error, "bad character " + describe_char(c) + " in IPv6 address");
    }
  }
  if (address.find(':') == std::string_view::npos) {
    return set_error(error, "'" + std::string(address) + "' in brackets is not an IPv6 address");
  }
  url->host = std::string(address);
  url->ipv6_literal = true;
  std::string_view rest = authority.substr(close + 1);
  if (rest.empty()) return true;
  if (rest[0] != ':') {
    return set_error(error, "unexpected " + describe_char(rest[0]) +
                                " after IPv6 address: expected ':PORT' or '/'");
  }
  return parse_port(rest.substr(1), url, error);
}

bool parse_authority(std::string_view authority, Url* url, std::string* error) {
  if (authority.empty()) return set_error(error, "empty host: " + std::string(kExpected));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    return set_error(error, "credentials in the URL ('" + std::string(authority.substr(0, at + 1)) +
                                "') are not supported: remove them and pass "
                                "-H 'Authorization: ...' instead");
  }
  if (authority[0] == '[') return parse_ipv6(authority, url, error);
  size_t colon = authority.find(':');
  std::string_view host = authority.substr(0, colon);
  if (host.empty()) return set_error(error, "empty host: " + std::string(kExpected));
  for (char c : host) {
    if (!(is_alpha(c) || syntax::is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~')) {
      return set_error(
          error, "bad character " + describe_char(c) + " in host '" + std::string(host) + "'");
    }
  }
  url->host = std::string(host);
  if (colon == std::string_view::npos) return true;
  std::string_view port = authority.substr(colon + 1);
  if (port.find(':') != std::string_view::npos) {
    return set_error(
        error, "an IPv6 address must be in brackets: http://[" + std::string(authority) + "]/");
  }
  return parse_port(port, url, error);
}

bool parse_target(std::string_view target, Url* url, std::string* error) {
  bool in_query = false;
  for (size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    const char* part = in_query ? "query" : "path";
    if (c == '?') in_query = true;
    auto u = static_cast<unsigned char>(c);
    if (c == ' ') {
      return set_error(
          error, std::string("bad character ' ' in ") + part + ": percent-encode spaces as %20");
    }
    if (u < 0x20 || u == 0x7f) {
      return set_error(error, "bad character " + describe_char(c) + " in " + part);
    }
    if (u >= 0x80) {
      return set_error(error,
                       "non-ASCII " + describe_char(c) + " in " + part + ": percent-encode it");
    }
    if (c == '%' && (i + 2 >= target.size() || syntax::hex_value(target[i + 1]) < 0 ||
                     syntax::hex_value(target[i + 2]) < 0)) {
      return set_error(error, "bad percent-escape '" + std::string(target.substr(i, 3)) + "' in " +
                                  part + ": expected % and two hex digits");
    }
  }
  url->target.clear();
  if (target.empty() || target[0] != '/') url->target = "/";
  url->target.append(target);
  return true;
}

}  // namespace

std::string Url::host_header() const {
  std::string out;
  out.reserve(host.size() + 8);
  if (ipv6_literal) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  if (port != default_port()) out.append(":").append(std::to_string(port));
  return out;
}

std::optional<Url> parse_url(std::string_view text, std::string* error) {
  if (text.empty()) {
    set_error(error, "empty URL: " + std::string(kExpected));
    return std::nullopt;
  }
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    set_error(error,
              "missing scheme: " + std::string(kExpected) + ", got '" + std::string(text) + "'");
    return std::nullopt;
  }
  Url url;
  std::string_view rest = text.substr(sep + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  target = target.substr(0, target.find('#'));  // fragments stay in the browser
  if (!parse_scheme(text.substr(0, sep), &url, error) ||
      !parse_authority(rest.substr(0, authority_end), &url, error) ||
      !parse_target(target, &url, error)) {
    return std::nullopt;
  }
  return url;
}

}  // namespace millstone::http
