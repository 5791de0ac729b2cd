#pragma once
// The one error of start-up configuration (the mock's config, scenario files).
// Each loader throws its own type derived from this one (mock::ConfigError,
// scenario::ScenarioError) so callers can tell them apart; the CLI turns any
// of them into one line and exit code 2 (docs/exit-codes.md).
#include <stdexcept>
#include <string>

namespace millstone::config {

// what() is one line: "FILE:LINE:COL: what was wrong; what was expected", or
// "FILE: ..." without a position. The promise is kept here, whatever text a
// message quotes (yaml-cpp messages, file names, user text).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(one_line(message)) {}

 private:
  static std::string one_line(std::string text) {
    for (char& c : text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return text;
  }
};

}  // namespace millstone::config
