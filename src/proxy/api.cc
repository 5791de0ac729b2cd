#include "proxy/api.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "http/syntax.h"

namespace millstone::proxy {

namespace {

using Json = nlohmann::ordered_json;  // Toxiproxy's field order
using simdjson::dom::element;
using simdjson::dom::element_type;

// Text through nlohmann's replacing handler: names from a request path may
// be any bytes, and dump() must not throw on invalid UTF-8.
std::string dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

ApiResponse error_response(int status, const std::string& message) {
  return {status, dump(Json{{"error", message}, {"status", status}})};
}

ApiResponse from_status(const Status& status) {
  return error_response(status.code, status.message);
}

Json attributes_json(const ToxicSpec& spec) {
  const ToxicAttributes& a = spec.attributes;
  switch (spec.type) {
    case ToxicType::kLatency:
      return Json{{"latency", a.latency}, {"jitter", a.jitter}};
    case ToxicType::kBandwidth:
      return Json{{"rate", a.rate}};
    case ToxicType::kSlowClose:
      return Json{{"delay", a.delay}};
    case ToxicType::kTimeout:
    case ToxicType::kResetPeer:
      return Json{{"timeout", a.timeout}};
    case ToxicType::kSlicer:
      return Json{{"average_size", a.average_size},
                  {"size_variation", a.size_variation},
                  {"delay", a.delay}};
    case ToxicType::kLimitData:
      return Json{{"bytes", a.bytes}};
  }
  return Json::object();
}

Json toxic_json(const ToxicSpec& spec) {
  // Toxiproxy's toxicity is a float32; show what the client sent.
  return Json{{"attributes", attributes_json(spec)},
              {"name", spec.name},
              {"type", toxic_type_name(spec.type)},
              {"stream", direction_name(spec.stream)},
              {"toxicity", spec.toxicity}};
}

Json proxy_json(const ProxyState& state) {
  Json toxics = Json::array();
  for (const ToxicSpec& spec : state.toxics)
    toxics.push_back(toxic_json(spec));
  return Json{{"name", state.name},
              {"listen", state.listen},
              {"upstream", state.upstream},
              {"enabled", state.enabled},
              {"toxics", std::move(toxics)}};
}

std::string shown(element value) {
  std::string text = simdjson::minify(value);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// A whole number in int64, as Go decodes into int64 fields.
bool read_whole(element value, const std::string& field, int64_t* out, std::string* error) {
  switch (value.type()) {
    case element_type::INT64:
      *out = value.get_int64().value_unsafe();
      return true;
    case element_type::UINT64:
      *error = fmt::format("{} is too large: {}", field, shown(value));
      return false;
    default:
      *error = fmt::format("{} must be a whole number, got {}", field, shown(value));
      return false;
  }
}

bool read_number(element value, const std::string& field, double* out, std::string* error) {
  switch (value.type()) {
    case element_type::INT64:
      *out = static_cast<double>(value.get_int64().value_unsafe());
      return true;
    case element_type::UINT64:
      *out = static_cast<double>(value.get_uint64().value_unsafe());
      return true;
    case element_type::DOUBLE:
      *out = value.get_double().value_unsafe();
      return true;
    default:
      *error = fmt::format("{} must be a number, got {}", field, shown(value));
      return false;
  }
}

bool read_string(element value, const std::string& field, std::string* out, std::string* error) {
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS) {
    *error = fmt::format("{} must be a string, got {}", field, shown(value));
    return false;
  }
  out->assign(text);
  return true;
}

// Fields of a proxy object over *config; unknown fields are ignored, as Go's
// decoder does, and null leaves a field as it was.
bool read_proxy(element value, ProxyConfig* config, const std::string& where, std::string* error) {
  simdjson::dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) {
    *error = fmt::format("{}expected a JSON object with name, listen, upstream, enabled", where);
    return false;
  }
  for (simdjson::dom::key_value_pair field : object) {
    if (field.value.is_null()) continue;
    const std::string name = where + std::string(field.key);
    if (field.key == "name") {
      if (!read_string(field.value, name, &config->name, error)) return false;
    } else if (field.key == "listen") {
      if (!read_string(field.value, name, &config->listen, error)) return false;
    } else if (field.key == "upstream") {
      if (!read_string(field.value, name, &config->upstream, error)) return false;
    } else if (field.key == "enabled") {
      bool enabled = false;
      if (field.value.get_bool().get(enabled) != simdjson::SUCCESS) {
        *error = fmt::format("{} must be true or false, got {}", name, shown(field.value));
        return false;
      }
      config->enabled = enabled;
    }
  }
  return true;
}

// The attributes of `type` from an "attributes" object over *attributes.
bool read_attributes(element value, ToxicType type, ToxicAttributes* attributes,
                     std::string* error) {
  simdjson::dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) {
    *error = fmt::format("attributes must be an object, got {}", shown(value));
    return false;
  }
  for (simdjson::dom::key_value_pair field : object) {
    int64_t* target = nullptr;
    const std::string_view key = field.key;
    switch (type) {
      case ToxicType::kLatency:
        target = key == "latency"  ? &attributes->latency
                 : key == "jitter" ? &attributes->jitter
                                   : nullptr;
        break;
      case ToxicType::kBandwidth:
        target = key == "rate" ? &attributes->rate : nullptr;
        break;
      case ToxicType::kSlowClose:
        target = key == "delay" ? &attributes->delay : nullptr;
        break;
      case ToxicType::kTimeout:
      case ToxicType::kResetPeer:
        target = key == "timeout" ? &attributes->timeout : nullptr;
        break;
      case ToxicType::kSlicer:
        target = key == "average_size"     ? &attributes->average_size
                 : key == "size_variation" ? &attributes->size_variation
                 : key == "delay"          ? &attributes->delay
                                           : nullptr;
        break;
      case ToxicType::kLimitData:
        target = key == "bytes" ? &attributes->bytes : nullptr;
        break;
    }
    if (!target || field.value.is_null()) continue;  // not this type's: ignored, as Go does
    if (!read_whole(field.value, "attributes." + std::string(key), target, error)) return false;
  }
  return true;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> segments;
  if (path.empty() || path.front() != '/') return segments;
  path.remove_prefix(1);
  for (;;) {
    const size_t slash = path.find('/');
    segments.push_back(percent_decode(path.substr(0, slash)));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

bool is(std::string_view method, std::initializer_list<std::string_view> methods) {
  return std::find(methods.begin(), methods.end(), method) != methods.end();
}

constexpr const char* kToxicTypes =
    "latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data";

}  // namespace

bool ControlApi::parse(std::string_view body, std::string* error) {
  padded_.assign(body);
  padded_.append(simdjson::SIMDJSON_PADDING, '\0');
  const simdjson::error_code code = parser_.parse(padded_.data(), body.size(), false).get(root_);
  if (code != simdjson::SUCCESS) {
    *error = body.empty()
                 ? "bad request body: empty, expected JSON"
                 : fmt::format("bad request body: not JSON: {}", simdjson::error_message(code));
    return false;
  }
  return true;
}

ApiResponse ControlApi::handle(const ApiRequest& request) {
  // Toxiproxy refuses browsers, so a web page cannot drive the API of a
  // proxy on localhost (cross-site requests).
  if (request.user_agent.substr(0, 8) == "Mozilla/") {
    return error_response(403, "User agent not allowed");
  }
  const std::string_view method = request.method;
  if (!token_.empty() && method != "GET" &&
      !http::syntax::bearer_matches(request.authorization, token_)) {
    return error_response(401,
                          "changes need the proxy's --token-file token; expected a header "
                          "Authorization: Bearer TOKEN");
  }
  const std::vector<std::string> path = split_path(request.path);
  const auto not_allowed = [&] {
    return error_response(405, fmt::format("method {} is not allowed on this path", method));
  };
  if (path.size() == 1 && path[0] == "version") {
    if (method != "GET") return not_allowed();
    return {200, dump(Json{{"version", std::string("millstone-") + MILLSTONE_VERSION}})};
  }
  if (path.size() == 1 && path[0] == "reset") {
    if (method != "POST") return not_allowed();
    Status status = proxies_.reset();
    if (!status.ok()) return from_status(status);
    return {204, {}};
  }
  if (path.size() == 1 && path[0] == "populate") {
    if (method != "POST") return not_allowed();
    return populate(request.body);
  }
  if (path.empty() || path[0] != "proxies" || path.size() > 4 ||
      (path.size() >= 3 && path[2] != "toxics") ||
      std::any_of(path.begin() + 1, path.end(), [](const std::string& s) { return s.empty(); })) {
    return error_response(404, "404 page not found");
  }
  if (path.size() == 1) {
    if (method == "GET") return proxies_index();
    if (method == "POST") return proxy_create(request.body);
    return not_allowed();
  }
  const std::string& name = path[1];
  if (path.size() == 2) {
    if (method == "GET") {
      ProxyState state;
      Status status = proxies_.get(name, &state);
      if (!status.ok()) return from_status(status);
      return {200, dump(proxy_json(state))};
    }
    if (is(method, {"POST", "PATCH"})) return proxy_update(name, request.body);
    if (method == "DELETE") {
      Status status = proxies_.remove(name);
      if (!status.ok()) return from_status(status);
      return {204, {}};
    }
    return not_allowed();
  }
  if (path.size() == 3) {
    if (method == "GET") {
      ProxyState state;
      Status status = proxies_.get(name, &state);
      if (!status.ok()) return from_status(status);
      Json toxics = Json::array();
      for (const ToxicSpec& spec : state.toxics)
        toxics.push_back(toxic_json(spec));
      return {200, dump(toxics)};
    }
    if (method == "POST") return toxic_create(name, request.body);
    return not_allowed();
  }
  const std::string& toxic = path[3];
  if (method == "GET") {
    ToxicSpec spec;
    Status status = proxies_.get_toxic(name, toxic, &spec);
    if (!status.ok()) return from_status(status);
    return {200, dump(toxic_json(spec))};
  }
  if (is(method, {"POST", "PATCH"})) return toxic_update(name, toxic, request.body);
  if (method == "DELETE") {
    Status status = proxies_.remove_toxic(name, toxic);
    if (!status.ok()) return from_status(status);
    return {204, {}};
  }
  return not_allowed();
}

ApiResponse ControlApi::proxies_index() {
  Json all = Json::object();
  for (const ProxyState& state : proxies_.list())
    all[state.name] = proxy_json(state);
  return {200, dump(all)};
}

ApiResponse ControlApi::proxy_create(std::string_view body) {
  std::string error;
  if (!parse(body, &error)) return error_response(400, error);
  ProxyConfig config;
  if (!read_proxy(root_, &config, "", &error)) {
    return error_response(400, "bad request body: " + error);
  }
  ProxyState state;
  Status status = proxies_.create(config, &state);
  if (!status.ok()) return from_status(status);
  return {201, dump(proxy_json(state))};
}

bool ControlApi::parse_proxy_list(std::string_view json, std::vector<ProxyConfig>* out,
                                  std::string* error) {
  if (!parse(json, error)) return false;
  simdjson::dom::array array;
  if (root_.get_array().get(array) != simdjson::SUCCESS) {
    *error = "bad request body: expected a JSON array of proxies";
    return false;
  }
  size_t index = 0;
  for (element item : array) {
    ++index;
    ProxyConfig config;
    if (!read_proxy(item, &config, fmt::format("proxy {}: ", index), error)) {
      *error = "bad request body: " + *error;
      return false;
    }
    out->push_back(std::move(config));
  }
  return true;
}

ApiResponse ControlApi::populate(std::string_view body) {
  std::vector<ProxyConfig> configs;
  std::string error;
  if (!parse_proxy_list(body, &configs, &error)) return error_response(400, error);
  std::vector<ProxyState> states;
  Status status = proxies_.populate(configs, &states);
  Json proxies = Json::array();
  for (const ProxyState& state : states)
    proxies.push_back(proxy_json(state));
  if (!status.ok()) {
    return {status.code, dump(Json{{"error", status.message},
                                   {"status", status.code},
                                   {"proxies", std::move(proxies)}})};
  }
  return {201, dump(Json{{"proxies", std::move(proxies)}})};
}

ApiResponse ControlApi::proxy_update(const std::string& name, std::string_view body) {
  ProxyState current;
  Status status = proxies_.get(name, &current);
  if (!status.ok()) return from_status(status);
  std::string error;
  if (!parse(body, &error)) return error_response(400, error);
  ProxyConfig config{current.name, current.listen, current.upstream, current.enabled};
  if (!read_proxy(root_, &config, "", &error)) {
    return error_response(400, "bad request body: " + error);
  }
  ProxyState state;
  status = proxies_.update(name, config, &state);
  if (!status.ok()) return from_status(status);
  return {200, dump(proxy_json(state))};
}

ApiResponse ControlApi::toxic_create(const std::string& proxy, std::string_view body) {
  std::string error;
  if (!parse(body, &error)) return error_response(400, error);
  simdjson::dom::object object;
  if (root_.get_object().get(object) != simdjson::SUCCESS) {
    return error_response(400,
                          "bad request body: expected a JSON object with type, stream, "
                          "toxicity, attributes");
  }
  ToxicSpec spec;
  std::string type_name;
  std::string stream = "downstream";
  std::optional<element> attributes;
  for (simdjson::dom::key_value_pair field : object) {
    if (field.value.is_null()) continue;
    bool ok = true;
    if (field.key == "name") {
      ok = read_string(field.value, "name", &spec.name, &error);
    } else if (field.key == "type") {
      ok = read_string(field.value, "type", &type_name, &error);
    } else if (field.key == "stream") {
      ok = read_string(field.value, "stream", &stream, &error);
    } else if (field.key == "toxicity") {
      ok = read_number(field.value, "toxicity", &spec.toxicity, &error);
    } else if (field.key == "attributes") {
      attributes = field.value;
    }
    if (!ok) return error_response(400, "bad request body: " + error);
  }
  std::string lower = stream;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto direction = parse_direction(lower);
  if (!direction) {
    return error_response(400, "stream was invalid, can be either upstream or downstream");
  }
  spec.stream = *direction;
  auto type = parse_toxic_type(type_name);
  if (!type) {
    return error_response(
        400,
        type_name.empty()
            ? fmt::format("invalid toxic type: missing; expected one of {}", kToxicTypes)
            : fmt::format("invalid toxic type: '{}'; expected one of {}", type_name, kToxicTypes));
  }
  spec.type = *type;
  if (attributes && !read_attributes(*attributes, spec.type, &spec.attributes, &error)) {
    return error_response(400, "bad request body: " + error);
  }
  ToxicSpec created;
  Status status = proxies_.add_toxic(proxy, spec, &created);
  if (!status.ok()) return from_status(status);
  return {200, dump(toxic_json(created))};
}

ApiResponse ControlApi::toxic_update(const std::string& proxy, const std::string& toxic,
                                     std::string_view body) {
  ToxicSpec spec;
  Status status = proxies_.get_toxic(proxy, toxic, &spec);
  if (!status.ok()) return from_status(status);
  std::string error;
  if (!parse(body, &error)) return error_response(400, error);
  simdjson::dom::object object;
  if (root_.get_object().get(object) != simdjson::SUCCESS) {
    return error_response(400,
                          "bad request body: expected a JSON object with toxicity, "
                          "attributes");
  }
  for (simdjson::dom::key_value_pair field : object) {
    if (field.value.is_null()) continue;
    bool ok = true;
    if (field.key == "toxicity") {
      ok = read_number(field.value, "toxicity", &spec.toxicity, &error);
    } else if (field.key == "attributes") {
      ok = read_attributes(field.value, spec.type, &spec.attributes, &error);
    }
    if (!ok) return error_response(400, "bad request body: " + error);
  }
  ToxicSpec updated;
  status = proxies_.update_toxic(proxy, spec, &updated);
  if (!status.ok()) return from_status(status);
  return {200, dump(toxic_json(updated))};
}

}  // namespace millstone::proxy
