#pragma once
// A client of the mock's control API (docs/mock.md#control-api), for code
// that changes a mock while a run goes on (drills, tests). One blocking
// HTTP/1.1 request on its own connection, bounded by a timeout; never throws.
#include <cstdint>
#include <string>
#include <string_view>

namespace millstone::mock::control {

struct Options {
  std::string token;          // --control-token of the mock, if it has one
  int timeout_ms = 3000;      // connect, send and answer together
  bool socket_route = false;  // a WebSocket/TCP route (/__millstone/sockets/NAME)
};

struct Result {
  bool ok = false;    // the mock answered 2xx: the change is in force in every worker
  int status = 0;     // the HTTP status, 0 when there was no answer
  std::string body;   // the mock's JSON: the route now in force, or {"error", "field"}
  std::string error;  // when !ok: one line, e.g. "127.0.0.1:8080: mock answered 400:
                      // body:1:2: unknown key \"staus\" ... (field staus)"
};

// PATCH /__millstone/routes/ROUTE with `json_patch`, e.g.
// {"latency": "200ms", "errors": [{"rate": "50%", "status": 503}]}.
// `route` is the route's name as the file gives it (or "METHOD PATH");
// it is percent-encoded here.
Result apply(const std::string& host, uint16_t port, std::string_view route,
             std::string_view json_patch, const Options& options = {});
// DELETE /__millstone/routes/ROUTE: the route back to the file's config.
Result reset(const std::string& host, uint16_t port, std::string_view route,
             const Options& options = {});
// POST /__millstone/reset: every route back to the file's config.
Result reset_all(const std::string& host, uint16_t port, const Options& options = {});

// Any control request (method, path under /__millstone/, body).
Result request(const std::string& host, uint16_t port, std::string_view method,
               std::string_view path, std::string_view body, const Options& options = {});

}  // namespace millstone::mock::control
