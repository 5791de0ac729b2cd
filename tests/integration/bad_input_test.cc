// Bad input gets one clear line and a documented exit code (docs/exit-codes.md).
#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace bad_input_test {

size_t line_count(const std::string& s) {
  size_t n = 0;
  for (char c : s)
    n += c == '\n';
  return n;
}

TEST(BadInput, UnreachableTargetExits4WithOneLine) {
  // Port 1 on loopback: nothing listens there.
  auto r = run_millstone({"run", "http://127.0.0.1:1/", "-d", "1s"}, 20);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
}

TEST(BadInput, UnresolvableHostExits4) {
  auto r = run_millstone({"run", "http://no-such-host.invalid/", "-d", "1s"}, 30);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("no-such-host.invalid"), std::string::npos) << r.err;
}

TEST(BadInput, BadUrlExits2AndSaysWhatIsWrong) {
  auto r = run_millstone({"run", "127.0.0.1:8080/x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:8080/x"), std::string::npos) << r.err;
  auto port = run_millstone({"run", "http://127.0.0.1:99999/"});
  EXPECT_EQ(port.exit_code, 2);
  EXPECT_NE(port.err.find("99999"), std::string::npos) << port.err;
}

TEST(BadInput, BadFlagExits2) {
  auto r = run_millstone({"run", "http://127.0.0.1:1/", "--no-such-flag"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no-such-flag"), std::string::npos) << r.err;
}

TEST(BadInput, BadDurationExits2) {
  auto r = run_millstone({"run", "http://127.0.0.1:1/", "-d", "10"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--duration"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unit"), std::string::npos) << r.err;
}

TEST(BadInput, BrokenMockConfigExits3WithFileAndLine) {
  std::string path = write_temp_file("routes:\n  - path: /x\n    stauts: 200\n", ".yaml");
  auto r = run_millstone({"mock", "--config", path, "--listen", "127.0.0.1:0"}, 10);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(path + ":3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stauts"), std::string::npos) << r.err;
}

TEST(BadInput, MissingMockConfigExits3) {
  auto r = run_millstone({"mock", "--config", "/nonexistent/mock.yaml"}, 10);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("/nonexistent/mock.yaml"), std::string::npos) << r.err;
}

}  // namespace bad_input_test
}  // namespace millstone::testing
