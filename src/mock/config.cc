#include "mock/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <sstream>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "mock/yaml_text.h"
#include "ws/frame.h"

namespace millstone::mock {
namespace {

using text::shown;

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

using Keys = std::span<const std::string_view>;

constexpr size_t kMaxRoutes = 10000;
// YAML aliases let a small file expand into a huge config ("billion laughs").
// Every map entry and copied string is charged against this budget.
constexpr size_t kExpansionBudget = size_t{256} << 20;
constexpr size_t kEntryCost = 64;
constexpr double kUsPerUnit[] = {1, 1e3, 1e6, 60e6, 3600e6};
constexpr std::string_view kUnits[] = {"us", "ms", "s", "m", "h"};
constexpr double kMaxDurationUs = 24 * 3600e6;
constexpr std::string_view kDurationHint =
    "expected a number and a unit, such as 20ms, 1.5s, 250us or 2m";

constexpr std::string_view kTopKeys[] = {"seed", "routes", "websockets", "tcp"};
constexpr std::string_view kWebSocketKeys[] = {
    "name",       "path",       "subprotocols", "echo",       "push",
    "on_message", "ping_every", "close_after",  "close_code", "max_message_bytes"};
constexpr std::string_view kTcpKeys[] = {"name", "listen",     "framing",     "echo",
                                         "push", "on_message", "close_after", "max_message_bytes"};
constexpr std::string_view kPushKeys[] = {"every", "message"};
constexpr std::string_view kReplyKeys[] = {"match", "reply", "then_push"};
constexpr std::string_view kMatchKeys[] = {"contains", "equals", "regex"};
constexpr std::string_view kFramings[] = {"line", "length32", "raw"};
constexpr std::string_view kRouteKeys[] = {"name", "method",    "path",    "status", "headers",
                                           "body", "body_file", "latency", "errors"};
constexpr std::string_view kLatencyKeys[] = {"distribution", "value",  "min", "max",  "mean",
                                             "stddev",       "median", "p99", "sigma"};
constexpr std::string_view kErrorKeys[] = {"rate", "status", "body", "headers", "reset", "stall"};

std::string join(Keys keys) {
  std::string out;
  for (std::string_view key : keys) {
    if (!out.empty()) {
      out += ", ";
    }
    out += key;
  }
  return out;
}

std::string_view kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "empty";
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "undefined";
  }
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Parses the whole of text as a finite double, or nothing.
std::optional<double> parse_double(std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Reads up to limit bytes of a file into out; returns 0 or an errno value.
int read_whole_file(const std::string& path, size_t limit, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  int error = 0;
  char buffer[65536];
  while (out.size() < limit) {
    const ssize_t n = ::read(fd, buffer, std::min(sizeof buffer, limit - out.size()));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      error = errno;
    }
    if (n <= 0) {
      break;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return error;
}

struct Field {
  std::string key;
  YAML::Mark key_mark;
  YAML::Node value;
  YAML::Mark mark;  // of the value; of the key when the value is empty
};

struct MapFields {
  YAML::Mark mark;
  std::vector<Field> fields;

  const Field* find(std::string_view key) const {
    for (const Field& field : fields) {
      if (field.key == key) {
        return &field;
      }
    }
    return nullptr;
  }
};

class Parser {
 public:
  Parser(std::string source_name, std::string_view text)
      : source_(std::move(source_name)), text_(text) {
    base_dir_ = std::filesystem::path(source_).parent_path();
  }

  MockConfig parse(const YAML::Node& root);

 private:
  [[noreturn]] void fail(const YAML::Mark& mark, std::string_view message) const;
  [[noreturn]] void fail_in_scalar(const YAML::Mark& mark, std::string_view value, size_t offset,
                                   std::string_view message) const;
  void charge(size_t cost, const YAML::Mark& mark);
  MapFields read_map(const YAML::Node& node, const YAML::Mark& mark, std::string_view what,
                     Keys allowed);

  std::string scalar(const Field& field, std::string_view expected);
  int parse_status(const Field& field);
  double parse_duration_us(const Field& field);
  double parse_rate(const Field& field);
  Headers parse_headers(const Field& field, std::vector<YAML::Mark>* value_marks);
  Template compile_template(std::string_view text, const YAML::Mark& mark,
                            std::span<const PathSegment> pattern);
  std::optional<ResponseTemplate> compile_response(int status, Headers& headers,
                                                   const std::vector<YAML::Mark>& header_marks,
                                                   std::string& body, const Field* body_field,
                                                   std::span<const PathSegment> pattern);
  LatencyModel parse_latency(const Field& field);
  ErrorRule parse_error_rule(const YAML::Node& node, std::span<const PathSegment> pattern);
  std::vector<ErrorRule> parse_errors(const Field& field, std::span<const PathSegment> pattern);
  std::string read_body_file(const Field& field);
  Route parse_route(const YAML::Node& node);
  bool parse_bool(const Field& field);
  SocketPush parse_push(const Field& field);
  std::vector<SocketReply> parse_on_message(const Field& field);
  void parse_socket_common(const MapFields& map, SocketRoute* route);
  SocketRoute parse_websocket(const YAML::Node& node);
  SocketRoute parse_tcp(const YAML::Node& node);
  void check_reachable(const std::vector<Route>& routes, const std::vector<YAML::Mark>& marks);

  std::string source_;
  std::string_view text_;  // the whole file, to place errors inside a scalar
  std::filesystem::path base_dir_;
  size_t spent_ = 0;
  std::vector<std::string> counter_names_;
};

void Parser::fail(const YAML::Mark& mark, std::string_view message) const {
  if (mark.is_null()) {
    throw ConfigError(fmt::format("{}: {}", source_, message));
  }
  throw ConfigError(fmt::format("{}:{}:{}: {}", source_, mark.line + 1, mark.column + 1, message));
}

void Parser::charge(size_t cost, const YAML::Mark& mark) {
  spent_ += cost;
  if (spent_ > kExpansionBudget) {
    fail(mark,
         "the config expands to more than 256 MiB (through YAML aliases or body files); "
         "expected a smaller config");
  }
}

// yaml-cpp marks only where a scalar starts. To point at the expression
// inside it, find the same text in the file after that mark: the k-th
// occurrence in the value is taken to be the k-th in the source. Quoting and
// escapes can make the source differ from the value; then the scalar's own
// mark is the best there is.
void Parser::fail_in_scalar(const YAML::Mark& mark, std::string_view value, size_t offset,
                            std::string_view message) const {
  if (mark.is_null() || mark.pos < 0 || static_cast<size_t>(mark.pos) >= text_.size() ||
      offset >= value.size()) {
    fail(mark, message);
  }
  std::string_view needle = value.substr(offset, 24);
  needle = needle.substr(0, needle.find_first_of("\"'\\\n\r\t"));
  if (needle.empty()) {
    fail(mark, message);
  }
  size_t occurrence = 0;
  for (size_t at = value.find(needle); at < offset; at = value.find(needle, at + 1)) {
    ++occurrence;
  }
  const size_t begin = static_cast<size_t>(mark.pos);
  // Escapes make the source at most a few times longer than the value.
  const std::string_view window = text_.substr(begin, 4 * value.size() + 64);
  size_t found = window.find(needle);
  for (size_t i = 0; i < occurrence && found != std::string_view::npos; ++i) {
    found = window.find(needle, found + 1);
  }
  if (found == std::string_view::npos) {
    fail(mark, message);
  }
  YAML::Mark at = mark;
  const std::string_view before = window.substr(0, found);
  const size_t newline = before.rfind('\n');
  if (newline == std::string_view::npos) {
    at.column += static_cast<int>(found);
  } else {
    at.line += static_cast<int>(std::count(before.begin(), before.end(), '\n'));
    at.column = static_cast<int>(found - newline - 1);
  }
  at.pos += static_cast<int>(found);
  fail(at, message);
}

Template Parser::compile_template(std::string_view text, const YAML::Mark& mark,
                                  std::span<const PathSegment> pattern) {
  std::string error;
  size_t offset = 0;
  const Template::Scope scope{pattern, &counter_names_};
  std::optional<Template> compiled = Template::compile(text, scope, &error, &offset);
  if (!compiled) {
    fail_in_scalar(mark, text, offset, error);
  }
  return std::move(*compiled);
}

// Compiles the templates of one response. When nothing needs evaluating, the
// headers and body get their literal text ("\{{" unescaped) and the response
// stays prebuilt; otherwise they keep their source and the result is set.
std::optional<ResponseTemplate> Parser::compile_response(
    int status, Headers& headers, const std::vector<YAML::Mark>& header_marks, std::string& body,
    const Field* body_field, std::span<const PathSegment> pattern) {
  ResponseTemplate response;
  response.status = status;
  bool literal = true;
  for (size_t i = 0; i < headers.size(); ++i) {
    Template value = compile_template(headers[i].second, header_marks[i], pattern);
    literal = literal && value.is_literal();
    response.headers.emplace_back(headers[i].first, std::move(value));
  }
  if (body_field != nullptr) {
    response.body = compile_template(body, body_field->mark, pattern);
    literal = literal && response.body.is_literal();
  } else {
    response.body = Template::literal(body);
  }
  if (literal) {
    for (size_t i = 0; i < headers.size(); ++i) {
      headers[i].second = response.headers[i].second.literal_text();
    }
    if (body_field != nullptr) {
      body = response.body.literal_text();
    }
    return std::nullopt;
  }
  response.uses_json = response.body.uses_json();
  for (const auto& [name, value] : response.headers) {
    response.uses_json = response.uses_json || value.uses_json();
  }
  return response;
}

MapFields Parser::read_map(const YAML::Node& node, const YAML::Mark& mark, std::string_view what,
                           Keys allowed) {
  if (!node.IsMap()) {
    fail(mark, fmt::format("{} is {}; expected a map", what, kind_of(node)));
  }
  MapFields map;
  map.mark = mark;
  std::unordered_set<std::string> seen;  // headers maps can be long
  for (const auto& entry : node) {
    YAML::Mark key_mark = entry.first.Mark();
    if (key_mark.is_null()) {
      key_mark = mark;
    }
    if (!entry.first.IsScalar()) {
      fail(key_mark,
           fmt::format("{} has {} as a key; expected a key name", what, kind_of(entry.first)));
    }
    std::string key = entry.first.Scalar();
    charge(kEntryCost + key.size(), key_mark);
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string_view suggestion;
      size_t best = 3;
      const std::string lowered = ascii_lower(key);
      for (std::string_view candidate : allowed) {
        // Case-insensitive: "Status" suggests "status".
        const size_t distance = text::edit_distance(lowered, ascii_lower(candidate));
        if (distance < best && distance < candidate.size()) {
          best = distance;
          suggestion = candidate;
        }
      }
      const std::string hint =
          suggestion.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", suggestion);
      fail(key_mark, fmt::format("unknown key {} in {}{}; expected one of: {}", shown(key), what,
                                 hint, join(allowed)));
    }
    if (!seen.insert(key).second) {
      fail(key_mark,
           fmt::format("duplicate key {} in {}; expected each key once", shown(key), what));
    }
    YAML::Mark value_mark = entry.second.Mark();
    if (entry.second.IsNull() || value_mark.is_null()) {
      value_mark = key_mark;
    }
    map.fields.push_back(Field{std::move(key), key_mark, entry.second, value_mark});
  }
  return map;
}

std::string Parser::scalar(const Field& field, std::string_view expected) {
  if (!field.value.IsScalar()) {
    fail(field.mark,
         fmt::format("{} is {}; expected {}", field.key, kind_of(field.value), expected));
  }
  charge(field.value.Scalar().size(), field.mark);
  return field.value.Scalar();
}

int Parser::parse_status(const Field& field) {
  const std::string text = scalar(field, "an HTTP status code from 200 to 599");
  int status = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), status);
  if (ec != std::errc() || end != text.data() + text.size() || status < 200 || status > 599) {
    fail(field.mark,
         fmt::format("status {} is not a final HTTP status; expected 200 to 599", shown(text)));
  }
  return status;
}

