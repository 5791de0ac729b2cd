#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "proxy/standalone.h"

namespace millstone::cli {

int proxy_command(const proxy::StandaloneOptions& options) {
  switch (proxy::run_standalone(options)) {
    case proxy::StandaloneExit::kStopped:
      return kExitOk;
    case proxy::StandaloneExit::kUsage:
      return kExitUsage;
    case proxy::StandaloneExit::kConfig:
      return kExitConfig;
    case proxy::StandaloneExit::kCannotListen:
      return kExitCannotListen;
    case proxy::StandaloneExit::kFailed:
      break;
  }
  return kExitInternal;
}

}  // namespace millstone::cli
