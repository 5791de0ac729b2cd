#pragma once
// Scenario files (docs/scenarios.md) -> an immutable Plan. Every error names
// FILE:LINE:COLUMN and what was expected; unknown keys are errors.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.h"
#include "scenario/data_file.h"
#include "scenario/plan.h"

namespace millstone::scenario {

// Start-up only. what() is one line: "FILE:LINE:COL: what was wrong; what was expected"
// (config::Error keeps the one-line promise, whatever text a message quotes).
class ScenarioError : public config::Error {
 public:
  using config::Error::Error;
};

// --vus, --duration and --rate given with a scenario file: they replace the
// same setting of every scenario, as the file's own values would
// (docs/scenarios.md#overrides). Applied while loading, so sequential
// scenarios ("start: after NAME") are laid out with the new lengths.
struct Overrides {
  std::optional<uint32_t> vus;         // constant-vus, iterations
  std::optional<int64_t> duration_us;  // constant-vus, constant-arrival-rate
  std::optional<double> rate;          // constant-arrival-rate, per second
};

// An override that does not fit one of the file's scenarios: a command-line
// mistake (exit 2) rather than a broken file. what() names the flag first.
class OverrideError : public ScenarioError {
 public:
  using ScenarioError::ScenarioError;
};

// grpc: {reflection: true} (docs/scenarios.md#grpc-steps): the services of
// the grpc steps come from the target's reflection service, asked through
// this (the CLI's, src/cli/run_command.cc) while the coordinator loads the
// file. `services`: the full names the steps call. On failure `error` (one
// line, without the file's position) and the exit code it stands for (3, 4 or 8).
struct GrpcReflection {
  std::string descriptor_set;  // a serialized FileDescriptorSet
  std::string error;
  int exit_code = 0;
};
using GrpcReflector =
    std::function<GrpcReflection(const Plan& plan, const std::vector<std::string>& services)>;

// Thrown when the reflector failed: what() names the file's grpc: and the
// target; exit_code() is the reflector's.
class GrpcReflectionError : public ScenarioError {
 public:
  GrpcReflectionError(const std::string& message, int exit_code)
      : ScenarioError(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Data files (CSV, JSON) are read relative to the scenario file's folder.
// `parameters` are the values of {{ env.NAME }}; the ones the file uses are
// in the plan's variables.used_parameters() afterwards.
// `reflector`: for grpc: {reflection: true}; without one (validate, k8s
// render) the grpc steps' calls and messages are checked for form only, and
// the run's coordinator checks them against what the server describes.
std::unique_ptr<Plan> load_scenario_file(const std::string& path, const Parameters& parameters = {},
                                         const Overrides& overrides = {},
                                         const GrpcReflector* reflector = nullptr);
// `source_name` prefixes messages; `base_dir` resolves data file paths.
// `data_files`: the data files' bytes by resolved path, as a coordinator sent
// them (a worker reads no file); nullptr reads them from disk.
std::unique_ptr<Plan> parse_scenario(std::string_view yaml_text, const std::string& source_name,
                                     const std::string& base_dir, const Parameters& parameters = {},
                                     const Overrides& overrides = {},
                                     const DataFileSet* data_files = nullptr,
                                     const GrpcReflector* reflector = nullptr);
// --target is applied by the CLI (and each worker) afterwards.

}  // namespace millstone::scenario
