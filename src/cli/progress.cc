#include "cli/progress.h"

#include <fmt/format.h>

#include "cli/summary.h"

namespace millstone::cli {

ConsoleProgress::ConsoleProgress(std::FILE* out, bool terminal, double planned_s)
    : out_(out), terminal_(terminal), planned_s_(planned_s) {}

void ConsoleProgress::on_second(uint64_t index, const metrics::Snapshot& second,
                                const metrics::Snapshot& total) {
  uint64_t elapsed = index + 1;
  if (!terminal_ && elapsed % kLineEverySeconds != 0) return;
  std::string line = fmt::format(
      "[{:>4}s/{:.0f}s] {:>9} req/s  errors {:<6} p50 {:<8} p99 {:<8} total {}", elapsed,
      planned_s_, group_thousands(second.requests), group_thousands(second.errors),
      second.latency.count() ? format_latency(second.latency.value_at(0.5)) : "-",
      second.latency.count() ? format_latency(second.latency.value_at(0.99)) : "-",
      group_thousands(total.requests));
  if (terminal_) {
    fmt::print(out_, "\r\x1b[K{}", line);
    line_open_ = true;
  } else {
    fmt::print(out_, "{}\n", line);
  }
  std::fflush(out_);
}

void ConsoleProgress::on_finish() {
  if (line_open_) {
    fmt::print(out_, "\n");
    std::fflush(out_);
  }
  line_open_ = false;
}

}  // namespace millstone::cli
