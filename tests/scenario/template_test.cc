#include "scenario/template.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

namespace millstone::scenario {
namespace template_test {

// Matches ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ (by hand:
// GCC 12's <regex> draws -Wmaybe-uninitialized under sanitizers).
bool is_uuid_v4(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return s[14] == '4' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}

TEST(UuidShapeTest, CheckerRejectsNearMisses) {
  EXPECT_TRUE(is_uuid_v4("123e4567-e89b-42d3-a456-426614174000"));
  EXPECT_FALSE(is_uuid_v4("123e4567-e89b-12d3-a456-426614174000"));  // version 1
  EXPECT_FALSE(is_uuid_v4("123e4567-e89b-42d3-c456-426614174000"));  // variant 110
  EXPECT_FALSE(is_uuid_v4("123E4567-e89b-42d3-a456-426614174000"));  // uppercase
  EXPECT_FALSE(is_uuid_v4("123e4567e89b-42d3-a456-4266141740000"));  // dash moved
  EXPECT_FALSE(is_uuid_v4("123e4567-e89b-42d3-a456-42661417400"));   // short
}

class TemplateTest : public ::testing::Test {
 protected:
  Template compile(std::string_view text, bool allow_new = true) {
    std::string error;
    size_t offset = 0;
    auto t = Template::compile(text, variables_, allow_new, &error, &offset);
    EXPECT_TRUE(t.has_value()) << text << ": " << error << " at " << offset;
    return t ? std::move(*t) : Template();
  }

  // Compiles and renders with the fixture's context; "<error>" if it does not compile.
  std::string render(std::string_view text, bool allow_new = true) {
    return compile(text, allow_new).render(context_);
  }

  void set(std::string_view name, std::string value) {
    const uint32_t slot = variables_.intern(name);
    if (values_.size() <= slot) values_.resize(slot + 1);
    values_[slot] = std::move(value);
  }

