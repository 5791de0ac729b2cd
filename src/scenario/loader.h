#pragma once
// Scenario files (docs/scenarios.md) -> an immutable Plan. Every error names
// FILE:LINE:COLUMN and what was expected; unknown keys are errors.
#include <memory>
#include <string>
#include <string_view>

#include "config/error.h"
#include "scenario/plan.h"

namespace millstone::scenario {

// Start-up only. what() is one line: "FILE:LINE:COL: what was wrong; what was expected"
// (config::Error keeps the one-line promise, whatever text a message quotes).
class ScenarioError : public config::Error {
 public:
  using config::Error::Error;
};

// Data files (CSV, JSON) are read relative to the scenario file's folder.
std::unique_ptr<Plan> load_scenario_file(const std::string& path);
// `source_name` prefixes messages; `base_dir` resolves data file paths.
std::unique_ptr<Plan> parse_scenario(std::string_view yaml_text, const std::string& source_name,
                                     const std::string& base_dir);
// Overrides from the command line (--target, --duration...) are applied by the CLI afterwards.

}  // namespace millstone::scenario
