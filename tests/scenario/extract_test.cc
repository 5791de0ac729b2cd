#include "scenario/extract.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace millstone::scenario {
namespace extract_test {

using Outcome = JsonEvaluator::Outcome;
using Type = JsonEvaluator::Value::Type;

JsonPath compile_ok(std::string_view text) {
  std::string error;
  std::optional<JsonPath> path = JsonPath::compile(text, &error);
  EXPECT_TRUE(path.has_value()) << text << ": " << error;
  return path ? *path : JsonPath();
}

std::string compile_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(JsonPath::compile(text, &error).has_value()) << text;
  return error;
}

// Evaluates one path; the value is meaningful only when kFound.
struct One {
  Outcome outcome;
  JsonEvaluator::Value value;
};
One eval(JsonEvaluator& evaluator, std::string_view body, std::string_view path_text) {
  JsonPath path = compile_ok(path_text);
  std::vector<Outcome> outcomes;
  std::vector<JsonEvaluator::Value> values;
  evaluator.evaluate(body, {&path}, &outcomes, &values);
  return {outcomes.at(0), values.at(0)};
}

// ---- JsonPath::compile ----

TEST(JsonPathTest, CompilesKeysIndexesAndQuotedKeys) {
  JsonPath q = compile_ok(R"($.items[12]["odd key"]['single'][-1].id-2)");
  ASSERT_EQ(q.segments().size(), 6u);
  EXPECT_FALSE(q.segments()[0].is_index);
  EXPECT_EQ(q.segments()[0].key, "items");
  EXPECT_TRUE(q.segments()[1].is_index);
  EXPECT_EQ(q.segments()[1].index, 12);
  EXPECT_EQ(q.segments()[2].key, "odd key");
  EXPECT_EQ(q.segments()[3].key, "single");
  EXPECT_TRUE(q.segments()[4].is_index);
  EXPECT_EQ(q.segments()[4].index, -1);
  EXPECT_EQ(q.segments()[5].key, "id-2");
  EXPECT_EQ(q.source(), R"($.items[12]["odd key"]['single'][-1].id-2)");
}

TEST(JsonPathTest, RootAloneIsTheWholeDocument) {
  EXPECT_TRUE(compile_ok("$").segments().empty());
}

TEST(JsonPathTest, QuotedKeysTakeEscapes) {
  JsonPath p = compile_ok(R"($["a\"b"]['c\'d']["e\\f"]["x.y[0]"])");
  ASSERT_EQ(p.segments().size(), 4u);
  EXPECT_EQ(p.segments()[0].key, "a\"b");
  EXPECT_EQ(p.segments()[1].key, "c'd");
  EXPECT_EQ(p.segments()[2].key, "e\\f");
  EXPECT_EQ(p.segments()[3].key, "x.y[0]");
}

TEST(JsonPathTest, Utf8KeysNeedNoQuotes) {
  JsonPath p = compile_ok("$.prénom");
  ASSERT_EQ(p.segments().size(), 1u);
  EXPECT_EQ(p.segments()[0].key, "prénom");
}

