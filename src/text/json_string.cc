#include "text/json_string.h"

namespace millstone::text {

namespace {
constexpr char kUpperHex[] = "0123456789ABCDEF";
}  // namespace

// Copies runs of bytes that need no escape in one append: this is the
// templates' hot path when a JSON body takes a value.
void append_json_escaped(std::string_view in, std::string* out) {
  size_t run = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(in.data() + run, i - run);
    run = i + 1;
    char short_form = 0;
    switch (c) {
      case '"':
        short_form = '"';
        break;
      case '\\':
        short_form = '\\';
        break;
      case '\n':
        short_form = 'n';
        break;
      case '\r':
        short_form = 'r';
        break;
      case '\t':
        short_form = 't';
        break;
      case '\b':
        short_form = 'b';
        break;
      case '\f':
        short_form = 'f';
        break;
      default:
        break;
    }
    if (short_form != 0) {
      const char escaped[2] = {'\\', short_form};
      out->append(escaped, 2);
    } else {
      const char escaped[6] = {'\\', 'u', '0', '0', kUpperHex[c >> 4], kUpperHex[c & 15]};
      out->append(escaped, 6);
    }
  }
  out->append(in.data() + run, in.size() - run);
}

std::string json_escaped(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  append_json_escaped(in, &out);
  return out;
}

std::string json_quoted(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 2);
  out.push_back('"');
  append_json_escaped(in, &out);
  out.push_back('"');
  return out;
}

}  // namespace millstone::text
