#include "mock/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <system_error>
#include <unordered_map>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <yaml-cpp/yaml.h>

#include "amqp/url.h"
#include "config/quantity.h"
#include "config/yaml_fields.h"
#include "config/yaml_text.h"
#include "grpc/framing.h"
#include "grpc/proto_catalog.h"
#include "grpc/reflection.h"
#include "grpc/status.h"
#include "http/syntax.h"
#include "text/json_string.h"
#include "tls/options.h"
#include "tls/server_context.h"
#include "ws/frame.h"

namespace millstone::mock {
namespace {

using config::Field;
using config::kind_of;
using config::MapFields;
using config::shown;
using config::trim;

std::exception_ptr make_config_error(const std::string& message) {
  return std::make_exception_ptr(ConfigError(message));
}

constexpr config::FileKind kMockConfig{
    make_config_error,
    "the config expands to more than 256 MiB (through YAML aliases or body files); expected a "
    "smaller config",
    24 * 3600e6, "24h; expected at most 24h"};

constexpr size_t kMaxRoutes = 10000;

constexpr std::string_view kTopKeys[] = {"seed", "routes",          "websockets", "tcp",
                                         "grpc", "grpc_reflection", "amqp"};
constexpr std::string_view kGrpcKeys[] = {"name",   "proto",   "import_paths", "method", "response",
                                          "status", "message", "latency",      "errors", "replies"};
constexpr std::string_view kGrpcErrorKeys[] = {"rate", "status", "message", "reset", "stall"};
constexpr std::string_view kWebSocketKeys[] = {
    "name",       "path",       "subprotocols", "echo",       "push",
    "on_message", "ping_every", "close_after",  "close_code", "max_message_bytes",
    "amqp_push"};
constexpr std::string_view kTcpKeys[] = {"name", "listen",     "framing",     "echo",
                                         "push", "on_message", "close_after", "max_message_bytes",
                                         "tls"};
constexpr std::string_view kTcpTlsKeys[] = {"cert", "key"};
constexpr std::string_view kPushKeys[] = {"every", "message"};
constexpr std::string_view kReplyKeys[] = {"match", "reply", "then_push"};
constexpr std::string_view kMatchKeys[] = {"contains", "equals", "regex"};
constexpr std::string_view kFramings[] = {"line", "length32", "raw"};
constexpr std::string_view kRouteKeys[] = {"name", "method",    "path",    "status", "headers",
                                           "body", "body_file", "latency", "errors", "publish"};
constexpr std::string_view kAmqpKeys[] = {"url", "heartbeat", "exchanges", "queues"};
constexpr std::string_view kAmqpExchangeKeys[] = {"name", "type", "durable"};
constexpr std::string_view kAmqpQueueKeys[] = {"name",
                                               "durable",
                                               "auto_delete",
                                               "bind",
                                               "message_ttl",
                                               "dead_letter_exchange",
                                               "dead_letter_routing_key"};
constexpr std::string_view kAmqpBindKeys[] = {"exchange", "routing_key"};
constexpr std::string_view kPublishKeys[] = {
    "exchange",     "routing_key", "body",    "headers", "correlation_id", "message_id",
    "content_type", "persistent",  "latency", "fail",    "retry"};
constexpr std::string_view kRetryKeys[] = {"queue", "returns_to"};
constexpr std::string_view kAmqpPushKeys[] = {"exchange", "routing_key", "key", "match"};
constexpr std::string_view kPushKeyKeys[] = {"query", "header"};
constexpr std::string_view kPushMatchKeys[] = {"json", "header"};
constexpr std::string_view kExchangeTypes[] = {"direct", "fanout", "topic", "headers"};
constexpr size_t kMaxShortString = 255;  // AMQP short strings: names, routing keys
constexpr std::string_view kPushPatchKeys[] = {"every"};
constexpr std::string_view kErrorKeys[] = {"rate", "status", "body", "headers", "reset", "stall"};

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

using http::syntax::iequals;

class Parser {
 public:
  Parser(std::string source_name, std::string_view text)
      : reader_(source_name, text, kMockConfig), text_(text) {
    base_dir_ = std::filesystem::path(source_name).parent_path();
  }

  MockConfig parse(const YAML::Node& root);
  // Runtime patches (mock/control.h): the behaviour keys of one route, read
  // by the same code as the file's. *key names the key being read, so a
  // failure can name its field. Null values are skipped (the file's value).
  void patch_route(const YAML::Node& root, const MockConfig& config, Route* route,
                   std::string* key);
  void patch_socket_route(const YAML::Node& root, SocketRoute* route, std::string* key);

 private:
  [[noreturn]] void fail_in_scalar(const YAML::Mark& mark, std::string_view value, size_t offset,
                                   std::string_view message) const;
  int parse_status(const Field& field);
  double parse_rate(const Field& field);
  Headers parse_headers(const Field& field, std::vector<YAML::Mark>* value_marks);
  Template compile_template(std::string_view text, const YAML::Mark& mark,
                            std::span<const PathSegment> pattern);
  std::optional<ResponseTemplate> compile_response(int status, Headers& headers,
                                                   const std::vector<YAML::Mark>& header_marks,
                                                   std::string& body, const Field* body_field,
                                                   std::span<const PathSegment> pattern);
  ErrorRule parse_error_rule(const YAML::Node& node, std::span<const PathSegment> pattern);
  std::vector<ErrorRule> parse_errors(const Field& field, std::span<const PathSegment> pattern);
  std::string read_body_file(const Field& field);
  void parse_tcp_tls(const Field& field, SocketRoute* route);
  Route parse_route(const YAML::Node& node);
  Route parse_grpc(const YAML::Node& node);
  uint32_t parse_grpc_status(const Field& field);
  std::string json_of(const YAML::Node& node, const YAML::Mark& mark, int depth);
  const grpc::ProtoCatalog& catalog_for(const Field& proto, const Field* import_paths);
  SocketPush parse_push(const Field& field);
  std::vector<SocketReply> parse_on_message(const Field& field);
  void parse_socket_common(const MapFields& map, SocketRoute* route);
  SocketRoute parse_websocket(const YAML::Node& node);
  SocketRoute parse_tcp(const YAML::Node& node);
  std::string short_string(const Field& field, std::string_view expected);
  MockAmqp parse_amqp(const Field& field);
  RoutePublish parse_publish(const Field& field, std::span<const PathSegment> pattern);
  SocketAmqpPush parse_amqp_push(const Field& field);
  void check_amqp(const MockConfig& config, const std::vector<YAML::Mark>& route_marks,
                  const std::vector<YAML::Mark>& socket_marks);
  void check_reachable(const std::vector<Route>& routes, const std::vector<YAML::Mark>& marks);

  config::Reader reader_;
  std::string_view text_;  // the whole file, to place errors inside a scalar
  std::filesystem::path base_dir_;
  std::vector<std::string> counter_names_;
  // .proto files read so far, by path and import paths: several gRPC routes
  // of one service parse it once.
  std::vector<std::pair<std::string, std::unique_ptr<grpc::ProtoCatalog>>> catalogs_;
};

// yaml-cpp marks only where a scalar starts. To point at the expression
// inside it, find the same text in the file after that mark: the k-th
// occurrence in the value is taken to be the k-th in the source. Quoting and
// escapes can make the source differ from the value; then the scalar's own
// mark is the best there is.
void Parser::fail_in_scalar(const YAML::Mark& mark, std::string_view value, size_t offset,
                            std::string_view message) const {
  if (mark.is_null() || mark.pos < 0 || static_cast<size_t>(mark.pos) >= text_.size() ||
      offset >= value.size()) {
    reader_.fail(mark, message);
  }
  std::string_view needle = value.substr(offset, 24);
  needle = needle.substr(0, needle.find_first_of("\"'\\\n\r\t"));
  if (needle.empty()) {
    reader_.fail(mark, message);
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
    reader_.fail(mark, message);
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
  reader_.fail(at, message);
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
      headers[i].second = std::move(response.headers[i].second).take_literal_text();
    }
    if (body_field != nullptr) {
      body = std::move(response.body).take_literal_text();
    }
    return std::nullopt;
  }
  response.uses_json = response.body.uses_json();
  for (const auto& [name, value] : response.headers) {
    response.uses_json = response.uses_json || value.uses_json();
  }
  return response;
}

int Parser::parse_status(const Field& field) {
  const std::string text = reader_.scalar(field, "an HTTP status code from 200 to 599");
  int status = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), status);
  if (ec != std::errc() || end != text.data() + text.size() || status < 200 || status > 599) {
    reader_.fail(
        field.mark,
        fmt::format("status {} is not a final HTTP status; expected 200 to 599", shown(text)));
  }
  return status;
}