TEST(JsonPathTest, ErrorsSayWhereAndWhatWasExpected) {
  EXPECT_EQ(compile_error(""),
            "invalid JSON path \"\" at column 1: expected '$' at the start of the path, found end "
            "of path");
  EXPECT_EQ(compile_error("items"),
            "invalid JSON path \"items\" at column 1: expected '$' at the start of the path, "
            "found 'i'");
  EXPECT_EQ(compile_error("$."),
            "invalid JSON path \"$.\" at column 3: expected a key name after '.' (use [\"key\"] "
            "for other characters), found end of path");
  EXPECT_EQ(compile_error("$.items[x]"),
            "invalid JSON path \"$.items[x]\" at column 9: expected an array index (like 0 or -1) "
            "or a quoted key after '[', found 'x'");
  EXPECT_EQ(compile_error("$.items[0"),
            "invalid JSON path \"$.items[0\" at column 10: expected ']', found end of path");
  EXPECT_EQ(compile_error("$.items[-]"),
            "invalid JSON path \"$.items[-]\" at column 10: expected digits of the index after "
            "'-', found ']'");
  EXPECT_EQ(compile_error("$[\"abc"),
            "invalid JSON path \"$[\"abc\" at column 7: expected closing \" of the quoted key, "
            "found end of path");
  EXPECT_EQ(compile_error("$['a\\n']"),
            "invalid JSON path \"$['a\\n']\" at column 6: expected \\\\, \\\" or \\' after a "
            "backslash, found 'n'");
  EXPECT_EQ(compile_error("$x"),
            "invalid JSON path \"$x\" at column 2: expected '.' or '[', found 'x'");
  EXPECT_NE(compile_error("$.a b").find("column 4: expected '.' or '[', found byte 0x20"),
            std::string::npos);
  // A fraction is not recursive descent: the hint says what an index is.
  EXPECT_EQ(compile_error("$.items[1.5]"),
            "invalid JSON path \"$.items[1.5]\" at column 10: expected ']' (an array index is a "
            "whole number, like 0, 1 or -1), found '.'");
  EXPECT_EQ(compile_error("$[2e1]").find("recursive"), std::string::npos);
  EXPECT_NE(compile_error("$[99999999999999999999]").find("an index that fits in 64 bits"),
            std::string::npos);
}

TEST(JsonPathTest, UnsupportedFeaturesAreNamed) {
  EXPECT_NE(compile_error("$.items[*]").find("wildcards are not supported"), std::string::npos);
  EXPECT_NE(compile_error("$.*").find("wildcards are not supported"), std::string::npos);
  EXPECT_NE(compile_error("$..id").find("recursive descent"), std::string::npos);
  EXPECT_NE(compile_error("$.items[?(@.x)]").find("filters are not supported"), std::string::npos);
}

// ---- JsonEvaluator ----

constexpr std::string_view kOrder = R"({
  "id": 42, "status": "paid", "total": 10.50, "big": 18446744073709551615, "neg": -7,
  "ok": true, "none": null, "note": "caf\u00e9 \ud83d\ude00 \"q\"\n",
  "items": [{"id": "a1", "qty": 2}, {"id": "b2", "qty": 1}, {"id": "c3", "tags": []}],
  "meta": {"odd key": {"x": [10, [20, 30]]}, "empty": {}},
  "dup": 1, "dup": 2
})";

TEST(JsonEvaluatorTest, ScalarsOfEveryType) {
  JsonEvaluator ev;
  One id = eval(ev, kOrder, "$.id");
  ASSERT_EQ(id.outcome, Outcome::kFound);
  EXPECT_EQ(id.value.type, Type::kNumber);
  EXPECT_EQ(id.value.number, 42);
  EXPECT_EQ(id.value.text, "42");

  One total = eval(ev, kOrder, "$.total");
  EXPECT_EQ(total.value.type, Type::kNumber);
  EXPECT_DOUBLE_EQ(total.value.number, 10.5);
  EXPECT_EQ(total.value.text, "10.5") << "numbers are in shortest round-trip form";

  One big = eval(ev, kOrder, "$.big");
  ASSERT_EQ(big.outcome, Outcome::kFound);
  EXPECT_EQ(big.value.text, "18446744073709551615");

  EXPECT_EQ(eval(ev, kOrder, "$.neg").value.text, "-7");

  One status = eval(ev, kOrder, "$.status");
  EXPECT_EQ(status.value.type, Type::kString);
  EXPECT_EQ(status.value.text, "paid");
  EXPECT_EQ(status.value.length, 4u);

  One ok = eval(ev, kOrder, "$.ok");
  EXPECT_EQ(ok.value.type, Type::kBool);
  EXPECT_EQ(ok.value.text, "true");

  One none = eval(ev, kOrder, "$.none");
  ASSERT_EQ(none.outcome, Outcome::kFound) << "null is a value, not a missing field";
  EXPECT_EQ(none.value.type, Type::kNull);
  EXPECT_EQ(none.value.text, "null");
}

