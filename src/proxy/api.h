#pragma once
// The fault proxy's HTTP API, compatible with Toxiproxy's (README "HTTP
// API"): the same paths, JSON field names, status codes and error shape
// ({"error": "proxy not found", "status": 404}), so Toxiproxy's clients work
// unchanged. This file maps one parsed request to one response over the C++
// API of FaultProxy; api_server.h carries it over HTTP/1.1.
//
// Bodies are parsed with simdjson's error-code API: a request never throws,
// and bad input (not JSON, wrong types, fractions or out-of-range numbers,
// unknown toxic types) is a 400 naming the field.
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "proxy/fault_proxy.h"

namespace millstone::proxy {

struct ApiRequest {
  std::string_view method;
  std::string_view path;  // without the query
  std::string_view user_agent;
  std::string_view body;
  std::string_view authorization;  // the Authorization field, for a token
};

struct ApiResponse {
  int status = 200;
  std::string body;  // JSON; empty for 204
};

class ControlApi {
 public:
  explicit ControlApi(FaultProxy& proxies) : proxies_(proxies) {}

  // With a token (`millstone proxy --token-file`), every change (any method
  // but GET) needs "Authorization: Bearer TOKEN" and is a 401 without it;
  // reading stays open, as on the mock's control API. Toxiproxy itself has
  // no token: its clients work as they are against a proxy without one.
  void require_token(std::string token) { token_ = std::move(token); }

  ApiResponse handle(const ApiRequest& request);

  // Toxiproxy's populate format (a JSON array of {name, listen, upstream,
  // enabled}), as POST /populate and `millstone proxy --config` take it.
  // False with *error naming what is wrong.
  bool parse_proxy_list(std::string_view json, std::vector<ProxyConfig>* out, std::string* error);

 private:
  ApiResponse proxies_index();
  ApiResponse proxy_create(std::string_view body);
  ApiResponse populate(std::string_view body);
  ApiResponse proxy_update(const std::string& name, std::string_view body);
  ApiResponse toxic_create(const std::string& proxy, std::string_view body);
  ApiResponse toxic_update(const std::string& proxy, const std::string& toxic,
                           std::string_view body);
  // Parses `body` into root_; false with *error ("bad request body: ...").
  bool parse(std::string_view body, std::string* error);

  FaultProxy& proxies_;
  std::string token_;
  simdjson::dom::parser parser_;
  std::string padded_;  // the body with simdjson's padding
  simdjson::dom::element root_;
};

}  // namespace millstone::proxy
