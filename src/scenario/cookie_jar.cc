#include "scenario/cookie_jar.h"

#include <algorithm>
#include <limits>

#include "http/syntax.h"

namespace millstone::scenario {

namespace {

// RFC 6265 section 6.1 asks for at least 50 cookies per domain and 4096 bytes
// per cookie; beyond that a misbehaving target could grow every VU's memory.
constexpr size_t kMaxCookies = 50;
constexpr size_t kMaxCookieBytes = 4096;

constexpr int64_t kExpired = std::numeric_limits<int64_t>::min();

using http::syntax::iequals;
using http::syntax::trim_ows;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Drops "?query" and "#fragment" so callers may pass a whole request target.
std::string_view path_only(std::string_view target) {
  const size_t end = target.find_first_of("?#");
  return end == std::string_view::npos ? target : target.substr(0, end);
}

// RFC 6265 section 5.1.4: the "directory" of the request path.
std::string_view default_path(std::string_view request_path) {
  const std::string_view path = path_only(request_path);
  if (path.empty() || path[0] != '/') return "/";
  const size_t last_slash = path.rfind('/');
  if (last_slash == 0) return "/";
  return path.substr(0, last_slash);
}

// RFC 6265 section 5.1.4 path-match.
bool path_matches(std::string_view request_path, std::string_view cookie_path) {
  if (request_path.substr(0, cookie_path.size()) != cookie_path) return false;
  return request_path.size() == cookie_path.size() || cookie_path.back() == '/' ||
         request_path[cookie_path.size()] == '/';
}

int64_t days_from_civil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

unsigned days_in_month(int64_t year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// RFC 6265 section 5.1.1 delimiter: everything but digits, letters and ':'
// (plus the bytes above 0x7E, which count as token characters).
bool is_date_delimiter(unsigned char c) {
  return c == 0x09 || (c >= 0x20 && c <= 0x2F) || (c >= 0x3B && c <= 0x40) ||
         (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// 1*max_digits DIGIT, then the end of the token or a non-digit (the RFC allows
// trailing junk like "07th"). Returns the number of digits read, 0 on no match.
size_t read_number(std::string_view token, size_t min_digits, size_t max_digits, unsigned* value) {
  size_t n = 0;
  unsigned v = 0;
  while (n < token.size() && is_digit(token[n])) {
    if (n == max_digits) return 0;
    v = v * 10 + static_cast<unsigned>(token[n] - '0');
    ++n;
  }
  if (n < min_digits) return 0;
  *value = v;
  return n;
}

// time = hms-time ( non-digit *OCTET ); hms-time = 1*2DIGIT ":" 1*2DIGIT ":" 1*2DIGIT
bool read_time(std::string_view token, unsigned* h, unsigned* m, unsigned* s) {
  size_t n = read_number(token, 1, 2, h);
  if (n == 0 || n >= token.size() || token[n] != ':') return false;
  token.remove_prefix(n + 1);
  n = read_number(token, 1, 2, m);
  if (n == 0 || n >= token.size() || token[n] != ':') return false;
  token.remove_prefix(n + 1);
  return read_number(token, 1, 2, s) != 0;
}

bool read_month(std::string_view token, unsigned* month) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  if (token.size() < 3) return false;
  for (unsigned i = 0; i < 12; ++i) {
    if (iequals(token.substr(0, 3), kMonths[i])) {
      *month = i + 1;
      return true;
    }
  }
  return false;
}

}  // namespace

// The RFC 6265 section 5.1.1 algorithm: tokens in any order, the first of
// each kind wins, so all three HTTP date forms parse ("Wed, 21 Oct 2015
// 07:28:00 GMT", "Wednesday, 21-Oct-15 07:28:00 GMT", "Wed Oct 21 07:28:00
// 2015") along with the usual sloppy variants. The zone is ignored (always
// GMT in practice).
bool parse_cookie_date(std::string_view text, int64_t* unix_s) {
  bool found_time = false, found_day = false, found_month = false, found_year = false;
  unsigned hour = 0, minute = 0, second = 0, day = 0, month = 0, year = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && is_date_delimiter(static_cast<unsigned char>(text[pos])))
      ++pos;
    const size_t begin = pos;
    while (pos < text.size() && !is_date_delimiter(static_cast<unsigned char>(text[pos])))
      ++pos;
    const std::string_view token = text.substr(begin, pos - begin);
    if (token.empty()) continue;
    if (!found_time && read_time(token, &hour, &minute, &second)) {
      found_time = true;
    } else if (!found_day && read_number(token, 1, 2, &day) != 0) {
      found_day = true;
    } else if (!found_month && read_month(token, &month)) {
      found_month = true;
    } else if (!found_year && read_number(token, 2, 4, &year) != 0) {
      found_year = true;
    }
  }
  if (!found_time || !found_day || !found_month || !found_year) return false;
  if (year >= 70 && year <= 99) year += 1900;
  if (year <= 69) year += 2000;
  if (year < 1601 || hour > 23 || minute > 59 || second > 59) return false;
  if (day < 1 || day > days_in_month(year, month)) return false;
  *unix_s = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return true;
}

bool CookieJar::store(std::string_view set_cookie, std::string_view request_path,
                      int64_t now_unix_s) {
  // RFC 6265 section 5.2.
  const size_t pair_end = set_cookie.find(';');
  const std::string_view pair = set_cookie.substr(0, pair_end);
  const size_t equals = pair.find('=');
  if (equals == std::string_view::npos) return false;
  const std::string_view name = trim_ows(pair.substr(0, equals));
  const std::string_view value = trim_ows(pair.substr(equals + 1));
  if (name.empty() || name.size() + value.size() > kMaxCookieBytes) return false;

  std::string_view path;
  bool has_max_age = false, has_expires = false;
  int64_t max_age_expiry = 0, expires_expiry = 0;
  std::string_view attributes =
      pair_end == std::string_view::npos ? std::string_view() : set_cookie.substr(pair_end + 1);
  while (!attributes.empty()) {
    const size_t end = attributes.find(';');
    const std::string_view attribute = attributes.substr(0, end);
    attributes = end == std::string_view::npos ? std::string_view() : attributes.substr(end + 1);
    const size_t eq = attribute.find('=');
    const std::string_view key = trim_ows(attribute.substr(0, eq));
    const std::string_view arg =
        eq == std::string_view::npos ? std::string_view() : trim_ows(attribute.substr(eq + 1));
    // Later attributes of the same name win (section 5.3 step 3 reads the last).
    if (iequals(key, "max-age")) {
      // 5.2.2: optional '-', then digits only; anything else ignores the attribute.
      const bool negative = !arg.empty() && arg[0] == '-';
      const std::string_view digits = negative ? arg.substr(1) : arg;
      if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) continue;
      int64_t seconds = 0;
      for (char c : digits) {
        seconds = seconds > (INT64_MAX - 9) / 10 ? INT64_MAX : seconds * 10 + (c - '0');
      }
      has_max_age = true;
      if (negative || seconds == 0) {
        max_age_expiry = kExpired;
      } else {
        max_age_expiry = now_unix_s > INT64_MAX - seconds ? INT64_MAX : now_unix_s + seconds;
      }
    } else if (iequals(key, "expires")) {
      int64_t when = 0;
      if (!parse_cookie_date(arg, &when)) continue;
      has_expires = true;
      expires_expiry = when;
    } else if (iequals(key, "path")) {
      // 5.2.4: a path not starting with '/' means the default path.
      path = !arg.empty() && arg[0] == '/' ? arg : std::string_view();
    }
    // Domain, Secure, HttpOnly, SameSite: one target host per scenario, and a
    // load generator is not a browser that scripts could read cookies from.
  }
  if (path.empty()) path = default_path(request_path);
  const int64_t expiry = has_max_age ? max_age_expiry : (has_expires ? expires_expiry : INT64_MAX);