TEST(JsonEvaluatorTest, NumbersInCanonicalForm) {
  JsonEvaluator ev;
  One m = eval(ev, R"({"m": -1.5E+3, "z": -0.0, "i": -9223372036854775808})", "$.m");
  ASSERT_EQ(m.outcome, Outcome::kFound);
  EXPECT_EQ(m.value.text, "-1500");
  EXPECT_EQ(m.value.number, -1500);
  EXPECT_EQ(eval(ev, R"({"i": -9223372036854775808})", "$.i").value.text, "-9223372036854775808");
  One root = eval(ev, " 42\n", "$");
  ASSERT_EQ(root.outcome, Outcome::kFound);
  EXPECT_EQ(root.value.text, "42");
  // A documented limit of simdjson 3.0: integers beyond 64 bits.
  EXPECT_EQ(eval(ev, R"({"id": 123456789012345678901234567890})", "$.id").outcome,
            Outcome::kNotJson);
}

TEST(JsonEvaluatorTest, EscapedKeysMatchTheirUnescapedText) {
  JsonEvaluator ev;
  EXPECT_EQ(eval(ev, R"({"\u0061": 1})", "$.a").value.text, "1");
  EXPECT_EQ(eval(ev, R"({"caf\u00e9": 2})", "$.café").value.text, "2");
  EXPECT_EQ(eval(ev, R"({"a\"b": 3})", R"($["a\"b"])").value.text, "3");
}

TEST(JsonEvaluatorTest, WhitespaceAroundTokensIsIgnored) {
  JsonEvaluator ev;
  std::string_view body = " \r\n\t{ \"a\" : [ 1 , { \"b\" : true } ] , \"s\" : \" x \" }\n ";
  EXPECT_EQ(eval(ev, body, "$.a[1].b").value.text, "true");
  EXPECT_EQ(eval(ev, body, "$.a").value.text, R"([1,{"b":true}])");
  EXPECT_EQ(eval(ev, body, "$.s").value.text, " x ");
}

TEST(JsonEvaluatorTest, StringsAreUnescapedIncludingUnicode) {
  JsonEvaluator ev;
  One note = eval(ev, kOrder, "$.note");
  ASSERT_EQ(note.outcome, Outcome::kFound);
  EXPECT_EQ(note.value.text, "café \xF0\x9F\x98\x80 \"q\"\n");
  EXPECT_EQ(note.value.length, 11u) << "length counts code points";
}

TEST(JsonEvaluatorTest, NestedArrayAndNegativeIndexes) {
  JsonEvaluator ev;
  EXPECT_EQ(eval(ev, kOrder, "$.items[0].id").value.text, "a1");
  EXPECT_EQ(eval(ev, kOrder, "$.items[1].qty").value.number, 1);
  EXPECT_EQ(eval(ev, kOrder, "$.items[-1].id").value.text, "c3");
  EXPECT_EQ(eval(ev, kOrder, "$.items[-3].id").value.text, "a1");
  EXPECT_EQ(eval(ev, kOrder, R"($.meta["odd key"].x[1][-1])").value.text, "30");
  EXPECT_EQ(eval(ev, kOrder, R"($['meta']['odd key']['x'][0])").value.text, "10");
}