double Parser::parse_duration_us(const Field& field) {
  const std::string raw = scalar(field, "a duration such as 20ms");
  const std::string_view text = trim(raw);
  // No exponents: "1e3ms" would only confuse, so the unit starts at the first letter.
  const size_t unit_at = std::min(text.size(), text.find_first_not_of("0123456789.-+ \t"));
  const std::optional<double> number = parse_double(trim(text.substr(0, unit_at)));
  std::string_view unit = trim(text.substr(unit_at));
  if (!number) {
    fail(field.mark,
         fmt::format("{} {} is not a duration; {}", field.key, shown(raw), kDurationHint));
  }
  if (unit.empty()) {
    fail(field.mark, fmt::format("{} {} has no unit; {}", field.key, shown(raw), kDurationHint));
  }
  if (unit == "\xc2\xb5s") {
    unit = "us";  // µs
  }
  const auto found = std::find(std::begin(kUnits), std::end(kUnits), unit);
  if (found == std::end(kUnits)) {
    fail(field.mark, fmt::format("{} {} has unknown unit {}; expected one of us, ms, s, m, h",
                                 field.key, shown(raw), shown(unit)));
  }
  if (*number < 0) {
    fail(field.mark,
         fmt::format("{} {} is negative; expected a duration of 0 or more", field.key, shown(raw)));
  }
  const double us = *number * kUsPerUnit[found - std::begin(kUnits)];
  if (us > kMaxDurationUs) {
    fail(field.mark,
         fmt::format("{} {} is longer than 24h; expected at most 24h", field.key, shown(raw)));
  }
  return us;
}

