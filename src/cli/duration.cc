#include "cli/duration.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace millstone::cli {

std::optional<int64_t> parse_duration_us(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<int64_t> {
    if (error) *error = why;
    return std::nullopt;
  };
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         ((text[unit_at] >= '0' && text[unit_at] <= '9') || text[unit_at] == '.')) {
    ++unit_at;
  }
  std::string_view number = text.substr(0, unit_at);
  std::string_view unit = text.substr(unit_at);
  if (number.empty()) {
    return fail(
        fmt::format("'{}' is not a duration; expected a number with a unit, like 10s, "
                    "500ms, 2m",
                    text));
  }
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) {
    return fail(fmt::format("'{}' is not a duration; expected a number with a unit", text));
  }
  double scale;
  if (unit == "us") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 1e3;
  } else if (unit == "s") {
    scale = 1e6;
  } else if (unit == "m") {
    scale = 60e6;
  } else if (unit == "h") {
    scale = 3600e6;
  } else if (unit.empty()) {
    return fail(fmt::format("'{}' has no unit; write it as {}s or {}ms", text, number, number));
  } else {
    return fail(
        fmt::format("'{}' has an unknown unit '{}'; expected us, ms, s, m or h", text, unit));
  }
  double us = value * scale;
  if (!std::isfinite(us) || us > 1e15) return fail(fmt::format("'{}' is too long", text));
  return static_cast<int64_t>(std::llround(us));
}

std::string format_duration_us(int64_t us) {
  if (us < 1000) return fmt::format("{}us", us);
  if (us < 1'000'000) return fmt::format("{:.3g}ms", us / 1e3);
  return fmt::format("{:.3g}s", us / 1e6);
}

}  // namespace millstone::cli