  VariableTable variables_;
  std::vector<std::string> values_;
  random::Prng prng_{42};
  RenderContext context_{&values_, 7, 3, 2, &prng_, 1795395723456};  // 2026-11-23T01:02:03.456Z
};

// --- literals, variables and whitespace -------------------------------------

TEST_F(TemplateTest, PlainTextIsOneLiteral) {
  Template t = compile("/items?page=2");
  EXPECT_TRUE(t.is_literal());
  EXPECT_EQ(t.render(context_), "/items?page=2");
  EXPECT_EQ(t.source(), "/items?page=2");
  EXPECT_TRUE(t.variables_used().empty());
}

TEST_F(TemplateTest, EmptyTemplate) {
  Template t = compile("");
  EXPECT_TRUE(t.is_literal());
  EXPECT_EQ(t.render(context_), "");
  EXPECT_EQ(Template().render(context_), "");
  EXPECT_TRUE(Template().is_literal());
}

TEST_F(TemplateTest, LiteralFactoryKeepsBracesVerbatim) {
  Template t = Template::literal("{{ not an expression }}");
  EXPECT_TRUE(t.is_literal());
  EXPECT_EQ(t.render(context_), "{{ not an expression }}");
  EXPECT_EQ(t.source(), "{{ not an expression }}");
}

TEST_F(TemplateTest, Variables) {
  set("token", "abc");
  set("users.email", "a@b.c");
  set("x-id", "9");
  EXPECT_EQ(render("Bearer {{ token }}"), "Bearer abc");
  EXPECT_EQ(render("{{users.email}}/{{ x-id }}"), "a@b.c/9");
  EXPECT_EQ(render("{{ token }}{{ token }}"), "abcabc");
}

TEST_F(TemplateTest, WhitespaceInsideBracesIsOptional) {
  set("a", "1");
  for (const char* text : {"{{a}}", "{{ a }}", "{{   a   }}", "{{\ta\n}}", "{{ \r\na}}"}) {
    EXPECT_EQ(render(text), "1") << text;
  }
  EXPECT_EQ(render("{{a|json}}"), "1");
  EXPECT_EQ(render("{{ a |  json }}"), "1");
  EXPECT_EQ(render("{{random(4,4)}}"), "4");
  EXPECT_EQ(render("{{ random ( 4 , 4 ) }}"), "4");
}

TEST_F(TemplateTest, UnsetVariablesRenderEmpty) {
  Template t = compile("[{{ later }}]");  // interned, never set
  EXPECT_EQ(t.render(context_), "[]");
  set("later", "x");
  EXPECT_EQ(t.render(context_), "[x]");
  RenderContext no_variables = context_;
  no_variables.variables = nullptr;
  EXPECT_EQ(t.render(no_variables), "[]");
}

TEST_F(TemplateTest, KnownVariablesResolveWithoutAllowNew) {
  set("id", "5");
  std::string error;
  size_t offset = 0;
  auto t = Template::compile("/items/{{ id }}", variables_, false, &error, &offset);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->render(context_), "/items/5");
  EXPECT_EQ(t->variables_used(), std::vector<uint32_t>{0});
}

TEST_F(TemplateTest, AllowNewInternsAndVariablesUsedIsUnique) {
  set("a", "");
  Template t = compile("{{ b }}{{ a }}{{ b }}{{ vu }}{{ c | json }}");
  EXPECT_EQ(variables_.size(), 3u);
  EXPECT_EQ(variables_.find("b"), 1);
  EXPECT_EQ(variables_.find("c"), 2);
  EXPECT_EQ(t.variables_used(), (std::vector<uint32_t>{1, 0, 2}));
  EXPECT_FALSE(t.is_literal());
}

// --- built-ins ---------------------------------------------------------------

TEST_F(TemplateTest, IdentityBuiltins) {
  EXPECT_EQ(render("{{ vu }}-{{ iteration }}-{{ worker }}"), "7-3-2");
  context_.vu_id = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(render("{{ vu }}"), "18446744073709551615");
}

TEST_F(TemplateTest, CorrelationIdIsTheIterationsAndTheRuns) {
  context_.run_tag = 0x0123456789abcdefULL;
  // The same in every step of an iteration (no randomness), another per
  // iteration, VU and run.
  EXPECT_EQ(render("{{ corr }}"), "0123456789abcdef-7-3");
  EXPECT_EQ(render("{{corr}}"), render("{{ corr }}"));
  context_.iteration = 4;
  EXPECT_EQ(render("{{ corr }}"), "0123456789abcdef-7-4");
  context_.run_tag = 0;
  EXPECT_EQ(render("id={{ corr | urlencode }}"), "id=0000000000000000-7-4");
}

TEST_F(TemplateTest, NowInMillisecondsAndSeconds) {
  EXPECT_EQ(render("{{ now_ms }}"), "1795395723456");
  EXPECT_EQ(render("{{ now }}"), "1795395723");
  context_.now_unix_ms = -1;  // seconds round down, not toward zero
  EXPECT_EQ(render("{{ now_ms }} {{ now }}"), "-1 -1");
  context_.now_unix_ms = -1000;
  EXPECT_EQ(render("{{ now }}"), "-1");
}

TEST_F(TemplateTest, NowIsoKnownTimestamps) {
  const std::pair<int64_t, const char*> cases[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1795395723456, "2026-11-23T01:02:03.456Z"},
      {1456790399999, "2016-02-29T23:59:59.999Z"},  // leap day (divisible by 4)
      {951825600000, "2000-02-29T12:00:00.000Z"},   // leap day (divisible by 400)
      {4107542399999, "2100-02-28T23:59:59.999Z"},  // 2100 is not a leap year ...
      {4107542400000, "2100-03-01T00:00:00.000Z"},  // ... so March follows February 28
      {-2203891200000, "1900-03-01T00:00:00.000Z"},
      {1735689599000, "2024-12-31T23:59:59.000Z"},
      {-1, "1969-12-31T23:59:59.999Z"},  // before the epoch rounds down
      {-11644473600000, "1601-01-01T00:00:00.000Z"},
      {253402300799999, "9999-12-31T23:59:59.999Z"},
      {253402300800000, "+10000-01-01T00:00:00.000Z"},
  };
  Template t = compile("{{ now_iso }}");
  for (const auto& [ms, expected] : cases) {
    context_.now_unix_ms = ms;
    EXPECT_EQ(t.render(context_), expected) << ms;
  }
}

