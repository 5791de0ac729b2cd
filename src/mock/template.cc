#include "mock/template.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include <fmt/format.h>
#include <simdjson.h>

#include "config/yaml_text.h"
#include "http/request_parser.h"
#include "http/status.h"
#include "mock/config.h"
#include "mock/response.h"
#include "text/json_string.h"

namespace millstone::mock {
namespace {

using Kind = Template::Segment::Kind;
using config::edit_distance;
using config::shown;

constexpr std::string_view kKnown =
    "request.method, request.path, request.query.NAME, request.header.NAME, request.body, "
    "request.json.FIELD, path.NAME, uuid, random(A, B), counter, counter.NAME, now_ms or now_us";

// Heads of the expressions, for "did you mean" on a misspelt one.
constexpr std::string_view kHeads[] = {"request.method", "request.path", "request.query",
                                       "request.header", "request.body", "request.json",
                                       "path",           "uuid",         "random",
                                       "counter",        "now_ms",       "now_us"};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A name after "request.query." or a JSON field: anything visible but '|'.
bool is_name_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f && c != '|';
}

bool is_counter_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// An expression text with its offset in the template, trimmed.
struct Piece {
  std::string_view text;
  size_t offset;
};

Piece trimmed(std::string_view text, size_t offset) {
  size_t begin = 0;
  while (begin < text.size() && is_space(text[begin])) {
    ++begin;
  }
  size_t end = text.size();
  while (end > begin && is_space(text[end - 1])) {
    --end;
  }
  return {text.substr(begin, end - begin), offset + begin};
}

class Compiler {
 public:
  Compiler(const Template::Scope& scope, std::string* error, size_t* error_offset)
      : scope_(scope), error_(error), error_offset_(error_offset) {}

  // Parses the inside of "{{ ... }}" found at offset.
  bool expression(std::string_view inner, size_t offset, Template::Segment* segment) {
    // Split at '|' into the value and its filters; '|' cannot occur inside a value.
    const size_t bar = inner.find('|');
    const Piece value = trimmed(inner.substr(0, bar), offset);
    if (value.text.empty()) {
      return fail(offset, "empty expression \"{{ }}\"; expected one of " + std::string(kKnown) +
                              " (write \\{{ for a literal \"{{\")");
    }
    if (!parse_value(value, segment)) {
      return false;
    }
    size_t at = bar;
    while (at != std::string_view::npos) {
      const size_t next = inner.find('|', at + 1);
      const Piece filter = trimmed(inner.substr(at + 1, next - at - 1), offset + at + 1);
      if (filter.text == "json") {
        segment->filters.push_back(Template::Filter::kJson);
      } else if (filter.text == "urlencode") {
        segment->filters.push_back(Template::Filter::kUrlEncode);
      } else {
        return fail(filter.offset, fmt::format("unknown filter {}; expected json or urlencode",
                                               shown(filter.text)));
      }
      at = next;
    }
    return true;
  }

 private:
  bool fail(size_t offset, std::string message) {
    *error_ = std::move(message);
    *error_offset_ = offset;
    return false;
  }

  bool parse_value(const Piece& piece, Template::Segment* s) {
    const std::string_view e = piece.text;
    if (e == "request.method") {
      s->kind = Kind::kMethod;
    } else if (e == "request.path") {
      s->kind = Kind::kPath;
    } else if (e == "request.body") {
      s->kind = Kind::kBody;
    } else if (e == "uuid") {
      s->kind = Kind::kUuid;
    } else if (e == "now_ms") {
      s->kind = Kind::kNowMs;
    } else if (e == "now_us") {
      s->kind = Kind::kNowUs;
    } else if (e == "counter") {
      s->kind = Kind::kRouteCounter;
    } else if (e.starts_with("request.query.")) {
      s->kind = Kind::kQuery;
      return name_after(piece, "request.query.", is_name_char, "a query parameter name", s);
    } else if (e.starts_with("request.header.")) {
      s->kind = Kind::kHeader;
      return name_after(piece, "request.header.", is_tchar, "a header name", s);
    } else if (e.starts_with("request.json.")) {
      s->kind = Kind::kJson;
      return json_path(piece, s);
    } else if (e.starts_with("path.")) {
      s->kind = Kind::kPathParam;
      return path_param(piece, s);
    } else if (e.starts_with("counter.")) {
      s->kind = Kind::kNamedCounter;
      return named_counter(piece, s);
    } else if (e.starts_with("random")) {
      s->kind = Kind::kRandom;
      return random(piece, s);
    } else {
      return unknown(piece);
    }
    return true;
  }

