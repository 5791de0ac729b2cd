#include "scenario/extract.h"

#include <re2/re2.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>

#include "http/syntax.h"

namespace millstone::scenario {

namespace {

bool is_name_char(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '$' || u >= 0x80;  // UTF-8 keys need no quoting
}

// "'x'", "end of path" or "byte 0x07": what the error says was found instead.
std::string describe_found(std::string_view text, size_t pos) {
  if (pos >= text.size()) return "end of path";
  char c = text[pos];
  if (c > 0x20 && c < 0x7f) return std::string("'") + c + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02x", static_cast<unsigned char>(c));
  return buf;
}

// Names what an unsupported JSONPath feature is, so the user does not hunt
// for a typo that is not there.
std::string unsupported_hint(std::string_view text, size_t pos) {
  if (pos >= text.size()) return "";
  switch (text[pos]) {
    case '*':
      return " (wildcards are not supported: an extractor yields one value)";
    case '?':
      return " (filters are not supported: an extractor yields one value)";
    case '.':
      // Only a second dot is recursive descent; "[1.5]" is a fraction.
      return pos > 0 && text[pos - 1] == '.' ? " (recursive descent '..' is not supported)" : "";
    case ':':
      return " (slices are not supported: an extractor yields one value)";
    default:
      return "";
  }
}

bool path_error(std::string_view text, size_t pos, std::string_view expected, std::string* error) {
  if (error) {
    *error = "invalid JSON path \"" + std::string(text) + "\" at column " +
             std::to_string(pos + 1) + ": expected " + std::string(expected) + ", found " +
             describe_found(text, pos) + unsupported_hint(text, pos);
  }
  return false;
}

// Parses `[...]` starting at text[*pos] == '['; leaves *pos after ']'.
bool parse_bracket(std::string_view text, size_t* pos, JsonPath::Segment* seg, std::string* error) {
  size_t i = *pos + 1;
  if (i < text.size() && (text[i] == '"' || text[i] == '\'')) {
    char quote = text[i++];
    seg->is_index = false;
    seg->key.clear();
    for (;;) {
      if (i >= text.size()) {
        return path_error(text, i, std::string("closing ") + quote + " of the quoted key", error);
      }
      char c = text[i];
      if (c == quote) break;
      if (c == '\\') {
        ++i;
        if (i >= text.size() || (text[i] != '\\' && text[i] != '"' && text[i] != '\'')) {
          return path_error(text, i, "\\\\, \\\" or \\' after a backslash", error);
        }
        c = text[i];
      }
      seg->key.push_back(c);
      ++i;
    }
    ++i;  // the closing quote
  } else {
    size_t start = i;
    bool negative = i < text.size() && text[i] == '-';
    if (negative) ++i;
    size_t digits = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9')
      ++i;
    if (i == digits) {
      return path_error(text, i,
                        negative ? "digits of the index after '-'"
                                 : "an array index (like 0 or -1) or a quoted key after '['",
                        error);
    }
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data() + start, text.data() + i, value);
    if (ec != std::errc() || end != text.data() + i) {
      return path_error(text, start, "an index that fits in 64 bits", error);
    }
    if (i < text.size() && (text[i] == '.' || text[i] == 'e' || text[i] == 'E')) {
      return path_error(text, i, "']' (an array index is a whole number, like 0, 1 or -1)", error);
    }
    seg->is_index = true;
    seg->index = value;
  }
  if (i >= text.size() || text[i] != ']') return path_error(text, i, "']'", error);
  *pos = i + 1;
  return true;
}

// Counts code points, not bytes: `length: 3` on "été" means three letters.
// simdjson has validated the UTF-8 already.
size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

template <typename T>
void assign_number_text(T v, std::string* out) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->assign(buf, ec == std::errc() ? end : buf);
}

void fill_value(simdjson::dom::element e, JsonEvaluator::Value* v) {
  using Type = JsonEvaluator::Value::Type;
  v->number = 0;
  v->length = 0;
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      v->type = Type::kArray;
      simdjson::dom::array a;
      if (!e.get_array().get(a)) v->length = a.size();
      v->text = simdjson::minify(e);
      break;
    }
    case simdjson::dom::element_type::OBJECT: {
      v->type = Type::kObject;
      simdjson::dom::object o;
      if (!e.get_object().get(o)) v->length = o.size();
      v->text = simdjson::minify(e);
      break;
    }
    case simdjson::dom::element_type::STRING: {
      v->type = Type::kString;
      std::string_view s;
      if (e.get_string().get(s)) s = {};
      v->text.assign(s);
      v->length = utf8_length(s);
      break;
    }
    case simdjson::dom::element_type::INT64: {
      v->type = Type::kNumber;
      int64_t i = 0;
      if (e.get_int64().get(i)) i = 0;
      v->number = static_cast<double>(i);
      assign_number_text(i, &v->text);
      break;
    }
    case simdjson::dom::element_type::UINT64: {
      v->type = Type::kNumber;
      uint64_t u = 0;
      if (e.get_uint64().get(u)) u = 0;
      v->number = static_cast<double>(u);
      assign_number_text(u, &v->text);
      break;
    }
    case simdjson::dom::element_type::DOUBLE: {
      v->type = Type::kNumber;
      double d = 0;
      if (e.get_double().get(d)) d = 0;
      v->number = d;
      assign_number_text(d, &v->text);
      break;
    }
    case simdjson::dom::element_type::BOOL: {
      v->type = Type::kBool;
      bool b = false;
      if (e.get_bool().get(b)) b = false;
      v->number = b ? 1 : 0;
      v->text.assign(b ? "true" : "false");
      break;
    }
    case simdjson::dom::element_type::NULL_VALUE:
      v->type = Type::kNull;
      v->text.assign("null");
      break;
  }
}

