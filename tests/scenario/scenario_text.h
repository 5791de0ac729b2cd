#pragma once
// The loader tests' way in: a plan from scenario YAML text (as s.yaml in the
// current directory), and the message of a file that is refused.
#include <memory>
#include <string>
#include <string_view>

#include "scenario/loader.h"

namespace millstone::scenario::scenario_text {

inline std::unique_ptr<Plan> load(std::string_view yaml) {
  return parse_scenario(yaml, "s.yaml", ".");
}

// The message parse_scenario throws, or "(loaded)" when the text is valid.
inline std::string error_of(std::string_view yaml) {
  try {
    load(yaml);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "(loaded)";
}

}  // namespace millstone::scenario::scenario_text
