#include "serve/saved_scenarios.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace millstone::serve {

namespace {

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() > suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool list_saved_scenarios(const std::string& dir, std::vector<SavedScenario>* out,
                          std::string* error) {
  out->clear();
  if (dir.empty()) return true;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    *error = fmt::format("--scenarios {}: {}", dir, std::strerror(errno));
    return false;
  }
  while (const dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name.front() == '.' || !(ends_with(name, ".yaml") || ends_with(name, ".yml"))) continue;
    SavedScenario s;
    s.name = name;
    s.path = dir + "/" + name;
    struct stat st {};
    // Regular files only (a symlink to one counts): a run reads it as a scenario file.
    if (::stat(s.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    s.bytes = static_cast<uint64_t>(st.st_size);
    s.modified_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    out->push_back(std::move(s));
  }
  ::closedir(d);
  std::sort(out->begin(), out->end(),
            [](const SavedScenario& a, const SavedScenario& b) { return a.name < b.name; });
  return true;
}

}  // namespace millstone::serve
