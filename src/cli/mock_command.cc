#include <thread>

#include <fmt/format.h>

#include "cli/builtin_mock.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "mock/config.h"
#include "mock/server.h"
#include "text/printable.h"

namespace millstone::cli {

mock::MockConfig builtin_mock_config() {
  return mock::parse_mock_config(kBuiltinMockYaml, "<built-in examples/mock.yaml>");
}

int mock_command(const MockOptions& options) {
  mock::MockConfig config;
  try {
    config = options.config.empty() ? builtin_mock_config()
                                    : mock::load_mock_config_file(options.config);
  } catch (const mock::ConfigError& e) {
    fmt::print(stderr, "millstone mock: {}\n", text::printable(e.what()));  // quotes the file
    return kExitConfig;
  }
  if (options.seed) {
    config.seed = *options.seed;
    config.seed_given = true;
  }
  std::string error;
  auto listen = net::parse_listen_address(options.listen, &error);
  if (!listen) {
    fmt::print(stderr, "millstone mock: --listen: {}\n", error);
    return kExitUsage;
  }
  mock::ServerOptions server;
  server.listen = *listen;
  server.workers =
      options.workers ? options.workers : std::max(1u, std::thread::hardware_concurrency());
  server.print_stats_on_exit = !options.quiet;
  switch (mock::run_mock_server(config, server)) {
    case mock::ServerExit::kStopped:
      return kExitOk;
    case mock::ServerExit::kCannotListen:
      return kExitCannotListen;
    case mock::ServerExit::kFailed:
      break;
  }
  return kExitInternal;
}

}  // namespace millstone::cli
