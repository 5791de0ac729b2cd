#pragma once
// HTTP/1.1 for the control API on the fault proxy's event loop: keep-alive,
// pipelining, "Expect: 100-continue" (curl sends it for larger bodies),
// requests parsed by http::RequestParser with bounded headers (64 KiB) and
// bodies (1 MiB; larger is 413). A connection idle for a minute is closed,
// and one whose answers are not being read stops being read.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/event_loop.h"
#include "net/socket.h"
#include "proxy/api.h"

namespace millstone::proxy {

class ApiConnection;

// One complete HTTP exchange on bytes: what the server answers to `input`
// (any number of pipelined requests), and whether it then closes. Used by
// the server's connections and by the fuzzer (fuzz/proxy_api_fuzz.cc).
class ApiSession {
 public:
  explicit ApiSession(ControlApi& api);
  ~ApiSession();
  // Consumes bytes; appends responses to *out. Returns false once the
  // connection must close (after *out is sent): a malformed request, or
  // "Connection: close".
  bool feed(const char* data, size_t size, std::string* out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

class ApiServer final : public net::IoHandler {
 public:
  ApiServer(net::EventLoop& loop, ControlApi& api);
  ~ApiServer() override;
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds and listens; false with errno set.
  bool listen(const net::Endpoint& endpoint);
  const net::Endpoint& endpoint() const { return endpoint_; }

  void on_io(uint32_t events) override;

 private:
  friend class ApiConnection;
  void retire(ApiConnection* connection);

  net::EventLoop& loop_;
  ControlApi& api_;
  int fd_ = -1;
  uint64_t registration_ = 0;
  net::Endpoint endpoint_;
  std::vector<char> read_buffer_;
  std::unordered_map<ApiConnection*, std::unique_ptr<ApiConnection>> connections_;
  std::vector<std::unique_ptr<ApiConnection>> graveyard_;
  net::Timer reaper_;
  net::Timer accept_retry_;
};

}  // namespace millstone::proxy
