#pragma once
// The small HTTP/1.1 server of millstone's control APIs (`millstone serve`
// and the fault proxy's Toxiproxy-compatible API), on the project's event
// loop and request parser: keep-alive, pipelining, "Expect: 100-continue",
// bounded headers and bodies (413 / 431 past them, 400 for a malformed
// request, each with a JSON error), HTTPS when given a TLS context. A
// connection idle for a minute is closed; one whose answers are not being
// read (4 MiB unsent) stops being read. A handler may turn a connection into
// a Server-Sent Events stream; a stream whose client reads too slowly is
// dropped, and a comment line every 15 s keeps proxies from closing it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/request_parser.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "tls/server_context.h"

namespace millstone::http {

// The answer to one request.
struct ApiReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;  // none is sent for 204 and 304, nor for HEAD
  std::vector<std::pair<std::string, std::string>> headers;
  // Not empty: the connection becomes a Server-Sent Events stream, named so
  // to the handler's open_stream(); status and body are not sent.
  std::string event_stream;
};

// The sending side of one Server-Sent Events stream.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // One whole event ("event: second\nid: 3\ndata: {...}\n\n").
  virtual void send(std::string_view text) = 0;
  // The last event was sent: close once it is out.
  virtual void end() = 0;
};

class ApiHandler {
 public:
  virtual ~ApiHandler() = default;
  virtual ApiReply handle(const RequestParser& request) = 0;
  // After a reply with `event_stream`: `stream` is valid until
  // close_stream(stream), which comes however the connection ends.
  virtual void open_stream(const std::string& name, EventStream* stream) {
    (void)name;
    stream->end();
  }
  virtual void close_stream(EventStream* stream) { (void)stream; }
};

struct ApiLimits {
  size_t max_header_bytes = 64 * 1024;
  size_t max_body_bytes = 1024 * 1024;
};

// One connection's HTTP exchanges on bytes, without a socket: what the
// server answers to any number of pipelined requests. The server's
// connections use it, and so do the fuzzers and unit tests.
class ApiExchange {
 public:
  enum class Next {
    kMore,    // keep reading requests
    kClose,   // close once *out is sent
    kStream,  // *out holds the stream's head; stream_name() names it
  };
  ApiExchange(ApiHandler& handler, ApiLimits limits);

  // Consumes bytes; appends responses to *out.
  Next feed(const char* data, size_t size, std::string* out);
  const std::string& stream_name() const { return stream_name_; }

 private:
  ApiHandler& handler_;
  ApiLimits limits_;
  RequestParser parser_;
  bool continue_sent_ = false;
  std::string stream_name_;
};

// Appends one whole response: status line, Content-Type, Content-Length,
// "Cache-Control: no-store", the reply's headers, and the body.
void append_reply(std::string* out, const ApiReply& reply, bool head_only, bool close);

class ApiConnection;

class ApiServer final : public net::IoHandler {
 public:
  // `tls` may be null (plain HTTP); it and `handler` must outlive the server.
  ApiServer(net::EventLoop& loop, ApiHandler& handler, ApiLimits limits,
            const tls::TlsServerContext* tls = nullptr);
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
  ApiHandler& handler_;
  ApiLimits limits_;
  const tls::TlsServerContext* tls_;
  int fd_ = -1;
  uint64_t registration_ = 0;
  net::Endpoint endpoint_;
  std::vector<char> read_buffer_;
  std::unordered_map<ApiConnection*, std::unique_ptr<ApiConnection>> connections_;
  std::vector<std::unique_ptr<ApiConnection>> graveyard_;
  net::Timer reaper_;
  net::Timer accept_retry_;
};

}  // namespace millstone::http
