// Data files: CSV (RFC 4180 quoting, CRLF, BOM) and JSON arrays of objects.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scenario/data_file.h"
#include "scenario/loader.h"

namespace millstone::scenario {
namespace loader_data_test {

using ::testing::ElementsAre;
using ::testing::StartsWith;

std::string csv_error(std::string_view text) {
  try {
    parse_csv(text, "u.csv");
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

std::string json_error(std::string_view text) {
  try {
    parse_json_rows(text, "u.json");
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(LoaderDataTest, CsvQuoting) {
  const DataTable t = parse_csv(
      "name,note,empty\n"
      "ann,\"a, b\",\n"
      "bob,\"say \"\"hi\"\"\",x\n"
      "\"cleo\",\"two\nlines\",\"\"\n",
      "u.csv");
  EXPECT_THAT(t.columns, ElementsAre("name", "note", "empty"));
  EXPECT_THAT(t.rows(),
              ElementsAre(ElementsAre("ann", "a, b", ""), ElementsAre("bob", "say \"hi\"", "x"),
                          ElementsAre("cleo", "two\nlines", "")));
}

TEST(LoaderDataTest, CsvLineEndingsBomAndBlankLines) {
  const DataTable t = parse_csv("\xef\xbb\xbf a , b\r\n1,2\r\n\r\n3,4", "u.csv");
  EXPECT_THAT(t.columns, ElementsAre("a", "b"));  // header names are trimmed
  EXPECT_THAT(t.rows(), ElementsAre(ElementsAre("1", "2"), ElementsAre("3", "4")));
  // Values are kept as written, spaces included.
  EXPECT_THAT(parse_csv("a\n x \n", "u.csv").rows(), ElementsAre(ElementsAre(" x ")));
  // A quoted empty value is a row, not a blank line.
  EXPECT_THAT(parse_csv("a\n\"\"\n", "u.csv").rows(), ElementsAre(ElementsAre("")));
}

TEST(LoaderDataTest, CsvErrors) {
  EXPECT_EQ(csv_error(""),
            "u.csv: the file is empty; expected a header row, then one row per record");
  EXPECT_EQ(csv_error("\n\n"),
            "u.csv: the file is empty; expected a header row, then one row per record");
  EXPECT_EQ(csv_error("a,b\n"),
            "u.csv:1: the file has a header but no rows; expected at least one row");
  // The row after a two-line quoted field starts on line 4.
  EXPECT_EQ(csv_error("a,b\n1,\"x\ny\"\n1,2,3\n"),
            "u.csv:4: row has 3 fields; expected 2, as in the header (quote fields that contain "
            "commas)");
  EXPECT_EQ(csv_error("a,b\n1\n"),
            "u.csv:2: row has 1 field; expected 2, as in the header (quote fields that contain "
            "commas)");
  EXPECT_EQ(csv_error("a\nsay \"hi\"\n"),
            "u.csv:2: a quote inside an unquoted field; expected the whole field in quotes, with "
            "quotes inside it doubled (\"say \"\"hi\"\"\")");
  EXPECT_EQ(csv_error("a\n\"x\"y\n"),
            "u.csv:2: \"y\" after a closing quote; expected a comma or the end of the line (quotes "
            "inside a field are doubled: \"\")");
  EXPECT_EQ(csv_error("a\n1\n\"open\nstill\n"),
            "u.csv:3: a quoted field is not closed; expected a closing quote (quotes inside a "
            "field are doubled: \"\")");
  EXPECT_EQ(csv_error("a,a\n1,2\n"),
            "u.csv:1: column \"a\" appears twice; expected unique column names");
  EXPECT_EQ(csv_error("a,\n1,2\n"),
            "u.csv:1: column \"\" is not usable in templates; expected a name of letters, digits "
            "and _ (rename it in the header row)");
}

TEST(LoaderDataTest, JsonRows) {
  const DataTable t = parse_json_rows(
      R"([{"name": "ann", "age": 31, "vip": true},
          {"name": "bob", "note": null, "city": "Oslo"},
          {"age": 1.5e2, "name": "caf\u00e9"}])",
      "u.json");
  EXPECT_THAT(t.columns, ElementsAre("name", "age", "vip", "note", "city"));
  EXPECT_THAT(t.rows(), ElementsAre(ElementsAre("ann", "31", "true", "", ""),
                                    ElementsAre("bob", "", "", "", "Oslo"),
                                    ElementsAre("caf\xc3\xa9", "150.0", "", "", "")));
}

TEST(LoaderDataTest, JsonErrors) {
  // The rest of the message is nlohmann-json's own and varies by version.
  EXPECT_THAT(json_error("[\n  {\"a\": 1},\n  {\"a\": }\n]"),
              StartsWith("u.json:3:9: invalid JSON: syntax error while parsing value"));
  EXPECT_THAT(json_error("[{\"a\": 1}"), StartsWith("u.json:1:10: invalid JSON: "));
  EXPECT_EQ(json_error(R"({"a": 1})"),
            "u.json: the document is a JSON object; expected an array of objects such as "
            "[{\"name\": \"ann\"}]");
  EXPECT_EQ(json_error("[]"), "u.json: the array is empty; expected at least one object");
  EXPECT_EQ(json_error(R"([{"a": 1}, 2])"), "u.json: item 2 is a JSON number; expected an object");
  EXPECT_EQ(json_error(R"([{"a": {"b": 1}}])"),
            "u.json: item 1 has \"a\" as a JSON object; expected flat objects (strings, numbers, "
            "booleans)");
  EXPECT_EQ(json_error(R"([{"first name": 1}])"),
            "u.json: column \"first name\" is not usable in templates; expected a name of "
            "letters, digits and _ (rename it in the objects)");
}

}  // namespace loader_data_test
}  // namespace millstone::scenario