double Parser::parse_rate(const Field& field) {
  const std::string raw = scalar(field, "a rate between 0 and 1, such as 0.01 or 1%");
  std::string_view text = trim(raw);
  double scale = 1;
  if (!text.empty() && text.back() == '%') {
    text = trim(text.substr(0, text.size() - 1));
    scale = 0.01;
  }
  const std::optional<double> number = parse_double(text);
  if (!number || *number * scale < 0 || *number * scale > 1) {
    fail(field.mark, fmt::format("rate {} is not a probability; expected a number between 0 and "
                                 "1, such as 0.01 or 1%",
                                 shown(raw)));
  }
  return *number * scale;
}

Headers Parser::parse_headers(const Field& field, std::vector<YAML::Mark>* value_marks) {
  // Any header name is a valid key, so the map is read without a key list.
  const MapFields map = read_map(field.value, field.mark, "headers", {});
  Headers headers;
  for (const Field& header : map.fields) {
    const std::string& name = header.key;
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) {
      fail(header.key_mark, fmt::format("header name {} is not an HTTP token; expected letters, "
                                        "digits and !#$%&'*+-.^_`|~",
                                        shown(name)));
    }
    for (std::string_view computed : {"Content-Length", "Transfer-Encoding", "Connection"}) {
      if (iequals(name, computed)) {
        fail(header.key_mark, fmt::format("header {} is set by the mock server; expected other "
                                          "headers (it follows body and keep-alive)",
                                          name));
      }
    }
    std::string value = scalar(header, "a header value");
    const bool clean = std::all_of(value.begin(), value.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
    if (!clean) {
      fail(header.mark, fmt::format("header {} value {} contains control characters; expected "
                                    "one line of text",
                                    name, shown(value)));
    }
    headers.emplace_back(name, std::move(value));
    value_marks->push_back(header.mark);
  }
  return headers;
}

