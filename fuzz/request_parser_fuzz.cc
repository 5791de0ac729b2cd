// Feeds arbitrary bytes to RequestParser as a stream of pipelined requests,
// whole and cut into reads several ways, and aborts if the outcomes differ.
// Byte 0 configures the run: bit 0 tiny header limit, bit 1 tiny body limit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "http/request_parser.h"

namespace {

using millstone::http::RequestError;
using millstone::http::RequestParser;
using State = RequestParser::State;

struct Outcome {
  State state;
  RequestError error;
  std::string method, target, path, query, body, host;
  int version_minor;
  bool keep_alive;
  bool expects_continue;
  size_t header_count;
  size_t end;
  bool operator==(const Outcome&) const = default;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "request_parser_fuzz: %s\n", what);
  std::abort();
}

std::vector<Outcome> run(const char* data, size_t size, const std::vector<size_t>& cuts,
                         uint8_t config) {
  RequestParser parser((config & 1) ? 96 : 64 * 1024, (config & 2) ? 16 : 1024 * 1024);
  std::vector<Outcome> out;
  auto record = [&](State state, size_t end) {
    if (state == State::kComplete) {
      if (parser.path().empty() || parser.method().empty() || parser.target().empty()) {
        die("complete request without method, target or path");
      }
      for (size_t i = 0; i < parser.header_count(); ++i) {
        if (parser.header_name(i).empty()) die("empty header name");
      }
    }
    out.push_back(
        {state, parser.error(), std::string(parser.method()), std::string(parser.target()),
         std::string(parser.path()), std::string(parser.query()), std::string(parser.body()),
         std::string(parser.header("host")), parser.version_minor(), parser.keep_alive(),
         parser.expects_continue(), parser.header_count(), state == State::kComplete ? end : 0});
  };
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(size);
  for (size_t end : ends) {
    if (end <= start || end > size) continue;
    size_t at = start;
    while (at < end) {
      auto r = parser.feed(data + at, end - at);
      if (r.consumed > end - at) die("consumed more than given");
      at += r.consumed;
      if (r.state == State::kNeedMore) {
        if (at != end) die("kNeedMore without consuming everything");
        break;
      }
      if (r.state == State::kComplete && r.consumed == 0) die("completed on no bytes");
      record(r.state, at);
      if (r.state == State::kError || out.size() >= 8) return out;
      parser.reset();
    }
    start = end;
  }
  // Only what is settled is compared: a request still in its header block
  // has views that are legitimately incomplete.
  out.push_back({State::kNeedMore,
                 parser.error(),
                 {},
                 {},
                 {},
                 {},
                 {},
                 {},
                 0,
                 false,
                 false,
                 0,
                 parser.headers_complete() ? 1u : 0u});
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const uint8_t config = bytes[0];
  const char* data = reinterpret_cast<const char*>(bytes + 1);
  size -= 1;

  const std::vector<Outcome> whole = run(data, size, {}, config);
  std::vector<std::vector<size_t>> splits;
  if (size > 1) {
    splits.push_back({size / 2});
    splits.push_back({size / 3, 2 * size / 3});
    size_t a = (static_cast<uint8_t>(data[0]) * 131u + static_cast<uint8_t>(data[size - 1])) % size;
    size_t b = (a * 7 + static_cast<uint8_t>(data[size / 2])) % size;
    splits.push_back(a < b ? std::vector<size_t>{a, b} : std::vector<size_t>{b, a});
    std::vector<size_t> stride;
    size_t step = 1 + static_cast<uint8_t>(data[size / 2]) % 13;
    for (size_t i = step; i < size; i += step)
      stride.push_back(i);
    splits.push_back(std::move(stride));
  }
  if (size > 1 && size <= 4096) {
    std::vector<size_t> bytewise;
    for (size_t i = 1; i < size; ++i)
      bytewise.push_back(i);
    splits.push_back(std::move(bytewise));
  }
  for (const auto& cuts : splits) {
    if (run(data, size, cuts, config) != whole) die("split feeding changed the outcome");
  }
  return 0;
}
