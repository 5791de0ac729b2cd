#include "scenario/response_view.h"

namespace millstone::scenario {

namespace {

// ASCII-only on purpose: header names are tokens, and locale-aware folding
// (strcasecmp) would make matching depend on the process environment.
bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

}  // namespace

const std::string_view* ResponseView::find_header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals_ascii(n, name)) return &v;
  }
  return nullptr;
}

std::string_view ResponseView::header(std::string_view name) const {
  const std::string_view* value = find_header(name);
  return value ? *value : std::string_view();
}

}  // namespace millstone::scenario
