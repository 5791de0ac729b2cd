// Feeds arbitrary bytes to ResponseParser as a stream of pipelined responses,
// once whole and cut into reads several ways, and aborts if the outcomes
// differ: split reads are where incremental parsers hide their bugs.
// Byte 0 configures the run: bit 0 HEAD, bit 1 capture, bit 2 tiny header
// limit, bit 3 end with finish_eof().
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "http/response_parser.h"

namespace {

using millstone::http::ParseError;
using millstone::http::ResponseParser;
using State = ResponseParser::State;

struct Outcome {
  State state;
  ParseError error;
  int status;
  bool keep_alive;
  uint64_t body_bytes;
  size_t end;  // stream offset where a complete response ended
  std::string body;
  std::string content_type;
  bool operator==(const Outcome&) const = default;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "response_parser_fuzz: %s\n", what);
  std::abort();
}

std::vector<Outcome> run(const char* data, size_t size, const std::vector<size_t>& cuts,
                         uint8_t config) {
  const bool head = config & 1;
  const bool capture = config & 2;
  ResponseParser parser((config & 4) ? 64 : 64 * 1024);
  parser.set_capture(capture, 32);
  parser.reset(head);
  std::vector<Outcome> out;
  auto record = [&](State state, size_t end) {
    out.push_back({state, parser.error(), parser.status(), parser.keep_alive(), parser.body_bytes(),
                   state == State::kComplete ? end : 0, std::string(parser.body()),
                   std::string(parser.header("content-type"))});
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
      parser.reset(head);
    }
    start = end;
  }
  State last = (config & 8) ? parser.finish_eof() : State::kNeedMore;
  if (last == State::kComplete && parser.finish_eof() != State::kComplete) {
    die("finish_eof not idempotent");
  }
  record(last, size);
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
