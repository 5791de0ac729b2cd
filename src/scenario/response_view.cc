#include "scenario/response_view.h"

#include "http/syntax.h"

namespace millstone::scenario {

namespace {

using http::syntax::iequals;

}  // namespace

const std::string_view* ResponseView::find_header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return &v;
  }
  return nullptr;
}

std::string_view ResponseView::header(std::string_view name) const {
  const std::string_view* value = find_header(name);
  return value ? *value : std::string_view();
}

}  // namespace millstone::scenario
