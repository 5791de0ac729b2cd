#pragma once
// HTTP/1.1 (and HTTPS when given a TLS context) for `millstone serve`: the
// control APIs' server (http/api_server.h) with ServeApi's routes, bodies up
// to ServeApi::kMaxBodyBytes, and GET /v1/runs/{id}/events as a Server-Sent
// Events stream of that run, closed after the run's `end` event.
#include <memory>
#include <unordered_map>

#include "http/api_server.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "serve/api.h"
#include "tls/server_context.h"

namespace millstone::serve {

class ServeServer final : private http::ApiHandler {
 public:
  // `tls` may be null (plain HTTP); it must outlive the server.
  ServeServer(net::EventLoop& loop, ServeApi& api, RunQueue& runs,
              const tls::TlsServerContext* tls);
  ~ServeServer() override;
  ServeServer(const ServeServer&) = delete;
  ServeServer& operator=(const ServeServer&) = delete;

  // Binds and listens; false with errno set.
  bool listen(const net::Endpoint& endpoint) { return server_.listen(endpoint); }
  const net::Endpoint& endpoint() const { return server_.endpoint(); }

 private:
  // A run's events, forwarded to one connection's stream.
  class Subscriber;

  http::ApiReply handle(const http::RequestParser& request) override;
  void open_stream(const std::string& run_id, http::EventStream* stream) override;
  void close_stream(http::EventStream* stream) override;

  ServeApi& api_;
  RunQueue& runs_;
  std::unordered_map<http::EventStream*, std::unique_ptr<Subscriber>> subscribers_;
  http::ApiServer server_;
};

}  // namespace millstone::serve