TEST(JsonEvaluatorTest, ContainersAreMinifiedWithTheirLength) {
  JsonEvaluator ev;
  One items = eval(ev, kOrder, "$.items");
  ASSERT_EQ(items.outcome, Outcome::kFound);
  EXPECT_EQ(items.value.type, Type::kArray);
  EXPECT_EQ(items.value.length, 3u);
  EXPECT_EQ(items.value.text, R"([{"id":"a1","qty":2},{"id":"b2","qty":1},{"id":"c3","tags":[]}])");
  One meta = eval(ev, kOrder, "$.meta");
  EXPECT_EQ(meta.value.type, Type::kObject);
  EXPECT_EQ(meta.value.length, 2u);
  One empty = eval(ev, kOrder, "$.meta.empty");
  EXPECT_EQ(empty.value.text, "{}");
  EXPECT_EQ(empty.value.length, 0u);
  EXPECT_EQ(eval(ev, kOrder, "$.items[2].tags").value.length, 0u);
  One root = eval(ev, "[1, 2]", "$");
  EXPECT_EQ(root.value.text, "[1,2]");
}

TEST(JsonEvaluatorTest, MissingPaths) {
  JsonEvaluator ev;
  EXPECT_EQ(eval(ev, kOrder, "$.nope").outcome, Outcome::kMissing);
  EXPECT_EQ(eval(ev, kOrder, "$.items[3]").outcome, Outcome::kMissing);
  EXPECT_EQ(eval(ev, kOrder, "$.items[-4]").outcome, Outcome::kMissing);
  EXPECT_EQ(eval(ev, kOrder, "$.items.id").outcome, Outcome::kMissing) << "key on an array";
  EXPECT_EQ(eval(ev, kOrder, "$.meta[0]").outcome, Outcome::kMissing) << "index on an object";
  EXPECT_EQ(eval(ev, kOrder, "$.status[0]").outcome, Outcome::kMissing) << "index on a string";
  EXPECT_EQ(eval(ev, kOrder, "$.id.x").outcome, Outcome::kMissing);
  EXPECT_EQ(eval(ev, kOrder, "$.ID").outcome, Outcome::kMissing) << "keys are case-sensitive";
  EXPECT_EQ(eval(ev, "[]", "$[-1]").outcome, Outcome::kMissing);
}

TEST(JsonEvaluatorTest, DuplicateKeysTakeTheFirst) {
  JsonEvaluator ev;
  EXPECT_EQ(eval(ev, kOrder, "$.dup").value.text, "1");
}

TEST(JsonEvaluatorTest, NonJsonBodiesAreNotJsonForEveryPath) {
  JsonEvaluator ev;
  for (std::string_view body :
       {std::string_view(""), std::string_view("<html>oops</html>"), std::string_view("{\"a\":1"),
        std::string_view("{\"a\": 1} trailing"), std::string_view("{\"a\": [1, 2,]}"),
        std::string_view("{\"a\": \"\\ud800\"}"), std::string_view("{\"a\": \"\xff\"}"),
        std::string_view("   "), std::string_view("\"hi\" x"), std::string_view("12 13"),
        std::string_view("tru"), std::string_view("nul"), std::string_view("[1]]"),
        std::string_view("{\"a\": 1}}"), std::string_view("{\"a\": tru}"),
        std::string_view("{\"a\": 1.2.3}"), std::string_view("\xEF\xBB\xBF{}")}) {
    JsonPath a = compile_ok("$.a");
    JsonPath root = compile_ok("$");
    std::vector<Outcome> outcomes;
    std::vector<JsonEvaluator::Value> values;
    ev.evaluate(body, {&a, &root}, &outcomes, &values);
    ASSERT_EQ(outcomes.size(), 2u);
    EXPECT_EQ(outcomes[0], Outcome::kNotJson) << body;
    EXPECT_EQ(outcomes[1], Outcome::kNotJson) << body;
  }
}

