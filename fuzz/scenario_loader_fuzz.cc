// Scenario files come from users: any text must give a Plan or one
// ScenarioError line, never a crash, a hang or another exception type.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "scenario/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // scenario files are small; keep runs fast
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto plan = millstone::scenario::parse_scenario(text, "fuzz.yaml", "/nonexistent-fuzz-dir");
    // A compiled plan must be internally consistent.
    for (const auto& flow : plan->flows) {
      for (const auto& in : flow.program) {
        if (in.op == millstone::scenario::Instruction::Op::kRequest &&
            (in.arg >= flow.requests.size() || in.metric >= plan->step_names.size())) {
          __builtin_trap();
        }
        if (in.op == millstone::scenario::Instruction::Op::kThink &&
            in.arg >= flow.think_times.size()) {
          __builtin_trap();
        }
        if ((in.op == millstone::scenario::Instruction::Op::kLoopBegin ||
             in.op == millstone::scenario::Instruction::Op::kLoopEnd) &&
            in.jump > flow.program.size()) {
          __builtin_trap();
        }
      }
    }
    (void)plan->total_duration_us();
  } catch (const millstone::scenario::ScenarioError& e) {
    std::string_view what = e.what();
    if (what.empty() || what.find('\n') != std::string_view::npos) __builtin_trap();
  }
  return 0;
}
