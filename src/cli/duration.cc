#include "cli/duration.h"

#include <fmt/format.h>

namespace millstone::cli {

std::string format_duration_us(int64_t us) {
  if (us < 1000) return fmt::format("{}us", us);
  if (us < 1'000'000) return fmt::format("{:.3g}ms", us / 1e3);
  return fmt::format("{:.3g}s", us / 1e6);
}

}  // namespace millstone::cli
