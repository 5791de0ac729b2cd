// The fuzz targets built into fuzz_replay (tests/CMakeLists.txt), each
// target's LLVMFuzzerTestOneInput renamed millstone_replay_<name>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace millstone::fuzz {

struct ReplayTarget {
  const char* name;  // the source file's name without .cc, as the corpus folder is named
  int (*entry)(const uint8_t* data, size_t size);
};

// Every target, from the generated table (fuzz_replay_targets.cc).
std::span<const ReplayTarget> replay_targets();

}  // namespace millstone::fuzz
