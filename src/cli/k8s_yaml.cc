#include "cli/k8s_yaml.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>

namespace millstone::cli {

namespace {

using Json = nlohmann::ordered_json;

// Decodes the UTF-8 character at text[*i] and advances *i; -1 for a
// malformed sequence (overlong, surrogate, past U+10FFFF, truncated).
int32_t next_code_point(std::string_view text, size_t* i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(*i);
  int length = 0;
  int32_t cp = 0;
  if (lead < 0x80) {
    ++*i;
    return lead;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2;
    cp = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    cp = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    cp = lead & 0x07;
  } else {
    ++*i;
    return -1;
  }
  if (*i + length > text.size()) {
    ++*i;
    return -1;
  }
  for (int k = 1; k < length; ++k) {
    if ((byte(*i + k) & 0xC0) != 0x80) {
      ++*i;
      return -1;
    }
    cp = (cp << 6) | (byte(*i + k) & 0x3F);
  }
  static constexpr std::array<int32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
  *i += length;
  if (cp < kMin[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  return cp;
}

// YAML's c-printable, less CR (a reader folds CR LF to LF).
bool printable_code_point(int32_t cp) {
  return cp == '\t' || cp == '\n' || (cp >= 0x20 && cp <= 0x7E) || cp == 0x85 ||
         (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
         (cp >= 0x10000 && cp <= 0x10FFFF);
}

// Plain only when no reader could take it for anything but this string: a
// letter or '/' first (no number, no indicator), then letters, digits and
// . _ / - (no ':' or '#' that could start a key or comment), and not one
// of YAML 1.1's booleans or nulls.
bool plain_safe(std::string_view s) {
  if (s.empty()) return false;
  const unsigned char first = static_cast<unsigned char>(s.front());
  const bool dash_start = first == '-' && s.size() > 1 &&
                          (std::isalpha(static_cast<unsigned char>(s[1])) || s[1] == '-');
  if (!std::isalpha(first) && first != '/' && !dash_start) return false;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '.' && c != '_' && c != '/' && c != '-') return false;
  }
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  static constexpr std::string_view kWords[] = {"y",   "n",    "yes",   "no",   "on",
                                                "off", "true", "false", "null", "nan"};
  return std::find(std::begin(kWords), std::end(kWords), lower) == std::end(kWords);
}

std::string double_quoted(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const int32_t cp = next_code_point(s, &i);
    if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0) {
      out += "\\uFFFD";  // callers check for UTF-8 first; never write a broken stream
    } else if (!printable_code_point(cp) || cp == 0x85) {
      out += cp <= 0xFF ? fmt::format("\\x{:02x}", cp) : fmt::format("\\u{:04x}", cp);
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  return out + "\"";
}

// Multi-line printable text that starts with neither a space nor a newline
// reads back exactly from a literal block; the chomping indicator keeps its
// trailing newlines (clip: one, strip: none, keep: more).
bool literal_safe(std::string_view s) {
  return s.find('\n') != std::string_view::npos && s.front() != ' ' && s.front() != '\n' &&
         s.find('\r') == std::string_view::npos && yaml_printable(s);
}

void write_literal(std::string_view s, int indent, std::string* out) {
  size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n')
    ++trailing;
  *out += trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+";
  *out += '\n';
  const std::string pad(static_cast<size_t>(indent), ' ');
  std::string_view rest = s;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    if (!line.empty()) *out += pad;
    out->append(line);
    *out += '\n';
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
}

std::string scalar(const Json& value) {
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    return plain_safe(s) ? s : double_quoted(s);
  }
  return value.dump();
}

bool nested(const Json& value) {
  return (value.is_object() || value.is_array()) && !value.empty();
}

void write_node(const Json& value, int indent, std::string* out);

// A value after "key:" or "- ": inline if scalar or empty, else on the next lines.
void write_value(const Json& value, int indent, std::string* out) {
  if (value.is_string() && literal_safe(value.get_ref<const std::string&>())) {
    *out += ' ';
    write_literal(value.get_ref<const std::string&>(), indent + 2, out);
  } else if (!nested(value)) {
    *out += ' ';
    *out += value.is_object() ? "{}" : value.is_array() ? "[]" : scalar(value);
    *out += '\n';
  } else {
    *out += '\n';
    write_node(value, indent + 2, out);
  }
}

void write_node(const Json& value, int indent, std::string* out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      *out += pad + scalar(Json(key)) + ':';
      write_value(item, indent, out);
    }
    return;
  }
  for (const Json& item : value) {
    if (item.is_object() && !item.empty()) {
      // "- " then the map's first key on the same line, the rest under it.
      std::string body;
      write_node(item, indent + 2, &body);
      *out += pad + "- " + body.substr(static_cast<size_t>(indent) + 2);
    } else {
      *out += pad + '-';
      write_value(item, indent, out);
    }
  }
}

}  // namespace

bool yaml_printable(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const int32_t cp = next_code_point(text, &i);
    if (cp < 0 || !printable_code_point(cp) || cp == 0x85) return false;
  }
  return true;
}

std::string to_yaml(const nlohmann::ordered_json& document) {
  std::string out;
  write_node(document, 0, &out);
  return out;
}

}  // namespace millstone::cli
