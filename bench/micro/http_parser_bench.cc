// Cost of parsing one response on the load generator's hot path (and one
// request on the mock server's), to compare with wrk's http_parser: the
// client must stay far cheaper than the server it is measuring.
#include <benchmark/benchmark.h>

#include <string>

#include "http/request_parser.h"
#include "http/response_parser.h"

namespace millstone::http {
namespace {

// A typical small API response: 8 headers, 100-byte body.
const std::string kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.24.0\r\n"
    "Date: Mon, 01 Jan 2024 12:00:00 GMT\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Content-Length: 100\r\n"
    "Connection: keep-alive\r\n"
    "Cache-Control: no-cache, no-store\r\n"
    "X-Request-Id: 7f3c2a9e-1b4d-4c8e-9f0a-5d6e7f8a9b0c\r\n"
    "Vary: Accept-Encoding\r\n"
    "\r\n" +
    std::string(100, 'x');

const std::string kChunkedResponse =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.24.0\r\n"
    "Date: Mon, 01 Jan 2024 12:00:00 GMT\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Connection: keep-alive\r\n"
    "Cache-Control: no-cache, no-store\r\n"
    "X-Request-Id: 7f3c2a9e-1b4d-4c8e-9f0a-5d6e7f8a9b0c\r\n"
    "Vary: Accept-Encoding\r\n"
    "\r\n"
    "40\r\n" +
    std::string(64, 'x') + "\r\n24\r\n" + std::string(36, 'y') + "\r\n0\r\n\r\n";

const std::string kRequest =
    "GET /api/v1/items?limit=10 HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "User-Agent: millstone/0.1.0\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip\r\n"
    "Connection: keep-alive\r\n"
    "X-Request-Id: 42\r\n"
    "\r\n";

void parse_responses(benchmark::State& state, const std::string& wire, bool capture) {
  ResponseParser parser;
  parser.set_capture(capture, 4096);
  for (auto _ : state) {
    parser.reset(false);
    auto r = parser.feed(wire.data(), wire.size());
    if (r.state != ResponseParser::State::kComplete) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire.size()));
}

void BM_Response200(benchmark::State& state) {
  parse_responses(state, kResponse, false);
}
void BM_ResponseChunked(benchmark::State& state) {
  parse_responses(state, kChunkedResponse, false);
}
void BM_Response200Capture(benchmark::State& state) {
  parse_responses(state, kResponse, true);
}

// The rare path: the header block is cut in the middle of a line.
void BM_Response200SplitHeader(benchmark::State& state) {
  ResponseParser parser;
  const size_t cut = kResponse.find("Cache-Control") + 5;
  for (auto _ : state) {
    parser.reset(false);
    parser.feed(kResponse.data(), cut);
    auto r = parser.feed(kResponse.data() + cut, kResponse.size() - cut);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Request(benchmark::State& state) {
  RequestParser parser;
  for (auto _ : state) {
    parser.reset();
    auto r = parser.feed(kRequest.data(), kRequest.size());
    if (r.state != RequestParser::State::kComplete) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Response200);
BENCHMARK(BM_ResponseChunked);
BENCHMARK(BM_Response200Capture);
BENCHMARK(BM_Response200SplitHeader);
BENCHMARK(BM_Request);

}  // namespace
}  // namespace millstone::http

BENCHMARK_MAIN();
