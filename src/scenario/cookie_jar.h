#pragma once
// Cookies of one virtual user (RFC 6265 subset for one target host): stores
// name=value from Set-Cookie, honours Max-Age=0 / Expires in the past as
// deletion and Path prefixes, ignores Domain (one target per scenario), and
// renders the Cookie header. Small and flat: most VUs hold 0-3 cookies.
//
// Supported: name=value (trimmed, quotes kept as part of the value), Path
// (default: the request path's directory, RFC 6265 5.1.4), Max-Age (wins
// over Expires wherever it appears; <= 0 deletes), Expires (the 5.1.1 date
// algorithm: the three HTTP date forms and their sloppy variants, zone read as
// GMT; an unparsable date ignores the attribute, one in the past deletes).
// Ignored: Domain, Secure, HttpOnly, SameSite. A cookie replaces the one with
// the same name and path, keeping its position. Limits: 50 cookies, 4096 bytes
// of name and value each (RFC 6265 6.1 minimums); more is refused.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace millstone::scenario {

class CookieJar {
 public:
  // One Set-Cookie header value. Malformed values (no "=", empty name, too
  // large) and new cookies beyond the limit are ignored: returns false.
  bool store(std::string_view set_cookie, std::string_view request_path, int64_t now_unix_s);
  // Appends "a=1; b=2" for a request to `path` (a query string is ignored);
  // nothing when none apply. Longer cookie paths first, then older cookies.
  void render(std::string_view path, int64_t now_unix_s, std::string* out) const;
  // Value of a cookie by name, "" if absent (for extract: {cookie: name}).
  std::string_view get(std::string_view name) const;
  void clear() { cookies_.clear(); }
  size_t size() const { return cookies_.size(); }

 private:
  struct Cookie {
    std::string name;
    std::string value;
    std::string path;
    int64_t expires_unix_s = INT64_MAX;
  };
  std::vector<Cookie> cookies_;  // longest path first, then in creation order
};

// An Expires value by RFC 6265 5.1.1, as Unix seconds. False if not a date.
bool parse_cookie_date(std::string_view text, int64_t* unix_s);

}  // namespace millstone::scenario
