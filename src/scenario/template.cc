#include "scenario/template.h"
#include "text/json_string.h"

#include <charconv>
#include <optional>
#include <utility>

namespace millstone::scenario {

namespace {

using SegmentKind = Template::Segment::Kind;
using Filter = Template::Segment::Filter;

// --- compiling -------------------------------------------------------------

struct CompileError {
  std::string message;
  size_t offset = 0;
};

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

// For messages: a printable byte as itself, anything else by value, so an
// error about a stray control byte is still readable on a terminal.
std::string describe(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x21 && byte < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string("byte 0x") + kHex[byte >> 4] + kHex[byte & 15];
}

struct Builtin {
  std::string_view name;
  SegmentKind kind;
};
constexpr Builtin kBuiltins[] = {
    {"vu", SegmentKind::kVu},          {"iteration", SegmentKind::kIteration},
    {"worker", SegmentKind::kWorker},  {"uuid", SegmentKind::kUuid},
    {"now_ms", SegmentKind::kNowMs},   {"now", SegmentKind::kNowS},
    {"now_iso", SegmentKind::kNowIso}, {"corr", SegmentKind::kCorr},
};

const Builtin* find_builtin(std::string_view name) {
  for (const Builtin& b : kBuiltins) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

void append_filtered(Filter filter, std::string_view value, std::string* out);

bool is_identifier(std::string_view name) {
  if (name.empty() || !is_name_start(name.front())) return false;
  for (char c : name) {
    if (!is_name_start(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Reads the expression text[begin, end) (between "{{" and "}}") into *segment.
class ExpressionParser {
 public:
  ExpressionParser(std::string_view text, size_t open, size_t end, VariableTable& variables,
                   bool allow_new)
      : text_(text),
        open_(open),
        pos_(open + 2),
        end_(end),
        variables_(variables),
        allow_new_(allow_new) {}

  bool parse(Template::Segment* segment, CompileError* error) {
    error_ = error;
    skip_space();
    if (pos_ == end_) return fail(open_, "empty expression");
    if (!is_name_start(text_[pos_])) {
      return fail(pos_, "expected a variable or function name, found " + describe(text_[pos_]));
    }
    const size_t name_at = pos_;
    const std::string_view name = read_name();
    skip_space();
    if (name.starts_with("env.")) return parse_parameter(name_at, name.substr(4), segment);
    if (pos_ < end_ && text_[pos_] == '(') {
      if (name != "random") {
        if (find_builtin(name) != nullptr) {
          return fail(name_at, "'" + std::string(name) + "' takes no arguments");
        }
        return fail(name_at, "unknown function '" + std::string(name) + "'");
      }
      ++pos_;
      if (!parse_random_arguments(segment)) return false;
    } else if (const Builtin* builtin = find_builtin(name)) {
      segment->kind = builtin->kind;
    } else if (name == "random") {
      return fail(name_at, "random needs two arguments: random(A, B)");
    } else {
      segment->kind = SegmentKind::kVariable;
      const int slot = variables_.find(name);
      if (slot >= 0) {
        segment->slot = static_cast<uint32_t>(slot);
      } else if (allow_new_) {
        segment->slot = variables_.intern(name);
      } else {
        return fail(name_at, "unknown variable '" + std::string(name) + "'");
      }
    }
    skip_space();
    if (pos_ < end_ && text_[pos_] == '|') {
      ++pos_;
      skip_space();
      if (pos_ == end_ || !is_name_start(text_[pos_])) {
        return fail(pos_, "expected a filter name after '|'");
      }
      const size_t filter_at = pos_;
      const std::string_view filter = read_name();
      if (filter == "urlencode") {
        segment->filter = Filter::kUrlEncode;
      } else if (filter == "json") {
        segment->filter = Filter::kJson;
      } else {
        return fail(filter_at,
                    "unknown filter '" + std::string(filter) + "' (expected urlencode or json)");
      }
      skip_space();
      if (pos_ < end_ && text_[pos_] == '|') return fail(pos_, "only one filter is allowed");
    }
    if (pos_ != end_) return fail(pos_, "unexpected " + describe(text_[pos_]) + " in expression");
    return true;
  }

 private:
  bool fail(size_t offset, std::string message) {
    error_->message = std::move(message);
    error_->offset = offset;
    return false;
  }

  void skip_space() {
    while (pos_ < end_ && is_json_space(text_[pos_]))
      ++pos_;
  }

  // After "env.NAME": [ | default("text") ] [ | urlencode | | json ]. The value is
  // fixed for the run, so the expression compiles to literal text.
  bool parse_parameter(size_t name_at, std::string_view name, Template::Segment* segment) {
    if (!is_identifier(name)) {
      return fail(name_at + 4, "parameter name '" + std::string(name) +
                                   "' is not a name; expected env.NAME with NAME made of "
                                   "letters, digits and _");
    }
    const std::string* value = variables_.parameter(name);
    std::optional<std::string> fallback;
    Filter filter = Filter::kNone;
    while (pos_ < end_ && text_[pos_] == '|') {
      ++pos_;
      skip_space();
      const size_t filter_at = pos_;
      const std::string_view filter_name = read_name();
      if (filter_name == "default") {
        if (fallback || filter != Filter::kNone) {
          return fail(filter_at, "default(\"...\") comes once, right after env.NAME");
        }
        std::string text;
        if (!parse_string_argument(&text)) return false;
        fallback = std::move(text);
      } else if (filter_name == "urlencode" || filter_name == "json") {
        if (filter != Filter::kNone) return fail(filter_at, "only one filter is allowed");
        filter = filter_name == "json" ? Filter::kJson : Filter::kUrlEncode;
      } else {
        return fail(filter_at, "unknown filter '" + std::string(filter_name) +
                                   "' (expected default(\"...\"), urlencode or json)");
      }
      skip_space();
    }
    if (pos_ != end_) return fail(pos_, "unexpected " + describe(text_[pos_]) + " in expression");
    if (value == nullptr && !fallback) {
      const std::string n(name);
      return fail(name_at, "parameter env." + n + ", which is not set; expected -e " + n +
                               "=VALUE on the command line, " + n +
                               " in the environment, or {{ env." + n + " | default(\"...\") }}");
    }
    segment->kind = SegmentKind::kLiteral;
    segment->literal.clear();
    append_filtered(filter, value != nullptr ? *value : *fallback, &segment->literal);
    return true;
  }

  // After "default": ("text"), with \" and \\ as the only escapes.
  bool parse_string_argument(std::string* out) {
    skip_space();
    if (pos_ == end_ || text_[pos_] != '(') return fail(pos_, "expected '(' after default");
    ++pos_;
    skip_space();
    if (pos_ == end_ || text_[pos_] != '"') {
      return fail(pos_, "expected a quoted text in default(\"...\")");
    }
    ++pos_;
    while (pos_ < end_ && text_[pos_] != '"') {
      if (text_[pos_] == '\\' && pos_ + 1 < end_ &&
          (text_[pos_ + 1] == '"' || text_[pos_ + 1] == '\\')) {
        ++pos_;
      }
      out->push_back(text_[pos_++]);
    }
    if (pos_ == end_) return fail(pos_, "unclosed '\"' in default(\"...\")");
    ++pos_;
    skip_space();
    if (pos_ == end_ || text_[pos_] != ')') return fail(pos_, "expected ')' after default(\"...\"");
    ++pos_;
    return true;
  }

  std::string_view read_name() {
    const size_t begin = pos_;
    while (pos_ < end_ && is_name_char(text_[pos_]))
      ++pos_;
    return text_.substr(begin, pos_ - begin);
  }

  // After "random(": "A, B)".
  bool parse_random_arguments(Template::Segment* segment) {
    skip_space();
    const size_t low_at = pos_;
    if (!parse_integer(&segment->low)) return false;
    skip_space();
    if (pos_ == end_ || text_[pos_] != ',') {
      return fail(pos_, "expected ',' between the arguments of random(A, B)");
    }
    ++pos_;
    skip_space();
    if (!parse_integer(&segment->high)) return false;
    skip_space();
    if (pos_ == end_ || text_[pos_] != ')') {
      return fail(pos_, "expected ')' after the arguments of random(A, B)");
    }
    ++pos_;
    if (segment->low > segment->high) {
      return fail(low_at, "random(A, B) needs A <= B, got A = " + std::to_string(segment->low) +
                              ", B = " + std::to_string(segment->high));
    }
    segment->kind = SegmentKind::kRandom;
    return true;
  }

  bool parse_integer(int64_t* value) {
    const size_t at = pos_;
    size_t digits = pos_;
    // from_chars takes '-' but not '+'; both are natural to write.
    if (digits < end_ && text_[digits] == '+') ++digits;
    const char* first = text_.data() + digits;
    const char* last = text_.data() + end_;
    const auto [ptr, ec] = std::from_chars(first, last, *value);
    // "1.5", "1e3", "0x10", "12abc" all stop from_chars early: reject the whole token.
    const bool clean_end = ptr == last || is_json_space(*ptr) || *ptr == ',' || *ptr == ')';
    if (ec == std::errc::result_out_of_range) {
      return fail(at, "random(A, B) argument does not fit in 64 bits");
    }
    if (ec != std::errc() || !clean_end || (digits != pos_ && *first == '-')) {
      return fail(at, "random(A, B) arguments must be integers");
    }
    pos_ = static_cast<size_t>(ptr - text_.data());
    return true;
  }

  std::string_view text_;
  size_t open_;  // offset of "{{", where "empty expression" points
  size_t pos_;
  size_t end_;  // offset of the closing "}}"
  VariableTable& variables_;
  bool allow_new_;
  CompileError* error_ = nullptr;
};

// --- rendering ---------------------------------------------------------------

// RFC 3986 section 2.3.
constexpr bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

constexpr char kUpperHex[] = "0123456789ABCDEF";

void append_urlencoded(std::string_view in, std::string* out) {
  size_t run = 0;  // start of the current run of bytes copied as they are
  for (size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (is_unreserved(c)) continue;
    out->append(in.data() + run, i - run);
    const char escaped[3] = {'%', kUpperHex[c >> 4], kUpperHex[c & 15]};
    out->append(escaped, 3);
    run = i + 1;
  }
  out->append(in.data() + run, in.size() - run);
}

void append_filtered(Filter filter, std::string_view value, std::string* out) {
  switch (filter) {
    case Filter::kNone:
      out->append(value);
      break;
    case Filter::kUrlEncode:
      append_urlencoded(value, out);
      break;
    case Filter::kJson:
      text::append_json_escaped(value, out);
      break;
  }
}

int64_t draw_random(const Template::Segment& segment, random::Prng* prng) {
  // Without a generator (a context built for validation), the lower bound.
  if (prng == nullptr) return segment.low;
  // Unsigned arithmetic: B - A + 1 overflows int64 for wide ranges and is 0
  // (mod 2^64) for the full range, where every draw is already uniform.
  const uint64_t span =
      static_cast<uint64_t>(segment.high) - static_cast<uint64_t>(segment.low) + 1;
  const uint64_t offset = span == 0 ? (*prng)() : random::uniform_below(*prng, span);
  return static_cast<int64_t>(static_cast<uint64_t>(segment.low) + offset);
}

// Writes 36 characters: 8-4-4-4-12 lowercase hex (RFC 9562 section 5.4).
void format_uuid(random::Prng* prng, char* out) {
  uint64_t high = prng != nullptr ? (*prng)() : 0;
  uint64_t low = prng != nullptr ? (*prng)() : 0;
  high = (high & ~uint64_t{0xF000}) | uint64_t{0x4000};            // version 4
  low = (low & ~(uint64_t{0xC0} << 56)) | (uint64_t{0x80} << 56);  // variant 10
  static constexpr char kLowerHex[] = "0123456789abcdef";
  // Where each of a word's 16 nibbles goes, most significant first, so the
  // loops below have no dash test.
  static constexpr uint8_t kHighAt[16] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17};
  static constexpr uint8_t kLowAt[16] = {19, 20, 21, 22, 24, 25, 26, 27,
                                         28, 29, 30, 31, 32, 33, 34, 35};
  for (int i = 15; i >= 0; --i, high >>= 4, low >>= 4) {
    out[kHighAt[i]] = kLowerHex[high & 15];
    out[kLowAt[i]] = kLowerHex[low & 15];
  }
  out[8] = out[13] = out[18] = out[23] = '-';
}

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

// Howard Hinnant's civil_from_days: proleptic Gregorian, no tables, no time
// zone database and no locale, so it is the same on every host.
void civil_from_days(int64_t days, int64_t* year, unsigned* month, unsigned* day) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);                 // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                                     // [0, 11]
  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = static_cast<int64_t>(yoe) + era * 400 + (*month <= 2 ? 1 : 0);
}

void put_digits(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// "2026-11-23T01:02:03.456Z". Returns the length; years outside 0..9999
// get a sign and as many digits as they need (ISO 8601 expanded form).
size_t format_iso(int64_t unix_ms, char* out) {
  // Remainders taken directly: "unix_ms - seconds * 1000" overflows near INT64_MIN.
  const int64_t seconds = floor_div(unix_ms, 1000);
  const auto millis = static_cast<unsigned>(floor_mod(unix_ms, 1000));
  const int64_t days = floor_div(seconds, 86400);
  const auto second_of_day = static_cast<unsigned>(floor_mod(seconds, 86400));
  int64_t year = 0;
  unsigned month = 0, day = 0;
  civil_from_days(days, &year, &month, &day);
  size_t n = 0;
  if (year >= 0 && year <= 9999) {
    put_digits(out, static_cast<unsigned>(year), 4);
    n = 4;
  } else {
    if (year > 0) out[n++] = '+';
    n = static_cast<size_t>(std::to_chars(out + n, out + n + 24, year).ptr - out);
  }
  char* p = out + n;
  p[0] = '-';
  put_digits(p + 1, month, 2);
  p[3] = '-';
  put_digits(p + 4, day, 2);
  p[6] = 'T';
  put_digits(p + 7, second_of_day / 3600, 2);
  p[9] = ':';
  put_digits(p + 10, second_of_day / 60 % 60, 2);
  p[12] = ':';
  put_digits(p + 13, second_of_day % 60, 2);
  p[15] = '.';
  put_digits(p + 16, millis, 3);
  p[19] = 'Z';
  return n + 20;
}

template <typename Integer>
void append_integer(Integer value, std::string* out) {
  char buffer[24];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  out->append(buffer, static_cast<size_t>(end - buffer));
}

std::string_view variable_value(const RenderContext& context, uint32_t slot) {
  if (context.variables == nullptr || slot >= context.variables->size()) return {};
  return (*context.variables)[slot];
}

}  // namespace

std::optional<Template> Template::compile(std::string_view text, VariableTable& variables,
                                          bool allow_new, std::string* error,
                                          size_t* error_offset) {
  Template result;
  result.source_.assign(text);
  std::string literal;  // pending literal text, merged across escapes
  auto flush_literal = [&] {
    if (literal.empty()) return;
    Segment segment;
    segment.literal = std::move(literal);
    result.segments_.push_back(std::move(segment));
    literal.clear();
  };
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t brace = text.find("{{", pos);
    if (brace == std::string_view::npos) {
      literal.append(text.substr(pos));
      break;
    }
    if (brace > pos && text[brace - 1] == '\\') {
      literal.append(text.substr(pos, brace - 1 - pos));
      literal.append("{{");
      pos = brace + 2;
      continue;
    }
    literal.append(text.substr(pos, brace - pos));
    CompileError failure;
    const size_t close = text.find("}}", brace + 2);
    Segment segment;
    if (close == std::string_view::npos) {
      failure = {"unclosed '{{'", brace};
    } else if (ExpressionParser(text, brace, close, variables, allow_new)
                   .parse(&segment, &failure)) {
      if (segment.kind == Segment::Kind::kLiteral) {
        literal.append(segment.literal);  // a run parameter, fixed for the run
      } else {
        flush_literal();
        result.segments_.push_back(std::move(segment));
      }
      pos = close + 2;
      continue;
    }
    if (error != nullptr) *error = std::move(failure.message);
    if (error_offset != nullptr) *error_offset = failure.offset;
    return std::nullopt;
  }
  flush_literal();
  return result;
}

Template Template::literal(std::string text) {
  Template result;
  if (!text.empty()) {
    Segment segment;
    segment.literal = text;
    result.segments_.push_back(std::move(segment));
  }
  result.source_ = std::move(text);
  return result;
}

std::string Template::escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t brace; (brace = text.find("{{", pos)) != std::string_view::npos; pos = brace + 2) {
    out.append(text.substr(pos, brace - pos));
    out.append("\\{{");
  }
  out.append(text.substr(pos));
  return out;
}

void Template::render(const RenderContext& context, std::string* out) const {
  // Integers, uuids and now/now_ms need no escaping by either filter (digits,
  // '-' and hex only), so only variables and now_iso go through filters.
  for (const Segment& segment : segments_) {
    switch (segment.kind) {
      case Segment::Kind::kLiteral:
        out->append(segment.literal);
        break;
      case Segment::Kind::kVariable:
        append_filtered(segment.filter, variable_value(context, segment.slot), out);
        break;
      case Segment::Kind::kVu:
        append_integer(context.vu_id, out);
        break;
      case Segment::Kind::kIteration:
        append_integer(context.iteration, out);
        break;
      case Segment::Kind::kWorker:
        append_integer(context.worker_index, out);
        break;
      case Segment::Kind::kRandom:
        append_integer(draw_random(segment, context.prng), out);
        break;
      case Segment::Kind::kUuid: {
        char buffer[36];
        format_uuid(context.prng, buffer);
        out->append(buffer, sizeof buffer);
        break;
      }
      case Segment::Kind::kNowMs:
        append_integer(context.now_unix_ms, out);
        break;
      case Segment::Kind::kNowS:
        append_integer(floor_div(context.now_unix_ms, 1000), out);
        break;
      case Segment::Kind::kCorr: {
        char buffer[17];
        static constexpr char kHex[] = "0123456789abcdef";
        for (int i = 0; i < 16; ++i)
          buffer[i] = kHex[(context.run_tag >> (60 - 4 * i)) & 0xf];
        out->append(buffer, 16);
        out->push_back('-');
        append_integer(context.vu_id, out);
        out->push_back('-');
        append_integer(context.iteration, out);
        break;
      }
      case Segment::Kind::kNowIso: {
        char buffer[48];
        const size_t n = format_iso(context.now_unix_ms, buffer);
        append_filtered(segment.filter, std::string_view(buffer, n), out);
        break;
      }
    }
  }
}

std::string Template::render(const RenderContext& context) const {
  std::string out;
  size_t estimate = 0;
  for (const Segment& segment : segments_) {
    estimate += segment.kind == Segment::Kind::kLiteral ? segment.literal.size() : 24;
  }
  out.reserve(estimate);
  render(context, &out);
  return out;
}

bool Template::is_literal() const {
  for (const Segment& segment : segments_) {
    if (segment.kind != Segment::Kind::kLiteral) return false;
  }
  return true;
}

std::vector<uint32_t> Template::variables_used() const {
  std::vector<uint32_t> slots;
  for (const Segment& segment : segments_) {
    if (segment.kind != Segment::Kind::kVariable) continue;
    bool seen = false;
    for (uint32_t slot : slots)
      seen = seen || slot == segment.slot;
    if (!seen) slots.push_back(segment.slot);
  }
  return slots;
}

}  // namespace millstone::scenario
