// The generator watching itself (docs/monitoring.md#the-generator): a worker
// given more work than one core can do is named as the run's limit.
#include <fstream>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace generator_test {

TEST(GeneratorIntegration, ASaturatedWorkerIsNamedAsTheLimit) {
  // Each response is 256 KiB that a regular-expression check reads (64 KiB
  // of it, the capture limit): far more work for the one worker than for
  // the mock, which writes prepared bytes. Twenty VUs keep it busy.
  const std::string dir = temp_dir();
  {
    std::ofstream body(dir + "/big.txt");
    body << std::string(256 * 1024, 'x');
  }
  const std::string mock_yaml = "routes:\n  - path: /big\n    body_file: " + dir + "/big.txt\n";
  MockServer mock(mock_yaml, 1);
  const std::string scenario = write_temp_file("target: " + mock.url("") + R"(
flows:
  heavy:
    steps:
      - get: /big
        check:
          body: {matches: "(x+x+)+y"}
scenarios:
  busy: {executor: constant-vus, vus: 20, duration: 1500ms}
)",
                                               ".yaml");
  const std::string summary = write_temp_file("", ".json");
  auto run = run_millstone({"run", scenario, "-w", "1", "--no-history", "-q", "-o", summary}, 60);
  // The check fails on every response, and nothing judges it: the run completes.
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("LIMITED BY THE GENERATOR: the load generator, not the target, limited "
                         "this run: worker 0 was saturated"),
            std::string::npos)
      << run.out;
  expect_valid_summary(summary);
  const nlohmann::json j = read_json(summary);
  const nlohmann::json& g = j["generator"];
  EXPECT_EQ(g["limited"], true) << g.dump();
  ASSERT_EQ(g["workers"].size(), 1u);
  EXPECT_EQ(g["workers"][0]["saturated"], true);
  EXPECT_GE(g["workers"][0]["cpu_percent"].size(), 2u);
  // The mock answered at least what the worker counted: the load was real.
  const uint64_t answered = mock.stats()["routes"][0]["requests"].get<uint64_t>();
  EXPECT_GE(answered, j["requests"].get<uint64_t>());
  EXPECT_GT(j["requests"].get<uint64_t>(), 0u);
}

}  // namespace generator_test
}  // namespace millstone::testing