LatencyModel Parser::parse_latency(const Field& field) {
  if (field.value.IsScalar()) {
    return LatencyModel::fixed(parse_duration_us(field));
  }
  if (!field.value.IsMap()) {
    fail(field.mark, fmt::format("latency is {}; expected a duration such as 20ms or a map such "
                                 "as {{distribution: uniform, min: 5ms, max: 15ms}}",
                                 kind_of(field.value)));
  }
  const MapFields map = read_map(field.value, field.mark, "latency", kLatencyKeys);
  const Field* distribution = map.find("distribution");
  if (distribution == nullptr) {
    fail(map.mark,
         "latency has no distribution; expected distribution: fixed, uniform, normal, "
         "lognormal or exponential");
  }
  const std::string name = scalar(*distribution, "a distribution name");

  // The parameters each distribution takes, and how to build it from them.
  struct Shape {
    std::string_view name;
    std::vector<std::string_view> keys;  // after "distribution"
    std::string_view usage;
  };
  static const Shape kShapes[] = {
      {"fixed", {"value"}, "value"},
      {"uniform", {"min", "max"}, "min and max"},
      {"normal", {"mean", "stddev"}, "mean and stddev"},
      {"lognormal", {"median", "p99", "sigma"}, "median and either p99 or sigma"},
      {"exponential", {"mean"}, "mean"},
  };
  const Shape* shape = nullptr;
  for (const Shape& candidate : kShapes) {
    if (candidate.name == name) {
      shape = &candidate;
    }
  }
  if (shape == nullptr) {
    fail(distribution->mark, fmt::format("unknown distribution {}; expected fixed, uniform, "
                                         "normal, lognormal or exponential",
                                         shown(name)));
  }
  for (const Field& param : map.fields) {
    if (param.key != "distribution" &&
        std::find(shape->keys.begin(), shape->keys.end(), param.key) == shape->keys.end()) {
      fail(param.key_mark, fmt::format("{} does not apply to a {} latency; expected {}", param.key,
                                       name, shape->usage));
    }
  }
  auto duration = [&](std::string_view key) {
    const Field* param = map.find(key);
    if (param == nullptr) {
      fail(map.mark, fmt::format("{} latency needs {}; expected {}", name, key, shape->usage));
    }
    return parse_duration_us(*param);
  };

  if (name == "fixed") {
    return LatencyModel::fixed(duration("value"));
  }
  if (name == "uniform") {
    const double min = duration("min");
    const double max = duration("max");
    if (max < min) {
      fail(map.find("max")->mark, "uniform latency max is below min; expected min <= max");
    }
    return LatencyModel::uniform(min, max);
  }
  if (name == "normal") {
    const double mean = duration("mean");
    return LatencyModel::normal(mean, duration("stddev"));
  }
  if (name == "exponential") {
    const double mean = duration("mean");
    if (mean <= 0) {
      fail(map.find("mean")->mark, "exponential latency mean is 0; expected a mean above 0");
    }
    return LatencyModel::exponential(mean);
  }
  // lognormal
  const double median = duration("median");
  if (median <= 0) {
    fail(map.find("median")->mark, "lognormal latency median is 0; expected a median above 0");
  }
  const Field* p99 = map.find("p99");
  const Field* sigma = map.find("sigma");
  if ((p99 == nullptr) == (sigma == nullptr)) {
    fail(p99 != nullptr ? sigma->key_mark : map.mark,
         "lognormal latency needs exactly one of p99 or sigma; expected median and either p99 "
         "or sigma");
  }
  if (p99 != nullptr) {
    const double p99_us = parse_duration_us(*p99);
    if (p99_us < median) {
      fail(p99->mark, "lognormal latency p99 is below the median; expected p99 >= median");
    }
    return LatencyModel::lognormal_from_p99(median, p99_us);
  }
  const std::string raw = scalar(*sigma, "a number such as 0.5");
  const std::optional<double> value = parse_double(trim(raw));
  if (!value || *value < 0 || *value > 10) {
    fail(sigma->mark, fmt::format("sigma {} is out of range; expected a plain number from 0 to "
                                  "10 (the spread of ln(latency), e.g. 0.5)",
                                  shown(raw)));
  }
  return LatencyModel::lognormal(median, *value);
}

ErrorRule Parser::parse_error_rule(const YAML::Node& node, std::span<const PathSegment> pattern) {
  const MapFields map = read_map(node, node.Mark(), "error rule", kErrorKeys);
  ErrorRule rule;
  const Field* rate = map.find("rate");
  if (rate == nullptr) {
    fail(map.mark, "error rule has no rate; expected a rate such as {rate: 0.01, status: 503}");
  }
  rule.rate = parse_rate(*rate);

  const Field* kind = nullptr;
  for (const Field& field : map.fields) {
    if (field.key != "status" && field.key != "reset" && field.key != "stall") {
      continue;
    }
    if (kind != nullptr) {
      fail(field.key_mark, fmt::format("error rule has both {} and {}; expected exactly one of "
                                       "status, reset or stall",
                                       kind->key, field.key));
    }
    kind = &field;
  }
  if (kind == nullptr) {
    fail(map.mark,
         "error rule says what to do in none of status, reset or stall; expected "
         "e.g. {rate: 0.01, status: 503}");
  }
  if (kind->key != "status") {
    for (std::string_view key : {"body", "headers"}) {
      if (const Field* extra = map.find(key)) {
        fail(extra->key_mark, fmt::format("{} applies only to status errors; expected no {} "
                                          "with {}",
                                          key, key, kind->key));
      }
    }
  }

  if (kind->key == "status") {
    rule.kind = ErrorRule::kStatus;
    rule.status = parse_status(*kind);
    const Field* body = map.find("body");
    if (body != nullptr) {
      rule.body = scalar(*body, "a string");
      if ((rule.status == 204 || rule.status == 304) && !rule.body.empty()) {
        fail(body->mark,
             fmt::format("status {} has no body in HTTP; expected no body", rule.status));
      }
    }
    std::vector<YAML::Mark> header_marks;
    if (const Field* headers = map.find("headers")) {
      rule.headers = parse_headers(*headers, &header_marks);
    }
    rule.templated =
        compile_response(rule.status, rule.headers, header_marks, rule.body, body, pattern);
  } else if (kind->key == "reset") {
    rule.kind = ErrorRule::kReset;
    if (!kind->value.IsScalar() || kind->value.Scalar() != "true") {
      fail(kind->mark, "reset must be true; expected {rate: 0.001, reset: true}");
    }
  } else {
    rule.kind = ErrorRule::kStall;
    if (kind->value.IsScalar() && kind->value.Scalar() == "forever") {
      rule.stall_us = kStallForever;
    } else {
      rule.stall_us = std::llround(parse_duration_us(*kind));
    }
  }
  return rule;
}

