// Feeds arbitrary bytes to the control API's patch parser as a patch of each
// route (HTTP and socket) of a small config, then merges a second patch over
// the first. A rejected patch must say why in one line; an accepted one must
// apply to a config whose routes stay servable: rates add up to at most 1,
// latencies sample in range, statuses are final, and the state written
// reads back to the same routes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mock/config.h"
#include "mock/control.h"
#include "mock/response.h"

namespace {

using namespace millstone::mock;

const MockConfig& file() {
  static const MockConfig config = parse_mock_config(R"(
routes:
  - path: /hello
    body: "hello\n"
  - name: orders
    method: POST
    path: /api/orders/:id
    headers: {X-Order: "{{ counter.orders }}"}
    errors: [{rate: 1%, status: 503}]
  - path: /empty
    status: 204
websockets:
  - name: ticker
    path: /ws
    push: {every: 1s, message: tick}
)",
                                                     "fuzz.yaml");
  return config;
}

void check(const MockConfig& config) {
  Prng prng(1);
  for (const Route& route : config.routes) {
    if (route.status < 200 || route.status > 599) std::abort();
    double total = 0;
    for (const ErrorRule& rule : route.errors) {
      if (rule.rate < 0 || rule.rate > 1) std::abort();
      total += rule.rate;
    }
    if (total > 1 + 1e-9) std::abort();
    const int64_t delay = route.latency.sample_us(prng);
    if (delay < 0 || delay > kMaxLatencyUs) std::abort();
    pick_error(route, prng);
    if (build_response(route.status, route.headers, route.body, true).empty()) std::abort();
  }
  for (const SocketRoute& route : config.websockets) {
    if (route.push && route.push->every_us < 1000) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // First half patches, second half patches again over the result.
  const std::string_view first = text.substr(0, size / 2);
  const std::string_view second = text.substr(size / 2);
  for (ControlTarget target : {ControlTarget::kHttp, ControlTarget::kSocket}) {
    const size_t routes = target == ControlTarget::kHttp ? file().routes.size() : 1;
    for (size_t index = 0; index < routes; ++index) {
      std::string state;
      for (std::string_view body : {text, first, second}) {
        std::string merged;
        PatchError error;
        if (!merge_patch(file(), state, target, index, body, &merged, &error)) {
          if (error.message.empty() || error.message.find('\n') != std::string::npos) std::abort();
          continue;
        }
        const MockConfig effective = apply_state(file(), merged);
        check(effective);
        // The state reads back the same: applying it twice changes nothing.
        std::string again;
        if (!merge_patch(file(), merged, target, index, "{}", &again, &error)) std::abort();
        if (apply_state(file(), again).routes[0].status != effective.routes[0].status) std::abort();
        state = merged;
      }
    }
  }
  return 0;
}
