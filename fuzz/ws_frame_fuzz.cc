// Feeds arbitrary bytes to the WebSocket FrameParser, once whole and cut into
// reads several ways, and aborts if the events or the error differ. Then the
// round trip: the events of the input, written back with append_frame (as
// single frames, and with each message cut into fragments with a ping
// between), must parse back to the same events.
// Byte 0 configures the run: bit 0 server role (frames must be masked),
// bit 1 a tiny message limit (64 bytes).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "ws/frame.h"

namespace {

using millstone::ws::append_close;
using millstone::ws::append_frame;
using millstone::ws::close_code_allowed;
using millstone::ws::Event;
using millstone::ws::EventSink;
using millstone::ws::FrameError;
using millstone::ws::FrameParser;
using millstone::ws::Opcode;
using millstone::ws::Role;

struct Seen {
  Event::Kind kind;
  std::string payload;
  uint16_t close_code;
  std::string close_reason;
  bool operator==(const Seen&) const = default;
};

struct Outcome {
  std::vector<Seen> events;
  FrameError error = FrameError::kNone;
  size_t consumed = 0;
  bool operator==(const Outcome&) const = default;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "ws_frame_fuzz: %s\n", what);
  std::abort();
}

class Recorder : public EventSink {
 public:
  explicit Recorder(std::vector<Seen>* out) : out_(out) {}
  bool on_event(const Event& e) override {
    if (e.kind != Event::Kind::kClose && e.close_code != millstone::ws::kCloseNoStatus) {
      die("close code on a non-close event");
    }
    out_->push_back({e.kind, std::string(e.payload), e.close_code, std::string(e.close_reason)});
    return out_->size() < 64;
  }

 private:
  std::vector<Seen>* out_;
};

Outcome run(const char* data, size_t size, const std::vector<size_t>& cuts, Role role, size_t max) {
  FrameParser parser(role, max);
  Outcome out;
  Recorder sink(&out.events);
  std::string pending;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(size);
  for (size_t end : ends) {
    if (end <= start || end > size) continue;
    pending.append(data + start, end - start);
    start = end;
    auto r = parser.parse(pending.data(), pending.size(), sink);
    if (r.consumed > pending.size()) die("consumed more than given");
    out.consumed += r.consumed;
    pending.erase(0, r.consumed);
    if (r.error != FrameError::kNone) {
      out.error = r.error;
      return out;
    }
    if (r.stopped) return out;
    if (parser.buffered_bytes() > max) die("buffered more than the message limit");
  }
  return out;
}

// Writes the events back as frames. `fragment` cuts each data message in
// two with a ping in between; the mask key varies per frame.
std::string rewrite(const std::vector<Seen>& events, Role role, bool fragment) {
  std::string wire;
  uint32_t key = 0x9e3779b9;
  auto mask = [&]() -> std::optional<uint32_t> {
    if (role == Role::kClient) return std::nullopt;
    key = key * 1664525u + 1013904223u;
    return key;
  };
  for (const Seen& e : events) {
    switch (e.kind) {
      case Event::Kind::kText:
      case Event::Kind::kBinary: {
        const Opcode op = e.kind == Event::Kind::kText ? Opcode::kText : Opcode::kBinary;
        if (fragment && !e.payload.empty()) {
          const size_t half = e.payload.size() / 2;
          append_frame(&wire, op, std::string_view(e.payload).substr(0, half), false, mask());
          append_frame(&wire, Opcode::kPing, "mid", true, mask());
          append_frame(&wire, Opcode::kContinuation, std::string_view(e.payload).substr(half), true,
                       mask());
        } else {
          append_frame(&wire, op, e.payload, true, mask());
        }
        break;
      }
      case Event::Kind::kPing:
        append_frame(&wire, Opcode::kPing, e.payload, true, mask());
        break;
      case Event::Kind::kPong:
        append_frame(&wire, Opcode::kPong, e.payload, true, mask());
        break;
      case Event::Kind::kClose:
        if (e.close_code != millstone::ws::kCloseNoStatus && !close_code_allowed(e.close_code)) {
          die("parser accepted a close code that is not allowed");
        }
        append_close(&wire, e.close_code, e.close_reason, mask());
        break;
    }
  }
  return wire;
}

// What the parser must report for the rewritten, fragmented stream.
std::vector<Seen> with_pings(const std::vector<Seen>& events) {
  std::vector<Seen> out;
  for (const Seen& e : events) {
    if ((e.kind == Event::Kind::kText || e.kind == Event::Kind::kBinary) && !e.payload.empty()) {
      out.push_back({Event::Kind::kPing, "mid", millstone::ws::kCloseNoStatus, ""});
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const uint8_t config = bytes[0];
  const Role role = (config & 1) ? Role::kServer : Role::kClient;
  const size_t max = (config & 2) ? 64 : 1 << 20;
  const char* data = reinterpret_cast<const char*>(bytes + 1);
  size -= 1;

  const Outcome whole = run(data, size, {}, role, max);
  std::vector<std::vector<size_t>> splits;
  if (size > 1) {
    splits.push_back({size / 2});
    splits.push_back({size / 3, 2 * size / 3});
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
    if (run(data, size, cuts, role, max) != whole) die("split feeding changed the outcome");
  }

  // Round trip. Close reasons over 123 bytes cannot occur (control frames
  // are at most 125 bytes), so append_close never truncates here.
  for (bool fragment : {false, true}) {
    const std::string wire = rewrite(whole.events, role, fragment);
    const Outcome again = run(wire.data(), wire.size(), {}, role, max);
    const std::vector<Seen> expected = fragment ? with_pings(whole.events) : whole.events;
    if (again.error != FrameError::kNone) die("rewritten frames do not parse");
    // The recorder stops at 64 events; compare what both runs saw.
    const size_t n = std::min(again.events.size(), expected.size());
    if (again.events.size() < std::min<size_t>(expected.size(), 64)) die("round trip lost events");
    for (size_t i = 0; i < n; ++i)
      if (!(again.events[i] == expected[i])) die("round trip changed an event");
  }
  return 0;
}