std::vector<ErrorRule> Parser::parse_errors(const Field& field,
                                            std::span<const PathSegment> pattern) {
  if (!field.value.IsSequence()) {
    fail(field.mark, fmt::format("errors is {}; expected a list such as "
                                 "[{{rate: 0.01, status: 503}}]",
                                 kind_of(field.value)));
  }
  std::vector<ErrorRule> errors;
  double total = 0;
  for (const YAML::Node& item : field.value) {
    errors.push_back(parse_error_rule(item, pattern));
    total += errors.back().rate;
  }
  // A little slack so that 0.1 + 0.2 + 0.7 is not rejected for rounding.
  if (total > 1 + 1e-9) {
    fail(field.key_mark, fmt::format("error rates add up to {:g}; expected at most 1", total));
  }
  return errors;
}

std::string Parser::read_body_file(const Field& field) {
  const std::string name = scalar(field, "a file path");
  std::filesystem::path path(name);
  if (path.is_relative()) {
    path = base_dir_ / path;
  }
  // Only regular files: a FIFO or /dev/zero would block or never end.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    fail(field.mark, fmt::format("body_file {} is not a readable regular file; expected a path "
                                 "relative to the config file",
                                 shown(path.string())));
  }
  std::string body;
  if (const int error = read_whole_file(path.string(), kExpansionBudget - spent_ + 1, body)) {
    fail(field.mark,
         fmt::format("body_file {}: cannot read: {}", shown(path.string()), std::strerror(error)));
  }
  charge(body.size(), field.mark);
  return body;
}

