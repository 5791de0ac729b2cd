#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "cli/builtin_mock.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/limits.h"
#include "mock/config.h"
#include "mock/server.h"
#include "text/printable.h"
#include "tls/options.h"
#include "tls/server_context.h"

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
  if (options.cert_file.empty() != options.key_file.empty()) {
    fmt::print(stderr, "millstone mock: {} needs {} too\n",
               options.cert_file.empty() ? "--key" : "--cert",
               options.cert_file.empty() ? "--cert" : "--key");
    return kExitUsage;
  }
  const bool tls = options.tls || !options.cert_file.empty();
  if (!tls && !options.tls_certificate_out.empty()) {
    fmt::print(stderr, "millstone mock: --tls-cert-out needs --tls or --cert/--key\n");
    return kExitUsage;
  }
  if (options.tls_handshake_timeout_us <= 0) {
    fmt::print(stderr, "millstone mock: --tls-handshake-timeout: expected a duration above 0\n");
    return kExitUsage;
  }
  std::unique_ptr<tls::TlsServerContext> tls_context;
  if (tls) {
    tls::TlsServerOptions tls_options;
    tls_options.cert_file = options.cert_file;
    tls_options.key_file = options.key_file;
    // The server's preference: h2 when the client offers it.
    tls_options.alpn = options.no_http2 ? std::vector<std::string>{"http/1.1"}
                                        : std::vector<std::string>{"h2", "http/1.1"};
    try {
      tls_context = std::make_unique<tls::TlsServerContext>(tls_options);
    } catch (const tls::TlsSetupError& e) {
      fmt::print(stderr, "millstone mock: {}\n", text::printable(e.what()));  // names the file
      return kExitConfig;
    }
    if (!options.tls_certificate_out.empty()) {
      std::ofstream out(options.tls_certificate_out, std::ios::binary | std::ios::trunc);
      out << tls_context->certificate_pem();
      out.close();
      if (!out) {
        fmt::print(stderr, "millstone mock: --tls-cert-out {}: cannot write the file: {}\n",
                   text::printable(options.tls_certificate_out), std::strerror(errno));
        return kExitUsage;
      }
    }
  }
  mock::ServerOptions server;
  server.listen = *listen;
  server.tls = tls_context.get();
  server.tls_handshake_timeout_us = options.tls_handshake_timeout_us;
  server.tls_certificate_out = options.tls_certificate_out;
  server.http2.enabled = !options.no_http2;
  server.http2.max_concurrent_streams = options.max_concurrent_streams;
  server.control_token = options.control_token;
  const uint32_t cores = std::max(1u, std::thread::hardware_concurrency());
  server.workers = options.workers ? options.workers : cores;
  if (options.connections > 0) {
    // Each worker holds connections up to its open-file limit (raised to
    // the hard limit), so N connections need N / limit workers.
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    const uint64_t fd_limit = limit.rlim_max == RLIM_INFINITY ? uint64_t{1} << 20 : limit.rlim_max;
    const uint32_t needed = workers_for_descriptors(options.connections, fd_limit);
    if (options.workers != 0 && options.workers < needed) {
      fmt::print(stderr,
                 "millstone mock: --connections {} at the open-file limit of {} need --workers {} "
                 "or more (or raise the hard limit: 'ulimit -Hn', LimitNOFILE= in systemd)\n",
                 options.connections, fd_limit, needed);
      return kExitUsage;
    }
    if (options.workers == 0) server.workers = std::max(cores, needed);
    if (server.workers > cores) {
      fmt::print(stderr,
                 "millstone mock: {} workers for {} connections at the open-file limit of {} per "
                 "process ({} cores)\n",
                 server.workers, options.connections, fd_limit, cores);
    }
  }
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
