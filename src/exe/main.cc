// Thin main: everything lives in the cli component.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "cli/exit_codes.h"

int main(int argc, char** argv) {
  try {
    return millstone::cli::main_command(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "millstone: internal error: %s\n", e.what());
    return millstone::cli::kExitInternal;
  }
}