TEST(JsonEvaluatorTest, ScalarDocumentsAreJson) {
  JsonEvaluator ev;
  One s = eval(ev, "\"hi\"", "$");
  ASSERT_EQ(s.outcome, Outcome::kFound);
  EXPECT_EQ(s.value.text, "hi");
  EXPECT_EQ(eval(ev, "12", "$.x").outcome, Outcome::kMissing);
  EXPECT_EQ(eval(ev, "12", "$[0]").outcome, Outcome::kMissing);
  One t = eval(ev, "true\n\n\n\n", "$");
  ASSERT_EQ(t.outcome, Outcome::kFound);
  EXPECT_EQ(t.value.text, "true");
  EXPECT_EQ(eval(ev, " null \n\n ", "$").value.type, Type::kNull);
  EXPECT_EQ(eval(ev, "\"x\"\n\n\n", "$").value.text, "x");
  One zero = eval(ev, "0e5666666666666666666666", "$");
  ASSERT_EQ(zero.outcome, Outcome::kFound);
  EXPECT_EQ(zero.value.number, 0);
  EXPECT_EQ(eval(ev, "1e999", "$").outcome, Outcome::kNotJson) << "out of double range";
  One mantissa = eval(ev, R"({"big":0.474073609554059609554909})", "$.big");
  ASSERT_EQ(mantissa.outcome, Outcome::kFound);
  EXPECT_EQ(mantissa.value.number, 0.47407360955405958);
  EXPECT_EQ(eval(ev, R"({"n": 01})", "$.n").outcome, Outcome::kNotJson) << "leading zero";
  EXPECT_EQ(eval(ev, R"({"n": 1.})", "$.n").outcome, Outcome::kNotJson);
  EXPECT_EQ(eval(ev, R"({"n": -})", "$.n").outcome, Outcome::kNotJson);
}

TEST(JsonEvaluatorTest, SeveralPathsOneParseAndReuseAcrossBodies) {
  JsonEvaluator ev;
  JsonPath id = compile_ok("$.items[0].id");
  JsonPath status = compile_ok("$.status");
  JsonPath missing = compile_ok("$.nope");
  std::vector<const JsonPath*> paths = {&id, &status, &missing};
  std::vector<Outcome> outcomes;
  std::vector<JsonEvaluator::Value> values;
  ev.evaluate(kOrder, paths, &outcomes, &values);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0], Outcome::kFound);
  EXPECT_EQ(values[0].text, "a1");
  EXPECT_EQ(values[1].text, "paid");
  EXPECT_EQ(outcomes[2], Outcome::kMissing);

  // A larger body, then a smaller one: the padded buffer grows and is reused.
  std::string large =
      "{\"status\": \"" + std::string(100000, 'x') + "\", \"items\": [{\"id\": 1}]}";
  ev.evaluate(large, paths, &outcomes, &values);
  EXPECT_EQ(values[0].text, "1");
  EXPECT_EQ(values[1].text.size(), 100000u);
  ev.evaluate(R"({"status": "s"})", paths, &outcomes, &values);
  EXPECT_EQ(outcomes[0], Outcome::kMissing);
  EXPECT_EQ(values[1].text, "s");
  ev.evaluate("nope", paths, &outcomes, &values);
  EXPECT_EQ(outcomes[1], Outcome::kNotJson);
  ev.evaluate(R"({"status": "back"})", paths, &outcomes, &values);
  EXPECT_EQ(outcomes[1], Outcome::kFound) << "a bad body does not poison the evaluator";
  EXPECT_EQ(values[1].text, "back");

  ev.evaluate(kOrder, {}, &outcomes, &values);
  EXPECT_TRUE(outcomes.empty());
}

TEST(JsonEvaluatorTest, BodyIsNotReadPastItsEnd) {
  // The body is a prefix of a longer buffer: only the prefix is JSON.
  std::string buffer = R"({"a": 1}{"a": 2})";
  JsonEvaluator ev;
  One one = eval(ev, std::string_view(buffer).substr(0, 8), "$.a");
  ASSERT_EQ(one.outcome, Outcome::kFound);
  EXPECT_EQ(one.value.text, "1");
}

// ---- Extractor ----

