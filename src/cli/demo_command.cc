#include <fmt/format.h>

#include "cli/builtin_mock.h"
#include "cli/commands.h"
#include "cli/duration.h"
#include "cli/exit_codes.h"
#include "mock/server.h"

namespace millstone::cli {

int demo_command(const DemoOptions& options) {
  mock::MockConfig config = builtin_mock_config();
  mock::ServerOptions server;
  server.listen = *net::make_endpoint("127.0.0.1", 0);
  server.workers = 1;
  server.print_stats_on_exit = false;
  net::Endpoint bound;
  std::string error;
  pid_t mock = mock::start_mock_server(config, server, &bound, &error);
  if (mock < 0) {
    fmt::print(stderr, "millstone demo: cannot start the built-in mock server: {}\n", error);
    return kExitInternal;
  }
  std::string base = fmt::format("http://{}", bound.to_string());
  fmt::print(
      "millstone demo: the built-in mock server (routes of examples/mock.yaml) listens on {}\n"
      "Running: millstone run {}/api/items -c {} -d {}\n",
      base, base, options.connections, format_duration_us(options.duration_us));
  std::fflush(stdout);
  RunOptions run;
  run.url = base + "/api/items";
  run.connections = options.connections;
  run.duration_us = options.duration_us;
  int code = run_command(run);
  mock::stop_mock_server(mock);
  if (code == kExitOk) {
    fmt::print(
        "\nNext: serve the mock yourself and try the open model (latency counted from when\n"
        "each request was due, so stalls cannot hide):\n"
        "  millstone mock --listen 127.0.0.1:8080 &\n"
        "  millstone run http://127.0.0.1:8080/api/items --rate 2000 -d 10s\n");
  }
  return code;
}

}  // namespace millstone::cli