// Walks one path; false when a segment does not apply (missing key, index
// out of range, indexing a non-array...).
bool walk(simdjson::dom::element root, const JsonPath& path, simdjson::dom::element* out) {
  simdjson::dom::element cur = root;
  for (const JsonPath::Segment& seg : path.segments()) {
    if (seg.is_index) {
      simdjson::dom::array a;
      if (cur.get_array().get(a)) return false;
      int64_t size = static_cast<int64_t>(a.size());
      int64_t i = seg.index < 0 ? size + seg.index : seg.index;
      if (i < 0 || i >= size) return false;
      if (a.at(static_cast<size_t>(i)).get(cur)) return false;
    } else {
      simdjson::dom::object o;
      if (cur.get_object().get(o)) return false;
      if (o.at_key(seg.key).get(cur)) return false;
    }
  }
  *out = cur;
  return true;
}

using http::syntax::iequals;
using http::syntax::trim_ows;

}  // namespace

// ---- JsonPath ----

std::optional<JsonPath> JsonPath::compile(std::string_view text, std::string* error) {
  JsonPath path;
  path.source_.assign(text);
  if (text.empty() || text[0] != '$') {
    path_error(text, 0, "'$' at the start of the path", error);
    return std::nullopt;
  }
  size_t pos = 1;
  while (pos < text.size()) {
    Segment seg;
    if (text[pos] == '.') {
      size_t start = ++pos;
      while (pos < text.size() && is_name_char(text[pos]))
        ++pos;
      if (pos == start) {
        path_error(text, pos, "a key name after '.' (use [\"key\"] for other characters)", error);
        return std::nullopt;
      }
      seg.key.assign(text.substr(start, pos - start));
    } else if (text[pos] == '[') {
      if (!parse_bracket(text, &pos, &seg, error)) return std::nullopt;
    } else {
      path_error(text, pos, "'.' or '['", error);
      return std::nullopt;
    }
    path.segments_.push_back(std::move(seg));
  }
  return path;
}

// ---- JsonEvaluator ----

// DOM rather than On-Demand, measured (bench/micro/json_extract_bench.cc):
// for 2 paths DOM was ~15% faster on bodies from 260 bytes to 35 KB, because
// it runs simdjson's runtime-selected SIMD kernel while On-Demand is compiled
// for the build's baseline target (the scalar "fallback" kernel here), and
// because On-Demand needs a second walk to tell a non-JSON body from a
// missing path. DOM validates the whole body, so anything that is not JSON is
// kNotJson for every path. Costs: numbers come back in canonical form, and
// simdjson 3.0 rejects integers beyond 64 bits (such a body is kNotJson).
struct JsonEvaluator::Impl {
  simdjson::dom::parser parser;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end, and a captured
  // body's buffer gives no such promise: copy into one padded buffer that is
  // kept across responses (the parser would allocate a fresh one per call).
  std::unique_ptr<char[]> padded;
  size_t padded_capacity = 0;

  const char* pad(std::string_view body) {
    if (!padded || body.size() > padded_capacity) {
      size_t capacity = std::max(body.size(), padded_capacity * 2);
      padded = std::make_unique_for_overwrite<char[]>(capacity + simdjson::SIMDJSON_PADDING);
      padded_capacity = capacity;
    }
    // memcpy from an empty view's null data() is undefined even for 0 bytes.
    if (!body.empty()) std::memcpy(padded.get(), body.data(), body.size());
    std::memset(padded.get() + body.size(), 0, simdjson::SIMDJSON_PADDING);
    return padded.get();
  }
};

JsonEvaluator::JsonEvaluator() : impl_(std::make_unique<Impl>()) {}
JsonEvaluator::~JsonEvaluator() = default;