ResponseView response_with(std::string_view body) {
  ResponseView r;
  r.status = 201;
  r.body = body;
  r.headers = {{"Content-Type", "application/json"},
               {"Location", "/orders/42"},
               {"Set-Cookie", "theme=dark; Path=/"},
               {"set-cookie", " session = abc123 ; HttpOnly; Secure"},
               {"Set-Cookie", "malformed"},
               {"Set-Cookie", "empty=; Max-Age=0"},
               {"X-Empty", ""},
               {"Set-Cookie", "theme=light"}};
  return r;
}

TEST(ExtractorTest, Json) {
  std::string error;
  std::optional<Extractor> e = Extractor::json("$.token", &error);
  ASSERT_TRUE(e.has_value()) << error;
  EXPECT_EQ(e->kind(), Extractor::Kind::kJson);
  ASSERT_NE(e->json_path(), nullptr);
  EXPECT_EQ(e->json_path()->source(), "$.token");
  EXPECT_EQ(e->describe(), "json $.token");
  std::string out;
  EXPECT_FALSE(e->apply(response_with("{}"), &out)) << "JSON values come from JsonEvaluator";

  EXPECT_FALSE(Extractor::json("token", &error).has_value());
  EXPECT_NE(error.find("expected '$'"), std::string::npos) << error;
}

TEST(ExtractorTest, RegexWholeMatchAndGroups) {
  std::string error;
  ResponseView r = response_with("ok: order-1234 for user-77, order-99");
  std::string out;

  std::optional<Extractor> whole = Extractor::regex(R"(order-\d+)", 0, &error);
  ASSERT_TRUE(whole.has_value()) << error;
  EXPECT_EQ(whole->kind(), Extractor::Kind::kRegex);
  ASSERT_TRUE(whole->apply(r, &out));
  EXPECT_EQ(out, "order-1234") << "the first match";
  EXPECT_EQ(whole->describe(), R"(regex 'order-\d+')");

  std::optional<Extractor> g2 = Extractor::regex(R"((order)-(\d+).*user-(\d+))", 2, &error);
  ASSERT_TRUE(g2.has_value()) << error;
  ASSERT_TRUE(g2->apply(r, &out));
  EXPECT_EQ(out, "1234");
  EXPECT_EQ(g2->describe(), R"(regex '(order)-(\d+).*user-(\d+)' group 2)");

  std::optional<Extractor> g3 = Extractor::regex(R"((order)-(\d+).*user-(\d+))", 3, &error);
  ASSERT_TRUE(g3->apply(r, &out));
  EXPECT_EQ(out, "77");

  std::optional<Extractor> many =
      Extractor::regex("(o)(r)(d)(e)(r)(-)(1)(2)(3)(4)( )(f)", 12, &error);
  ASSERT_TRUE(many.has_value()) << error;
  ASSERT_TRUE(many->apply(r, &out));
  EXPECT_EQ(out, "f");

  out = "unchanged";
  EXPECT_FALSE(whole->apply(response_with("no orders here"), &out));
  EXPECT_EQ(out, "unchanged");

  std::optional<Extractor> optional_group = Extractor::regex("order-(x)?", 1, &error);
  ASSERT_TRUE(optional_group.has_value());
  EXPECT_FALSE(optional_group->apply(r, &out)) << "a group that did not take part is absent";

  std::optional<Extractor> empty_group = Extractor::regex("order-()", 1, &error);
  ASSERT_TRUE(empty_group->apply(r, &out));
  EXPECT_EQ(out, "");
}

TEST(ExtractorTest, RegexErrors) {
  std::string error;
  EXPECT_FALSE(Extractor::regex("order-(\\d+", 1, &error).has_value());
  EXPECT_NE(error.find("invalid regex 'order-(\\d+': missing )"), std::string::npos) << error;
  EXPECT_FALSE(Extractor::regex("order-(\\d+)", 2, &error).has_value());
  EXPECT_EQ(error,
            "regex 'order-(\\d+)' has 1 capture group(s); group 2 is out of range (0 is the "
            "whole match)");
  EXPECT_FALSE(Extractor::regex("x", -1, &error).has_value());
}