Route Parser::parse_route(const YAML::Node& node) {
  const MapFields map = read_map(node, node.Mark(), "route", kRouteKeys);
  Route route;

  const Field* path = map.find("path");
  if (path == nullptr) {
    fail(map.mark, "route has no path; expected e.g. path: /hello");
  }
  route.path = scalar(*path, "a path such as /hello or /api/*");
  {
    std::string_view p = route.path;
    if (p.empty() || p.front() != '/') {
      fail(path->mark, fmt::format("path {} does not start with /; expected e.g. /hello or "
                                   "/api/*",
                                   shown(p)));
    }
    const size_t bad = p.find_first_of(" \t?#*\r\n");
    if (bad != std::string_view::npos && !(p[bad] == '*' && bad == p.size() - 1)) {
      fail(path->mark, fmt::format("path {} contains {}; expected a plain path, with * only at "
                                   "the end for a prefix match (queries are ignored)",
                                   shown(p), shown(p.substr(bad, 1))));
    }
    if (std::any_of(p.begin(), p.end(), [](char c) {
          const auto u = static_cast<unsigned char>(c);
          return u < 0x20 || u == 0x7f;
        })) {
      fail(path->mark,
           fmt::format("path {} contains control characters; expected a plain path", shown(p)));
    }
    if (p.find("/:") != std::string_view::npos) {
      if (p.back() == '*') {
        fail(path->mark, fmt::format("path {} has both parameters and a trailing *; expected "
                                     "one or the other",
                                     shown(p)));
      }
      std::string error;
      route.pattern = parse_path_pattern(p, &error);
      if (!error.empty()) {
        fail(path->mark, fmt::format("path {}: {}", shown(p), error));
      }
    }
    if (p.back() == '*') {
      route.prefix = true;
      route.path.pop_back();
    }
  }

  if (const Field* method = map.find("method")) {
    route.method = scalar(*method, "an HTTP method such as GET, or *");
    const bool token =
        !route.method.empty() && std::all_of(route.method.begin(), route.method.end(), is_tchar);
    if (route.method != "*" && !token) {
      fail(method->mark, fmt::format("method {} is not an HTTP method; expected e.g. GET, POST "
                                     "or * for any",
                                     shown(route.method)));
    }
    if (std::any_of(route.method.begin(), route.method.end(),
                    [](char c) { return std::islower(static_cast<unsigned char>(c)); })) {
      std::string upper = route.method;
      for (char& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      fail(method->mark, fmt::format("method {} has lowercase letters, and HTTP methods are "
                                     "case-sensitive; expected {}",
                                     shown(route.method), upper));
    }
  } else {
    route.method = "GET";
  }

  if (const Field* name = map.find("name")) {
    route.name = scalar(*name, "a route name");
    if (route.name.empty()) {
      fail(name->mark, "route name is empty; expected a short label");
    }
  } else {
    route.name = route.method + " " + route.path + (route.prefix ? "*" : "");
  }

  if (const Field* status = map.find("status")) {
    route.status = parse_status(*status);
  }
  std::vector<YAML::Mark> header_marks;
  if (const Field* headers = map.find("headers")) {
    route.headers = parse_headers(*headers, &header_marks);
  }

  const Field* body = map.find("body");
  const Field* body_file = map.find("body_file");
  if (body != nullptr && body_file != nullptr) {
    fail(body_file->key_mark, "route has both body and body_file; expected one of them");
  }
  if (body != nullptr) {
    route.body = scalar(*body, "a string");
  }
  if (body_file != nullptr) {
    route.body = read_body_file(*body_file);
  }
  if ((route.status == 204 || route.status == 304) && !route.body.empty()) {
    fail((body != nullptr ? body : body_file)->mark,
         fmt::format("status {} has no body in HTTP; expected no body", route.status));
  }
  // body_file is served as it is: a file is often JSON or HTML of its own,
  // where "{{" may well be literal.
  route.templated =
      compile_response(route.status, route.headers, header_marks, route.body, body, route.pattern);

  if (const Field* latency = map.find("latency")) {
    route.latency = parse_latency(*latency);
  }
  if (const Field* errors = map.find("errors")) {
    route.errors = parse_errors(*errors, route.pattern);
  }
  return route;
}

// Route order is match order, so a route that an earlier one covers entirely
// would be dead configuration; that is almost always a mistake in the order.
void Parser::check_reachable(const std::vector<Route>& routes,
                             const std::vector<YAML::Mark>& marks) {
  std::unordered_map<std::string, std::vector<size_t>> exact_by_path;
  std::vector<size_t> prefixes;
  std::vector<size_t> patterns;  // routes with path parameters
  std::unordered_map<std::string, size_t> names;
  auto covers = [&](size_t earlier, size_t later) {
    const Route& a = routes[earlier];
    const Route& b = routes[later];
    return a.method == "*" || a.method == b.method;
  };
  for (size_t i = 0; i < routes.size(); ++i) {
    const Route& route = routes[i];
    const bool has_pattern = !route.pattern.empty();
    std::optional<size_t> shadow;
    auto shadowed_by = [&](size_t j) {
      if (!shadow || j < *shadow) {
        shadow = j;
      }
    };
    if (!route.prefix && !has_pattern) {
      if (auto it = exact_by_path.find(route.path); it != exact_by_path.end()) {
        for (size_t j : it->second) {
          if (covers(j, i)) {
            shadowed_by(j);
            break;
          }
        }
      }
    }
    // Every path a pattern matches starts with its literal head.
    const std::string head = has_pattern ? pattern_literal_head(route.pattern) : route.path;
    for (size_t j : prefixes) {
      if (covers(j, i) && head.starts_with(routes[j].path)) {
        shadowed_by(j);
        break;
      }
    }
    if (!route.prefix) {
      for (size_t j : patterns) {
        const bool takes_all = has_pattern
                                   ? pattern_covers(routes[j].pattern, route.pattern)
                                   : match_path_pattern(routes[j].pattern, route.path, nullptr);
        if (covers(j, i) && takes_all) {
          shadowed_by(j);
          break;
        }
      }
    }
    if (shadow) {
      fail(marks[i],
           fmt::format("route {} can never match: route {} at line {} takes all its "
                       "requests; expected every route to be reachable (put more "
                       "specific routes first)",
                       shown(route.name), shown(routes[*shadow].name), marks[*shadow].line + 1));
    }
    if (auto [it, inserted] = names.emplace(route.name, i); !inserted) {
      fail(marks[i], fmt::format("route name {} is already used at line {}; expected unique "
                                 "names (they label per-route counts)",
                                 shown(route.name), marks[it->second].line + 1));
    }
    if (route.prefix) {
      prefixes.push_back(i);
    } else if (has_pattern) {
      patterns.push_back(i);
    } else {
      exact_by_path[route.path].push_back(i);
    }
  }
}

bool Parser::parse_bool(const Field& field) {
  const std::string text = scalar(field, "true or false");
  if (text == "true") return true;
  if (text == "false") return false;
  fail(field.mark,
       fmt::format("{} {} is not a boolean; expected true or false", field.key, shown(text)));
}

SocketPush Parser::parse_push(const Field& field) {
  const MapFields map = read_map(field.value, field.mark, field.key, kPushKeys);
  SocketPush push;
  const Field* every = map.find("every");
  const Field* message = map.find("message");
  if (every == nullptr || message == nullptr) {
    fail(map.mark, fmt::format("{} needs every and message; expected e.g. {{every: 1s, message: "
                               "'{{\\\"seq\\\":{{{{ counter }}}}}}'}}",
                               field.key));
  }
  const double us = parse_duration_us(*every);
  if (us < 1000) {
    fail(every->mark, fmt::format("every {} is shorter than 1ms; expected 1ms or more",
                                  shown(every->value.Scalar())));
  }
  push.every_us = static_cast<int64_t>(us);
  const std::string text = scalar(*message, "the message text");
  push.message = compile_template(text, message->mark, {});
  return push;
}

std::vector<SocketReply> Parser::parse_on_message(const Field& field) {
  if (!field.value.IsSequence()) {
    fail(field.mark, fmt::format("on_message is {}; expected a list of {{match: ..., reply: ...}}",
                                 kind_of(field.value)));
  }
  std::vector<SocketReply> replies;
  for (const YAML::Node& item : field.value) {
    const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
    const MapFields map = read_map(item, mark, "on_message rule", kReplyKeys);
    SocketReply rule;
    const Field* match = map.find("match");
    if (match == nullptr) {
      fail(map.mark, "on_message rule has no match; expected e.g. match: {contains: subscribe}");
    }
    const MapFields m = read_map(match->value, match->mark, "match", kMatchKeys);
    if (m.fields.size() != 1) {
      fail(m.mark, "match has " + std::to_string(m.fields.size()) +
                       " conditions; expected exactly one of contains, equals or regex");
    }
    const Field& condition = m.fields[0];
    rule.pattern = scalar(condition, "the text to match");
    if (condition.key == "contains") {
      rule.match = SocketReply::kContains;
    } else if (condition.key == "equals") {
      rule.match = SocketReply::kEquals;
    } else {
      rule.match = SocketReply::kRegex;
      re2::RE2::Options options;
      options.set_log_errors(false);
      auto regex = std::make_shared<const re2::RE2>(rule.pattern, options);
      if (!regex->ok()) {
        fail(condition.mark, fmt::format("regex {} does not compile ({}); expected an RE2 "
                                         "regular expression",
                                         shown(rule.pattern), regex->error()));
      }
      rule.regex = std::move(regex);
    }
    if (const Field* reply = map.find("reply")) {
      rule.reply = compile_template(scalar(*reply, "the reply text"), reply->mark, {});
    }
    if (const Field* then_push = map.find("then_push")) {
      rule.then_push = parse_push(*then_push);
    }
    if (!rule.reply && !rule.then_push) {
      fail(map.mark, "on_message rule does nothing; expected reply, then_push or both");
    }
    replies.push_back(std::move(rule));
  }
  if (replies.size() > 32) {
    fail(field.mark, "on_message has more than 32 rules; expected at most 32");
  }
  return replies;
}

void Parser::parse_socket_common(const MapFields& map, SocketRoute* route) {
  if (const Field* name = map.find("name")) route->name = scalar(*name, "a name");
  if (const Field* echo = map.find("echo")) route->echo = parse_bool(*echo);
  if (const Field* push = map.find("push")) route->push = parse_push(*push);
  if (const Field* on_message = map.find("on_message")) {
    route->on_message = parse_on_message(*on_message);
  }
  if (const Field* close_after = map.find("close_after")) {
    route->close_after_us = static_cast<int64_t>(parse_duration_us(*close_after));
    if (route->close_after_us <= 0) {
      fail(close_after->mark, "close_after is 0; expected a duration above 0 (or no close_after)");
    }
  }
  if (const Field* max = map.find("max_message_bytes")) {
    const std::string text = scalar(*max, "a number of bytes");
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > (64u << 20)) {
      fail(max->mark, fmt::format("max_message_bytes {} is out of range; expected 1 to 67108864",
                                  shown(text)));
    }
    route->max_message_bytes = static_cast<size_t>(value);
  }
  if (!route->echo && !route->push && route->on_message.empty() && route->close_after_us == 0 &&
      route->ping_every_us == 0) {
    fail(map.mark,
         "socket route does nothing; expected at least one of echo, push, on_message, "
         "ping_every or close_after");
  }
}

