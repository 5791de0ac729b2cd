#pragma once
// What templates, extractors and checks see of one virtual user: its
// variables (by compiled slot, never by name on the hot path) and built-ins.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "random/randomness.h"

namespace millstone::scenario {

// Run parameters by name ({{ env.NAME }}).
using Parameters = std::map<std::string, std::string, std::less<>>;

// Names -> slots, filled while a scenario compiles. Slot numbers index
// VirtualUser::variables. Data columns are variables too ("users.name"),
// copied in when a row is taken.
class VariableTable {
 public:
  // Returns the slot of `name`, adding it if new.
  uint32_t intern(std::string_view name);
  // -1 if unknown.
  int find(std::string_view name) const;
  size_t size() const { return names_.size(); }
  const std::string& name(uint32_t slot) const { return names_[slot]; }

  // Run parameters, {{ env.NAME }} in templates (docs/scenarios.md#parameters):
  // fixed for the whole run, so a template compiles them in as text. Set
  // before compiling; the coordinator sends the ones used to its workers.
  void set_parameters(Parameters values);
  // The value of parameter `name` (recorded as used), or nullptr when it has none.
  const std::string* parameter(std::string_view name);
  const Parameters& used_parameters() const { return used_parameters_; }

 private:
  Parameters parameters_;
  Parameters used_parameters_;
  std::vector<std::string> names_;  // by slot
  // Name -> slot, so interning a wide data file is not quadratic; std::less<>
  // lets string_views look names up without building a std::string.
  std::map<std::string, uint32_t, std::less<>> slots_;
};

// Read-only view of one virtual user while rendering a template.
struct RenderContext {
  const std::vector<std::string>* variables = nullptr;  // by slot; "" when unset
  uint64_t vu_id = 0;      // unique across all workers of the run, from 1
  uint64_t iteration = 0;  // this VU's iteration number, from 0
  uint32_t worker_index = 0;
  random::Prng* prng = nullptr;  // the worker's generator
  int64_t now_unix_ms = 0;       // wall clock, taken once per request
  uint64_t run_tag = 0;          // {{ corr }}: the run's tag (the same in every worker)
};

}  // namespace millstone::scenario
