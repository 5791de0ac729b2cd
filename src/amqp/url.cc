#include "amqp/url.h"

#include <fmt/format.h>

namespace millstone::amqp {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

}  // namespace

std::string AmqpUrl::display() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string vhost_part = vhost == "/" ? "/" : "/" + vhost;
  return fmt::format("{}://{}@{}{}{}:{}{}", tls ? "amqps" : "amqp", user, v6 ? "[" : "", host,
                     v6 ? "]" : "", port, vhost_part);
}

std::optional<AmqpUrl> parse_amqp_url(const std::string& text, std::string* error) {
  AmqpUrl url;
  std::string_view rest = text;
  if (rest.starts_with("amqp://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("amqps://")) {
    url.tls = true;
    url.port = 5671;
    rest.remove_prefix(8);
  } else {
    *error = "expected amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST]";
    return std::nullopt;
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) {
    *error = "query parameters are not supported; use the command's flags (--heartbeat...)";
    return std::nullopt;
  }
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    const size_t colon = userinfo.find(':');
    if (!percent_decode(userinfo.substr(0, colon), &url.user) ||
        (colon != std::string_view::npos &&
         !percent_decode(userinfo.substr(colon + 1), &url.password))) {
      *error = "bad percent-encoding in the user or password";
      return std::nullopt;
    }
    if (colon == std::string_view::npos) url.password.clear();
  }
  std::string_view port_text;
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = "an IPv6 address without its closing ']'";
      return std::nullopt;
    }
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        *error = "expected ':PORT' after the IPv6 address";
        return std::nullopt;
      }
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    *error = "no host; expected amqp://HOST[:PORT]/";
    return std::nullopt;
  }
  if (!port_text.empty() || authority.ends_with(":")) {
    uint32_t port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) {
        port = 0;
        break;
      }
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) {
      *error = fmt::format("bad port '{}'; expected 1 to 65535", port_text);
      return std::nullopt;
    }
    url.port = static_cast<uint16_t>(port);
  }
  if (path.size() > 1) {
    if (!percent_decode(path.substr(1), &url.vhost)) {
      *error = "bad percent-encoding in the vhost";
      return std::nullopt;
    }
    if (url.vhost.find('/') != std::string::npos && path.substr(1).find('/') != std::string::npos) {
      *error = "a '/' in the vhost must be written %2F";
      return std::nullopt;
    }
  }
  return url;
}

}  // namespace millstone::amqp
