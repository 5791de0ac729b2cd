#pragma once
// The run history as seen from the command line: recording each run, and
// the `runs`, `show`, `compare` and `baseline` subcommands (commands.h).
#include "cli/commands.h"
#include "results/record.h"

namespace millstone::cli {

// Records the run unless --no-history. A database that cannot be opened or
// written is one warning on stderr naming it; the run's exit code is kept.
void record_in_history(const RunOptions& options, const results::RunRecord& record);

}  // namespace millstone::cli
