#include "scenario/values.h"

namespace millstone::scenario {

uint32_t VariableTable::intern(std::string_view name) {
  if (auto it = slots_.find(name); it != slots_.end()) return it->second;
  const auto slot = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  slots_.emplace(names_.back(), slot);
  return slot;
}

void VariableTable::set_parameters(Parameters values) {
  parameters_ = std::move(values);
  used_parameters_.clear();
}

const std::string* VariableTable::parameter(std::string_view name) {
  const auto found = parameters_.find(name);
  if (found == parameters_.end()) return nullptr;
  used_parameters_.insert(*found);
  return &found->second;
}

int VariableTable::find(std::string_view name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? -1 : static_cast<int>(it->second);
}

}  // namespace millstone::scenario
