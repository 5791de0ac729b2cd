// TEMPORARY (replaced by the history work in this session).
#include "cli/history_commands.h"

#include "cli/exit_codes.h"

namespace millstone::cli {

void record_in_history(const RunOptions&, const results::RunRecord&) {}
int runs_command(const HistoryOptions&) {
  return kExitInternal;
}
int show_command(const HistoryOptions&) {
  return kExitInternal;
}
int compare_command(const HistoryOptions&) {
  return kExitInternal;
}
int baseline_command(const HistoryOptions&) {
  return kExitInternal;
}

}  // namespace millstone::cli
