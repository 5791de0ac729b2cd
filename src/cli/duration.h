#pragma once
#include <cstdint>
#include <string>

namespace millstone::cli {

// Durations are parsed by config::parse_duration_us (one grammar for flags
// and files) and, for flags, cli::parse_duration_flag.
// 1234567 us -> "1.23s"; for messages.
std::string format_duration_us(int64_t us);

}  // namespace millstone::cli
