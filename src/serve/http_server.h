#pragma once
// HTTP/1.1 (and HTTPS when given a TLS context) for `millstone serve`, on the
// project's event loop and request parser: keep-alive, pipelining, "Expect:
// 100-continue", bounded headers (64 KiB) and bodies (ServeApi::kMaxBodyBytes;
// larger is 413). A connection idle for a minute is closed; one whose answers
// are not being read stops being read. An events request turns its
// connection into a Server-Sent Events stream, closed after the run's `end`
// event; a stream whose client reads too slowly (4 MiB unsent) is dropped.
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "net/event_loop.h"
#include "net/socket.h"
#include "serve/api.h"
#include "tls/server_context.h"

namespace millstone::serve {

class ServeConnection;

class ServeServer final : public net::IoHandler {
 public:
  // `tls` may be null (plain HTTP); it must outlive the server.
  ServeServer(net::EventLoop& loop, ServeApi& api, RunQueue& runs,
              const tls::TlsServerContext* tls);
  ~ServeServer() override;
  ServeServer(const ServeServer&) = delete;
  ServeServer& operator=(const ServeServer&) = delete;

  // Binds and listens; false with errno set.
  bool listen(const net::Endpoint& endpoint);
  const net::Endpoint& endpoint() const { return endpoint_; }

  void on_io(uint32_t events) override;

 private:
  friend class ServeConnection;
  void retire(ServeConnection* connection);

  net::EventLoop& loop_;
  ServeApi& api_;
  RunQueue& runs_;
  const tls::TlsServerContext* tls_;
  int fd_ = -1;
  uint64_t registration_ = 0;
  net::Endpoint endpoint_;
  std::vector<char> read_buffer_;
  std::unordered_map<ServeConnection*, std::unique_ptr<ServeConnection>> connections_;
  std::vector<std::unique_ptr<ServeConnection>> graveyard_;
  net::Timer reaper_;
  net::Timer accept_retry_;
};

}  // namespace millstone::serve
