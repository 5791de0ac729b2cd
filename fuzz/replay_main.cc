// Replays a fuzz corpus (every file under the given folders) through one fuzz
// target's entry point, so ordinary test runs catch regressions the fuzzer
// once found: `fuzz_replay NAME FOLDER...` (NAME as in fuzz/NAME.cc).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "replay_targets.h"

int main(int argc, char** argv) {
  using millstone::fuzz::ReplayTarget;
  const ReplayTarget* target = nullptr;
  if (argc >= 2) {
    for (const ReplayTarget& t : millstone::fuzz::replay_targets()) {
      if (std::strcmp(t.name, argv[1]) == 0) target = &t;
    }
  }
  if (target == nullptr) {
    std::fprintf(stderr, "usage: fuzz_replay NAME FOLDER... where NAME is one of:");
    for (const ReplayTarget& t : millstone::fuzz::replay_targets())
      std::fprintf(stderr, " %s", t.name);
    std::fprintf(stderr, "\n");
    return 2;
  }
  size_t replayed = 0;
  for (int i = 2; i < argc; ++i) {
    std::filesystem::path root(argv[i]);
    if (!std::filesystem::exists(root)) {
      std::fprintf(stderr, "corpus folder %s does not exist\n", argv[i]);
      return 1;
    }
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      target->entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++replayed;
    }
  }
  std::printf("%s: replayed %zu inputs\n", target->name, replayed);
  return replayed > 0 ? 0 : 1;
}