  bool name_after(const Piece& piece, std::string_view prefix, bool (*allowed)(char),
                  std::string_view what, Template::Segment* s) {
    const std::string_view name = piece.text.substr(prefix.size());
    if (name.empty() || !std::all_of(name.begin(), name.end(), allowed)) {
      return fail(piece.offset + prefix.size(),
                  fmt::format("{} is not {}; expected e.g. {}{}", shown(piece.text), what, prefix,
                              prefix == "request.header." ? "Authorization" : "page"));
    }
    s->text = std::string(name);
    return true;
  }

  // "a.b.0" becomes the JSON pointer "/a/b/0" (RFC 6901 escapes for ~ and /).
  bool json_path(const Piece& piece, Template::Segment* s) {
    constexpr std::string_view kPrefix = "request.json.";
    const std::string_view path = piece.text.substr(kPrefix.size());
    size_t start = 0;
    for (;;) {
      const size_t dot = path.find('.', start);
      const std::string_view field = path.substr(start, dot - start);
      if (field.empty() || !std::all_of(field.begin(), field.end(), is_name_char)) {
        return fail(piece.offset + kPrefix.size() + start,
                    fmt::format("{} is not a JSON field path; expected e.g. request.json.user "
                                "or request.json.items.0.id",
                                shown(piece.text)));
      }
      s->text += '/';
      for (char c : field) {
        if (c == '~') {
          s->text += "~0";
        } else if (c == '/') {
          s->text += "~1";
        } else {
          s->text += c;
        }
      }
      if (dot == std::string_view::npos) {
        return true;
      }
      start = dot + 1;
    }
  }

  bool path_param(const Piece& piece, Template::Segment* s) {
    const std::string_view name = piece.text.substr(5);
    std::string names;
    uint32_t index = 0;
    for (const PathSegment& segment : scope_.path) {
      if (!segment.param) {
        continue;
      }
      if (segment.text == name) {
        s->index = index;
        return true;
      }
      names += names.empty() ? ":" : ", :";
      names += segment.text;
      ++index;
    }
    if (names.empty()) {
      return fail(piece.offset, fmt::format("{} but the route's path has no parameters; expected "
                                            "a path such as /orders/:id",
                                            shown(piece.text)));
    }
    return fail(piece.offset + 5, fmt::format("{} is not a parameter of the route's path; "
                                              "expected one of {}",
                                              shown(piece.text), names));
  }

