// The YAML `millstone k8s render` writes: every string reads back as the
// same string, whatever it holds (the rendered manifests are also parsed by
// PyYAML in AgentManifests.*, which checks YAML 1.1's typing).
#include "cli/k8s_yaml.h"

#include <yaml-cpp/yaml.h>

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace millstone::cli {
namespace k8s_yaml_test {

using Json = nlohmann::ordered_json;

void expect_round_trip(const std::string& s) {
  const Json doc{{"key", s},
                 {"list", Json::array({s, Json{{"inner", s}, {"n", 1}}})},
                 {"map", Json{{s.empty() ? "empty" : s, s}}},
                 {"after", "end"}};
  const std::string text = to_yaml(doc);
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    FAIL() << e.what() << "\n" << text;
  }
  EXPECT_EQ(node["key"].as<std::string>(), s) << text;
  EXPECT_EQ(node["list"][0].as<std::string>(), s) << text;
  EXPECT_EQ(node["list"][1]["inner"].as<std::string>(), s) << text;
  EXPECT_EQ(node["list"][1]["n"].as<int>(), 1) << text;
  EXPECT_EQ(node["map"][s.empty() ? "empty" : s].as<std::string>(), s) << text;
  EXPECT_EQ(node["after"].as<std::string>(), "end") << text;
  // A string that a reader could type as anything else is quoted (a plain
  // scalar has the non-specific tag "?").
  if (node["key"].Tag() == "?") {
    for (const char* word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"})
      EXPECT_NE(s, word);
    EXPECT_TRUE(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '/' || s[0] == '-') << s;
  }
}

TEST(K8sYaml, TrickyStringsReadBackUnchanged) {
  for (const std::string s : {"",
                              "plain",
                              "yes",
                              "No",
                              "ON",
                              "off",
                              "y",
                              "null",
                              "~",
                              "true",
                              "0400",
                              "256",
                              "1e3",
                              "1:20",
                              ".inf",
                              "-",
                              "- a",
                              "--agents",
                              "-e",
                              "a: b",
                              "a:",
                              "a #b",
                              "#c",
                              "key: [x]",
                              "{a}",
                              "[b]",
                              "*ref",
                              "&anchor",
                              "!tag",
                              "%dir",
                              "@at",
                              "`tick",
                              "'single'",
                              "\"double\"",
                              "back\\slash",
                              " leading space",
                              "trailing space ",
                              "tab\there",
                              "line\nbreak",
                              "two\n\nbreaks\n\n",
                              "ends with newline\n",
                              "\nleading newline",
                              "cr\r\nlf",
                              "caf\xc3\xa9",
                              "emoji \xf0\x9f\x9a\x80",
                              "del\x7f",
                              "c1 \xc2\x85 \xc2\x9b",
                              "nul\x01",
                              "bom \xef\xbb\xbf",
                              "0.0.0.0:7070",
                              "millstone-coordinator:7070",
                              "/etc/millstone/token/token",
                              "trap 'x' TERM\nexit \"$code\"\n",
                              "  indented\n  block\n",
                              "|",
                              ">",
                              "? q",
                              "---",
                              "...",
                              "--- doc\n...\n"}) {
    SCOPED_TRACE(s);
    expect_round_trip(s);
  }
}

TEST(K8sYaml, RandomUtf8ReadsBackUnchanged) {
  std::mt19937 random(11);
  const std::vector<std::string> pieces = {
      "a",    "Z",    "0",        " ",  "\t", "\n", ":",        "#",
      "-",    "'",    "\"",       "\\", "|",  "{",  "\xc3\xa9", "\xe2\x82\xac",
      "\x01", "\x7f", "\xc2\x80", "\r", "*",  "&",  "!",        "yes"};
  for (int i = 0; i < 400; ++i) {
    std::string s;
    const int n = static_cast<int>(random() % 12);
    for (int k = 0; k < n; ++k)
      s += pieces[random() % pieces.size()];
    SCOPED_TRACE(s);
    expect_round_trip(s);
  }
}

TEST(K8sYaml, PrintableTextIsUtf8WithoutControls) {
  EXPECT_TRUE(yaml_printable("name,note\nbob,caf\xc3\xa9\tx"));
  EXPECT_FALSE(yaml_printable("Jos\xe9"));       // Latin-1
  EXPECT_FALSE(yaml_printable("a\rb"));          // CR: a reader folds CR LF
  EXPECT_FALSE(yaml_printable("bell\x07"));      // C0
  EXPECT_FALSE(yaml_printable("\xc2\x9b"));      // C1
  EXPECT_FALSE(yaml_printable("\xed\xa0\x80"));  // a surrogate
  EXPECT_FALSE(yaml_printable("\xc0\xaf"));      // overlong
}

}  // namespace k8s_yaml_test
}  // namespace millstone::cli
