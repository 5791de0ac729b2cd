// Feeds arbitrary text to the mock config parser. A ConfigError is the only
// acceptable failure; any other exception, crash or sanitizer report is a bug.
// On success, the router must agree with the plain scan and every route must
// be reachable by its own method and path.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mock/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace millstone::mock;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  MockConfig config;
  try {
    config = parse_mock_config(text, "fuzz.yaml");
  } catch (const ConfigError& e) {
    if (std::string_view(e.what()).find('\n') != std::string_view::npos) std::abort();
    return 0;
  }
  const Router router(config);
  Prng prng(config.seed);
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const Route& route = config.routes[i];
    const std::string_view method =
        route.method == "*" ? std::string_view("PATCH") : std::string_view(route.method);
    const int index = router.match(method, route.path);
    const Route* expected = match_route(config, method, route.path);
    if (index != (expected == nullptr ? -1 : static_cast<int>(expected - config.routes.data()))) {
      std::abort();
    }
    // Not shadowed: a specific-method exact route answers its own requests.
    if (route.method != "*" && !route.prefix && index != static_cast<int>(i)) std::abort();
    if (build_response(route.status, route.headers, route.body, true).empty()) std::abort();
    const int64_t delay = route.latency.sample_us(prng);
    if (delay < 0 || delay > kMaxLatencyUs) std::abort();
    pick_error(route, prng);
  }
  return 0;
}
