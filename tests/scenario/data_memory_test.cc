// What a data file costs in memory once loaded: every worker loads the
// scenario, so a table must not cost a multiple of its file in each of them.
// Live heap bytes are glibc malloc's own count (mallinfo2).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../support/heap.h"
#include "scenario/loader.h"

namespace millstone::scenario {
namespace data_memory_test {

class DataMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("millstone-data-memory-{}", ::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(DataMemoryTest, ALoadedCsvCostsItsRowIndexNotACopyPerCell) {
  if (!test::kHeapIsCounted) GTEST_SKIP() << "the sanitizer's malloc is not counted";
  // 100,000 rows of short cells (~2.4 MB): the shape where per-cell strings cost most.
  const std::filesystem::path csv = dir_ / "users.csv";
  {
    std::ofstream out(csv);
    out << "name,password,age\n";
    for (int i = 0; i < 100'000; ++i)
      out << "user" << i << ",pw" << i << "," << i % 90 << "\n";
  }
  const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(csv));
  const std::string yaml =
      "target: http://127.0.0.1:1\n"
      "data: {users: users.csv}\n"
      "flows: {login: {steps: [{get: \"/login/{{ users.name }}\"}]}}\n";
  const int64_t before = test::live_heap_bytes();
  const auto plan = parse_scenario(yaml, "s.yaml", dir_.string());
  const int64_t held = test::live_heap_bytes() - before;
  ASSERT_EQ(plan->data.size(), 1u);
  // The row index is 4 bytes a row (400 KB); the file itself is mapped and
  // shared. Per-cell strings would hold about 10 times the file.
  EXPECT_LT(held, file_bytes / 4) << "file " << file_bytes << " bytes";
  EXPECT_EQ(plan->data[0].table.row_count(), 100'000u);
  EXPECT_LE(plan->data[0].table.private_bytes(), 100'000u * 4 + 1024);
  std::vector<std::string> cells;
  plan->data[0].table.read_row(99'999, &cells);
  EXPECT_EQ(cells, (std::vector<std::string>{"user99999", "pw99999", "9"}));
}

}  // namespace data_memory_test
}  // namespace millstone::scenario