  bool named_counter(const Piece& piece, Template::Segment* s) {
    const std::string_view name = piece.text.substr(8);
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_counter_char)) {
      return fail(piece.offset + 8,
                  fmt::format("{} is not a counter name; expected letters, digits, _ or -, such "
                              "as counter.orders",
                              shown(piece.text)));
    }
    std::vector<std::string>& names = *scope_.counter_names;
    const auto found = std::find(names.begin(), names.end(), name);
    s->index = static_cast<uint32_t>(found - names.begin());
    if (found == names.end()) {
      names.emplace_back(name);
    }
    return true;
  }

  bool random(const Piece& piece, Template::Segment* s) {
    const std::string_view e = piece.text;
    const std::string_view kHint = "expected random(A, B) with whole numbers A <= B";
    size_t at = 6;
    auto skip_space = [&] {
      while (at < e.size() && is_space(e[at])) {
        ++at;
      }
    };
    auto number = [&](int64_t* out) {
      skip_space();
      const auto [end, ec] = std::from_chars(e.data() + at, e.data() + e.size(), *out);
      if (ec != std::errc()) {
        return false;
      }
      at = static_cast<size_t>(end - e.data());
      skip_space();
      return true;
    };
    skip_space();
    if (at >= e.size() || e[at] != '(') {
      return unknown(piece);
    }
    ++at;
    if (!number(&s->low) || at >= e.size() || e[at] != ',') {
      return fail(piece.offset + at, fmt::format("{} is malformed; {}", shown(e), kHint));
    }
    ++at;
    if (!number(&s->high) || at + 1 != e.size() || e[at] != ')') {
      return fail(piece.offset + at, fmt::format("{} is malformed; {}", shown(e), kHint));
    }
    if (s->low > s->high) {
      return fail(piece.offset, fmt::format("{} has A > B; {}", shown(e), kHint));
    }
    return true;
  }

  bool unknown(const Piece& piece) {
    const std::string_view e = piece.text;
    // Compare the head ("request.heder" of "request.heder.X") with the known heads.
    size_t head_end = e.find('.');
    if (head_end != std::string_view::npos && e.substr(0, head_end) == "request") {
      head_end = e.find('.', head_end + 1);
    }
    head_end = std::min({head_end, e.find('('), e.size()});
    const std::string_view head = e.substr(0, head_end);
    std::string_view best;
    size_t best_distance = 3;
    for (std::string_view candidate : kHeads) {
      const size_t distance = edit_distance(head, candidate);
      if (distance < best_distance && distance < candidate.size()) {
        best_distance = distance;
        best = candidate;
      }
    }
    // A distance of 0 is a known head without its name ("request.json"):
    // the list of forms below says what is missing.
    const std::string hint =
        best.empty() || best_distance == 0
            ? ""
            : fmt::format(" (did you mean \"{}{}\"?)", best, e.substr(head.size()));
    return fail(piece.offset,
                fmt::format("unknown expression {}{}; expected one of {}", shown(e), hint, kKnown));
  }

  const Template::Scope& scope_;
  std::string* error_;
  size_t* error_offset_;
};

void append_number(uint64_t value, std::string* out) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out->append(buffer, end);
}

void append_signed(int64_t value, std::string* out) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out->append(buffer, end);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of NAME in "a=1&NAME=x%20y", decoded; the first occurrence wins.
void append_query_value(std::string_view query, std::string_view name, std::string* out) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      if (eq != std::string_view::npos) {
        append_url_decoded(pair.substr(eq + 1), true, out);
      }
      return;
    }
    if (amp == std::string_view::npos) {
      return;
    }
    query.remove_prefix(amp + 1);
  }
}

bool bodiless(int status) {
  return status == 204 || status == 304 || (status >= 100 && status < 200);
}

}  // namespace

std::optional<Template> Template::compile(std::string_view text, const Scope& scope,
                                          std::string* error, size_t* error_offset) {
  Template t;
  Compiler compiler(scope, error, error_offset);
  std::string literal;
  auto flush_literal = [&] {
    if (!literal.empty()) {
      Segment segment;
      segment.text = std::move(literal);
      t.segments_.push_back(std::move(segment));
      literal.clear();
    }
  };
  // Literal runs are copied whole, up to the next "{{": a large body with no
  // expression costs one find and one copy, not a loop per byte.
  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find("{{", i);
    if (open == std::string_view::npos) {
      literal.append(text.substr(i));
      break;
    }
    if (open > i && text[open - 1] == '\\') {  // "\{{" is a literal "{{"
      literal.append(text.substr(i, open - 1 - i));
      literal += "{{";
      i = open + 2;
      continue;
    }
    literal.append(text.substr(i, open - i));
    i = open;
    const size_t close = text.find("}}", i + 2);
    if (close == std::string_view::npos) {
      *error =
          "unclosed \"{{\"; expected \"}}\" after the expression (write \\{{ for a literal "
          "\"{{\")";
      *error_offset = i;
      return std::nullopt;
    }
    Segment segment;
    if (!compiler.expression(text.substr(i + 2, close - i - 2), i + 2, &segment)) {
      return std::nullopt;
    }
    flush_literal();
    t.segments_.push_back(std::move(segment));
    i = close + 2;
  }
  flush_literal();
  return t;
}