double Parser::parse_rate(const Field& field) {
  const std::string raw = reader_.scalar(field, "a rate between 0 and 1, such as 0.01 or 1%");
  std::string_view text = trim(raw);
  double scale = 1;
  if (!text.empty() && text.back() == '%') {
    text = trim(text.substr(0, text.size() - 1));
    scale = 0.01;
  }
  const std::optional<double> number = config::parse_double(text);
  if (!number || *number * scale < 0 || *number * scale > 1) {
    reader_.fail(field.mark,
                 fmt::format("rate {} is not a probability; expected a number between 0 and "
                             "1, such as 0.01 or 1%",
                             shown(raw)));
  }
  return *number * scale;
}

Headers Parser::parse_headers(const Field& field, std::vector<YAML::Mark>* value_marks) {
  // Any header name is a valid key, so the map is read without a key list.
  const MapFields map = reader_.read_map(field.value, field.mark, "headers", {});
  Headers headers;
  for (const Field& header : map.fields) {
    const std::string& name = header.key;
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) {
      reader_.fail(header.key_mark,
                   fmt::format("header name {} is not an HTTP token; expected letters, "
                               "digits and !#$%&'*+-.^_`|~",
                               shown(name)));
    }
    for (std::string_view computed : {"Content-Length", "Transfer-Encoding", "Connection"}) {
      if (iequals(name, computed)) {
        reader_.fail(header.key_mark,
                     fmt::format("header {} is set by the mock server; expected other "
                                 "headers (it follows body and keep-alive)",
                                 name));
      }
    }
    std::string value = reader_.scalar(header, "a header value");
    const bool clean = std::all_of(value.begin(), value.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
    if (!clean) {
      reader_.fail(header.mark,
                   fmt::format("header {} value {} contains control characters; expected "
                               "one line of text",
                               name, shown(value)));
    }
    headers.emplace_back(name, std::move(value));
    value_marks->push_back(header.mark);
  }
  return headers;
}

