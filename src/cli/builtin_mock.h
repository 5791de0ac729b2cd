#pragma once
// The mock configuration compiled into the binary, so `millstone demo` and a
// bare `millstone mock` work from any directory. It is examples/mock.yaml,
// embedded at build time (see src/CMakeLists.txt).
#include "mock/config.h"

namespace millstone::cli {

extern const char* const kBuiltinMockYaml;
mock::MockConfig builtin_mock_config();

}  // namespace millstone::cli