void JsonEvaluator::evaluate(std::string_view body, const std::vector<const JsonPath*>& paths,
                             std::vector<Outcome>* outcomes, std::vector<Value>* results) {
  outcomes->assign(paths.size(), Outcome::kNotJson);
  results->resize(paths.size());  // resize, not assign: keeps the strings' capacity
  if (paths.empty()) return;
  const char* buf = impl_->pad(body);
  simdjson::dom::element root;
  if (impl_->parser.parse(buf, body.size(), false).get(root)) return;
  for (size_t i = 0; i < paths.size(); ++i) {
    simdjson::dom::element found;
    if (paths[i] == nullptr || !walk(root, *paths[i], &found)) {
      (*outcomes)[i] = Outcome::kMissing;
      continue;
    }
    fill_value(found, &(*results)[i]);
    (*outcomes)[i] = Outcome::kFound;
  }
}

// ---- Extractor ----

Extractor::Extractor(Extractor&&) noexcept = default;
Extractor& Extractor::operator=(Extractor&&) noexcept = default;
Extractor::~Extractor() = default;

std::optional<Extractor> Extractor::json(std::string_view path, std::string* error) {
  std::optional<JsonPath> compiled = JsonPath::compile(path, error);
  if (!compiled) return std::nullopt;
  Extractor e;
  e.kind_ = Kind::kJson;
  e.json_path_ = std::move(compiled);
  return e;
}

std::optional<Extractor> Extractor::regex(std::string_view pattern, int group, std::string* error) {
  RE2::Options options;
  options.set_log_errors(false);  // the error goes into *error, not to stderr
  auto re = std::make_unique<RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) {
    if (error) *error = "invalid regex '" + std::string(pattern) + "': " + re->error();
    return std::nullopt;
  }
  int groups = re->NumberOfCapturingGroups();
  if (group < 0 || group > groups) {
    if (error) {
      *error = "regex '" + std::string(pattern) + "' has " + std::to_string(groups) +
               " capture group(s); group " + std::to_string(group) +
               " is out of range (0 is the whole match)";
    }
    return std::nullopt;
  }
  Extractor e;
  e.kind_ = Kind::kRegex;
  e.regex_ = std::move(re);
  e.group_ = group;
  e.name_.assign(pattern);
  return e;
}

Extractor Extractor::header(std::string_view name) {
  Extractor e;
  e.kind_ = Kind::kHeader;
  e.name_.assign(name);
  return e;
}

Extractor Extractor::cookie(std::string_view name) {
  Extractor e;
  e.kind_ = Kind::kCookie;
  e.name_.assign(name);
  return e;
}

Extractor Extractor::status() {
  Extractor e;
  e.kind_ = Kind::kStatus;
  return e;
}

Extractor Extractor::body() {
  Extractor e;
  e.kind_ = Kind::kBody;
  return e;
}

bool Extractor::apply(const ResponseView& response, std::string* out) const {
  switch (kind_) {
    case Kind::kJson:
      return false;  // evaluated by JsonEvaluator
    case Kind::kRegex: {
      // Only as many submatches as needed: RE2 runs faster with fewer.
      constexpr int kInline = 10;
      re2::StringPiece inline_subs[kInline];
      std::vector<re2::StringPiece> heap_subs;
      re2::StringPiece* subs = inline_subs;
      if (group_ >= kInline) {
        heap_subs.resize(group_ + 1);
        subs = heap_subs.data();
      }
      re2::StringPiece text(response.body.data(), response.body.size());
      if (!regex_->Match(text, 0, text.size(), RE2::UNANCHORED, subs, group_ + 1)) return false;
      // An optional group that did not take part in the match is absent.
      if (subs[group_].data() == nullptr) return false;
      out->assign(subs[group_].data(), subs[group_].size());
      return true;
    }
    case Kind::kHeader: {
      const std::string_view* value = response.find_header(name_);
      if (value == nullptr) return false;
      out->assign(*value);
      return true;
    }
    case Kind::kCookie: {
      // The last Set-Cookie for the name wins, as it would in a cookie jar.
      // Attributes after ';' are ignored; names are case-sensitive (RFC 6265).
      bool found = false;
      for (const auto& [name, value] : response.headers) {
        if (!iequals(name, "set-cookie")) continue;
        std::string_view pair = value.substr(0, value.find(';'));
        size_t eq = pair.find('=');
        if (eq == std::string_view::npos) continue;  // RFC 6265 5.2: ignore the line
        if (trim_ows(pair.substr(0, eq)) != name_) continue;
        out->assign(trim_ows(pair.substr(eq + 1)));
        found = true;
      }
      return found;
    }
    case Kind::kStatus: {
      char buf[16];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, response.status);
      out->assign(buf, end);
      return true;
    }
    case Kind::kBody:
      out->assign(response.body);
      return true;
  }
  return false;
}

std::string Extractor::describe() const {
  switch (kind_) {
    case Kind::kJson:
      return "json " + json_path_->source();
    case Kind::kRegex:
      return "regex '" + name_ + "'" + (group_ != 0 ? " group " + std::to_string(group_) : "");
    case Kind::kHeader:
      return "header " + name_;
    case Kind::kCookie:
      return "cookie " + name_;
    case Kind::kStatus:
      return "status";
    case Kind::kBody:
      return "body";
  }
  return "?";
}

}  // namespace millstone::scenario