TEST_F(TemplateTest, NowIsoExtremesDoNotOverflow) {
  Template t = compile("{{ now_iso }}");
  for (int64_t ms : {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    context_.now_unix_ms = ms;
    const std::string s = t.render(context_);
    EXPECT_EQ(s.back(), 'Z') << s;
    EXPECT_EQ(s.substr(s.size() - 5, 1), ".") << s;
  }
}

TEST_F(TemplateTest, RandomStaysInInclusiveRangeAndHitsBothEnds) {
  Template t = compile("{{ random(1, 3) }}");
  std::set<std::string> seen;
  for (int i = 0; i < 300; ++i)
    seen.insert(t.render(context_));
  EXPECT_EQ(seen, (std::set<std::string>{"1", "2", "3"}));

  Template negative = compile("{{ random(-3, -1) }}");
  seen.clear();
  for (int i = 0; i < 300; ++i)
    seen.insert(negative.render(context_));
  EXPECT_EQ(seen, (std::set<std::string>{"-3", "-2", "-1"}));

  EXPECT_EQ(render("{{ random(5, 5) }}"), "5");
  EXPECT_EQ(render("{{ random(+5, 5) }}"), "5");
}

TEST_F(TemplateTest, RandomFullAndWideRanges) {
  Template full = compile("{{ random(-9223372036854775808, 9223372036854775807) }}");
  Template wide = compile("{{ random(-9223372036854775808, 0) }}");
  for (int i = 0; i < 100; ++i) {
    const std::string a = full.render(context_);
    EXPECT_FALSE(a.empty());
    const int64_t b = std::stoll(wide.render(context_));
    EXPECT_LE(b, 0);
  }
}

TEST_F(TemplateTest, RandomDistributionIsRoughlyUniform) {
  // Fixed seed, so this is deterministic; the bound is ~6 standard deviations.
  Template t = compile("{{ random(0, 9) }}");
  std::array<int, 10> counts{};
  std::string out;
  constexpr int kDraws = 100000;
  for (int i = 0; i < kDraws; ++i) {
    out.clear();
    t.render(context_, &out);
    ++counts[std::stoi(out)];
  }
  for (int c : counts) {
    EXPECT_NEAR(c, kDraws / 10, 600);
  }
}

TEST_F(TemplateTest, RandomIsReproducibleForASeed) {
  Template t = compile("{{ random(0, 1000000) }} {{ uuid }}");
  random::Prng a(7), b(7);
  RenderContext ca = context_, cb = context_;
  ca.prng = &a;
  cb.prng = &b;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(t.render(ca), t.render(cb));
}

TEST_F(TemplateTest, WithoutAPrngRandomIsTheLowerBound) {
  context_.prng = nullptr;
  EXPECT_EQ(render("{{ random(3, 9) }}"), "3");
  EXPECT_EQ(render("{{ uuid }}"), "00000000-0000-4000-8000-000000000000");
}

TEST_F(TemplateTest, UuidIsVersion4) {
  Template t = compile("{{ uuid }}");
  std::set<std::string> seen;
  std::set<char> variants;
  for (int i = 0; i < 200; ++i) {
    const std::string u = t.render(context_);
    EXPECT_TRUE(is_uuid_v4(u)) << u;
    seen.insert(u);
    variants.insert(u[19]);
  }
  EXPECT_EQ(seen.size(), 200u);
  EXPECT_EQ(variants, (std::set<char>{'8', '9', 'a', 'b'}));
}

// --- filters -----------------------------------------------------------------

TEST_F(TemplateTest, UrlEncodeKeepsUnreservedOnly) {
  set("q", "a b&c=d/\xC3\xA9~._-AZaz09+%?#");
  EXPECT_EQ(render("?q={{ q | urlencode }}"), "?q=a%20b%26c%3Dd%2F%C3%A9~._-AZaz09%2B%25%3F%23");
  set("q", std::string("\0\x7f\xff", 3));
  EXPECT_EQ(render("{{ q | urlencode }}"), "%00%7F%FF");
  set("q", "");
  EXPECT_EQ(render("{{ q | urlencode }}"), "");
}

TEST_F(TemplateTest, JsonEscapesForInsideAString) {
  set("v", "say \"hi\"\\\n\r\t\b\f\x01\x1f\x7f \xC3\xA9/");
  EXPECT_EQ(render("{\"v\":\"{{ v | json }}\"}"),
            "{\"v\":\"say \\\"hi\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001F\x7f \xC3\xA9/\"}");
  set("v", std::string(1, '\0'));
  EXPECT_EQ(render("{{ v | json }}"), "\\u0000");
  set("v", "plain");
  EXPECT_EQ(render("{{ v | json }}"), "plain");
}

TEST_F(TemplateTest, FiltersApplyToBuiltins) {
  EXPECT_EQ(render("{{ now_iso | urlencode }}"), "2026-11-23T01%3A02%3A03.456Z");
  EXPECT_EQ(render("{{ now_iso | json }}"), "2026-11-23T01:02:03.456Z");
  EXPECT_EQ(render("{{ vu | urlencode }}"), "7");
  EXPECT_EQ(render("{{ random(-2, -2) | json }}"), "-2");
  EXPECT_EQ(render("{{ uuid | urlencode }}").size(), 36u);
}

// --- escaping and stray braces -------------------------------------------------

TEST_F(TemplateTest, BackslashEscapesOpeningBraces) {
  Template t = compile("\\{{ not a variable }}");
  EXPECT_TRUE(t.is_literal());
  EXPECT_EQ(t.render(context_), "{{ not a variable }}");
  EXPECT_EQ(render("a\\{{b"), "a{{b");
  EXPECT_EQ(render("\\{{{"), "{{{");
  // Only "\{{" is an escape: other backslashes are text.
  EXPECT_EQ(render("C:\\dir\\n"), "C:\\dir\\n");
  EXPECT_EQ(render("\\\\{{"), "\\{{");
  EXPECT_EQ(render("\\{"), "\\{");
  set("x", "1");
  EXPECT_EQ(render("\\{{ x }}{{ x }}"), "{{ x }}1");
}

TEST_F(TemplateTest, StrayClosingBracesAndSingleBracesAreLiteral) {
  set("x", "1");
  EXPECT_EQ(render("}}"), "}}");
  EXPECT_EQ(render("a }} b"), "a }} b");
  EXPECT_EQ(render("{{ x }}}}"), "1}}");
  EXPECT_EQ(render("{\"a\": {\"b\": 1}}"), "{\"a\": {\"b\": 1}}");
  EXPECT_EQ(render("{ {{ x }} }"), "{ 1 }");
  EXPECT_EQ(render("{{ x }}}"), "1}");
}

TEST_F(TemplateTest, EscapeRoundTrips) {
  for (const char* text :
       {"", "plain", "{{ x }}", "{{{", "{{{{", "\\{{", "\\", "a{{b}}c\\{{d", "}}{{", "{\\{{"}) {
    const std::string source = Template::escape(text);
    std::string error;
    size_t offset = 0;
    auto t = Template::compile(source, variables_, false, &error, &offset);
    ASSERT_TRUE(t) << text << ": " << error;
    EXPECT_TRUE(t->is_literal()) << text;
    EXPECT_EQ(t->render(context_), text) << source;
  }
}

// --- errors --------------------------------------------------------------------

struct ErrorCase {
  const char* text;
  bool allow_new;
  const char* message;  // substring
  size_t offset;
};

TEST_F(TemplateTest, ErrorsNameTheProblemAndItsOffset) {
  set("x", "");
  const ErrorCase cases[] = {
      {"ab{{ x", true, "unclosed '{{'", 2},
      {"{{ x }} {{", true, "unclosed '{{'", 8},
      {"ab{{ x }", true, "unclosed '{{'", 2},
      {"{{}}", true, "empty expression", 0},
      {"x{{   }}", true, "empty expression", 1},
      {"{{ foo(1) }}", true, "unknown function 'foo'", 3},
      {"{{ x(1, 2) }}", true, "unknown function 'x'", 3},
      {"{{ uuid() }}", true, "'uuid' takes no arguments", 3},
      {"{{ random }}", true, "random needs two arguments", 3},
      {"{{ random(a, 2) }}", true, "must be integers", 10},
      {"{{ random(1.5, 2) }}", true, "must be integers", 10},
      {"{{ random(1, 0x10) }}", true, "must be integers", 13},
      {"{{ random(+-1, 2) }}", true, "must be integers", 10},
      {"{{ random(, 2) }}", true, "must be integers", 10},
      {"{{ random(1 2) }}", true, "expected ','", 12},
      {"{{ random(1, 2 }}", true, "expected ')'", 15},
      {"{{ random(1, 2) ) }}", true, "unexpected ')'", 16},
      {"{{ random(5, 1) }}", true, "A <= B", 10},
      {"{{ random(99999999999999999999, 1) }}", true, "64 bits", 10},
      {"{{ random(1, -9223372036854775809) }}", true, "64 bits", 13},
      {"{{ x | upper }}", true, "unknown filter 'upper'", 7},
      {"{{ x | }}", true, "expected a filter name", 7},
      {"{{ x | json | urlencode }}", true, "only one filter", 12},
      {"{{ tokn }}", false, "unknown variable 'tokn'", 3},
      {"hello {{ x }} {{  tokn|json }}", false, "unknown variable 'tokn'", 18},
      {"{{ 1abc }}", true, "expected a variable or function name, found '1'", 3},
      {"{{ | json }}", true, "expected a variable or function name, found '|'", 3},
      {"{{ a b }}", true, "unexpected 'b'", 5},
      {"{{ {x} }}", true, "found '{'", 3},
      {"{{ x\x01 }}", true, "unexpected byte 0x01", 4},
  };
  for (const ErrorCase& c : cases) {
    std::string error;
    size_t offset = 12345;
    auto t = Template::compile(c.text, variables_, c.allow_new, &error, &offset);
    EXPECT_FALSE(t.has_value()) << c.text;
    EXPECT_NE(error.find(c.message), std::string::npos) << c.text << " -> " << error;
    EXPECT_EQ(offset, c.offset) << c.text << " -> " << error;
  }
}

TEST_F(TemplateTest, ErrorOutputsAreOptional) {
  EXPECT_FALSE(Template::compile("{{", variables_, true, nullptr, nullptr));
  EXPECT_FALSE(Template::compile("{{ nope }}", variables_, false, nullptr, nullptr));
}

TEST_F(TemplateTest, UnknownVariableIsNotInternedOnFailure) {
  EXPECT_FALSE(Template::compile("{{ tokn }}", variables_, false, nullptr, nullptr));
  EXPECT_EQ(variables_.find("tokn"), -1);
}

TEST_F(TemplateTest, BuiltinNamesAreReserved) {
  // A variable cannot shadow a built-in: even with allow_new, "vu" is the built-in.
  set("vu", "shadow");
  EXPECT_EQ(render("{{ vu }}"), "7");
}

// --- the output buffer -----------------------------------------------------------

TEST_F(TemplateTest, RenderAppendsToAnExistingBuffer) {
  set("x", "1");
  Template t = compile("/a/{{ x }}");
  std::string out = "GET ";
  t.render(context_, &out);
  EXPECT_EQ(out, "GET /a/1");
  t.render(context_, &out);
  EXPECT_EQ(out, "GET /a/1/a/1");
}

TEST_F(TemplateTest, RenderWritesInPlaceIntoAReservedBuffer) {
  // Every kind of segment, rendered repeatedly into one reserved buffer: the
  // buffer never moves. (Zero heap allocations per render were also checked
  // with a counting operator new; that is not kept here because replacing
  // the global operator new would affect every test in this binary.)
  set("token", "abcdef");
  set("name", "a b");
  Template t = compile(
      "/users/{{ vu }}/items/{{ random(1, 1000) }}?q={{ name | urlencode }}&t={{ token | json }}"
      "&id={{ uuid }}&at={{ now_iso }}&ms={{ now_ms }}&s={{ now }}&i={{ iteration }}&w={{ worker "
      "}}&nope={{ unset }}");
  std::string out;
  out.reserve(4096);
  const char* data = out.data();
  for (int i = 0; i < 100; ++i) {
    out.clear();
    t.render(context_, &out);
    ASSERT_EQ(out.data(), data);
  }
  EXPECT_EQ(out.capacity(), 4096u);
  const std::string prefix = "/users/7/items/";
  const std::string tail =
      "&at=2026-11-23T01:02:03.456Z&ms=1795395723456&s=1795395723&i=3&w=2&nope=";
  ASSERT_EQ(out.compare(0, prefix.size(), prefix), 0) << out;
  ASSERT_GT(out.size(), tail.size());
  EXPECT_EQ(out.substr(out.size() - tail.size()), tail);
  const size_t query = out.find("?q=a%20b&t=abcdef&id=");
  ASSERT_NE(query, std::string::npos) << out;
  const int n = std::stoi(out.substr(prefix.size()));
  EXPECT_TRUE(n >= 1 && n <= 1000) << out;
  EXPECT_TRUE(is_uuid_v4(out.substr(query + 21, 36))) << out;
}

}  // namespace template_test
}  // namespace millstone::scenario
