#pragma once
// The mock config tests' way in: a config from YAML text, and the message
// of a config that is refused.
#include <string>
#include <string_view>

#include "mock/config.h"

namespace millstone::mock::config_text {

inline MockConfig parse(std::string_view text) {
  return parse_mock_config(text, "mock.yaml");
}

// The message parse_mock_config throws, or "" when the text is valid.
inline std::string error_of(std::string_view text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace millstone::mock::config_text
