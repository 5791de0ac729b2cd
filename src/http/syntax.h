#pragma once
// Character classes and tiny helpers shared by the HTTP/1.1 parsers, the URL
// parser and the request builder (RFC 9110, RFC 9112, RFC 3986); iequals also
// serves the WebSocket handshake, the mock and scenarios. Everything is
// constexpr or inline so the parsers' hot loops stay table lookups with no calls.
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace millstone::http::syntax {

namespace detail {

constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c)
    t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c)
    t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    t[static_cast<unsigned char>(c)] = true;
  return t;
}

// field-vchar / SP / HTAB, with obs-text (0x80-0xFF) allowed because real
// servers send Latin-1 in reason phrases and values.
constexpr std::array<bool, 256> make_field_table() {
  std::array<bool, 256> t{};
  t['\t'] = true;
  for (int c = 0x20; c < 0x7f; ++c)
    t[c] = true;
  for (int c = 0x80; c < 0x100; ++c)
    t[c] = true;
  return t;
}

}  // namespace detail

inline constexpr std::array<bool, 256> kTokenChars = detail::make_token_table();
inline constexpr std::array<bool, 256> kFieldChars = detail::make_field_table();

constexpr bool is_token_char(char c) {
  return kTokenChars[static_cast<unsigned char>(c)];
}
constexpr bool is_field_char(char c) {
  return kFieldChars[static_cast<unsigned char>(c)];
}
constexpr bool is_ows(char c) {
  return c == ' ' || c == '\t';
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

constexpr bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

constexpr bool is_field_value(std::string_view s) {
  for (char c : s) {
    if (!is_field_char(c)) return false;
  }
  return true;
}

constexpr char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// Case-insensitive ASCII comparison; both sides may be mixed case. The one
// copy for header names, tokens and keywords across millstone (ws/, mock/,
// scenario/): ASCII-only on purpose, since locale-aware folding (strcasecmp)
// would make matching depend on the process environment.
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

// Calls fn(token) for each element of a comma-separated list (RFC 9110 5.6.1),
// skipping empty elements; stops early when fn returns false.
template <typename Fn>
constexpr void for_each_list_token(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = trim_ows(list.substr(0, comma));
    if (!item.empty() && !fn(item)) return;
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

constexpr bool list_contains(std::string_view list, std::string_view token) {
  bool found = false;
  for_each_list_token(list, [&](std::string_view item) {
    found = iequals(item, token);
    return !found;
  });
  return found;
}

// The last non-empty element of a list: for Transfer-Encoding only the final
// coding decides the framing.
constexpr std::string_view list_last(std::string_view list) {
  std::string_view last;
  for_each_list_token(list, [&](std::string_view item) {
    last = item;
    return true;
  });
  return last;
}

// 1*DIGIT into *out; false on empty input, any non-digit (signs included) or
// overflow of uint64_t.
constexpr bool parse_decimal(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Chunk sizes must stay below this; bigger sizes are treated as garbage rather than risking
// overflow in body accounting.
inline constexpr uint64_t kMaxChunkSize = uint64_t{1} << 60;
// A chunk-size line (size plus extensions) longer than this is rejected: no
// sane peer sends kilobytes of chunk extensions.
inline constexpr size_t kMaxChunkLineBytes = 4096;

enum class ChunkLine : uint8_t { kOk, kBad };

// Parses "1*HEXDIG [BWS ; chunk-ext]" (line terminator already removed).
constexpr ChunkLine parse_chunk_size_line(std::string_view line, uint64_t* size) {
  size_t i = 0;
  uint64_t v = 0;
  for (; i < line.size(); ++i) {
    int h = hex_value(line[i]);
    if (h < 0) break;
    if (v >= (kMaxChunkSize >> 4)) return ChunkLine::kBad;  // the shift would pass the limit
    v = (v << 4) | static_cast<uint64_t>(h);
  }
  if (i == 0) return ChunkLine::kBad;
  while (i < line.size() && is_ows(line[i]))
    ++i;
  if (i < line.size()) {
    // Extensions are ignored but must be free of control characters, so a
    // response with binary junk in the size line is reported, not skipped.
    if (line[i] != ';' || !is_field_value(line.substr(i + 1))) return ChunkLine::kBad;
  }
  *size = v;
  return ChunkLine::kOk;
}

// True when no byte of s is a control character other than HTAB (nor DEL).
// Header values are most of a response's header bytes, so this checks eight
// bytes per step and only walks bytes one by one from a word that may hold a
// tab or a bad byte.
inline bool is_field_value_fast(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t x;
    std::memcpy(&x, s.data() + i, 8);
    uint64_t below_space = (x - kOnes * 0x20) & ~x & kHighs;  // some byte < 0x20
    uint64_t del = x ^ (kOnes * 0x7f);
    uint64_t has_del = (del - kOnes) & ~del & kHighs;  // some byte == 0x7f
    if ((below_space | has_del) != 0) break;
  }
  return is_field_value(s.substr(i));
}

// Checks one header (or trailer) line and splits it. obs-fold (a line starting
// with SP/HTAB) is rejected as RFC 9112 5.2 allows, whitespace between the name
// and the colon is rejected (RFC 9112 5.1), and values may not carry control
// characters (a stray CR in a value would mean a broken line terminator).
inline bool split_header_line(std::string_view line, std::string_view* name,
                              std::string_view* value) {
  size_t colon = 0;
  while (colon < line.size() && is_token_char(line[colon]))
    ++colon;
  if (colon == 0 || colon == line.size() || line[colon] != ':') return false;
  std::string_view v = trim_ows(line.substr(colon + 1));
  if (!is_field_value_fast(v)) return false;
  *name = line.substr(0, colon);
  *value = v;
  return true;
}

// Whether an Authorization field value is `Bearer TOKEN` with this token
// (never with an empty one), compared in constant time in the token's
// contents: only its length can leak by timing. The one check for the
// mock's control API and the fault proxy's API.
inline bool bearer_matches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kBearer = "Bearer ";
  if (token.empty() || !authorization.starts_with(kBearer)) return false;
  const std::string_view given = authorization.substr(kBearer.size());
  if (given.size() != token.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ token[i]);
  return diff == 0;
}

}  // namespace millstone::http::syntax
