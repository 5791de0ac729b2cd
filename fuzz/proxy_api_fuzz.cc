// The fault proxy's control API from raw bytes: HTTP parsing, routing, JSON
// bodies and the proxy operations behind them (creating proxies, toxics,
// updates, populate, reset), on one event loop. Listeners are eventfds and
// names resolve only when numeric, so no port is bound and no DNS is asked.
// Byte 0 cuts the input into reads of (byte 0 % 64) + 1 bytes, so requests
// split anywhere; bit 6 of byte 0 gives the API a token ("fuzz-token", as
// `millstone proxy --token-file` does), so the Authorization check runs too;
// every answer must be a well-formed HTTP response.
#include <sys/eventfd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "net/event_loop.h"
#include "net/socket.h"
#include "proxy/api.h"
#include "proxy/api_server.h"
#include "proxy/fault_proxy.h"

namespace {

[[noreturn]] void die(const char* what, const std::string& out) {
  std::fprintf(stderr, "proxy_api_fuzz: %s\n%.300s\n", what, out.c_str());
  std::abort();
}

void check_responses(const std::string& out) {
  size_t at = 0;
  while (at < out.size()) {
    if (out.compare(at, 9, "HTTP/1.1 ") != 0) die("response does not start with HTTP/1.1", out);
    const int status = std::atoi(out.c_str() + at + 9);
    if (status < 100 || status > 599) die("status out of range", out);
    if (status >= 500 && status != 500) die("unexpected 5xx", out);
    const size_t head_end = out.find("\r\n\r\n", at);
    if (head_end == std::string::npos) die("unterminated head", out);
    size_t length = 0;
    const size_t cl = out.find("Content-Length: ", at);
    if (cl != std::string::npos && cl < head_end)
      length = std::strtoull(out.c_str() + cl + 16, nullptr, 10);
    at = head_end + 4 + length;
    if (at > out.size()) die("body shorter than Content-Length", out);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace millstone;
  if (size == 0) return 0;
  const size_t step = data[0] % 64 + 1;
  net::EventLoop loop;
  proxy::FaultProxyOptions options;
  options.seed = 1;
  options.open_listener = [](const net::Endpoint&) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  };
  options.resolve = [](const std::string& host, uint16_t port, std::string* error) {
    auto endpoint = net::make_endpoint(host == "localhost" ? "127.0.0.1" : host, port);
    if (!endpoint) *error = "not numeric";
    return endpoint;
  };
  proxy::FaultProxy proxies(loop, options);
  proxy::ControlApi api(proxies);
  if (data[0] & 0x40) api.require_token("fuzz-token");
  proxy::ApiSession session(api);
  std::string out;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  while (left > 0) {
    const size_t n = left < step ? left : step;
    const bool open = session.feed(bytes, n, &out);
    bytes += n;
    left -= n;
    if (!open) break;
  }
  // A 100 Continue may stand alone; anything else is a complete response.
  check_responses(out);
  return 0;
}
