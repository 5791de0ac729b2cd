#include "text/printable.h"

#include <cstdint>
#include <cstdio>

namespace millstone::text {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Length of the valid UTF-8 sequence at in[i] (and its code point), or 0.
size_t sequence(std::string_view in, size_t i, uint32_t* code_point) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(in[i + k]); };
  const unsigned char c = at(0);
  const size_t left = in.size() - i;
  if (c >= 0xC2 && c <= 0xDF) {
    if (left < 2 || !continuation(at(1))) return 0;
    *code_point = ((c & 0x1Fu) << 6) | (at(1) & 0x3Fu);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !continuation(at(1)) || !continuation(at(2))) return 0;
    *code_point = ((c & 0x0Fu) << 12) | ((at(1) & 0x3Fu) << 6) | (at(2) & 0x3Fu);
    // Overlong forms and UTF-16 surrogates are not valid UTF-8.
    if (*code_point < 0x800 || (*code_point >= 0xD800 && *code_point <= 0xDFFF)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !continuation(at(1)) || !continuation(at(2)) || !continuation(at(3))) return 0;
    *code_point =
        ((c & 0x07u) << 18) | ((at(1) & 0x3Fu) << 12) | ((at(2) & 0x3Fu) << 6) | (at(3) & 0x3Fu);
    if (*code_point < 0x10000 || *code_point > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}

// Explicit direction marks, embeddings, overrides and isolates.
bool reorders_display(uint32_t cp) {
  return cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::string printable(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  char escaped[8];
  for (size_t i = 0; i < in.size();) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      if (c >= 0x20 && c != 0x7F) {
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else {
        std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
        out += escaped;
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t n = sequence(in, i, &cp);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (cp <= 0x9F || reorders_display(cp)) {
      std::snprintf(escaped, sizeof escaped, "\\u%04x", cp);
      out += escaped;
    } else {
      out.append(in.substr(i, n));
    }
    i += n;
  }
  return out;
}

}  // namespace millstone::text
