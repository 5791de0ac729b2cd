#pragma once
// Scenario files (docs/scenarios.md) -> an immutable Plan. Every error names
// FILE:LINE:COLUMN and what was expected; unknown keys are errors.
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "scenario/plan.h"

namespace millstone::scenario {

// Start-up only. what() is one line: "FILE:LINE:COL: what was wrong; what was expected".
class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Data files (CSV, JSON) are read relative to the scenario file's folder.
std::unique_ptr<Plan> load_scenario_file(const std::string& path);
// `source_name` prefixes messages; `base_dir` resolves data file paths.
std::unique_ptr<Plan> parse_scenario(std::string_view yaml_text, const std::string& source_name,
                                     const std::string& base_dir);
// Overrides from the command line (--target, --duration...) are applied by the CLI afterwards.

}  // namespace millstone::scenario
