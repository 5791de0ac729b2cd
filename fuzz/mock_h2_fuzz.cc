// Feeds arbitrary bytes to the mock's HTTP/2 connection (H2Connection over a
// real route table: plain, templated, delayed, reset, stalled routes) as a
// client would, cut into reads by the first byte, and checks that what the
// server writes is a well-formed sequence of HTTP/2 frames starting with its
// SETTINGS. Byte 0: bit 0 prepends a valid client preface (so the fuzzer
// spends its time on frames), bits 1-7 the read size.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mock/config.h"
#include "mock/h2_connection.h"
#include "mock/router.h"
#include "mock/template.h"
#include "net/event_loop.h"

namespace {

using namespace millstone::mock;

const char* const kYaml = R"(
routes:
  - path: /hello
    headers: {X-Mock: "yes"}
    body: "hello\n"
  - path: /later
    latency: 1us
    body: "later\n"
  - method: POST
    path: /echo/:id
    headers: {X-Id: "{{ path.id }}", X-Ua: "{{ request.header.user-agent }}"}
    body: '{"id":"{{ path.id | json }}","n":"{{ request.json.n }}","q":"{{ request.query.q }}"}'
  - path: /flaky
    errors:
      - {rate: 0.3, reset: true}
      - {rate: 0.3, status: 503, body: "busy {{ uuid }}"}
      - {rate: 0.2, stall: forever}
      - {rate: 0.2, stall: 1us}
  - path: /empty
    status: 204
)";

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "mock_h2_fuzz: %s\n", what);
  std::abort();
}

class FuzzHost final : public H2Host {
 public:
  void count(int route, Count) override {
    if (route < kMalformed) die("count for an impossible route");
  }
  std::string stats_json() override { return "{}"; }
  bool websocket_path(std::string_view target) override { return target == "/ws"; }
};

class Sink final : public H2Owner {
 public:
  void h2_wants_write() override { wanted = true; }
  bool wanted = false;
};

// Everything an input may change (the PRNG's draws, the sequences, the
// counters, pending timers) is built anew for each input, so that a saved
// crash reproduces on its own; only the parsed config is shared.
struct World {
  explicit World(const MockConfig& config) : config(config) {}
  const MockConfig& config;
  Router router{config};
  Prng prng = Prng::for_worker(1, 0);
  std::vector<std::atomic<uint64_t>> sequences = std::vector<std::atomic<uint64_t>>(16);
  TemplateRenderer renderer{prng, sequences, config.routes.size()};
  millstone::net::EventLoop loop;
  FuzzHost host;
  H2Counters counters;
  // Small limits, so that the fuzzer reaches them.
  H2Options options{true, 4, 512, 256};
  H2Responses responses{config};
  H2Context context{&config, router, renderer, prng, loop, host, counters, options, &responses};
};

// Every byte the server wrote must be whole frames of sane sizes.
void check_frames(const std::string& out) {
  size_t pos = 0;
  bool first = true;
  while (pos < out.size()) {
    if (out.size() - pos < 9) die("a truncated frame header");
    const auto* p = reinterpret_cast<const uint8_t*>(out.data() + pos);
    const size_t length = (size_t{p[0]} << 16) | (size_t{p[1]} << 8) | p[2];
    if (first && p[3] != 4) die("the server's first frame is not SETTINGS");
    if (length > 16384) die("a frame above the default SETTINGS_MAX_FRAME_SIZE");
    if (out.size() - pos - 9 < length) die("a truncated frame payload");
    first = false;
    pos += 9 + length;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const MockConfig* const parsed = new MockConfig(parse_mock_config(kYaml, "<fuzz>"));
  if (size == 0) return 0;
  auto world = std::make_unique<World>(*parsed);
  const uint8_t config = data[0];
  std::string input;
  if (config & 1) input.assign(kH2Preface);
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t step = (config >> 1) == 0 ? input.size() : (config >> 1);

  Sink sink;
  std::string out;
  {
    H2Connection connection(world->context, sink);
    for (size_t pos = 0; pos < input.size() && !connection.finished(); pos += step) {
      connection.receive(std::string_view(input).substr(pos, step));
      connection.send(&out, SIZE_MAX);
    }
    // Delayed answers (1 us) come due; their frames follow.
    world->loop.run_once(0);
    connection.send(&out, SIZE_MAX);
    connection.goaway();
    connection.send(&out, SIZE_MAX);
  }
  check_frames(out);
  return 0;
}
