#pragma once
// The text of one threshold, "latency.p95{step=login} < 300ms", parsed into a
// Threshold. Names in {tag=value} stay as written; the loader resolves them
// against the plan's steps, flows and checks (resolve_suffix).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scenario/plan.h"

namespace millstone::scenario {

// On failure returns nullopt, *error says what was wrong and what was
// expected, and *error_offset is the byte in `text` it is about.
// Threshold::text is `text` trimmed; location is left to the caller.
std::optional<Threshold> parse_threshold(std::string_view text, std::string* error,
                                         size_t* error_offset);

// Names made of components ("shopper", "checkout", "pay"), joined with "/".
// `wanted` matches a name written in full, or a run of its last components
// ("pay", "checkout/pay"). Full matches win over suffix matches; the result
// lists every index that matches at the best level (more than one = ambiguous).
std::vector<size_t> resolve_suffix(std::string_view wanted,
                                   const std::vector<std::vector<std::string>>& names);

}  // namespace millstone::scenario
