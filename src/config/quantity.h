#pragma once
// The one grammar for durations and rates, wherever a person writes them:
// command-line flags, scenario files and mock configurations
// (docs/scenarios.md#durations-and-rates).
//
//   duration  := part+          "250us", "20ms", "1.5s", "2m", "1h", "1m30s", "1h2m3.5s"
//   part      := number unit    optional blanks between number and unit: "10 s"
//   number    := digits [ "." digits ]       no sign, no exponent
//   unit      := us | µs | ms | s | m | h    a unit is required: "10" is ambiguous
//   rate      := number [ "/s" | "/m" | "/h" ]   per second unless said: "100", "6000/m"
//
// The functions return nullopt and set *problem to the rest of a one-line
// message, to follow the value being described:
//   "--duration" + " \"10\" " + "has no unit; expected a number and a unit, such as ..."
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace millstone::config {

// Soak tests run for hours; a week is beyond any real run and keeps sums of
// durations far from overflow.
inline constexpr int64_t kMaxDurationUs = int64_t{7} * 24 * 3600 * 1'000'000;

// Microseconds, at most max_us (its message names it in hours).
std::optional<int64_t> parse_duration_us(std::string_view text, std::string* problem,
                                         int64_t max_us = kMaxDurationUs);
// Per second, in [min, max]. `counted` names what is counted in the
// message: "iterations", "requests".
std::optional<double> parse_rate_per_s(std::string_view text, std::string_view counted,
                                       double min_per_s, double max_per_s, std::string* problem);

}  // namespace millstone::config
