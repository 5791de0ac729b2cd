#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace millstone::cli {

// "250us", "20ms", "1.5s", "2m", "1h" -> microseconds. A unit is required:
// "10" is ambiguous and rejected. On failure *error says what was expected.
std::optional<int64_t> parse_duration_us(std::string_view text, std::string* error);
// 1234567 us -> "1.23s"; for messages.
std::string format_duration_us(int64_t us);

}  // namespace millstone::cli