  // Expired cookies go now so size() reflects what would be sent.
  std::erase_if(cookies_, [&](const Cookie& c) { return c.expires_unix_s <= now_unix_s; });

  auto same = std::find_if(cookies_.begin(), cookies_.end(),
                           [&](const Cookie& c) { return c.name == name && c.path == path; });
  if (expiry <= now_unix_s) {  // a deletion
    if (same != cookies_.end()) cookies_.erase(same);
    return true;
  }
  if (same != cookies_.end()) {
    // Replacing keeps the old creation order (section 5.3 step 11.3).
    same->value.assign(value);
    same->expires_unix_s = expiry;
    return true;
  }
  if (cookies_.size() >= kMaxCookies) return false;
  // Kept sorted by path length, longest first, then by creation: the order
  // section 5.4 asks for in the Cookie header, so render needs no sort.
  auto at = std::find_if(cookies_.begin(), cookies_.end(),
                         [&](const Cookie& c) { return c.path.size() < path.size(); });
  cookies_.insert(at, Cookie{std::string(name), std::string(value), std::string(path), expiry});
  return true;
}

void CookieJar::render(std::string_view path, int64_t now_unix_s, std::string* out) const {
  std::string_view request_path = path_only(path);
  if (request_path.empty() || request_path[0] != '/') request_path = "/";  // 5.1.4
  bool first = true;
  for (const Cookie& cookie : cookies_) {
    if (cookie.expires_unix_s <= now_unix_s || !path_matches(request_path, cookie.path)) continue;
    if (!first) out->append("; ");
    first = false;
    out->append(cookie.name);
    out->push_back('=');
    out->append(cookie.value);
  }
}

std::string_view CookieJar::get(std::string_view name) const {
  for (const Cookie& cookie : cookies_) {
    if (cookie.name == name) return cookie.value;
  }
  return {};
}

}  // namespace millstone::scenario