SocketRoute Parser::parse_websocket(const YAML::Node& node) {
  const MapFields map = read_map(node, node.Mark(), "websocket route", kWebSocketKeys);
  SocketRoute route;
  const Field* path = map.find("path");
  if (path == nullptr) fail(map.mark, "websocket route has no path; expected e.g. path: /ws/echo");
  route.path = scalar(*path, "a path such as /ws/echo");
  if (route.path.empty() || route.path.front() != '/' ||
      route.path.find_first_of(" \t?#*\r\n") != std::string::npos) {
    fail(path->mark, fmt::format("path {} is not a plain path; expected an exact path such as "
                                 "/ws/echo (no *, no parameters)",
                                 shown(route.path)));
  }
  if (const Field* subs = map.find("subprotocols")) {
    if (!subs->value.IsSequence()) {
      fail(subs->mark, fmt::format("subprotocols is {}; expected a list such as [chat.v1]",
                                   kind_of(subs->value)));
    }
    for (const YAML::Node& item : subs->value) {
      const std::string name = item.IsScalar() ? item.Scalar() : std::string();
      if (name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) {
        fail(item.Mark().is_null() ? subs->mark : item.Mark(),
             fmt::format("subprotocol {} is not a token; expected letters, digits and "
                         "!#$%&'*+-.^_`|~",
                         shown(name)));
      }
      route.subprotocols.push_back(name);
    }
  }
  if (const Field* ping = map.find("ping_every")) {
    route.ping_every_us = static_cast<int64_t>(parse_duration_us(*ping));
    if (route.ping_every_us < 1000) {
      fail(ping->mark, "ping_every is shorter than 1ms; expected 1ms or more");
    }
  }
  if (const Field* code = map.find("close_code")) {
    const std::string text = scalar(*code, "a WebSocket close code");
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535 ||
        !ws::close_code_allowed(static_cast<uint16_t>(value))) {
      fail(code->mark, fmt::format("close_code {} cannot be sent; expected 1000-1003, 1007-1014 "
                                   "or 3000-4999",
                                   shown(text)));
    }
    route.close_code = static_cast<uint16_t>(value);
  }
  parse_socket_common(map, &route);
  if (route.name.empty()) route.name = "ws " + route.path;
  return route;
}

