#pragma once
// The fault proxy's control API over HTTP/1.1: the control APIs' server
// (http/api_server.h: keep-alive, pipelining, "Expect: 100-continue",
// bounded headers) with ControlApi's routes and bodies up to 1 MiB.
#include <memory>
#include <string>

#include "http/api_server.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "proxy/api.h"

namespace millstone::proxy {

// ControlApi behind the HTTP handler interface.
class ApiHandler final : public http::ApiHandler {
 public:
  static constexpr http::ApiLimits kLimits{.max_header_bytes = 64 * 1024,
                                           .max_body_bytes = 1024 * 1024};
  explicit ApiHandler(ControlApi& api) : api_(api) {}
  http::ApiReply handle(const http::RequestParser& request) override;

 private:
  ControlApi& api_;
};

// One connection's HTTP exchanges on bytes (the fuzzer's and the unit
// tests' way in).
class ApiSession {
 public:
  explicit ApiSession(ControlApi& api) : handler_(api), exchange_(handler_, ApiHandler::kLimits) {}
  // Consumes bytes; appends responses to *out. Returns false once the
  // connection must close (after *out is sent): a malformed request, or
  // "Connection: close".
  bool feed(const char* data, size_t size, std::string* out) {
    return exchange_.feed(data, size, out) == http::ApiExchange::Next::kMore;
  }

 private:
  ApiHandler handler_;
  http::ApiExchange exchange_;
};

class ApiServer {
 public:
  ApiServer(net::EventLoop& loop, ControlApi& api)
      : handler_(api), server_(loop, handler_, ApiHandler::kLimits) {}

  // Binds and listens; false with errno set.
  bool listen(const net::Endpoint& endpoint) { return server_.listen(endpoint); }
  const net::Endpoint& endpoint() const { return server_.endpoint(); }

 private:
  ApiHandler handler_;
  http::ApiServer server_;
};

}  // namespace millstone::proxy