Template Template::literal(std::string text) {
  Template t;
  if (!text.empty()) {
    Segment segment;
    segment.text = std::move(text);
    t.segments_.push_back(std::move(segment));
  }
  return t;
}

bool Template::is_literal() const {
  return std::all_of(segments_.begin(), segments_.end(),
                     [](const Segment& s) { return s.kind == Kind::kLiteral; });
}

std::string Template::literal_text() const {
  std::string out;
  for (const Segment& s : segments_) {
    if (s.kind == Kind::kLiteral) {
      out += s.text;
    }
  }
  return out;
}

std::string Template::take_literal_text() && {
  if (segments_.size() == 1 && segments_[0].kind == Kind::kLiteral) {
    return std::move(segments_[0].text);
  }
  return literal_text();
}

bool Template::uses_json() const {
  return std::any_of(segments_.begin(), segments_.end(),
                     [](const Segment& s) { return s.kind == Kind::kJson; });
}

void append_url_encoded(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out->push_back(c);
    } else {
      out->push_back('%');
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 15]);
    }
  }
}

void append_url_decoded(std::string_view text, bool plus_is_space, std::string* out) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      out->push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
}

// The request body parsed with simdjson's DOM parser: one parse per request
// (only for routes that read request.json), then a JSON-pointer walk per
// expression. The parser and the padded copy keep their capacity.
struct TemplateRenderer::Json {
  simdjson::dom::parser parser;
  std::string padded;
  simdjson::dom::element root;
  bool ok = false;

  void parse(std::string_view body) {
    // simdjson reads up to SIMDJSON_PADDING bytes past the end.
    padded.assign(body);
    padded.append(simdjson::SIMDJSON_PADDING, '\0');
    ok = parser.parse(padded.data(), body.size(), false).get(root) == simdjson::SUCCESS;
  }

  void append(std::string_view pointer, std::string* out) {
    simdjson::dom::element value;
    if (!ok || root.at_pointer(pointer).get(value) != simdjson::SUCCESS) {
      return;
    }
    std::string_view text;
    if (value.get_string().get(text) == simdjson::SUCCESS) {
      out->append(text);
    } else {
      // Numbers, booleans, null, objects and arrays as (minified) JSON text.
      out->append(simdjson::minify(value));
    }
  }
};

TemplateRenderer::TemplateRenderer(Prng& prng, std::span<std::atomic<uint64_t>> counters,
                                   size_t named_base)
    : prng_(prng), counters_(counters), named_base_(named_base) {}

TemplateRenderer::~TemplateRenderer() = default;

void TemplateRenderer::begin(const RenderRequest& request) {
  request_ = request;
  counter_values_.clear();
  uuid_.clear();
  now_us_ = -1;
  json_parsed_ = false;
}

uint64_t TemplateRenderer::counter_value(size_t slot) {
  for (const auto& [seen, value] : counter_values_) {
    if (seen == slot) {
      return value;
    }
  }
  uint64_t value = 0;
  if (slot < counters_.size()) {
    // One atomic add in memory shared by all workers: values are unique
    // across processes without any other coordination.
    value = counters_[slot].fetch_add(1, std::memory_order_relaxed) + 1;
  }
  counter_values_.emplace_back(slot, value);
  return value;
}

