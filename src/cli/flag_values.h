#pragma once
// Numbers, durations, rates and percentile lists given as command-line flags.
// Each parser returns nullopt on bad input and sets *error to one line that
// names the flag, quotes the value and says what was expected:
//   --connections "-1" is not a whole number; expected 1 to 10000000
// Durations and rates use the grammar of scenario files (config/quantity.h).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/options.h"

namespace millstone::cli {

std::optional<uint64_t> parse_whole_flag(std::string_view flag, std::string_view text, uint64_t min,
                                         uint64_t max, std::string* error);
// Above zero: a run, a timeout or a ramp of 0 s means nothing.
std::optional<int64_t> parse_duration_flag(std::string_view flag, std::string_view text,
                                           std::string* error);
// Requests (or iterations) per second above 0: "100", "100/s", "6000/m".
std::optional<double> parse_rate_flag(std::string_view flag, std::string_view text,
                                      std::string* error);
// "50,90,95,99,99.9" (or k6's "p95"): each in (0, 100] with at most 4
// decimals; returned ascending, without repeats.
std::optional<std::vector<double>> parse_percentiles_flag(std::string_view flag,
                                                          std::string_view text,
                                                          std::string* error);
// --tls-min / --tls-max: "1.2" or "1.3".
std::optional<tls::TlsVersion> parse_tls_version_flag(std::string_view flag, std::string_view text,
                                                      std::string* error);
// --alpn: "h2,http/1.1": protocol names offered in this order, each 1 to 255
// printable ASCII characters other than ','.
std::optional<std::vector<std::string>> parse_alpn_flag(std::string_view flag,
                                                        std::string_view text, std::string* error);

// The most a single flag asks for; beyond is a typo (docs/scale.md: one
// machine holds about a million connections).
inline constexpr uint64_t kMaxConnections = 10'000'000;
inline constexpr double kMaxRatePerS = 10'000'000;
inline constexpr uint64_t kMaxWorkers = 4096;

}  // namespace millstone::cli
