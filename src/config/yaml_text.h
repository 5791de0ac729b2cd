#pragma once
// Small text helpers shared by the configuration readers (the mock's config
// and templates, and the scenario loader): quoting user text into one-line
// messages, "did you mean" distances, and yaml-cpp's stuck-parser guard.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

namespace millstone::config {

// User text quoted into a one-line message: escaped and shortened.
std::string shown(std::string_view text);

// Levenshtein distance, case-sensitive (lower both sides for case-insensitive).
size_t edit_distance(std::string_view a, std::string_view b);

// yaml-cpp 0.7 does not advance past a stray token at document level (",a"):
// LoadAll loops forever and Load returns an empty document. So walk the event
// stream for at most two documents first. Returns where and what is wrong
// when the text is not exactly one document; each reader throws its own error.
struct DocumentProblem {
  YAML::Mark mark;
  std::string message;  // "invalid YAML: unexpected ...; expected well-formed YAML"
};
std::optional<DocumentProblem> find_document_problem(const std::string& text);

}  // namespace millstone::config
