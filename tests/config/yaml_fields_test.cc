#include "config/yaml_fields.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/error.h"

namespace millstone::config {
namespace yaml_fields_test {

using ::testing::HasSubstr;

// A loader's own error type, as mock::ConfigError and scenario::ScenarioError are.
class TestFileError : public Error {
 public:
  using Error::Error;
};

std::exception_ptr make_test_error(const std::string& message) {
  return std::make_exception_ptr(TestFileError(message));
}

constexpr FileKind kTestFile{make_test_error, "the test file is too big; expected a smaller one",
                             3600e6, "1h; expected at most 1h"};

// The error message of reading `key: value` with `read`, or "" when it succeeds.
template <typename Read>
std::string error_of(const std::string& text, Read read) {
  const YAML::Node root = load_document(text, "t.yaml", kTestFile);
  Reader reader("t.yaml", text, kTestFile);
  constexpr std::string_view kKeys[] = {"status", "latency", "every"};
  try {
    const MapFields map = reader.read_map(root, root.Mark(), "the file", kKeys);
    read(reader, map.fields.at(0));
  } catch (const TestFileError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigErrorTest, MessagesAreOneLine) {
  const Error error("a.yaml:1:1: bad \"x\ny\r\"; expected z");
  EXPECT_STREQ(error.what(), "a.yaml:1:1: bad \"x y \"; expected z");
}

TEST(YamlReaderTest, FailuresThrowTheFileKindsError) {
  EXPECT_EQ(error_of("every: 2h\n", [](Reader& r, const Field& f) { r.duration_us(f); }),
            "t.yaml:1:8: every \"2h\" is longer than 1h; expected at most 1h");
  EXPECT_THROW(load_document("a: [1\n", "t.yaml", kTestFile), TestFileError);
  EXPECT_THROW(load_document("a: 1\n---\nb: 2\n", "t.yaml", kTestFile), TestFileError);
}

TEST(YamlReaderTest, UnknownKeysSuggestCaseInsensitively) {
  // Both the mock's and the scenario's readers suggested these before they became one.
  EXPECT_THAT(error_of("Stauts: 1\n", [](Reader&, const Field&) {}),
              HasSubstr("unknown key \"Stauts\" in the file (did you mean \"status\"?)"));
  EXPECT_THAT(error_of("STATUS: 1\n", [](Reader&, const Field&) {}),
              HasSubstr("(did you mean \"status\"?)"));
  EXPECT_THAT(
      error_of("wait: 1s\n", [](Reader&, const Field&) {}),
      HasSubstr("unknown key \"wait\" in the file; expected one of: status, latency, every"));
}

TEST(YamlReaderTest, DurationsAndDistributions) {
  std::string text = "latency: 1s..3s\n";
  YAML::Node root = load_document(text, "t.yaml", kTestFile);
  Reader reader("t.yaml", text, kTestFile);
  constexpr std::string_view kKeys[] = {"latency"};
  MapFields map = reader.read_map(root, root.Mark(), "the file", kKeys);
  const random::LatencyModel range = reader.latency(map.fields.at(0));
  EXPECT_EQ(range.distribution, random::LatencyModel::Distribution::kUniform);
  EXPECT_EQ(range.min_us, 1e6);
  EXPECT_EQ(range.max_us, 3e6);

  EXPECT_EQ(error_of("latency: {distribution: uniform, min: 2ms, max: 1ms}\n",
                     [](Reader& r, const Field& f) { r.latency(f); }),
            "t.yaml:1:49: uniform max is below min; expected min <= max");
}

TEST(YamlReaderTest, ExpansionBudgetNamesTheFileKind) {
  Reader reader("t.yaml", "a: 1\n", kTestFile);
  reader.charge(size_t{200} << 20, YAML::Mark::null_mark());
  EXPECT_EQ(reader.budget_left(), size_t{56} << 20);
  try {
    reader.charge(size_t{100} << 20, YAML::Mark::null_mark());
    FAIL() << "expected the budget to run out";
  } catch (const TestFileError& e) {
    EXPECT_STREQ(e.what(), "t.yaml: the test file is too big; expected a smaller one");
  }
}

}  // namespace yaml_fields_test
}  // namespace millstone::config
