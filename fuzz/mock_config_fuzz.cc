// Feeds arbitrary text to the mock config parser. A ConfigError is the only
// acceptable failure; any other exception, crash or sanitizer report is a bug.
// On success, the router must agree with the plain scan and every route must
// be reachable by its own method and path; templated responses must render
// against a request built from the route (its own body as the request body,
// so simdjson sees arbitrary bytes too) with a Content-Length that matches and
// no line break smuggled into a header.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_parser.h"
#include "mock/config.h"
#include "mock/response.h"
#include "mock/router.h"

namespace {

using namespace millstone::mock;

void check_rendered(const ResponseTemplate& response, bool keep_alive, TemplateRenderer& renderer,
                    const RenderRequest& request) {
  std::string out;
  size_t header_bytes = 0;
  renderer.begin(request);
  renderer.render_response(response, keep_alive, &out, &header_bytes);
  if (header_bytes > out.size()) std::abort();
  const std::string_view head(out.data(), header_bytes);
  const bool bodiless = response.status == 204 || response.status == 304;
  const size_t lines = 2 + response.headers.size() + (bodiless ? 0 : 1) + (keep_alive ? 0 : 1);
  if (static_cast<size_t>(std::count(head.begin(), head.end(), '\n')) != lines) std::abort();
  if (static_cast<size_t>(std::count(head.begin(), head.end(), '\r')) != lines) std::abort();
  if (!bodiless) {
    const std::string length = "Content-Length: " + std::to_string(out.size() - header_bytes);
    if (head.find(length + "\r\n") == std::string_view::npos) std::abort();
  } else if (header_bytes != out.size()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
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
  std::vector<std::atomic<uint64_t>> counters(config.routes.size() + config.counter_names.size());
  TemplateRenderer renderer(prng, counters, config.routes.size());
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const Route& route = config.routes[i];
    const std::string_view method =
        route.method == "*" ? std::string_view("PATCH") : std::string_view(route.method);
    PathParams params;
    const int index = router.match(method, route.path, &params);
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

    millstone::http::RequestParser request;
    const std::string bytes =
        std::string(method) + " " + route.path +
        " HTTP/1.1\r\nX-A: 1\r\nContent-Length: " + std::to_string(route.body.size()) + "\r\n\r\n" +
        route.body;
    const bool parsed = request.feed(bytes.data(), bytes.size()).state ==
                        millstone::http::RequestParser::State::kComplete;
    const RenderRequest render_request{parsed ? &request : nullptr, params, i};
    if (route.templated) {
      check_rendered(*route.templated, true, renderer, render_request);
      check_rendered(*route.templated, false, renderer, render_request);
    }
    for (const ErrorRule& rule : route.errors) {
      if (rule.templated) check_rendered(*rule.templated, true, renderer, render_request);
    }
  }
  return 0;
}