SocketRoute Parser::parse_tcp(const YAML::Node& node) {
  const MapFields map = read_map(node, node.Mark(), "tcp listener", kTcpKeys);
  SocketRoute route;
  const Field* listen = map.find("listen");
  if (listen == nullptr) fail(map.mark, "tcp listener has no listen; expected e.g. 127.0.0.1:9100");
  route.listen_text = scalar(*listen, "an address such as 127.0.0.1:9100");
  std::string error;
  std::optional<net::Endpoint> endpoint = net::parse_listen_address(route.listen_text, &error);
  if (!endpoint) {
    fail(listen->mark, fmt::format("listen {} is not an address ({}); expected e.g. "
                                   "127.0.0.1:9100",
                                   shown(route.listen_text), error));
  }
  route.listen = *endpoint;
  if (const Field* framing = map.find("framing")) {
    const std::string text = scalar(*framing, "line, length32 or raw");
    const auto found = std::find(std::begin(kFramings), std::end(kFramings), text);
    if (found == std::end(kFramings)) {
      std::string_view suggestion;
      for (std::string_view candidate : kFramings)
        if (text::edit_distance(ascii_lower(text), candidate) < 3) suggestion = candidate;
      fail(framing->mark,
           fmt::format(
               "framing {} is unknown{}; expected line, length32 or raw", shown(text),
               suggestion.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", suggestion)));
    }
    route.framing = static_cast<SocketRoute::Framing>(found - std::begin(kFramings));
  }
  parse_socket_common(map, &route);
  if (route.name.empty()) route.name = "tcp " + route.listen_text;
  return route;
}

MockConfig Parser::parse(const YAML::Node& root) {
  const YAML::Mark start = root.Mark().is_null() ? YAML::Mark() : root.Mark();
  if (root.IsNull()) {
    fail(start, "the config is empty; expected a map with a routes list");
  }
  const MapFields map = read_map(root, start, "the config", kTopKeys);
  MockConfig config;

  if (const Field* seed = map.find("seed")) {
    const std::string text = scalar(*seed, "a whole number");
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), config.seed);
    if (ec != std::errc() || end != text.data() + text.size()) {
      fail(seed->mark,
           fmt::format("seed {} is not a whole number; expected 0 to {}", shown(text), UINT64_MAX));
    }
    config.seed_given = true;
  }

  std::vector<std::string> socket_names;
  auto check_name = [&](const SocketRoute& route, const YAML::Mark& mark) {
    if (std::find(socket_names.begin(), socket_names.end(), route.name) != socket_names.end()) {
      fail(mark, fmt::format("socket route name {} is used twice; expected unique names",
                             shown(route.name)));
    }
    socket_names.push_back(route.name);
  };
  for (const char* key : {"websockets", "tcp"}) {
    const Field* list = map.find(key);
    if (list == nullptr) continue;
    if (!list->value.IsSequence() || list->value.size() == 0) {
      fail(list->mark,
           fmt::format("{} is {}; expected a non-empty list", key,
                       list->value.IsSequence() ? "an empty list" : kind_of(list->value)));
    }
    for (const YAML::Node& item : list->value) {
      const YAML::Mark mark = item.Mark().is_null() ? list->mark : item.Mark();
      if (config.websockets.size() + config.tcp.size() >= 1000) {
        fail(mark, "more than 1000 socket routes; expected at most 1000");
      }
      if (std::string_view(key) == "websockets") {
        SocketRoute route = parse_websocket(item);
        for (const SocketRoute& other : config.websockets) {
          if (other.path == route.path) {
            fail(mark, fmt::format("websocket path {} is declared twice; expected each path once",
                                   shown(route.path)));
          }
        }
        check_name(route, mark);
        config.websockets.push_back(std::move(route));
      } else {
        SocketRoute route = parse_tcp(item);
        check_name(route, mark);
        config.tcp.push_back(std::move(route));
      }
    }
  }

  const Field* routes = map.find("routes");
  if (routes == nullptr) {
    if (!config.websockets.empty() || !config.tcp.empty()) {
      config.counter_names = std::move(counter_names_);
      return config;
    }
    fail(map.mark, "the config has no routes; expected a routes list (or websockets or tcp)");
  }
  if (!routes->value.IsSequence() || routes->value.size() == 0) {
    fail(routes->mark,
         fmt::format("routes is {}; expected a list of routes, each starting with "
                     "\"- path: ...\"",
                     routes->value.IsSequence() ? "an empty list" : kind_of(routes->value)));
  }
  std::vector<YAML::Mark> marks;
  for (const YAML::Node& item : routes->value) {
    const YAML::Mark mark = item.Mark().is_null() ? routes->mark : item.Mark();
    if (config.routes.size() == kMaxRoutes) {
      fail(mark, fmt::format("more than {} routes; expected at most {}", kMaxRoutes, kMaxRoutes));
    }
    config.routes.push_back(parse_route(item));
    marks.push_back(mark);
  }
  check_reachable(config.routes, marks);
  config.counter_names = std::move(counter_names_);
  return config;
}

void check_single_document(const std::string& text, const std::string& source) {
  if (auto problem = text::find_document_problem(text)) {
    throw ConfigError(fmt::format("{}:{}:{}: {}", source, problem->mark.line + 1,
                                  problem->mark.column + 1, problem->message));
  }
}

// Messages from yaml-cpp are constant one-liners, but the contract is one
// line, so make sure.
std::string one_line(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return text;
}

std::string yaml_error(const std::string& source, const YAML::Exception& e) {
  if (e.mark.is_null()) {
    return one_line(fmt::format("{}: invalid YAML: {}; expected well-formed YAML", source, e.msg));
  }
  return one_line(fmt::format("{}:{}:{}: invalid YAML: {}; expected well-formed YAML", source,
                              e.mark.line + 1, e.mark.column + 1, e.msg));
}

}  // namespace

MockConfig parse_mock_config(std::string_view yaml_text, const std::string& source_name) {
  if (yaml_text.size() > kMaxConfigBytes) {
    throw ConfigError(
        fmt::format("{}: the config is {} bytes; expected at most 1 MiB (put large "
                    "bodies in body_file)",
                    source_name, yaml_text.size()));
  }
  try {
    const std::string text(yaml_text);
    check_single_document(text, source_name);
    Parser parser(source_name, yaml_text);
    return parser.parse(YAML::Load(text));
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    throw ConfigError(
        fmt::format("{}:{}:{}: invalid YAML: nested {} levels deep; expected a "
                    "shallower document",
                    source_name, e.mark.line + 1, e.mark.column + 1, e.depth()));
  } catch (const YAML::Exception& e) {
    throw ConfigError(yaml_error(source_name, e));
  }
}

MockConfig load_mock_config_file(const std::string& path) {
  std::string text;
  // One byte over the limit is enough for parse_mock_config to report the size.
  if (const int error = read_whole_file(path, kMaxConfigBytes + 1, text)) {
    throw ConfigError(fmt::format("{}: cannot read: {}", path, std::strerror(error)));
  }
  return parse_mock_config(text, path);
}

}  // namespace millstone::mock
