#include "scenario/check.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace millstone::scenario {
namespace check_test {

using Outcome = JsonEvaluator::Outcome;
using Op = Expectation::Op;

Expectation expect(std::string_view op, std::string_view value, bool is_number = false) {
  std::string error;
  std::optional<Expectation> e = make_expectation(op, value, is_number, &error);
  EXPECT_TRUE(e.has_value()) << op << " " << value << ": " << error;
  return e ? *e : Expectation();
}

std::string expect_error(std::string_view op, std::string_view value, bool is_number = false) {
  std::string error;
  EXPECT_FALSE(make_expectation(op, value, is_number, &error).has_value()) << op << " " << value;
  return error;
}

ResponseView response(int status = 200, std::string_view body = "") {
  ResponseView r;
  r.status = status;
  r.body = body;
  r.headers = {{"Content-Type", "application/json; charset=utf-8"},
               {"Content-Length", "1234"},
               {"X-Empty", ""}};
  r.latency_us = 250345;
  return r;
}

// Evaluates a non-JSON check; returns the why text, "" when it passed.
std::string why_of(const Check& check, const ResponseView& r) {
  std::string why;
  bool ok = check.evaluate(r, Outcome::kMissing, nullptr, &why);
  return ok ? "" : why.empty() ? "(failed without why)" : why;
}

// Evaluates a JSON check against a body, the way the VU does.
std::string json_why(const Check& check, std::string_view body) {
  JsonEvaluator ev;
  std::vector<Outcome> outcomes;
  std::vector<JsonEvaluator::Value> values;
  ev.evaluate(body, {check.json_path()}, &outcomes, &values);
  std::string why;
  bool ok = check.evaluate(response(200, body), outcomes[0], &values[0], &why);
  return ok ? "" : why.empty() ? "(failed without why)" : why;
}

Check json_check(std::string_view path, Expectation e) {
  std::string error;
  std::optional<Check> c = Check::json(path, std::move(e), &error);
  EXPECT_TRUE(c.has_value()) << error;
  return std::move(*c);
}

// ---- make_expectation ----

TEST(MakeExpectationTest, EveryOperator) {
  EXPECT_EQ(expect("equals", "paid").op, Op::kEquals);
  EXPECT_FALSE(expect("equals", "paid").numeric);
  Expectation n = expect("equals", "10", true);
  EXPECT_TRUE(n.numeric);
  EXPECT_EQ(n.number, 10);
  EXPECT_FALSE(expect("equals", "10", false).numeric) << "a quoted YAML value compares as text";
  EXPECT_EQ(expect("not_equals", "x").op, Op::kNotEquals);
  EXPECT_EQ(expect("contains", "ok").op, Op::kContains);
  EXPECT_EQ(expect("not_contains", "error").op, Op::kNotContains);
  Expectation m = expect("matches", "id\":\\d+");
  EXPECT_EQ(m.op, Op::kMatches);
  ASSERT_NE(m.regex, nullptr);
  EXPECT_EQ(expect("exists", "true").op, Op::kExists);
  EXPECT_EQ(expect("exists", "false").op, Op::kNotExists);
  EXPECT_EQ(expect("not_exists", "true").op, Op::kNotExists);
  EXPECT_EQ(expect("not_exists", "false").op, Op::kExists);
  EXPECT_EQ(expect("lt", "1.5", true).op, Op::kLt);
  EXPECT_EQ(expect("lt", "1.5", true).number, 1.5);
  EXPECT_EQ(expect("le", "2", true).op, Op::kLe);
  EXPECT_EQ(expect("gt", "-3", true).op, Op::kGt);
  EXPECT_EQ(expect("ge", "4", false).number, 4) << "numeric ops read quoted numbers too";
  EXPECT_EQ(expect("length", "3", true).op, Op::kLengthEquals);
  EXPECT_EQ(expect("length", "3", true).number, 3);

  std::string error;
  std::optional<Expectation> one_of = make_expectation("one_of", {"a", "b"}, &error);
  ASSERT_TRUE(one_of.has_value()) << error;
  EXPECT_EQ(one_of->op, Op::kOneOf);
  EXPECT_EQ(one_of->one_of, (std::vector<std::string>{"a", "b"}));
}

TEST(MakeExpectationTest, ErrorsSayWhatWasExpected) {
  EXPECT_EQ(expect_error("greater", "1"),
            "unknown check operator 'greater'; expected one of equals, not_equals, contains, "
            "not_contains, matches, exists, not_exists, lt, le, gt, ge, length, one_of");
  EXPECT_EQ(expect_error("gt", "ten"), "gt expects a number, got \"ten\"");
  EXPECT_EQ(expect_error("lt", ""), "lt expects a number, got \"\"");
  EXPECT_EQ(expect_error("le", "nan"), "le expects a number, got \"nan\"");
  EXPECT_EQ(expect_error("equals", "abc", true), "equals expects a number, got \"abc\"");
  EXPECT_EQ(expect_error("length", "-1"), "length expects a whole number >= 0, got \"-1\"");
  EXPECT_EQ(expect_error("length", "1.5"), "length expects a whole number >= 0, got \"1.5\"");
  EXPECT_EQ(expect_error("exists", "yes"), "exists expects true or false, got \"yes\"");
  EXPECT_EQ(expect_error("one_of", "a"), "one_of expects a list of values, got \"a\"");
  EXPECT_NE(expect_error("matches", "a(b").find("matches expects a valid regex, got 'a(b': "),
            std::string::npos);

  std::string error;
  EXPECT_FALSE(make_expectation("equals", {"a"}, &error).has_value());
  EXPECT_EQ(error, "equals expects a single value, not a list");
  EXPECT_FALSE(make_expectation("one_of", {}, &error).has_value());
  EXPECT_EQ(error, "one_of expects a non-empty list of values");
}

TEST(ExpectationTest, Describe) {
  EXPECT_EQ(expect("equals", "paid").describe(), "== \"paid\"");
  EXPECT_EQ(expect("equals", "10", true).describe(), "== 10");
  EXPECT_EQ(expect("not_equals", "2.5", true).describe(), "!= 2.5");
  EXPECT_EQ(expect("contains", "ok").describe(), "contains \"ok\"");
  EXPECT_EQ(expect("not_contains", "err").describe(), "does not contain \"err\"");
  EXPECT_EQ(expect("matches", "a+").describe(), "matches 'a+'");
  EXPECT_EQ(expect("exists", "true").describe(), "exists");
  EXPECT_EQ(expect("exists", "false").describe(), "does not exist");
  EXPECT_EQ(expect("lt", "1").describe(), "< 1");
  EXPECT_EQ(expect("le", "1").describe(), "<= 1");
  EXPECT_EQ(expect("gt", "10").describe(), "> 10");
  EXPECT_EQ(expect("ge", "0.25").describe(), ">= 0.25");
  EXPECT_EQ(expect("length", "3").describe(), "has length 3");
  std::string error;
  EXPECT_EQ(make_expectation("one_of", {"a", "b"}, &error)->describe(), "is one of [\"a\", \"b\"]");
}

// ---- status ----

TEST(CheckTest, StatusInList) {
  Check c = Check::status_in({200, 201});
  EXPECT_EQ(c.subject(), Check::Subject::kStatus);
  EXPECT_EQ(c.name(), "status in [200, 201]");
  EXPECT_EQ(why_of(c, response(200)), "");
  EXPECT_EQ(why_of(c, response(201)), "");
  EXPECT_EQ(why_of(c, response(503)), "status 503");
  EXPECT_EQ(Check::status_in({204}).name(), "status in [204]");
}

TEST(CheckTest, StatusClass) {
  Check c = Check::status_class(2);
  EXPECT_EQ(c.name(), "status 2xx");
  EXPECT_EQ(why_of(c, response(200)), "");
  EXPECT_EQ(why_of(c, response(299)), "");
  EXPECT_EQ(why_of(c, response(302)), "status 302");
  EXPECT_EQ(why_of(c, response(199)), "status 199");
  EXPECT_EQ(why_of(Check::status_class(4), response(404)), "");
}

// ---- header ----

TEST(CheckTest, HeaderExpectations) {
  ResponseView r = response();
  Check contains = Check::header("content-type", expect("contains", "json"));
  EXPECT_EQ(contains.subject(), Check::Subject::kHeader);
  EXPECT_EQ(contains.name(), "header content-type contains \"json\"");
  EXPECT_EQ(why_of(contains, r), "");
  EXPECT_EQ(why_of(Check::header("Content-Type", expect("contains", "xml")), r),
            "header Content-Type does not contain \"xml\": \"application/json; charset=utf-8\"");

  EXPECT_EQ(why_of(Check::header("Content-Type", expect("equals", "text/html")), r),
            "header Content-Type is \"application/json; charset=utf-8\", expected == "
            "\"text/html\"");
  EXPECT_EQ(
      why_of(Check::header("Content-Type", expect("equals", "application/json; charset=utf-8")), r),
      "");
  EXPECT_EQ(why_of(Check::header("Content-Type", expect("matches", "^application/(json|xml)")), r),
            "");
  EXPECT_EQ(why_of(Check::header("Content-Type", expect("matches", "^text/")), r),
            "header Content-Type does not match '^text/': \"application/json; charset=utf-8\"");

  EXPECT_EQ(why_of(Check::header("X-Empty", expect("exists", "true")), r), "");
  EXPECT_EQ(why_of(Check::header("X-Missing", expect("exists", "true")), r),
            "header X-Missing is missing");
  EXPECT_EQ(why_of(Check::header("X-Missing", expect("not_exists", "true")), r), "");
  EXPECT_EQ(why_of(Check::header("X-Empty", expect("not_exists", "true")), r),
            "header X-Empty exists: \"\"");
  EXPECT_EQ(why_of(Check::header("X-Missing", expect("contains", "a")), r),
            "header X-Missing is missing");
  EXPECT_EQ(why_of(Check::header("X-Missing", expect("not_contains", "a")), r), "")
      << "an absent header contains nothing";

  // Numeric expectations read the header as a number.
  EXPECT_EQ(why_of(Check::header("Content-Length", expect("lt", "2000")), r), "");
  EXPECT_EQ(why_of(Check::header("Content-Length", expect("gt", "2000")), r),
            "header Content-Length is \"1234\", expected > 2000");
  EXPECT_EQ(why_of(Check::header("Content-Length", expect("equals", "1234", true)), r), "");
  EXPECT_EQ(why_of(Check::header("Content-Type", expect("ge", "1")), r),
            "header Content-Type is \"application/json; charset=utf-8\", not a number");
}

// ---- body ----

TEST(CheckTest, BodyExpectations) {
  ResponseView r = response(200, "{\"id\":42,\"state\":\"ok\"}");
  Check contains = Check::body(expect("contains", "\"ok\""));
  EXPECT_EQ(contains.subject(), Check::Subject::kBody);
  EXPECT_EQ(contains.name(), "body contains \"\\\"ok\\\"\"");
  EXPECT_EQ(why_of(contains, r), "");
  EXPECT_EQ(why_of(Check::body(expect("contains", "paid")), r),
            "body does not contain \"paid\": \"{\\\"id\\\":42,\\\"state\\\":\\\"ok\\\"}\"");
  EXPECT_EQ(why_of(Check::body(expect("not_contains", "error")), r), "");
  EXPECT_EQ(why_of(Check::body(expect("matches", "id\":\\d+")), r), "");
  EXPECT_EQ(why_of(Check::body(expect("matches", "id\":[a-z]+")), r),
            "body does not match 'id\":[a-z]+': \"{\\\"id\\\":42,\\\"state\\\":\\\"ok\\\"}\"");
  EXPECT_EQ(why_of(Check::body(expect("equals", "ok")), response(200, "ok")), "");
  EXPECT_EQ(why_of(Check::body(expect("equals", "ok")), response(200, "ok\n")),
            "body is \"ok\\n\", expected == \"ok\"");
  EXPECT_EQ(why_of(Check::body(expect("length", "2")), response(200, "ok")), "");
}

TEST(CheckTest, LongBodiesAreTruncatedInWhy) {
  std::string body = "<html><head><title>Service Unavailable</title></head><body>" +
                     std::string(200, 'x') + "error: database down" + std::string(100, 'y') +
                     "</body></html>";
  ResponseView r = response(503, body);
  std::string why = why_of(Check::body(expect("contains", "\"ok\"")), r);
  EXPECT_EQ(why,
            "body does not contain \"\\\"ok\\\"\": \"<html><head><title>Service "
            "Unavailable</title></head><body>xxxxxxxxxxxxxxxxxxxxx\"... (" +
                std::to_string(body.size()) + " bytes)");
  // not_contains shows where the text was found, not the start of the body.
  why = why_of(Check::body(expect("not_contains", "error")), r);
  EXPECT_EQ(why,
            "body contains \"error\": ...\"xxxxxxxxxxxxxxxxxxxxerror: database "
            "downyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"... (" +
                std::to_string(body.size()) + " bytes)");
}

TEST(CheckTest, TruncationKeepsUtf8Whole) {
  // 79 ASCII bytes then a 2-byte letter straddling the 80-byte cut.
  std::string body = std::string(79, 'a') + "é" + std::string(10, 'b');
  std::string why = why_of(Check::body(expect("contains", "zzz")), response(200, body));
  EXPECT_EQ(why, "body does not contain \"zzz\": \"" + std::string(79, 'a') + "\"... (" +
                     std::to_string(body.size()) + " bytes)");
}

TEST(CheckTest, ControlCharactersAreEscapedInWhy) {
  std::string why = why_of(Check::body(expect("equals", "x")),
                           response(200, std::string_view("a\tb\r\n\x01\"\\", 8)));
  EXPECT_EQ(why, "body is \"a\\tb\\r\\n\\x01\\\"\\\\\", expected == \"x\"");
}

// ---- json ----

constexpr std::string_view kOrder =
    R"({"id": 42, "status": "paid", "total": 10.5, "count": "7", "ok": true, "none": null,
        "items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}], "meta": {"a": 1}, "name": "héllo"})";

TEST(CheckTest, JsonEqualsComparesTextOrNumbers) {
  Check paid = json_check("$.status", expect("equals", "paid"));
  EXPECT_EQ(paid.subject(), Check::Subject::kJson);
  EXPECT_EQ(paid.name(), "json $.status == \"paid\"");
  ASSERT_NE(paid.json_path(), nullptr);
  EXPECT_EQ(json_why(paid, kOrder), "");
  EXPECT_EQ(json_why(json_check("$.status", expect("equals", "open")), kOrder),
            "$.status is \"paid\", expected == \"open\"");
  EXPECT_EQ(json_why(json_check("$.id", expect("equals", "42", true)), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.id", expect("equals", "42.0", true)), kOrder), "")
      << "numbers compare numerically";
  EXPECT_EQ(json_why(json_check("$.id", expect("equals", "42")), kOrder), "")
      << "text compares with the number's text";
  EXPECT_EQ(json_why(json_check("$.count", expect("equals", "7", true)), kOrder),
            "$.count is \"7\", expected == 7")
      << "a string is not a number";
  EXPECT_EQ(json_why(json_check("$.ok", expect("equals", "true")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.none", expect("equals", "null")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.status", expect("not_equals", "failed")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.status", expect("not_equals", "paid")), kOrder),
            "$.status is \"paid\", expected != \"paid\"");
  EXPECT_EQ(json_why(json_check("$.id", expect("not_equals", "42", true)), kOrder),
            "$.id is 42, expected != 42");
}

TEST(CheckTest, JsonNumericComparisons) {
  EXPECT_EQ(json_why(json_check("$.total", expect("gt", "10")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.total", expect("ge", "10.5")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.total", expect("lt", "11")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.total", expect("le", "10.5")), kOrder), "");
  Check gt = json_check("$.total", expect("gt", "20"));
  EXPECT_EQ(gt.name(), "json $.total > 20");
  EXPECT_EQ(json_why(gt, kOrder), "$.total is 10.5, expected > 20");
  EXPECT_EQ(json_why(json_check("$.total", expect("lt", "10.5")), kOrder),
            "$.total is 10.5, expected < 10.5");
  EXPECT_EQ(json_why(json_check("$.count", expect("gt", "1")), kOrder),
            "$.count is \"7\", not a number");
  EXPECT_EQ(json_why(json_check("$.meta", expect("gt", "1")), kOrder),
            "$.meta is {\"a\":1} (object), not a number");
  EXPECT_EQ(json_why(json_check("$.none", expect("gt", "1")), kOrder),
            "$.none is null (null), not a number");
}

TEST(CheckTest, JsonLength) {
  EXPECT_EQ(json_why(json_check("$.items", expect("length", "3")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.meta", expect("length", "1")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.name", expect("length", "5")), kOrder), "")
      << "strings count code points";
  EXPECT_EQ(json_why(json_check("$.items", expect("length", "2")), kOrder),
            "$.items has length 3, expected 2: [{\"sku\":\"a\"},{\"sku\":\"b\"},{\"sku\":\"c\"}] "
            "(array)");
  EXPECT_EQ(json_why(json_check("$.id", expect("length", "2")), kOrder),
            "$.id is 42, which has no length");
}

TEST(CheckTest, JsonExistence) {
  EXPECT_EQ(json_why(json_check("$.id", expect("exists", "true")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.none", expect("exists", "true")), kOrder), "") << "null exists";
  EXPECT_EQ(json_why(json_check("$.error", expect("exists", "true")), kOrder),
            "$.error is missing");
  EXPECT_EQ(json_why(json_check("$.error", expect("not_exists", "true")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.items[5]", expect("not_exists", "true")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.id", expect("not_exists", "true")), kOrder), "$.id exists: 42");
  EXPECT_EQ(json_why(json_check("$.missing", expect("equals", "x")), kOrder),
            "$.missing is missing");
  EXPECT_EQ(json_why(json_check("$.missing", expect("not_equals", "x")), kOrder), "");
}

TEST(CheckTest, JsonTextOperators) {
  EXPECT_EQ(json_why(json_check("$.status", expect("contains", "ai")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.status", expect("contains", "x")), kOrder),
            "$.status does not contain \"x\": \"paid\"");
  EXPECT_EQ(json_why(json_check("$.status", expect("not_contains", "x")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.status", expect("matches", "^p.*d$")), kOrder), "");
  EXPECT_EQ(json_why(json_check("$.items[-1].sku", expect("matches", "^[ab]$")), kOrder),
            "$.items[-1].sku does not match '^[ab]$': \"c\"");
}

TEST(CheckTest, JsonOneOf) {
  std::string error;
  Expectation statuses = *make_expectation("one_of", {"paid", "shipped"}, &error);
  Check c = json_check("$.status", statuses);
  EXPECT_EQ(c.name(), "json $.status is one of [\"paid\", \"shipped\"]");
  EXPECT_EQ(json_why(c, kOrder), "");
  EXPECT_EQ(json_why(json_check("$.items[0].sku", statuses), kOrder),
            "$.items[0].sku is \"a\", expected one of [\"paid\", \"shipped\"]");
  Expectation numbers = *make_expectation("one_of", {"41", "42.0"}, &error);
  EXPECT_EQ(json_why(json_check("$.id", numbers), kOrder), "") << "numbers compare numerically";
  EXPECT_EQ(json_why(json_check("$.total", numbers), kOrder),
            "$.total is 10.5, expected one of [\"41\", \"42.0\"]");
}

TEST(CheckTest, JsonOnNonJsonBody) {
  Check c = json_check("$.status", expect("equals", "paid"));
  EXPECT_EQ(json_why(c, "<html>502 Bad Gateway</html>"),
            "not JSON: \"<html>502 Bad Gateway</html>\"");
  EXPECT_EQ(json_why(json_check("$.error", expect("not_exists", "true")), "oops"),
            "not JSON: \"oops\"")
      << "an error page must not pass a not_exists check";
  EXPECT_EQ(json_why(c, ""), "not JSON: \"\"");
}

TEST(CheckTest, JsonPathErrors) {
  std::string error;
  EXPECT_FALSE(Check::json("$.items[", expect("exists", "true"), &error).has_value());
  EXPECT_NE(error.find("invalid JSON path \"$.items[\" at column 9"), std::string::npos) << error;
}

// ---- duration ----

TEST(CheckTest, Duration) {
  Check lt = Check::duration(expect("lt", "200000"));
  EXPECT_EQ(lt.subject(), Check::Subject::kDuration);
  EXPECT_EQ(lt.name(), "duration < 200ms");
  EXPECT_EQ(why_of(lt, response()), "duration is 250.345ms, expected < 200ms");
  EXPECT_EQ(why_of(Check::duration(expect("lt", "300000")), response()), "");
  EXPECT_EQ(why_of(Check::duration(expect("le", "250345")), response()), "");
  EXPECT_EQ(why_of(Check::duration(expect("ge", "2000000")), response()),
            "duration is 250.345ms, expected >= 2s");
  EXPECT_EQ(Check::duration(expect("gt", "1500")).name(), "duration > 1.5ms");
  EXPECT_EQ(Check::duration(expect("gt", "800")).name(), "duration > 800us");
  ResponseView fast = response();
  fast.latency_us = 750;
  EXPECT_EQ(why_of(Check::duration(expect("gt", "1000")), fast),
            "duration is 750us, expected > 1ms");
}

TEST(CheckTest, WhyMayBeNull) {
  EXPECT_FALSE(
      Check::status_in({200}).evaluate(response(500), Outcome::kMissing, nullptr, nullptr));
  EXPECT_FALSE(Check::body(expect("contains", "x"))
                   .evaluate(response(), Outcome::kMissing, nullptr, nullptr));
}

}  // namespace check_test
}  // namespace millstone::scenario