ErrorRule Parser::parse_error_rule(const YAML::Node& node, std::span<const PathSegment> pattern) {
  const MapFields map = reader_.read_map(node, node.Mark(), "error rule", kErrorKeys);
  ErrorRule rule;
  const Field* rate = map.find("rate");
  if (rate == nullptr) {
    reader_.fail(map.mark,
                 "error rule has no rate; expected a rate such as {rate: 0.01, status: 503}");
  }
  rule.rate = parse_rate(*rate);

  const Field* kind = nullptr;
  for (const Field& field : map.fields) {
    if (field.key != "status" && field.key != "reset" && field.key != "stall") {
      continue;
    }
    if (kind != nullptr) {
      reader_.fail(field.key_mark,
                   fmt::format("error rule has both {} and {}; expected exactly one of "
                               "status, reset or stall",
                               kind->key, field.key));
    }
    kind = &field;
  }
  if (kind == nullptr) {
    reader_.fail(map.mark,
                 "error rule says what to do in none of status, reset or stall; expected "
                 "e.g. {rate: 0.01, status: 503}");
  }
  if (kind->key != "status") {
    for (std::string_view key : {"body", "headers"}) {
      if (const Field* extra = map.find(key)) {
        reader_.fail(extra->key_mark,
                     fmt::format("{} applies only to status errors; expected no {} "
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
      rule.body = reader_.scalar(*body, "a string");
      if ((rule.status == 204 || rule.status == 304) && !rule.body.empty()) {
        reader_.fail(body->mark,
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
      reader_.fail(kind->mark, "reset must be true; expected {rate: 0.001, reset: true}");
    }
  } else {
    rule.kind = ErrorRule::kStall;
    if (kind->value.IsScalar() && kind->value.Scalar() == "forever") {
      rule.stall_us = kStallForever;
    } else {
      rule.stall_us = std::llround(static_cast<double>(reader_.duration_us(*kind)));
    }
  }
  return rule;
}

std::vector<ErrorRule> Parser::parse_errors(const Field& field,
                                            std::span<const PathSegment> pattern) {
  if (!field.value.IsSequence()) {
    reader_.fail(field.mark, fmt::format("errors is {}; expected a list such as "
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
    reader_.fail(field.key_mark,
                 fmt::format("error rates add up to {:g}; expected at most 1", total));
  }
  return errors;
}

std::string Parser::read_body_file(const Field& field) {
  const std::string name = reader_.scalar(field, "a file path");
  std::filesystem::path path(name);
  if (path.is_relative()) {
    path = base_dir_ / path;
  }
  // Only regular files: a FIFO or /dev/zero would block or never end.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    reader_.fail(field.mark,
                 fmt::format("body_file {} is not a readable regular file; expected a path "
                             "relative to the config file",
                             shown(path.string())));
  }
  std::string body;
  if (const int error = config::read_whole_file(path.string(), reader_.budget_left() + 1, &body)) {
    reader_.fail(field.mark, fmt::format("body_file {}: cannot read: {}", shown(path.string()),
                                         std::strerror(error)));
  }
  reader_.charge(body.size(), field.mark);
  return body;
}

// tls: true | false | {cert: FILE, key: FILE}. The files are checked here,
// by building the context once, so a bad one is an error at its line.
void Parser::parse_tcp_tls(const Field& field, SocketRoute* route) {
  if (field.value.IsScalar()) {
    route->tls = reader_.boolean(field);
    return;
  }
  const MapFields map = reader_.read_map(field.value, field.mark, "tls", kTcpTlsKeys);
  const Field* cert = map.find("cert");
  const Field* key = map.find("key");
  if (cert == nullptr || key == nullptr) {
    reader_.fail(map.mark, fmt::format("tls has {} but no {}; expected both cert: and key: (PEM "
                                       "files), or tls: true for a self-signed certificate",
                                       cert ? "cert" : "key", cert ? "key" : "cert"));
  }
  const auto resolve = [&](const Field& f) {
    std::filesystem::path path(reader_.scalar(f, "a path to a PEM file"));
    if (path.is_relative()) path = base_dir_ / path;
    return path.lexically_normal().string();
  };
  route->tls = true;
  route->tls_cert_file = resolve(*cert);
  route->tls_key_file = resolve(*key);
  // Regular files only: OpenSSL would read /dev/zero or a FIFO forever.
  for (const auto& [f, path] :
       {std::pair{cert, route->tls_cert_file}, {key, route->tls_key_file}}) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      reader_.fail(f->mark, fmt::format("tls {} {} is not a readable regular file; expected a PEM "
                                        "file relative to the config file",
                                        f->key, shown(path)));
    }
  }
  tls::TlsServerOptions options;
  options.cert_file = route->tls_cert_file;
  options.key_file = route->tls_key_file;
  try {
    tls::TlsServerContext check(options);
  } catch (const tls::TlsSetupError& e) {
    reader_.fail(field.mark, fmt::format("tls: {}", e.what()));
  }
}

Route Parser::parse_route(const YAML::Node& node) {
  const MapFields map = reader_.read_map(node, node.Mark(), "route", kRouteKeys);
  Route route;

  const Field* path = map.find("path");
  if (path == nullptr) {
    reader_.fail(map.mark, "route has no path; expected e.g. path: /hello");
  }
  route.path = reader_.scalar(*path, "a path such as /hello or /api/*");
  {
    std::string_view p = route.path;
    if (p.empty() || p.front() != '/') {
      reader_.fail(path->mark, fmt::format("path {} does not start with /; expected e.g. /hello or "
                                           "/api/*",
                                           shown(p)));
    }
    const size_t bad = p.find_first_of(" \t?#*\r\n");
    if (bad != std::string_view::npos && !(p[bad] == '*' && bad == p.size() - 1)) {
      reader_.fail(path->mark,
                   fmt::format("path {} contains {}; expected a plain path, with * only at "
                               "the end for a prefix match (queries are ignored)",
                               shown(p), shown(p.substr(bad, 1))));
    }
    if (std::any_of(p.begin(), p.end(), [](char c) {
          const auto u = static_cast<unsigned char>(c);
          return u < 0x20 || u == 0x7f;
        })) {
      reader_.fail(
          path->mark,
          fmt::format("path {} contains control characters; expected a plain path", shown(p)));
    }
    if (p.find("/:") != std::string_view::npos) {
      if (p.back() == '*') {
        reader_.fail(path->mark,
                     fmt::format("path {} has both parameters and a trailing *; expected "
                                 "one or the other",
                                 shown(p)));
      }
      std::string error;
      route.pattern = parse_path_pattern(p, &error);
      if (!error.empty()) {
        reader_.fail(path->mark, fmt::format("path {}: {}", shown(p), error));
      }
    }
    if (p.back() == '*') {
      route.prefix = true;
      route.path.pop_back();
    }
  }

  if (const Field* method = map.find("method")) {
    route.method = reader_.scalar(*method, "an HTTP method such as GET, or *");
    const bool token =
        !route.method.empty() && std::all_of(route.method.begin(), route.method.end(), is_tchar);
    if (route.method != "*" && !token) {
      reader_.fail(method->mark,
                   fmt::format("method {} is not an HTTP method; expected e.g. GET, POST "
                               "or * for any",
                               shown(route.method)));
    }
    if (std::any_of(route.method.begin(), route.method.end(),
                    [](char c) { return std::islower(static_cast<unsigned char>(c)); })) {
      std::string upper = route.method;
      for (char& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      reader_.fail(method->mark,
                   fmt::format("method {} has lowercase letters, and HTTP methods are "
                               "case-sensitive; expected {}",
                               shown(route.method), upper));
    }
  } else {
    route.method = "GET";
  }

  if (const Field* name = map.find("name")) {
    route.name = reader_.scalar(*name, "a route name");
    if (route.name.empty()) {
      reader_.fail(name->mark, "route name is empty; expected a short label");
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
    reader_.fail(body_file->key_mark, "route has both body and body_file; expected one of them");
  }
  if (body != nullptr) {
    route.body = reader_.scalar(*body, "a string");
  }
  if (body_file != nullptr) {
    route.body = read_body_file(*body_file);
  }
  if ((route.status == 204 || route.status == 304) && !route.body.empty()) {
    reader_.fail((body != nullptr ? body : body_file)->mark,
                 fmt::format("status {} has no body in HTTP; expected no body", route.status));
  }
  // body_file is served as it is: a file is often JSON or HTML of its own,
  // where "{{" may well be literal.
  route.templated =
      compile_response(route.status, route.headers, header_marks, route.body, body, route.pattern);

  if (const Field* latency = map.find("latency")) {
    route.latency = reader_.latency(*latency);
  }
  if (const Field* errors = map.find("errors")) {
    route.errors = parse_errors(*errors, route.pattern);
  }
  if (const Field* publish = map.find("publish")) {
    route.publish = parse_publish(*publish, route.pattern);
  }
  return route;
}

// ---- AMQP (docs/mock.md#amqp) ----

std::string Parser::short_string(const Field& field, std::string_view expected) {
  std::string text = reader_.scalar(field, expected);
  if (text.size() > kMaxShortString) {
    reader_.fail(field.mark, fmt::format("{} is {} bytes; expected at most 255 (an AMQP short "
                                         "string)",
                                         field.key, text.size()));
  }
  return text;
}

MockAmqp Parser::parse_amqp(const Field& field) {
  MockAmqp amqp;
  MapFields map;
  const Field* url = &field;
  if (!field.value.IsScalar()) {
    map = reader_.read_map(field.value, field.mark, "amqp", kAmqpKeys);
    url = map.find("url");
    if (url == nullptr) {
      reader_.fail(map.mark,
                   "amqp has no url; expected e.g. url: amqp://guest:guest@127.0.0.1:5672/");
    }
  }
  const std::string text = reader_.scalar(*url, "an amqp:// URL");
  std::string error;
  const std::optional<amqp::AmqpUrl> parsed = amqp::parse_amqp_url(text, &error);
  if (!parsed) {
    reader_.fail(url->mark, fmt::format("amqp url {}: {}", shown(text), error));
  }
  if (parsed->tls) {
    reader_.fail(url->mark, fmt::format("amqp url {} is amqps://, which the mock does not speak "
                                        "yet; expected amqp://",
                                        shown(parsed->display())));
  }
  amqp.url_display = parsed->display();
  amqp.host = parsed->host;
  amqp.port = parsed->port;
  amqp.user = parsed->user;
  amqp.password = parsed->password;
  amqp.vhost = parsed->vhost;
  if (field.value.IsScalar()) return amqp;

  if (const Field* heartbeat = map.find("heartbeat")) {
    const int64_t us = reader_.duration_us(*heartbeat);
    if (us < 1'000'000 || us > 3600'000'000) {
      reader_.fail(heartbeat->mark, "heartbeat is out of range; expected 1s to 1h");
    }
    amqp.heartbeat_s = static_cast<uint16_t>(us / 1'000'000);
  }
  auto list = [&](const Field& f, std::string_view example) {
    if (!f.value.IsSequence()) {
      reader_.fail(f.mark, fmt::format("amqp {} is {}; expected a list such as {}", f.key,
                                       kind_of(f.value), example));
    }
    std::vector<YAML::Node> items;
    for (const YAML::Node& item : f.value)
      items.push_back(item);
    if (items.size() > 64) {
      reader_.fail(f.mark,
                   fmt::format("amqp {} has {} entries; expected at most 64", f.key, items.size()));
    }
    return items;
  };
  auto name_of = [&](const MapFields& m, std::string_view what) {
    const Field* name = m.find("name");
    if (name == nullptr)
      reader_.fail(m.mark, fmt::format("{} has no name; expected name: NAME", what));
    std::string n = short_string(*name, "a name");
    if (n.empty()) reader_.fail(name->mark, fmt::format("{} name is empty; expected a name", what));
    return n;
  };
  if (const Field* exchanges = map.find("exchanges")) {
    for (const YAML::Node& item : list(*exchanges, "[{name: orders, type: topic}]")) {
      const YAML::Mark mark = item.Mark().is_null() ? exchanges->mark : item.Mark();
      const MapFields e = reader_.read_map(item, mark, "amqp exchange", kAmqpExchangeKeys);
      MockAmqp::Exchange exchange;
      exchange.name = name_of(e, "amqp exchange");
      if (exchange.name.rfind("amq.", 0) == 0) {
        reader_.fail(e.mark, fmt::format("amqp exchange {} is one of the broker's own (amq.*); "
                                         "expected another name (the broker refuses to declare "
                                         "it)",
                                         shown(exchange.name)));
      }
      if (const Field* type = e.find("type")) {
        exchange.type = reader_.scalar(*type, "direct, fanout, topic or headers");
        if (std::find(std::begin(kExchangeTypes), std::end(kExchangeTypes), exchange.type) ==
            std::end(kExchangeTypes)) {
          reader_.fail(type->mark, fmt::format("amqp exchange type {} is unknown; expected "
                                               "direct, fanout, topic or headers",
                                               shown(exchange.type)));
        }
      }
      if (const Field* durable = e.find("durable")) exchange.durable = reader_.boolean(*durable);
      amqp.exchanges.push_back(std::move(exchange));
    }
  }
  if (const Field* queues = map.find("queues")) {
    for (const YAML::Node& item : list(*queues, "[{name: orders.retry, message_ttl: 1s}]")) {
      const YAML::Mark mark = item.Mark().is_null() ? queues->mark : item.Mark();
      const MapFields q = reader_.read_map(item, mark, "amqp queue", kAmqpQueueKeys);
      MockAmqp::Queue queue;
      queue.name = name_of(q, "amqp queue");
      if (const Field* durable = q.find("durable")) queue.durable = reader_.boolean(*durable);
      if (const Field* ad = q.find("auto_delete")) queue.auto_delete = reader_.boolean(*ad);
      if (const Field* ttl = q.find("message_ttl")) {
        const int64_t us = reader_.duration_us(*ttl);
        if (us % 1000 != 0) {
          reader_.fail(ttl->mark,
                       "message_ttl is not whole milliseconds; expected e.g. 500ms or 30s");
        }
        queue.message_ttl_ms = us / 1000;
      }
      if (const Field* dlx = q.find("dead_letter_exchange")) {
        queue.dead_letter_exchange = short_string(*dlx, "an exchange name (\"\" the default)");
      }
      if (const Field* dlk = q.find("dead_letter_routing_key")) {
        if (!queue.dead_letter_exchange) {
          reader_.fail(dlk->key_mark,
                       "dead_letter_routing_key without dead_letter_exchange; expected both "
                       "(the key is used when a message is dead-lettered to that exchange)");
        }
        queue.dead_letter_routing_key = short_string(*dlk, "a routing key");
      }
      if (const Field* bind = q.find("bind")) {
        std::vector<YAML::Node> binds;
        if (bind->value.IsSequence()) {
          for (const YAML::Node& b : bind->value)
            binds.push_back(b);
        } else {
          binds.push_back(bind->value);
        }
        for (const YAML::Node& b : binds) {
          const YAML::Mark bmark = b.Mark().is_null() ? bind->mark : b.Mark();
          const MapFields m = reader_.read_map(b, bmark, "bind", kAmqpBindKeys);
          const Field* exchange = m.find("exchange");
          if (exchange == nullptr) {
            reader_.fail(m.mark,
                         "bind has no exchange; expected {exchange: NAME, routing_key: KEY}");
          }
          MockAmqp::Binding binding;
          binding.exchange = short_string(*exchange, "an exchange name");
          if (binding.exchange.empty()) {
            reader_.fail(exchange->mark,
                         "bind exchange is empty; expected a named exchange (the "
                         "default exchange binds every queue by its name)");
          }
          binding.routing_key = queue.name;
          if (const Field* key = m.find("routing_key")) {
            binding.routing_key = short_string(*key, "a routing key");
          }
          queue.bind.push_back(std::move(binding));
        }
      }
      for (const MockAmqp::Queue& other : amqp.queues) {
        if (other.name == queue.name) {
          reader_.fail(mark,
                       fmt::format("amqp queue {} is declared twice; expected each queue once",
                                   shown(queue.name)));
        }
      }
      amqp.queues.push_back(std::move(queue));
    }
  }
  return amqp;
}

RoutePublish Parser::parse_publish(const Field& field, std::span<const PathSegment> pattern) {
  const MapFields map = reader_.read_map(field.value, field.mark, "publish", kPublishKeys);
  RoutePublish publish;
  auto templ = [&](const Field& f, std::string_view expected) {
    return compile_template(reader_.scalar(f, expected), f.mark, pattern);
  };
  if (const Field* exchange = map.find("exchange")) {
    publish.exchange = short_string(*exchange, "an exchange name");
  }
  const Field* key = map.find("routing_key");
  if (key == nullptr && publish.exchange.empty()) {
    reader_.fail(map.mark,
                 "publish has neither exchange nor routing_key; expected e.g. "
                 "{exchange: orders.events, routing_key: order.processed, body: ...}");
  }
  publish.routing_key = key ? templ(*key, "a routing key (a template)") : Template::literal("");
  const Field* body = map.find("body");
  if (body == nullptr) {
    reader_.fail(map.mark,
                 "publish has no body; expected body: TEMPLATE, e.g. "
                 "'{\"reference\":\"{{ request.json.reference | json }}\"}'");
  }
  publish.body = templ(*body, "the message body (a template)");
  if (const Field* headers = map.find("headers")) {
    const MapFields h = reader_.read_map(headers->value, headers->mark, "headers", {});
    for (const Field& header : h.fields) {
      if (header.key.empty() || header.key.size() > kMaxShortString ||
          header.key.rfind("x-millstone-", 0) == 0) {
        reader_.fail(header.key_mark,
                     fmt::format("publish header {} is empty, over 255 bytes or starts with "
                                 "x-millstone- (the mock's own); expected another name",
                                 shown(header.key)));
      }
      publish.headers.emplace_back(header.key, templ(header, "a header value (a template)"));
    }
  }
  if (const Field* f = map.find("correlation_id")) publish.correlation_id = templ(*f, "a template");
  if (const Field* f = map.find("message_id")) publish.message_id = templ(*f, "a template");
  if (const Field* f = map.find("content_type")) {
    publish.content_type = short_string(*f, "a content type such as application/json");
  }
  if (const Field* f = map.find("persistent")) publish.persistent = reader_.boolean(*f);
  if (const Field* f = map.find("latency")) publish.latency = reader_.latency(*f);
  const Field* fail = map.find("fail");
  if (fail != nullptr) publish.fail = parse_rate(*fail);
  const Field* retry = map.find("retry");
  if (retry != nullptr) {
    const MapFields r = reader_.read_map(retry->value, retry->mark, "retry", kRetryKeys);
    const Field* queue = r.find("queue");
    const Field* returns_to = r.find("returns_to");
    if (queue == nullptr || returns_to == nullptr) {
      reader_.fail(r.mark,
                   "retry needs queue and returns_to; expected e.g. {queue: orders.retry, "
                   "returns_to: orders.retry.due}");
    }
    publish.retry_queue = short_string(*queue, "a queue name");
    publish.retry_returns_to = short_string(*returns_to, "a queue name");
    if (publish.retry_queue == publish.retry_returns_to) {
      reader_.fail(returns_to->mark,
                   "retry returns_to is the retry queue itself; expected the "
                   "queue its expired messages are dead-lettered to");
    }
  }
  if (publish.fail > 0 && retry == nullptr) {
    reader_.fail(fail->mark,
                 "publish has fail but no retry; expected retry: {queue: Q, "
                 "returns_to: R} (where the failed share waits, and where it comes "
                 "back)");
  }
  if (retry != nullptr && publish.fail == 0) {
    reader_.fail(retry->key_mark,
                 "publish has retry but no fail (or fail: 0); expected fail: "
                 "RATIO, the share that is retried");
  }
  return publish;
}

SocketAmqpPush Parser::parse_amqp_push(const Field& field) {
  const MapFields map = reader_.read_map(field.value, field.mark, "amqp_push", kAmqpPushKeys);
  SocketAmqpPush push;
  const Field* exchange = map.find("exchange");
  if (exchange == nullptr) {
    reader_.fail(map.mark,
                 "amqp_push has no exchange; expected e.g. {exchange: orders.events, "
                 "routing_key: order.processed}");
  }
  push.exchange = short_string(*exchange, "an exchange name");
  if (push.exchange.empty()) {
    reader_.fail(exchange->mark,
                 "amqp_push exchange is empty; expected a named exchange to bind "
                 "the worker's queue to");
  }
  if (const Field* key = map.find("routing_key")) {
    push.routing_key = short_string(*key, "a binding key");
  }
  const Field* key = map.find("key");
  const Field* match = map.find("match");
  if ((key == nullptr) != (match == nullptr)) {
    reader_.fail(map.mark,
                 "amqp_push has only one of key and match; expected both (which "
                 "connection waits for which message) or neither (every message to "
                 "every connection)");
  }
  if (key == nullptr) return push;
  const MapFields k = reader_.read_map(key->value, key->mark, "key", kPushKeyKeys);
  if (k.fields.size() != 1) {
    reader_.fail(k.mark, "key has " + std::to_string(k.fields.size()) +
                             " sources; expected exactly one of query or header");
  }
  push.key_from = k.fields[0].key == "query" ? SocketAmqpPush::KeyFrom::kQuery
                                             : SocketAmqpPush::KeyFrom::kHeader;
  push.key_name = reader_.scalar(k.fields[0], "a query parameter or header name");
  if (push.key_name.empty()) {
    reader_.fail(k.fields[0].mark, "key name is empty; expected e.g. {query: user}");
  }
  if (match->value.IsScalar()) {
    const std::string text = reader_.scalar(*match, "correlation_id, message_id or a map");
    if (text == "correlation_id") {
      push.match = SocketAmqpPush::Match::kCorrelationId;
    } else if (text == "message_id") {
      push.match = SocketAmqpPush::Match::kMessageId;
    } else {
      reader_.fail(match->mark, fmt::format("match {} is unknown; expected correlation_id, "
                                            "message_id, {{json: FIELD}} or {{header: NAME}}",
                                            shown(text)));
    }
    return push;
  }
  const MapFields m = reader_.read_map(match->value, match->mark, "match", kPushMatchKeys);
  if (m.fields.size() != 1) {
    reader_.fail(m.mark, "match has " + std::to_string(m.fields.size()) +
                             " fields; expected exactly one of json or header");
  }
  const std::string name = reader_.scalar(m.fields[0], "a field name");
  if (m.fields[0].key == "header") {
    push.match = SocketAmqpPush::Match::kHeader;
    push.match_name = name;
    if (name.empty()) reader_.fail(m.fields[0].mark, "match header is empty; expected a name");
    return push;
  }
  // A JSON field: user, a.b.c or $.a.b (a number indexes an array), kept as
  // a JSON pointer.
  push.match = SocketAmqpPush::Match::kJson;
  std::string_view path = name;
  if (path.starts_with("$.")) path.remove_prefix(2);
  if (path.empty()) {
    reader_.fail(m.fields[0].mark, "match json is empty; expected a field such as user or a.b");
  }
  while (!path.empty()) {
    const size_t dot = path.find('.');
    const std::string_view part = path.substr(0, dot);
    if (part.empty()) {
      reader_.fail(m.fields[0].mark, fmt::format("match json {} has an empty part; expected a "
                                                 "field such as user or order.user",
                                                 shown(name)));
    }
    push.match_name += '/';
    for (char c : part) {
      if (c == '~') {
        push.match_name += "~0";
      } else if (c == '/') {
        push.match_name += "~1";
      } else {
        push.match_name += c;
      }
    }
    path.remove_prefix(dot == std::string_view::npos ? path.size() : dot + 1);
  }
  return push;
}

// After the whole file: what publishes and pushes need is declared.
void Parser::check_amqp(const MockConfig& config, const std::vector<YAML::Mark>& route_marks,
                        const std::vector<YAML::Mark>& socket_marks) {
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const Route& route = config.routes[i];
    if (!route.publish) continue;
    const YAML::Mark mark = i < route_marks.size() ? route_marks[i] : YAML::Mark();
    if (!config.amqp) {
      reader_.fail(mark, fmt::format("route {} publishes, but the config has no amqp block; "
                                     "expected amqp: {{url: amqp://guest:guest@127.0.0.1:5672/}}",
                                     shown(route.name)));
    }
    const RoutePublish& p = *route.publish;
    if (p.retry_queue.empty()) continue;
    const MockAmqp::Queue* wait = nullptr;
    const MockAmqp::Queue* due = nullptr;
    for (const MockAmqp::Queue& q : config.amqp->queues) {
      if (q.name == p.retry_queue) wait = &q;
      if (q.name == p.retry_returns_to) due = &q;
    }
    if (wait == nullptr || due == nullptr) {
      reader_.fail(mark, fmt::format("route {} retries through {}, which amqp: queues does not "
                                     "declare; expected both retry queues declared there",
                                     shown(route.name),
                                     shown(wait == nullptr ? p.retry_queue : p.retry_returns_to)));
    }
    if (wait->message_ttl_ms < 0 || !wait->dead_letter_exchange) {
      reader_.fail(mark, fmt::format("retry queue {} has no message_ttl or no "
                                     "dead_letter_exchange; expected both, so that the broker "
                                     "returns failed messages after the TTL",
                                     shown(wait->name)));
    }
    if (wait->dead_letter_exchange->empty() &&
        wait->dead_letter_routing_key.value_or(wait->name) != due->name) {
      reader_.fail(mark, fmt::format("retry queue {} dead-letters to the default exchange with "
                                     "routing key {}, not to {}; expected "
                                     "dead_letter_routing_key: {}",
                                     shown(wait->name),
                                     shown(wait->dead_letter_routing_key.value_or(wait->name)),
                                     shown(due->name), due->name));
    }
  }
  for (size_t i = 0; i < config.websockets.size(); ++i) {
    if (config.websockets[i].amqp_push && !config.amqp) {
      reader_.fail(i < socket_marks.size() ? socket_marks[i] : YAML::Mark(),
                   fmt::format("websocket route {} has amqp_push, but the config has no amqp "
                               "block; expected amqp: {{url: amqp://guest:guest@127.0.0.1:5672/}}",
                               shown(config.websockets[i].name)));
    }
  }
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
      reader_.fail(
          marks[i],
          fmt::format("route {} can never match: route {} at line {} takes all its "
                      "requests; expected every route to be reachable (put more "
                      "specific routes first)",
                      shown(route.name), shown(routes[*shadow].name), marks[*shadow].line + 1));
    }
    if (auto [it, inserted] = names.emplace(route.name, i); !inserted) {
      reader_.fail(marks[i],
                   fmt::format("route name {} is already used at line {}; expected unique "
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

SocketPush Parser::parse_push(const Field& field) {
  const MapFields map = reader_.read_map(field.value, field.mark, field.key, kPushKeys);
  SocketPush push;
  const Field* every = map.find("every");
  const Field* message = map.find("message");
  if (every == nullptr || message == nullptr) {
    reader_.fail(map.mark,
                 fmt::format("{} needs every and message; expected e.g. {{every: 1s, message: "
                             "'{{\\\"seq\\\":{{{{ counter }}}}}}'}}",
                             field.key));
  }
  const double us = static_cast<double>(reader_.duration_us(*every));
  if (us < 1000) {
    reader_.fail(every->mark, fmt::format("every {} is shorter than 1ms; expected 1ms or more",
                                          shown(every->value.Scalar())));
  }
  push.every_us = static_cast<int64_t>(us);
  const std::string text = reader_.scalar(*message, "the message text");
  push.message = compile_template(text, message->mark, {});
  return push;
}

std::vector<SocketReply> Parser::parse_on_message(const Field& field) {
  if (!field.value.IsSequence()) {
    reader_.fail(field.mark,
                 fmt::format("on_message is {}; expected a list of {{match: ..., reply: ...}}",
                             kind_of(field.value)));
  }
  std::vector<SocketReply> replies;
  for (const YAML::Node& item : field.value) {
    const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
    const MapFields map = reader_.read_map(item, mark, "on_message rule", kReplyKeys);
    SocketReply rule;
    const Field* match = map.find("match");
    if (match == nullptr) {
      reader_.fail(map.mark,
                   "on_message rule has no match; expected e.g. match: {contains: subscribe}");
    }
    const MapFields m = reader_.read_map(match->value, match->mark, "match", kMatchKeys);
    if (m.fields.size() != 1) {
      reader_.fail(m.mark, "match has " + std::to_string(m.fields.size()) +
                               " conditions; expected exactly one of contains, equals or regex");
    }
    const Field& condition = m.fields[0];
    rule.pattern = reader_.scalar(condition, "the text to match");
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
        reader_.fail(condition.mark, fmt::format("regex {} does not compile ({}); expected an RE2 "
                                                 "regular expression",
                                                 shown(rule.pattern), regex->error()));
      }
      rule.regex = std::move(regex);
    }
    if (const Field* reply = map.find("reply")) {
      rule.reply = compile_template(reader_.scalar(*reply, "the reply text"), reply->mark, {});
    }
    if (const Field* then_push = map.find("then_push")) {
      rule.then_push = parse_push(*then_push);
    }
    if (!rule.reply && !rule.then_push) {
      reader_.fail(map.mark, "on_message rule does nothing; expected reply, then_push or both");
    }
    replies.push_back(std::move(rule));
  }
  if (replies.size() > 32) {
    reader_.fail(field.mark, "on_message has more than 32 rules; expected at most 32");
  }
  return replies;
}

void Parser::parse_socket_common(const MapFields& map, SocketRoute* route) {
  if (const Field* name = map.find("name")) route->name = reader_.scalar(*name, "a name");
  if (const Field* echo = map.find("echo")) route->echo = reader_.boolean(*echo);
  if (const Field* push = map.find("push")) route->push = parse_push(*push);
  if (const Field* on_message = map.find("on_message")) {
    route->on_message = parse_on_message(*on_message);
  }
  if (const Field* close_after = map.find("close_after")) {
    route->close_after_us =
        static_cast<int64_t>(static_cast<double>(reader_.duration_us(*close_after)));
    if (route->close_after_us <= 0) {
      reader_.fail(close_after->mark,
                   "close_after is 0; expected a duration above 0 (or no close_after)");
    }
  }
  if (const Field* max = map.find("max_message_bytes")) {
    const std::string text = reader_.scalar(*max, "a number of bytes");
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > (64u << 20)) {
      reader_.fail(
          max->mark,
          fmt::format("max_message_bytes {} is out of range; expected 1 to 67108864", shown(text)));
    }
    route->max_message_bytes = static_cast<size_t>(value);
  }
  if (!route->echo && !route->push && route->on_message.empty() && route->close_after_us == 0 &&
      route->ping_every_us == 0 && !route->amqp_push) {
    reader_.fail(map.mark,
                 "socket route does nothing; expected at least one of echo, push, on_message, "
                 "ping_every, close_after or amqp_push");
  }
}

SocketRoute Parser::parse_websocket(const YAML::Node& node) {
  const MapFields map = reader_.read_map(node, node.Mark(), "websocket route", kWebSocketKeys);
  SocketRoute route;
  const Field* path = map.find("path");
  if (path == nullptr)
    reader_.fail(map.mark, "websocket route has no path; expected e.g. path: /ws/echo");
  route.path = reader_.scalar(*path, "a path such as /ws/echo");
  if (route.path.empty() || route.path.front() != '/' ||
      route.path.find_first_of(" \t?#*\r\n") != std::string::npos) {
    reader_.fail(path->mark,
                 fmt::format("path {} is not a plain path; expected an exact path such as "
                             "/ws/echo (no *, no parameters)",
                             shown(route.path)));
  }
  if (const Field* subs = map.find("subprotocols")) {
    if (!subs->value.IsSequence()) {
      reader_.fail(subs->mark, fmt::format("subprotocols is {}; expected a list such as [chat.v1]",
                                           kind_of(subs->value)));
    }
    for (const YAML::Node& item : subs->value) {
      const std::string name = item.IsScalar() ? item.Scalar() : std::string();
      if (name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) {
        reader_.fail(item.Mark().is_null() ? subs->mark : item.Mark(),
                     fmt::format("subprotocol {} is not a token; expected letters, digits and "
                                 "!#$%&'*+-.^_`|~",
                                 shown(name)));
      }
      route.subprotocols.push_back(name);
    }
  }
  if (const Field* ping = map.find("ping_every")) {
    route.ping_every_us = static_cast<int64_t>(static_cast<double>(reader_.duration_us(*ping)));
    if (route.ping_every_us < 1000) {
      reader_.fail(ping->mark, "ping_every is shorter than 1ms; expected 1ms or more");
    }
  }
  if (const Field* code = map.find("close_code")) {
    const std::string text = reader_.scalar(*code, "a WebSocket close code");
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535 ||
        !ws::close_code_allowed(static_cast<uint16_t>(value))) {
      reader_.fail(code->mark,
                   fmt::format("close_code {} cannot be sent; expected 1000-1003, 1007-1014 "
                               "or 3000-4999",
                               shown(text)));
    }
    route.close_code = static_cast<uint16_t>(value);
  }
  if (const Field* push = map.find("amqp_push")) route.amqp_push = parse_amqp_push(*push);
  parse_socket_common(map, &route);
  if (route.name.empty()) route.name = "ws " + route.path;
  return route;
}

SocketRoute Parser::parse_tcp(const YAML::Node& node) {
  const MapFields map = reader_.read_map(node, node.Mark(), "tcp listener", kTcpKeys);
  SocketRoute route;
  const Field* listen = map.find("listen");
  if (listen == nullptr)
    reader_.fail(map.mark, "tcp listener has no listen; expected e.g. 127.0.0.1:9100");
  route.listen_text = reader_.scalar(*listen, "an address such as 127.0.0.1:9100");
  std::string error;
  std::optional<net::Endpoint> endpoint = net::parse_listen_address(route.listen_text, &error);
  if (!endpoint) {
    reader_.fail(listen->mark, fmt::format("listen {} is not an address ({}); expected e.g. "
                                           "127.0.0.1:9100",
                                           shown(route.listen_text), error));
  }
  route.listen = *endpoint;
  if (const Field* framing = map.find("framing")) {
    const std::string text = reader_.scalar(*framing, "line, length32 or raw");
    const auto found = std::find(std::begin(kFramings), std::end(kFramings), text);
    if (found == std::end(kFramings)) {
      const auto suggestion = config::closest(text, kFramings);
      reader_.fail(
          framing->mark,
          fmt::format(
              "framing {} is unknown{}; expected line, length32 or raw", shown(text),
              suggestion ? fmt::format(" (did you mean \"{}\"?)", *suggestion) : std::string()));
    }
    route.framing = static_cast<SocketRoute::Framing>(found - std::begin(kFramings));
  }
  if (const Field* tls = map.find("tls")) parse_tcp_tls(*tls, &route);
  parse_socket_common(map, &route);
  if (route.name.empty()) route.name = "tcp " + route.listen_text;
  return route;
}

void Parser::patch_route(const YAML::Node& root, const MockConfig& config, Route* route,
                         std::string* key) {
  const YAML::Mark start = root.Mark().is_null() ? YAML::Mark() : root.Mark();
  if (root.IsMap()) {
    // The first unknown key is the field at fault; read_map words the error
    // (with its did-you-mean) as it does for the file.
    for (const auto& item : root) {
      const std::string name = item.first.IsScalar() ? item.first.Scalar() : std::string();
      if (std::find(std::begin(kRoutePatchKeys), std::end(kRoutePatchKeys), name) ==
          std::end(kRoutePatchKeys)) {
        *key = name;
        break;
      }
    }
  }
  const MapFields map = reader_.read_map(root, start, "route patch", kRoutePatchKeys);
  key->clear();
  counter_names_ = config.counter_names;
  for (const Field& field : map.fields) {
    *key = field.key;
    if (field.value.IsNull()) continue;
    if (field.key == "status") {
      const int status = parse_status(field);
      if ((status == 204 || status == 304) && !route->body.empty()) {
        reader_.fail(field.mark,
                     fmt::format("status {} has no body in HTTP; expected no body", status));
      }
      route->status = status;
      if (route->templated) route->templated->status = status;
    } else if (field.key == "latency") {
      route->latency = reader_.latency(field);
    } else if (field.key == "errors") {
      route->errors = parse_errors(field, route->pattern);
      // Counter slots are laid out once at start-up, for the file's names.
      if (counter_names_.size() != config.counter_names.size()) {
        reader_.fail(field.mark,
                     fmt::format("counter.{} is not used in the file; expected only counters "
                                 "the file names (they are laid out at start-up)",
                                 counter_names_.back()));
      }
    }
  }
  key->clear();
}

void Parser::patch_socket_route(const YAML::Node& root, SocketRoute* route, std::string* key) {
  const YAML::Mark start = root.Mark().is_null() ? YAML::Mark() : root.Mark();
  if (root.IsMap()) {
    for (const auto& item : root) {
      const std::string name = item.first.IsScalar() ? item.first.Scalar() : std::string();
      if (std::find(std::begin(kSocketPatchKeys), std::end(kSocketPatchKeys), name) ==
          std::end(kSocketPatchKeys)) {
        *key = name;
        break;
      }
    }
  }
  const MapFields map = reader_.read_map(root, start, "socket route patch", kSocketPatchKeys);
  key->clear();
  for (const Field& field : map.fields) {
    *key = field.key;
    if (field.value.IsNull()) continue;
    // push: {every: DURATION}; the message stays the file's.
    const MapFields push = reader_.read_map(field.value, field.mark, "push", kPushPatchKeys);
    if (!route->push) {
      reader_.fail(field.mark,
                   fmt::format("socket route {} has no push in the file; expected a patch of "
                               "an existing push's interval",
                               shown(route->name)));
    }
    const Field* every = push.find("every");
    if (every == nullptr) {
      reader_.fail(push.mark, "push patch has no every; expected e.g. {every: 100ms}");
    }
    *key = "push.every";
    const double us = static_cast<double>(reader_.duration_us(*every));
    if (us < 1000) {
      reader_.fail(every->mark, fmt::format("every {} is shorter than 1ms; expected 1ms or more",
                                            shown(every->value.Scalar())));
    }
    route->push->every_us = static_cast<int64_t>(us);
  }
  key->clear();
}

// ---- gRPC routes (docs/mock.md#grpc) ----

uint32_t Parser::parse_grpc_status(const Field& field) {
  const std::string text = reader_.scalar(field, "a gRPC status such as OK or UNAVAILABLE");
  const std::optional<uint32_t> code = grpc::status_from_text(text);
  if (!code || *code > grpc::kLastStatus) {
    reader_.fail(field.mark,
                 fmt::format("status {} is not a gRPC status; expected a name such as OK, "
                             "UNAVAILABLE, DEADLINE_EXCEEDED or a code 0 to 16",
                             shown(text)));
  }
  return *code;
}

// A YAML value as JSON text: maps, lists, and scalars (quoted ones stay
// strings; plain true/false/null and numbers stay what they are).
std::string Parser::json_of(const YAML::Node& node, const YAML::Mark& mark, int depth) {
  if (depth > 64) reader_.fail(mark, "response nests deeper than 64; expected a flatter message");
  std::string out;
  if (node.IsMap()) {
    out += '{';
    bool first = true;
    for (const auto& item : node) {
      if (!first) out += ',';
      first = false;
      out += text::json_quoted(item.first.Scalar());
      out += ':';
      out += json_of(item.second, mark, depth + 1);
    }
    out += '}';
  } else if (node.IsSequence()) {
    out += '[';
    for (size_t i = 0; i < node.size(); ++i) {
      if (i) out += ',';
      out += json_of(node[i], mark, depth + 1);
    }
    out += ']';
  } else if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    const bool quoted = node.Tag() == "!";
    double number = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    const bool numeric = !text.empty() && ec == std::errc() && end == text.data() + text.size();
    if (!quoted && (text == "true" || text == "false" || text == "null" || numeric)) {
      out += text;
    } else {
      out += text::json_quoted(text);
    }
  } else {
    out += "null";
  }
  return out;
}

const grpc::ProtoCatalog& Parser::catalog_for(const Field& proto, const Field* import_paths) {
  const std::string name = reader_.scalar(proto, "a .proto file");
  auto resolve = [this](const std::string& path) {
    return std::filesystem::path(path).is_absolute() ? path : (base_dir_ / path).string();
  };
  std::vector<std::string> dirs;
  if (import_paths != nullptr) {
    if (!import_paths->value.IsSequence()) {
      reader_.fail(import_paths->mark, fmt::format("import_paths is {}; expected a list of folders",
                                                   kind_of(import_paths->value)));
    }
    for (const YAML::Node& dir : import_paths->value)
      dirs.push_back(resolve(reader_.scalar(dir, import_paths->mark, "import_paths", "a folder")));
  }
  std::string key = resolve(name);
  for (const std::string& dir : dirs)
    key += "\n" + dir;
  for (const auto& [known, catalog] : catalogs_) {
    if (known == key) return *catalog;
  }
  try {
    catalogs_.emplace_back(key, std::make_unique<grpc::ProtoCatalog>(resolve(name), dirs));
  } catch (const grpc::ProtoError& e) {
    // "FILE:LINE:COL: ..." of the .proto itself, after where the config names it.
    reader_.fail(proto.mark, fmt::format("proto {}: {}", shown(name), e.what()));
  }
  return *catalogs_.back().second;
}

Route Parser::parse_grpc(const YAML::Node& node) {
  const MapFields map = reader_.read_map(node, node.Mark(), "grpc route", kGrpcKeys);
  const Field* proto = map.find("proto");
  if (proto == nullptr) {
    reader_.fail(map.mark, "grpc route has no proto; expected e.g. proto: greeter.proto");
  }
  const Field* method_field = map.find("method");
  if (method_field == nullptr) {
    reader_.fail(map.mark,
                 "grpc route has no method; expected e.g. method: helloworld.Greeter/SayHello");
  }
  const grpc::ProtoCatalog& catalog = catalog_for(*proto, map.find("import_paths"));
  const std::string call = reader_.scalar(*method_field, "package.Service/Method");
  const google::protobuf::MethodDescriptor* method = nullptr;
  try {
    method = &catalog.method(call);
  } catch (const grpc::ProtoError& e) {
    std::string why = e.what();
    if (why.rfind("--call ", 0) == 0) why.erase(0, 7);  // the config says "method", not --call
    reader_.fail(method_field->mark, fmt::format("method {}", why));
  }
  // Every kind of method: the mock answers once the call's request is
  // complete (a client stream half-closed), with as many messages as
  // `replies` says for server and bidirectional streams.
  uint32_t replies = 1;
  bool per_message = false;
  if (const Field* field = map.find("replies")) {
    if (!method->server_streaming()) {
      reader_.fail(field->key_mark,
                   fmt::format("replies applies to server-streaming and bidirectional methods; "
                               "{} answers one message",
                               method->full_name()));
    }
    if (field->value.IsScalar() && field->value.Scalar() == "per_message") {
      if (!method->client_streaming()) {
        reader_.fail(field->mark, fmt::format("replies: per_message applies to bidirectional "
                                              "methods; {} takes one request message; expected a "
                                              "number",
                                              method->full_name()));
      }
      per_message = true;
    } else {
      replies = static_cast<uint32_t>(reader_.number(*field, 0, 10'000, /*whole=*/true));
    }
  }

  Route route;
  route.method = "POST";
  route.path = grpc::method_path(*method);
  route.name = "grpc " + route.path.substr(1);
  if (const Field* name = map.find("name")) {
    route.name = reader_.scalar(*name, "a route name");
    if (route.name.empty()) reader_.fail(name->mark, "route name is empty; expected a short label");
  }
  std::string json = "{}";
  if (const Field* response = map.find("response")) {
    json = response->value.IsScalar() ? response->value.Scalar()
                                      : json_of(response->value, response->mark, 0);
    try {
      route.body = grpc::frame_message(catalog.encode_json(*method->output_type(), json));
    } catch (const grpc::ProtoError& e) {
      reader_.fail(response->mark, fmt::format("response: {}", e.what()));
    }
  } else {
    route.body = grpc::frame_message(catalog.encode_json(*method->output_type(), json));
  }
  route.headers = {{"content-type", "application/grpc"}};
  GrpcAnswer answer;
  if (const Field* status = map.find("status")) answer.status = parse_grpc_status(*status);
  if (const Field* message = map.find("message")) {
    answer.message = reader_.scalar(*message, "a status message");
  }
  answer.replies = replies;
  answer.per_message = per_message;
  route.grpc = std::move(answer);
  if (const Field* latency = map.find("latency")) route.latency = reader_.latency(*latency);
  if (const Field* errors = map.find("errors")) {
    if (!errors->value.IsSequence()) {
      reader_.fail(errors->mark, fmt::format("errors is {}; expected a list such as "
                                             "[{{rate: 0.01, status: UNAVAILABLE}}]",
                                             kind_of(errors->value)));
    }
    double total = 0;
    for (const YAML::Node& item : errors->value) {
      const MapFields rule_map = reader_.read_map(item, item.Mark(), "error rule", kGrpcErrorKeys);
      const Field* rate = rule_map.find("rate");
      if (rate == nullptr) {
        reader_.fail(rule_map.mark,
                     "error rule has no rate; expected a rate such as "
                     "{rate: 0.01, status: UNAVAILABLE}");
      }
      const int kinds = (rule_map.find("status") ? 1 : 0) + (rule_map.find("reset") ? 1 : 0) +
                        (rule_map.find("stall") ? 1 : 0);
      if (kinds != 1) {
        reader_.fail(rule_map.mark,
                     "error rule needs exactly one of status, reset or stall; expected e.g. "
                     "{rate: 0.01, status: UNAVAILABLE}");
      }
      ErrorRule rule;
      rule.rate = parse_rate(*rate);
      total += rule.rate;
      if (const Field* status = rule_map.find("status")) {
        rule.kind = ErrorRule::kStatus;
        rule.status = 200;
        GrpcAnswer error;
        error.status = parse_grpc_status(*status);
        if (const Field* message = rule_map.find("message")) {
          error.message = reader_.scalar(*message, "a status message");
        }
        rule.grpc = std::move(error);
      } else if (rule_map.find("message") != nullptr) {
        reader_.fail(rule_map.find("message")->key_mark,
                     "message applies only to status errors; expected no message here");
      } else if (const Field* reset = rule_map.find("reset")) {
        rule.kind = ErrorRule::kReset;
        if (!reset->value.IsScalar() || reset->value.Scalar() != "true") {
          reader_.fail(reset->mark, "reset must be true; expected {rate: 0.001, reset: true}");
        }
      } else {
        const Field* stall = rule_map.find("stall");
        rule.kind = ErrorRule::kStall;
        rule.stall_us = stall->value.IsScalar() && stall->value.Scalar() == "forever"
                            ? kStallForever
                            : std::llround(static_cast<double>(reader_.duration_us(*stall)));
      }
      route.errors.push_back(std::move(rule));
    }
    if (total > 1 + 1e-9) {
      reader_.fail(errors->mark,
                   fmt::format("error rates add up to {}; expected at most 1", total));
    }
  }
  return route;
}

MockConfig Parser::parse(const YAML::Node& root) {
  const YAML::Mark start = root.Mark().is_null() ? YAML::Mark() : root.Mark();
  if (root.IsNull()) {
    reader_.fail(start, "the config is empty; expected a map with a routes list");
  }
  const MapFields map = reader_.read_map(root, start, "the config", kTopKeys);
  MockConfig config;

  if (const Field* seed = map.find("seed")) {
    const std::string text = reader_.scalar(*seed, "a whole number");
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), config.seed);
    if (ec != std::errc() || end != text.data() + text.size()) {
      reader_.fail(seed->mark, fmt::format("seed {} is not a whole number; expected 0 to {}",
                                           shown(text), UINT64_MAX));
    }
    config.seed_given = true;
  }
  if (const Field* amqp = map.find("amqp")) config.amqp = parse_amqp(*amqp);

  std::vector<std::string> socket_names;
  std::vector<YAML::Mark> socket_marks;  // of the websockets
  auto check_name = [&](const SocketRoute& route, const YAML::Mark& mark) {
    if (std::find(socket_names.begin(), socket_names.end(), route.name) != socket_names.end()) {
      reader_.fail(mark, fmt::format("socket route name {} is used twice; expected unique names",
                                     shown(route.name)));
    }
    socket_names.push_back(route.name);
  };
  for (const char* key : {"websockets", "tcp"}) {
    const Field* list = map.find(key);
    if (list == nullptr) continue;
    if (!list->value.IsSequence() || list->value.size() == 0) {
      reader_.fail(list->mark,
                   fmt::format("{} is {}; expected a non-empty list", key,
                               list->value.IsSequence() ? "an empty list" : kind_of(list->value)));
    }
    for (const YAML::Node& item : list->value) {
      const YAML::Mark mark = item.Mark().is_null() ? list->mark : item.Mark();
      if (config.websockets.size() + config.tcp.size() >= 1000) {
        reader_.fail(mark, "more than 1000 socket routes; expected at most 1000");
      }
      if (std::string_view(key) == "websockets") {
        SocketRoute route = parse_websocket(item);
        for (const SocketRoute& other : config.websockets) {
          if (other.path == route.path) {
            reader_.fail(mark,
                         fmt::format("websocket path {} is declared twice; expected each path once",
                                     shown(route.path)));
          }
        }
        check_name(route, mark);
        config.websockets.push_back(std::move(route));
        socket_marks.push_back(mark);
      } else {
        SocketRoute route = parse_tcp(item);
        check_name(route, mark);
        config.tcp.push_back(std::move(route));
      }
    }
  }

  // gRPC routes are routes (POST /package.Service/Method) ahead of the
  // others, so a prefix route cannot shadow them.
  std::vector<YAML::Mark> marks;
  if (const Field* list = map.find("grpc")) {
    if (!list->value.IsSequence() || list->value.size() == 0) {
      reader_.fail(list->mark,
                   fmt::format("grpc is {}; expected a non-empty list",
                               list->value.IsSequence() ? "an empty list" : kind_of(list->value)));
    }
    for (const YAML::Node& item : list->value) {
      const YAML::Mark mark = item.Mark().is_null() ? list->mark : item.Mark();
      if (config.routes.size() == kMaxRoutes) {
        reader_.fail(
            mark, fmt::format("more than {} routes; expected at most {}", kMaxRoutes, kMaxRoutes));
      }
      config.routes.push_back(parse_grpc(item));
      marks.push_back(mark);
    }
  }
  // Server reflection for the grpc list's services: on unless grpc_reflection: false.
  bool reflection = !catalogs_.empty();
  if (const Field* flag = map.find("grpc_reflection")) {
    reflection = reader_.boolean(*flag);
    if (reflection && catalogs_.empty()) {
      reader_.fail(flag->mark,
                   "grpc_reflection describes the grpc list's services, and there is no grpc "
                   "list; expected grpc: with at least one method");
    }
  }
  if (reflection) {
    std::string descriptors;  // FileDescriptorSets concatenate into one
    for (const auto& [key, catalog] : catalogs_)
      descriptors += catalog->descriptor_set();
    try {
      config.grpc_reflection = std::make_shared<const grpc::ReflectionIndex>(descriptors);
    } catch (const grpc::ProtoError& e) {
      reader_.fail(map.find("grpc")->mark, fmt::format("grpc: server reflection: {}", e.what()));
    }
  }
  const Field* routes = map.find("routes");
  if (routes == nullptr) {
    if (!config.websockets.empty() || !config.tcp.empty() || !config.routes.empty()) {
      check_reachable(config.routes, marks);
      check_amqp(config, marks, socket_marks);
      config.counter_names = std::move(counter_names_);
      return config;
    }
    reader_.fail(map.mark,
                 "the config has no routes; expected a routes list (or grpc, websockets or tcp)");
  }
  if (!routes->value.IsSequence() || routes->value.size() == 0) {
    reader_.fail(
        routes->mark,
        fmt::format("routes is {}; expected a list of routes, each starting with "
                    "\"- path: ...\"",
                    routes->value.IsSequence() ? "an empty list" : kind_of(routes->value)));
  }
  for (const YAML::Node& item : routes->value) {
    const YAML::Mark mark = item.Mark().is_null() ? routes->mark : item.Mark();
    if (config.routes.size() == kMaxRoutes) {
      reader_.fail(mark,
                   fmt::format("more than {} routes; expected at most {}", kMaxRoutes, kMaxRoutes));
    }
    config.routes.push_back(parse_route(item));
    marks.push_back(mark);
  }
  check_reachable(config.routes, marks);
  check_amqp(config, marks, socket_marks);
  config.counter_names = std::move(counter_names_);
  return config;
}

// Conversions inside yaml-cpp while reading nodes (a bad alias...) are still
// the file's fault.
std::string yaml_error(const std::string& source, const YAML::Exception& e) {
  if (e.mark.is_null()) {
    return fmt::format("{}: invalid YAML: {}; expected well-formed YAML", source, e.msg);
  }
  return fmt::format("{}:{}:{}: invalid YAML: {}; expected well-formed YAML", source,
                     e.mark.line + 1, e.mark.column + 1, e.msg);
}

}  // namespace

MockConfig parse_mock_config(std::string_view yaml_text, const std::string& source_name) {
  if (yaml_text.size() > kMaxConfigBytes) {
    throw ConfigError(
        fmt::format("{}: the config is {} bytes; expected at most 1 MiB (put large "
                    "bodies in body_file)",
                    source_name, yaml_text.size()));
  }
  const std::string text(yaml_text);
  const YAML::Node root = config::load_document(text, source_name, kMockConfig);
  try {
    Parser parser(source_name, yaml_text);
    return parser.parse(root);
  } catch (const YAML::Exception& e) {
    throw ConfigError(yaml_error(source_name, e));
  }
}

namespace {

// One patch document read by a Parser; exceptions stay in here.
template <typename Apply>
bool read_patch(std::string_view text, const std::string& source, Apply apply, PatchError* error) {
  if (text.size() > kMaxPatchBytes) {
    *error = PatchError{"", fmt::format("{}: the patch is {} bytes; expected at most {} bytes",
                                        source, text.size(), kMaxPatchBytes)};
    return false;
  }
  std::string key;
  try {
    const std::string owned(text);
    const YAML::Node root = config::load_document(owned, source, kMockConfig);
    Parser parser(source, text);
    apply(parser, root, &key);
    return true;
  } catch (const ConfigError& e) {
    *error = PatchError{key, e.what()};
  } catch (const YAML::Exception& e) {
    *error = PatchError{key, yaml_error(source, e)};
  }
  return false;
}

}  // namespace

bool patch_route(std::string_view text, const std::string& source, const MockConfig& config,
                 Route* route, PatchError* error) {
  return read_patch(
      text, source,
      [&](Parser& parser, const YAML::Node& root, std::string* key) {
        parser.patch_route(root, config, route, key);
      },
      error);
}

bool patch_socket_route(std::string_view text, const std::string& source, SocketRoute* route,
                        PatchError* error) {
  return read_patch(
      text, source,
      [&](Parser& parser, const YAML::Node& root, std::string* key) {
        parser.patch_socket_route(root, route, key);
      },
      error);
}

MockConfig load_mock_config_file(const std::string& path) {
  std::string text;
  // One byte over the limit is enough for parse_mock_config to report the size.
  if (const int error = config::read_whole_file(path, kMaxConfigBytes + 1, &text)) {
    throw ConfigError(fmt::format("{}: cannot read: {}", path, std::strerror(error)));
  }
  return parse_mock_config(text, path);
}

}  // namespace millstone::mock
