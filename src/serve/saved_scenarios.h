#pragma once
// The saved scenarios a console offers (`millstone serve --scenarios DIR`,
// GET /v1/scenarios): the *.yaml and *.yml files directly in one directory,
// read when asked, so a file added or edited there is offered at once. A run
// names one by its path (POST /v1/runs {"scenario": path}).
#include <cstdint>
#include <string>
#include <vector>

namespace millstone::serve {

struct SavedScenario {
  std::string name;  // the file's name: checkout.yaml
  std::string path;  // absolute
  uint64_t bytes = 0;
  int64_t modified_ms = 0;  // Unix time
};

// The directory's scenario files sorted by name; empty when `dir` is empty.
// False with *error (naming the directory) when it cannot be read.
bool list_saved_scenarios(const std::string& dir, std::vector<SavedScenario>* out,
                          std::string* error);

}  // namespace millstone::serve
