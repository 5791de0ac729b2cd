#pragma once
// The local run history: every run's record in one SQLite database, so runs
// can be listed, shown, compared and a baseline kept per scenario.
// Location: $MILLSTONE_HISTORY if set, else $XDG_DATA_HOME/millstone/history.db,
// else ~/.local/share/millstone/history.db (docs/history.md).
#include <string>

#include "results/record.h"

namespace millstone::results {

std::string default_history_path();

}  // namespace millstone::results
