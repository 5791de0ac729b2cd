#pragma once
// `millstone proxy`: the fault proxy as a process of its own, with its HTTP
// API, until SIGINT or SIGTERM.
#include <cstdint>
#include <string>

namespace millstone::proxy {

struct StandaloneOptions {
  std::string api = "127.0.0.1:8474";  // Toxiproxy's default API address
  std::string config;                  // proxies to create at start (populate JSON)
  std::string token_file;              // changes through the API need this file's token
  uint64_t seed = 0;
};

enum class StandaloneExit {
  kStopped,       // by a signal
  kUsage,         // --api is not HOST:PORT
  kConfig,        // the config file or the token file is unreadable or invalid
  kCannotListen,  // the API address or a configured proxy's listen address
  kFailed,        // the event loop failed
};

// Prints one line on stderr for each failure, and on stdout the API's
// address once it listens ("millstone proxy: API on http://127.0.0.1:8474").
StandaloneExit run_standalone(const StandaloneOptions& options);

}  // namespace millstone::proxy
