#include "scenario/check.h"

#include "grpc/status.h"

#include <re2/re2.h>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace millstone::scenario {

namespace {

// Observed values in why texts are cut here: enough to recognise an error
// page, short enough for one line of a report.
constexpr size_t kShowBytes = 80;

bool is_utf8_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// s[from, from + kShowBytes) as a one-line quoted string, cut on a UTF-8
// boundary, with "..." marking what was left out on either side.
std::string show_text(std::string_view s, size_t from = 0) {
  while (from > 0 && from < s.size() && is_utf8_continuation(s[from]))
    --from;
  size_t end = std::min(s.size(), from + kShowBytes);
  while (end > from && end < s.size() && is_utf8_continuation(s[end]))
    --end;
  std::string out;
  if (from > 0) out += "...";
  out += '"';
  for (size_t i = from; i < end; ++i) {
    char c = s[i];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  if (end < s.size()) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string format_number(double v) {
  // Whole numbers print without ".0" or exponent, as users write them.
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

// "850us", "1.5ms", "250.345ms", "2s".
std::string format_duration_us(double us) {
  if (us >= 1e6 && std::fmod(us, 1e6) == 0) return format_number(us / 1e6) + "s";
  if (std::fabs(us) < 1000) return format_number(us) + "us";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", us / 1000);
  std::string s(buf);
  while (s.back() == '0')
    s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s + "ms";
}

// Strict: the whole text (surrounding blanks aside) must be one finite number.
bool parse_number(std::string_view s, double* out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

// What a check looks at, in one shape for every subject.
struct Observed {
  std::string_view label;  // "body", "header Content-Type", "$.total", "duration"
  bool present = true;
  std::string_view text;
  bool has_number = false;
  double number = 0;
  bool has_length = false;
  size_t length = 0;
  std::string shown;  // how the value reads in a why text
};

bool number_matches_entry(const Observed& o, const std::string& entry) {
  double n = 0;
  return o.has_number && parse_number(entry, &n) && n == o.number;
}

std::string one_of_list(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    out += show_text(values[i]);
  }
  return out + "]";
}

// Absence satisfies the negative expectations: a missing header does not
// contain "error", a missing field is not equal to "failed".
bool evaluate_expectation(const Expectation& e, const Observed& o, const std::string& expected,
                          std::string* why) {
  auto fail = [&](std::string text) {
    if (why) *why = std::move(text);
    return false;
  };
  using Op = Expectation::Op;
  if (!o.present) {
    if (e.op == Op::kNotExists || e.op == Op::kNotEquals || e.op == Op::kNotContains) return true;
    return fail(std::string(o.label) + " is missing");
  }
  std::string label(o.label);
  switch (e.op) {
    case Op::kExists:
      return true;
    case Op::kNotExists:
      return fail(label + " exists: " + o.shown);
    case Op::kEquals:
    case Op::kNotEquals: {
      bool equal = e.numeric ? o.has_number && o.number == e.number : o.text == e.text;
      if (equal == (e.op == Op::kEquals)) return true;
      return fail(label + " is " + o.shown + ", expected " + expected);
    }
    case Op::kContains: {
      if (o.text.find(e.text) != std::string_view::npos) return true;
      return fail(label + " does not contain " + show_text(e.text) + ": " + o.shown);
    }
    case Op::kNotContains: {
      size_t at = o.text.find(e.text);
      if (at == std::string_view::npos) return true;
      // Show where it was found: the start of a long body may not include it.
      size_t from = at > 20 ? at - 20 : 0;
      return fail(label + " contains " + show_text(e.text) + ": " + show_text(o.text, from));
    }
    case Op::kMatches: {
      if (!e.regex) return fail("no regex compiled for " + expected);
      if (RE2::PartialMatch(re2::StringPiece(o.text.data(), o.text.size()), *e.regex)) return true;
      return fail(label + " does not match '" + e.regex->pattern() + "': " + o.shown);
    }
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe: {
      if (!o.has_number) return fail(label + " is " + o.shown + ", not a number");
      double v = o.number;
      bool ok = e.op == Op::kLt   ? v < e.number
                : e.op == Op::kLe ? v <= e.number
                : e.op == Op::kGt ? v > e.number
                                  : v >= e.number;
      if (ok) return true;
      return fail(label + " is " + o.shown + ", expected " + expected);
    }
    case Op::kLengthEquals: {
      if (!o.has_length) return fail(label + " is " + o.shown + ", which has no length");
      if (static_cast<double>(o.length) == e.number) return true;
      return fail(label + " has length " + std::to_string(o.length) + ", expected " +
                  format_number(e.number) + ": " + o.shown);
    }
    case Op::kOneOf: {
      for (const std::string& v : e.one_of) {
        if (o.text == v || number_matches_entry(o, v)) return true;
      }
      return fail(label + " is " + o.shown + ", expected one of " + one_of_list(e.one_of));
    }
  }
  return fail("unknown expectation");
}

// Header and body values: text that may also be read as a number.
Observed observe_text(std::string_view label, const std::string_view* text) {
  Observed o;
  o.label = label;
  if (text == nullptr) {
    o.present = false;
    return o;
  }
  o.text = *text;
  o.has_number = parse_number(*text, &o.number);
  o.has_length = true;
  o.length = text->size();  // bytes: what a response size limit means
  o.shown = show_text(*text);
  return o;
}

const char* json_type_name(JsonEvaluator::Value::Type type) {
  using Type = JsonEvaluator::Value::Type;
  switch (type) {
    case Type::kString:
      return "string";
    case Type::kNumber:
      return "number";
    case Type::kBool:
      return "bool";
    case Type::kNull:
      return "null";
    case Type::kObject:
      return "object";
    case Type::kArray:
      return "array";
  }
  return "?";
}

Observed observe_json(std::string_view label, const JsonEvaluator::Value* v) {
  using Type = JsonEvaluator::Value::Type;
  Observed o;
  o.label = label;
  if (v == nullptr) {
    o.present = false;
    return o;
  }
  o.text = v->text;
  o.has_number = v->type == Type::kNumber;
  o.number = v->number;
  o.has_length = v->type == Type::kString || v->type == Type::kArray || v->type == Type::kObject;
  o.length = v->length;
  if (v->type == Type::kString) {
    o.shown = show_text(v->text);
  } else {
    // Numbers, bools and null read as themselves; containers are cut like text.
    o.shown = v->text.size() <= kShowBytes ? v->text : show_text(v->text);
    if (v->type == Type::kObject || v->type == Type::kArray || v->type == Type::kNull) {
      o.shown += std::string(" (") + json_type_name(v->type) + ")";
    }
  }
  return o;
}

std::string duration_expected(const Expectation& e) {
  using Op = Expectation::Op;
  switch (e.op) {
    case Op::kLt:
      return "< " + format_duration_us(e.number);
    case Op::kLe:
      return "<= " + format_duration_us(e.number);
    case Op::kGt:
      return "> " + format_duration_us(e.number);
    case Op::kGe:
      return ">= " + format_duration_us(e.number);
    case Op::kEquals:
      return "== " + format_duration_us(e.number);
    case Op::kNotEquals:
      return "!= " + format_duration_us(e.number);
    default:
      return e.describe();
  }
}

bool fail_with(std::string* why, std::string text) {
  if (why) *why = std::move(text);
  return false;
}

}  // namespace

// ---- Expectation ----

std::string Expectation::describe() const {
  switch (op) {
    case Op::kEquals:
      return "== " + (numeric ? format_number(number) : show_text(text));
    case Op::kNotEquals:
      return "!= " + (numeric ? format_number(number) : show_text(text));
    case Op::kContains:
      return "contains " + show_text(text);
    case Op::kNotContains:
      return "does not contain " + show_text(text);
    case Op::kMatches:
      return "matches '" + (regex ? regex->pattern() : text) + "'";
    case Op::kExists:
      return "exists";
    case Op::kNotExists:
      return "does not exist";
    case Op::kLt:
      return "< " + format_number(number);
    case Op::kLe:
      return "<= " + format_number(number);
    case Op::kGt:
      return "> " + format_number(number);
    case Op::kGe:
      return ">= " + format_number(number);
    case Op::kLengthEquals:
      return "has length " + format_number(number);
    case Op::kOneOf:
      return "is one of " + one_of_list(one_of);
  }
  return "?";
}

std::optional<Expectation> make_expectation(std::string_view op_name, std::string_view value_text,
                                            bool value_is_number, std::string* error) {
  auto fail = [&](std::string text) -> std::optional<Expectation> {
    if (error) *error = std::move(text);
    return std::nullopt;
  };
  using Op = Expectation::Op;
  Expectation e;
  std::string op(op_name);
  std::string shown = show_text(value_text);
  if (op == "equals" || op == "not_equals") {
    e.op = op == "equals" ? Op::kEquals : Op::kNotEquals;
    e.text.assign(value_text);
    if (value_is_number) {
      if (!parse_number(value_text, &e.number)) {
        return fail(op + " expects a number, got " + shown);
      }
      e.numeric = true;
    }
  } else if (op == "contains" || op == "not_contains") {
    e.op = op == "contains" ? Op::kContains : Op::kNotContains;
    e.text.assign(value_text);
  } else if (op == "matches") {
    e.op = Op::kMatches;
    e.text.assign(value_text);
    RE2::Options options;
    options.set_log_errors(false);
    e.regex =
        std::make_shared<RE2>(re2::StringPiece(value_text.data(), value_text.size()), options);
    if (!e.regex->ok()) {
      return fail("matches expects a valid regex, got '" + std::string(value_text) +
                  "': " + e.regex->error());
    }
  } else if (op == "exists" || op == "not_exists") {
    if (value_text != "true" && value_text != "false") {
      return fail(op + " expects true or false, got " + shown);
    }
    bool exists = (op == "exists") == (value_text == "true");
    e.op = exists ? Op::kExists : Op::kNotExists;
  } else if (op == "lt" || op == "le" || op == "gt" || op == "ge") {
    e.op = op == "lt" ? Op::kLt : op == "le" ? Op::kLe : op == "gt" ? Op::kGt : Op::kGe;
    if (!parse_number(value_text, &e.number)) return fail(op + " expects a number, got " + shown);
    e.numeric = true;
  } else if (op == "length") {
    e.op = Op::kLengthEquals;
    if (!parse_number(value_text, &e.number) || e.number < 0 || e.number != std::trunc(e.number)) {
      return fail("length expects a whole number >= 0, got " + shown);
    }
  } else if (op == "one_of") {
    return fail("one_of expects a list of values, got " + shown);
  } else {
    return fail("unknown check operator '" + op +
                "'; expected one of equals, not_equals, contains, not_contains, matches, exists, "
                "not_exists, lt, le, gt, ge, length, one_of");
  }
  return e;
}

std::optional<Expectation> make_expectation(std::string_view op_name,
                                            std::vector<std::string> values, std::string* error) {
  if (op_name != "one_of") {
    if (error) *error = std::string(op_name) + " expects a single value, not a list";
    return std::nullopt;
  }
  if (values.empty()) {
    if (error) *error = "one_of expects a non-empty list of values";
    return std::nullopt;
  }
  Expectation e;
  e.op = Expectation::Op::kOneOf;
  e.one_of = std::move(values);
  return e;
}

// ---- Check ----

Check Check::status_in(std::vector<int> codes) {
  Check c;
  c.subject_ = Subject::kStatus;
  c.name_ = "status in [";
  for (size_t i = 0; i < codes.size(); ++i) {
    if (i) c.name_ += ", ";
    c.name_ += std::to_string(codes[i]);
  }
  c.name_ += "]";
  c.codes_ = std::move(codes);
  return c;
}

Check Check::status_class(int hundreds) {
  Check c;
  c.subject_ = Subject::kStatus;
  c.status_class_ = hundreds;
  c.name_ = "status " + std::to_string(hundreds) + "xx";
  return c;
}

Check Check::grpc_status_in(std::vector<int> codes) {
  Check c;
  c.subject_ = Subject::kGrpcStatus;
  c.name_ = "grpc_status in [";
  for (size_t i = 0; i < codes.size(); ++i) {
    if (i) c.name_ += ", ";
    c.name_ += grpc::status_name(static_cast<uint32_t>(codes[i]));
  }
  c.name_ += "]";
  c.codes_ = std::move(codes);
  return c;
}

Check Check::grpc_message(Expectation e) {
  Check c;
  c.subject_ = Subject::kGrpcMessage;
  c.expected_ = e.describe();
  c.name_ = "grpc_message " + c.expected_;
  c.expectation_ = std::move(e);
  return c;
}

Check Check::header(std::string name, Expectation e) {
  Check c;
  c.subject_ = Subject::kHeader;
  c.expected_ = e.describe();
  c.name_ = "header " + name + " " + c.expected_;
  c.header_name_ = std::move(name);
  c.expectation_ = std::move(e);
  return c;
}

Check Check::body(Expectation e) {
  Check c;
  c.subject_ = Subject::kBody;
  c.expected_ = e.describe();
  c.name_ = "body " + c.expected_;
  c.expectation_ = std::move(e);
  return c;
}

std::optional<Check> Check::json(std::string_view path, Expectation e, std::string* error) {
  std::optional<JsonPath> compiled = JsonPath::compile(path, error);
  if (!compiled) return std::nullopt;
  Check c;
  c.subject_ = Subject::kJson;
  c.expected_ = e.describe();
  c.name_ = "json " + compiled->source() + " " + c.expected_;
  c.json_path_ = std::move(compiled);
  c.expectation_ = std::move(e);
  return c;
}

Check Check::duration(Expectation e) {
  Check c;
  c.subject_ = Subject::kDuration;
  c.expected_ = duration_expected(e);
  c.name_ = "duration " + c.expected_;
  c.expectation_ = std::move(e);
  return c;
}

bool Check::evaluate(const ResponseView& response, JsonEvaluator::Outcome json_outcome,
                     const JsonEvaluator::Value* json_value, std::string* why) const {
  switch (subject_) {
    case Subject::kStatus: {
      bool ok = false;
      if (status_class_ != 0) {
        ok = response.status / 100 == status_class_;
      } else {
        for (int code : codes_)
          ok = ok || response.status == code;
      }
      if (ok) return true;
      return fail_with(why, "status " + std::to_string(response.status));
    }
    case Subject::kGrpcStatus: {
      for (int code : codes_) {
        if (response.grpc_status == code) return true;
      }
      std::string seen =
          "grpc_status " +
          grpc::status_name(static_cast<uint32_t>(std::max(response.grpc_status, 0)));
      if (response.has_grpc_message) seen += " (" + std::string(response.grpc_message) + ")";
      return fail_with(why, seen);
    }
    case Subject::kGrpcMessage:
      return evaluate_expectation(
          expectation_,
          observe_text("grpc_message",
                       response.has_grpc_message ? &response.grpc_message : nullptr),
          expected_, why);
    case Subject::kHeader: {
      std::string label = "header " + header_name_;
      return evaluate_expectation(
          expectation_, observe_text(label, response.find_header(header_name_)), expected_, why);
    }
    case Subject::kBody:
      return evaluate_expectation(expectation_, observe_text("body", &response.body), expected_,
                                  why);
    case Subject::kJson: {
      if (json_outcome == JsonEvaluator::Outcome::kNotJson) {
        return fail_with(why, "not JSON: " + show_text(response.body));
      }
      const JsonEvaluator::Value* v =
          json_outcome == JsonEvaluator::Outcome::kFound ? json_value : nullptr;
      return evaluate_expectation(expectation_, observe_json(json_path_->source(), v), expected_,
                                  why);
    }
    case Subject::kDuration: {
      Observed o;
      o.label = "duration";
      std::string text = std::to_string(response.latency_us);
      o.text = text;
      o.has_number = true;
      o.number = static_cast<double>(response.latency_us);
      o.shown = format_duration_us(o.number);
      return evaluate_expectation(expectation_, o, expected_, why);
    }
  }
  return fail_with(why, "unknown check");
}

}  // namespace millstone::scenario
