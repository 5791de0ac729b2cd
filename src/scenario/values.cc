#include "scenario/values.h"

namespace millstone::scenario {

uint32_t VariableTable::intern(std::string_view name) {
  if (auto it = slots_.find(name); it != slots_.end()) return it->second;
  const auto slot = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  slots_.emplace(names_.back(), slot);
  return slot;
}

int VariableTable::find(std::string_view name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? -1 : static_cast<int>(it->second);
}

}  // namespace millstone::scenario