TEST(ExtractorTest, HeaderIsCaseInsensitiveFirstValue) {
  ResponseView r = response_with("");
  std::string out;
  Extractor e = Extractor::header("location");
  EXPECT_EQ(e.kind(), Extractor::Kind::kHeader);
  ASSERT_TRUE(e.apply(r, &out));
  EXPECT_EQ(out, "/orders/42");
  EXPECT_EQ(e.describe(), "header location");
  ASSERT_TRUE(Extractor::header("SET-COOKIE").apply(r, &out));
  EXPECT_EQ(out, "theme=dark; Path=/");
  ASSERT_TRUE(Extractor::header("x-empty").apply(r, &out)) << "present but empty";
  EXPECT_EQ(out, "");
  EXPECT_FALSE(Extractor::header("X-Missing").apply(r, &out));
}

TEST(ExtractorTest, CookieFromAllSetCookieHeaders) {
  ResponseView r = response_with("");
  std::string out;
  Extractor session = Extractor::cookie("session");
  EXPECT_EQ(session.kind(), Extractor::Kind::kCookie);
  EXPECT_EQ(session.describe(), "cookie session");
  ASSERT_TRUE(session.apply(r, &out));
  EXPECT_EQ(out, "abc123");
  ASSERT_TRUE(Extractor::cookie("theme").apply(r, &out));
  EXPECT_EQ(out, "light") << "the last Set-Cookie for a name wins";
  ASSERT_TRUE(Extractor::cookie("empty").apply(r, &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(Extractor::cookie("Session").apply(r, &out)) << "cookie names are case-sensitive";
  EXPECT_FALSE(Extractor::cookie("malformed").apply(r, &out));
  EXPECT_FALSE(Extractor::cookie("HttpOnly").apply(r, &out)) << "attributes are not cookies";
  EXPECT_FALSE(Extractor::cookie("session").apply(ResponseView(), &out));
}

TEST(ExtractorTest, StatusAndBody) {
  ResponseView r = response_with("hello");
  std::string out;
  Extractor status = Extractor::status();
  EXPECT_EQ(status.kind(), Extractor::Kind::kStatus);
  ASSERT_TRUE(status.apply(r, &out));
  EXPECT_EQ(out, "201");
  EXPECT_EQ(status.describe(), "status");
  Extractor body = Extractor::body();
  EXPECT_EQ(body.kind(), Extractor::Kind::kBody);
  ASSERT_TRUE(body.apply(r, &out));
  EXPECT_EQ(out, "hello");
  EXPECT_EQ(body.describe(), "body");
}

TEST(ExtractorTest, MovesKeepTheCompiledRegex) {
  std::string error;
  std::optional<Extractor> e = Extractor::regex("id=(\\d+)", 1, &error);
  Extractor moved = std::move(*e);
  std::string out;
  ASSERT_TRUE(moved.apply(response_with("id=5"), &out));
  EXPECT_EQ(out, "5");
  Extractor assigned = Extractor::body();
  assigned = std::move(moved);
  ASSERT_TRUE(assigned.apply(response_with("id=6"), &out));
  EXPECT_EQ(out, "6");
}

TEST(ResponseViewTest, HeaderLookupIsCaseInsensitive) {
  ResponseView r = response_with("");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("CONTENT-TYPE"), "application/json");
  EXPECT_EQ(r.header("set-cookie"), "theme=dark; Path=/") << "the first of several";
  EXPECT_EQ(r.header("missing"), "");
  EXPECT_EQ(r.header("Content-Typ"), "");
  ASSERT_NE(r.find_header("x-empty"), nullptr);
  EXPECT_EQ(*r.find_header("x-empty"), "");
  EXPECT_EQ(r.find_header("x-missing"), nullptr);
}

}  // namespace extract_test
}  // namespace millstone::scenario
