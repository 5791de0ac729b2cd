// http2::Session::on_read with arbitrary server bytes: whatever a server
// sends, the session reports each request once (a response or a failure),
// never crashes, and its counts stay consistent. The input is split into
// reads at byte values of the first byte, so frame boundaries fall anywhere.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "http2/session.h"

namespace {

using namespace millstone;

struct Listener : http::RequestListener {
  uint64_t outcomes = 0;
  void on_response(http::RequestToken, const http::ResponseInfo& response, int64_t) override {
    if (response.status < 200 || response.status > 999) std::abort();
    ++outcomes;
  }
  void on_request_failed(http::RequestToken, metrics::ErrorCause) override { ++outcomes; }
};

struct Sink : http::Output {
  bool write(std::string_view) override { return true; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Listener listener;
  metrics::Snapshot stats;
  Sink sink;
  http2::Settings settings;
  settings.max_streams = 4;
  // The first byte's top bit: the capturing hook (scenario steps) on the same bytes.
  settings.capture = (data[0] & 0x80) != 0;
  settings.capture_body_bytes = 16;
  http2::Session session(settings, listener, stats);
  if (!session.on_open(sink).ok) std::abort();
  http::RequestSpec spec;
  spec.authority = "fuzz.test";
  spec.method = "POST";
  spec.body = "body";
  const http2::Request request(spec);
  uint64_t submitted = 0;
  while (session.capacity() > 0 && session.submit(request, submitted, 0, sink))
    ++submitted;
  const size_t chunk = 1 + data[0] % 64;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  bool ok = true;
  while (left > 0 && ok) {
    const size_t n = left < chunk ? left : chunk;
    ok = session.on_read(std::span<const char>(bytes, n), sink).ok;
    // A freed stream is taken again, as the load generator would.
    while (ok && session.capacity() > 0 && session.submit(request, submitted, 0, sink))
      ++submitted;
    bytes += n;
    left -= n;
  }
  session.expire(1, 1, sink);
  session.fail_all(metrics::ErrorCause::kClosed);
  if (session.in_flight() != 0 || listener.outcomes != submitted) std::abort();
  return 0;
}