void TemplateRenderer::append_value(const Template::Segment& s, std::string* out) {
  const http::RequestParser* request = request_.request;
  switch (s.kind) {
    case Kind::kLiteral:
      out->append(s.text);
      break;
    case Kind::kMethod:
      if (request) out->append(request->method());
      break;
    case Kind::kPath:
      if (request) out->append(request->path());
      break;
    case Kind::kQuery:
      if (request) append_query_value(request->query(), s.text, out);
      break;
    case Kind::kHeader:
      if (request) out->append(request->header(s.text));
      break;
    case Kind::kBody:
      if (request) out->append(request->body());
      break;
    case Kind::kJson:
      if (!json_parsed_) {
        if (!json_) json_ = std::make_unique<Json>();
        json_->parse(request ? request->body() : std::string_view());
        json_parsed_ = true;
      }
      json_->append(s.text, out);
      break;
    case Kind::kPathParam:
      if (s.index < request_.path_params.count) {
        append_url_decoded(request_.path_params.values[s.index], false, out);
      }
      break;
    case Kind::kUuid:
      if (uuid_.empty()) {
        static constexpr char kHex[] = "0123456789abcdef";
        uint64_t high = prng_();
        uint64_t low = prng_();
        // Version 4 (random) and the RFC 4122 variant.
        high = (high & ~uint64_t{0xf000}) | 0x4000;
        low = (low & ~(uint64_t{3} << 62)) | (uint64_t{2} << 62);
        for (int i = 0; i < 32; ++i) {
          if (i == 8 || i == 12 || i == 16 || i == 20) uuid_.push_back('-');
          const uint64_t word = i < 16 ? high : low;
          uuid_.push_back(kHex[(word >> (60 - 4 * (i % 16))) & 15]);
        }
      }
      out->append(uuid_);
      break;
    case Kind::kRandom: {
      const uint64_t span = static_cast<uint64_t>(s.high) - static_cast<uint64_t>(s.low) + 1;
      // Modulo bias is at most span / 2^64: invisible for a mock's ranges.
      const uint64_t draw = span == 0 ? prng_() : prng_() % span;
      append_signed(static_cast<int64_t>(static_cast<uint64_t>(s.low) + draw), out);
      break;
    }
    case Kind::kRouteCounter:
      append_number(counter_value(request_.route_index), out);
      break;
    case Kind::kNamedCounter:
      append_number(counter_value(named_base_ + s.index), out);
      break;
    case Kind::kNowMs:
    case Kind::kNowUs:
      // One clock reading per render: now_ms and now_us agree.
      if (now_us_ < 0) {
        timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_us_ = static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
      }
      append_signed(s.kind == Kind::kNowMs ? now_us_ / 1000 : now_us_, out);
      break;
  }
}

void TemplateRenderer::render(const Template& t, std::string* out) {
  for (const Template::Segment& s : t.segments()) {
    if (s.filters.empty()) {
      append_value(s, out);
      continue;
    }
    scratch_.clear();
    append_value(s, &scratch_);
    for (size_t i = 0; i < s.filters.size(); ++i) {
      const bool last = i + 1 == s.filters.size();
      std::string* target = last ? out : &filtered_;
      if (!last) filtered_.clear();
      if (s.filters[i] == Template::Filter::kJson) {
        text::append_json_escaped(scratch_, target);
      } else {
        append_url_encoded(scratch_, target);
      }
      if (!last) scratch_.swap(filtered_);
    }
  }
}

void TemplateRenderer::render_response(const ResponseTemplate& response, bool keep_alive,
                                       std::string* out, size_t* header_bytes) {
  const bool no_body = bodiless(response.status);
  body_.clear();
  if (!no_body) render(response.body, &body_);
  out->clear();
  out->append("HTTP/1.1 ");
  append_signed(response.status, out);
  out->push_back(' ');
  out->append(http::reason_phrase(response.status));
  out->append("\r\n");
  for (const auto& [name, value] : response.headers) {
    out->append(name);
    out->append(": ");
    const size_t start = out->size();
    render(value, out);
    // A request value must not be able to end the header line and add
    // headers of its own (response splitting): control characters become spaces.
    for (size_t i = start; i < out->size(); ++i) {
      const auto u = static_cast<unsigned char>((*out)[i]);
      if ((u < 0x20 && u != '\t') || u == 0x7f) (*out)[i] = ' ';
    }
    out->append("\r\n");
  }
  if (!no_body) {
    out->append("Content-Length: ");
    append_number(body_.size(), out);
    out->append("\r\n");
  }
  if (!keep_alive) out->append("Connection: close\r\n");
  out->append("\r\n");
  *header_bytes = out->size();
  out->append(body_);
}

}  // namespace millstone::mock
