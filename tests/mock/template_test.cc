// Templates of mock responses: compiling (what is accepted, where errors
// point) and rendering against a request fed through the real parser.
#include "mock/template.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "http/request_parser.h"
#include "mock/config.h"
#include "text/json_string.h"

namespace millstone::mock {
namespace template_test {

using ::testing::HasSubstr;
using Kind = Template::Segment::Kind;

Template compile(std::string_view text, std::vector<std::string>* counters = nullptr,
                 std::string_view path = "/x") {
  static std::vector<std::string> unused;
  std::string error;
  const std::vector<PathSegment> pattern = parse_path_pattern(path, &error);
  size_t offset = 0;
  std::optional<Template> t = Template::compile(
      text, Template::Scope{pattern, counters != nullptr ? counters : &unused}, &error, &offset);
  EXPECT_TRUE(t.has_value()) << error;
  return t ? std::move(*t) : Template();
}

// "message @offset" for a template that must not compile.
std::string error_of(std::string_view text, std::string_view path = "/x") {
  std::vector<std::string> counters;
  std::string error;
  const std::vector<PathSegment> pattern = parse_path_pattern(path, &error);
  size_t offset = 0;
  if (Template::compile(text, Template::Scope{pattern, &counters}, &error, &offset)) {
    return "compiled";
  }
  return error + " @" + std::to_string(offset);
}

TEST(TemplateCompileTest, LiteralTextAndEscape) {
  const Template t = compile(R"({"a":"\{{ not an expression }}"})");
  EXPECT_TRUE(t.is_literal());
  EXPECT_EQ(t.literal_text(), R"({"a":"{{ not an expression }}"})");
  EXPECT_TRUE(compile("").is_literal());
  EXPECT_TRUE(compile("}} alone is text").is_literal());
}

TEST(TemplateCompileTest, EveryExpression) {
  std::vector<std::string> counters{"existing"};
  const Template t = compile(
      "{{request.method}}{{ request.path }}{{ request.query.page }}{{ request.header.X-Id }}"
      "{{ request.body }}{{ request.json.a.b.0 }}{{ path.id }}{{ uuid }}{{ random(-5, 5) }}"
      "{{ counter }}{{ counter.orders }}{{ counter.existing }}{{ now_ms }}",
      &counters, "/users/:user/orders/:id");
  std::vector<Kind> kinds;
  for (const auto& s : t.segments())
    kinds.push_back(s.kind);
  EXPECT_THAT(kinds, ::testing::ElementsAre(Kind::kMethod, Kind::kPath, Kind::kQuery, Kind::kHeader,
                                            Kind::kBody, Kind::kJson, Kind::kPathParam, Kind::kUuid,
                                            Kind::kRandom, Kind::kRouteCounter, Kind::kNamedCounter,
                                            Kind::kNamedCounter, Kind::kNowMs));
  EXPECT_EQ(t.segments()[2].text, "page");
  EXPECT_EQ(t.segments()[3].text, "X-Id");
  EXPECT_EQ(t.segments()[5].text, "/a/b/0");  // a JSON pointer
  EXPECT_EQ(t.segments()[6].index, 1u);       // :id is the second parameter
  EXPECT_EQ(t.segments()[8].low, -5);
  EXPECT_EQ(t.segments()[8].high, 5);
  EXPECT_EQ(t.segments()[10].index, 1u);  // "orders" was added after "existing"
  EXPECT_EQ(t.segments()[11].index, 0u);
  EXPECT_THAT(counters, ::testing::ElementsAre("existing", "orders"));
  EXPECT_FALSE(t.is_literal());
  EXPECT_TRUE(t.uses_json());
}

TEST(TemplateCompileTest, FiltersChain) {
  const Template t = compile("{{ request.body | urlencode | json }}");
  ASSERT_EQ(t.segments().size(), 1u);
  EXPECT_THAT(t.segments()[0].filters,
              ::testing::ElementsAre(Template::Filter::kUrlEncode, Template::Filter::kJson));
}

TEST(TemplateCompileTest, ErrorsSayWhatAndWhere) {
  EXPECT_THAT(error_of("ab {{ request.pth }}"),
              HasSubstr("unknown expression \"request.pth\" (did you mean \"request.path\"?)"));
  EXPECT_THAT(error_of("ab {{ request.pth }}"), ::testing::EndsWith("@6"));
  EXPECT_THAT(error_of("{{ uuid | jsn }}"), HasSubstr("unknown filter \"jsn\""));
  EXPECT_THAT(error_of("{{ uuid | jsn }}"), ::testing::EndsWith("@10"));
  EXPECT_THAT(error_of("x {{ uuid"), HasSubstr("unclosed \"{{\""));
  EXPECT_THAT(error_of("x {{ uuid"), ::testing::EndsWith("@2"));
  EXPECT_THAT(error_of("{{ }}"), HasSubstr("empty expression"));
  EXPECT_THAT(error_of("{{ random(5, 1) }}"), HasSubstr("A > B"));
  EXPECT_THAT(error_of("{{ random(1) }}"), HasSubstr("is malformed"));
  EXPECT_THAT(error_of("{{ random(a, 2) }}"), HasSubstr("is malformed"));
  EXPECT_THAT(error_of("{{ path.id }}"), HasSubstr("the route's path has no parameters"));
  EXPECT_THAT(error_of("{{ path.ID }}", "/o/:id"),
              HasSubstr("not a parameter of the route's path; expected one of :id @8"));
  EXPECT_THAT(error_of("{{ request.json. }}"), HasSubstr("not a JSON field path"));
  EXPECT_THAT(error_of("{{ request.json.a..b }}"), HasSubstr("not a JSON field path"));
  EXPECT_THAT(error_of("{{ request.header.X Y }}"), HasSubstr("not a header name"));
  EXPECT_THAT(error_of("{{ counter.a/b }}"), HasSubstr("not a counter name"));
  EXPECT_THAT(error_of("{{ request.json }}"), HasSubstr("unknown expression \"request.json\";"));
}

std::string post(std::string_view target, std::string_view body, std::string_view headers = "") {
  return "POST " + std::string(target) + " HTTP/1.1\r\n" + std::string(headers) +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

// A request as the server sees it: bytes through the real parser.
class RenderTest : public ::testing::Test {
 protected:
  void receive(std::string_view bytes) {
    parser_.reset();
    const auto result = parser_.feed(bytes.data(), bytes.size());
    ASSERT_EQ(result.state, http::RequestParser::State::kComplete);
  }

  std::string render(std::string_view text, std::string_view route_path = "/x",
                     PathParams params = {}) {
    std::string error;
    const std::vector<PathSegment> pattern = parse_path_pattern(route_path, &error);
    size_t offset = 0;
    std::optional<Template> t =
        Template::compile(text, Template::Scope{pattern, &counter_names_}, &error, &offset);
    EXPECT_TRUE(t.has_value()) << error;
    renderer_.begin(RenderRequest{&parser_, params, 0});
    std::string out;
    renderer_.render(*t, &out);
    return out;
  }

  http::RequestParser parser_;
  Prng prng_{1};
  std::vector<std::string> counter_names_;
  std::atomic<uint64_t> counters_[4] = {};
  TemplateRenderer renderer_{prng_, counters_, 1};
};

TEST_F(RenderTest, RequestParts) {
  receive(post("/login?next=%2Fhome&q=a+b&flag", "{\"user\":\"a\"}\n", "X-Request-Id: r-7\r\n"));
  EXPECT_EQ(render("{{ request.method }} {{ request.path }}"), "POST /login");
  EXPECT_EQ(render("[{{ request.query.next }}][{{ request.query.q }}][{{ request.query.flag }}]"
                   "[{{ request.query.none }}]"),
            "[/home][a b][][]");
  EXPECT_EQ(render("{{ request.header.x-request-id }}|{{ request.header.Missing }}"), "r-7|");
  EXPECT_EQ(render("{{ request.body }}"), "{\"user\":\"a\"}\n");
}

TEST_F(RenderTest, JsonFields) {
  receive(post(
      "/x",
      R"({"user":"ann","n":12.5,"ok":true,"a":{"b":[{"c":"deep"}]},"esc":"q\"\u00e9","o":{"k":[1,2]}})"));
  EXPECT_EQ(render("{{ request.json.user }}"), "ann");
  EXPECT_EQ(render("{{ request.json.n }} {{ request.json.ok }}"), "12.5 true");
  EXPECT_EQ(render("{{ request.json.a.b.0.c }}"), "deep");
  EXPECT_EQ(render("{{ request.json.o }}"), R"({"k":[1,2]})");
  EXPECT_EQ(render("{{ request.json.esc }}"), "q\"\xc3\xa9");  // decoded
  EXPECT_EQ(render("{{ request.json.esc | json }}"), "q\\\"\xc3\xa9");
  EXPECT_EQ(render("[{{ request.json.missing }}][{{ request.json.user.x }}]"), "[][]");
}

TEST_F(RenderTest, InvalidJsonBodyRendersNothing) {
  receive(post("/x", "{\"user\":1"));
  EXPECT_EQ(render("[{{ request.json.user }}]"), "[]");
  receive("GET /x HTTP/1.1\r\n\r\n");
  EXPECT_EQ(render("[{{ request.json.user }}]"), "[]");
}

TEST_F(RenderTest, PathParametersAreDecoded) {
  receive("GET /users/a%20b/orders/42 HTTP/1.1\r\n\r\n");
  PathParams params;
  std::string error;
  const auto pattern = parse_path_pattern("/users/:user/orders/:id", &error);
  ASSERT_TRUE(match_path_pattern(pattern, parser_.path(), &params));
  EXPECT_EQ(render(R"({"user":"{{ path.user }}","id":"{{ path.id }}"})", "/users/:user/orders/:id",
                   params),
            R"({"user":"a b","id":"42"})");
}

TEST_F(RenderTest, Filters) {
  receive(post("/x", "a\"b\\c\n/d e&"));
  EXPECT_EQ(render("{{ request.body | json }}"), "a\\\"b\\\\c\\n/d e&");
  EXPECT_EQ(render("{{ request.body | urlencode }}"), "a%22b%5Cc%0A%2Fd%20e%26");
  std::string out;
  text::append_json_escaped(std::string_view("\x01\t", 2), &out);
  EXPECT_EQ(out, "\\u0001\\t");
}

TEST_F(RenderTest, PerRequestValuesRepeatWithinARequest) {
  receive("GET /x HTTP/1.1\r\n\r\n");
  const std::string first = render("{{ uuid }} {{ uuid }} {{ counter }} {{ counter }}");
  const std::regex shape(
      "([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}) \\1 1 1");
  EXPECT_TRUE(std::regex_match(first, shape)) << first;
  const std::string second = render("{{ uuid }} {{ counter }}");
  EXPECT_NE(second.substr(0, 36), first.substr(0, 36));
  EXPECT_EQ(second.substr(37), "2");
  EXPECT_EQ(counters_[0].load(), 2u);
}

TEST_F(RenderTest, NamedCountersAreSharedSlotsAfterTheRoutes) {
  receive("GET /x HTTP/1.1\r\n\r\n");
  EXPECT_EQ(render("{{ counter.a }} {{ counter.b }} {{ counter.a }}"), "1 1 1");
  EXPECT_EQ(render("{{ counter.b }}"), "2");
  // named_base is 1: a is slot 1, b is slot 2; the route's own stays untouched.
  EXPECT_EQ(counters_[0].load(), 0u);
  EXPECT_EQ(counters_[1].load(), 1u);
  EXPECT_EQ(counters_[2].load(), 2u);
}

TEST_F(RenderTest, RandomStaysInRangeAndNowIsTheWallClock) {
  receive("GET /x HTTP/1.1\r\n\r\n");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string value = render("{{ random(-2, 2) }}");
    const int n = std::stoi(value);
    EXPECT_GE(n, -2);
    EXPECT_LE(n, 2);
    seen.insert(value);
  }
  EXPECT_EQ(seen.size(), 5u);
  const std::string full = render("{{ random(-9223372036854775808, 9223372036854775807) }}");
  EXPECT_FALSE(full.empty());
  const int64_t now_ms = std::stoll(render("{{ now_ms }}"));
  EXPECT_GT(now_ms, int64_t{1'600'000'000'000});  // after 2020
}

TEST_F(RenderTest, WholeResponse) {
  receive(post("/x", R"({"u":"x\r\nY"})"));
  std::vector<std::string> names;
  std::string error;
  size_t offset = 0;
  ResponseTemplate response;
  response.status = 201;
  response.headers.emplace_back(
      "Location", *Template::compile("/o/{{ counter }}", {{}, &names}, &error, &offset));
  response.headers.emplace_back(
      "X-User", *Template::compile("{{ request.json.u }}", {{}, &names}, &error, &offset));
  response.body = *Template::compile(R"({"id":{{ counter }}})", {{}, &names}, &error, &offset);
  renderer_.begin(RenderRequest{&parser_, {}, 0});
  std::string out;
  size_t header_bytes = 0;
  renderer_.render_response(response, false, &out, &header_bytes);
  // The CR LF from the request cannot start a header of its own.
  const std::string head =
      "HTTP/1.1 201 Created\r\nLocation: /o/1\r\nX-User: x  Y\r\nContent-Length: 8\r\n"
      "Connection: close\r\n\r\n";
  EXPECT_EQ(out, head + R"({"id":1})");
  EXPECT_EQ(header_bytes, head.size());

  response.status = 204;
  renderer_.begin(RenderRequest{&parser_, {}, 0});
  renderer_.render_response(response, true, &out, &header_bytes);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\nLocation: /o/2\r\nX-User: x  Y\r\n\r\n");
}

// The counter lives in shared memory; two processes rendering at once must
// never hand out the same value (the mock's workers are processes).
TEST(SharedCounterTest, ValuesAreUniqueAcrossTwoProcesses) {
  constexpr int kPerProcess = 20000;
  void* p = mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* counter = new (p) std::atomic<uint64_t>(0);
  std::vector<std::string> names;
  std::string error;
  size_t offset = 0;
  const Template t = *Template::compile("{{ counter }},", {{}, &names}, &error, &offset);

  int pipes[2][2];
  pid_t children[2];
  for (int c = 0; c < 2; ++c) {
    ASSERT_EQ(pipe(pipes[c]), 0);
    children[c] = fork();
    ASSERT_GE(children[c], 0);
    if (children[c] == 0) {
      close(pipes[c][0]);
      Prng prng(static_cast<uint64_t>(c));
      TemplateRenderer renderer(prng, std::span<std::atomic<uint64_t>>(counter, 1), 1);
      std::string out;
      for (int i = 0; i < kPerProcess; ++i) {
        renderer.begin(RenderRequest{nullptr, {}, 0});
        renderer.render(t, &out);
      }
      size_t written = 0;
      while (written < out.size()) {
        const ssize_t n = write(pipes[c][1], out.data() + written, out.size() - written);
        if (n <= 0) _exit(1);
        written += static_cast<size_t>(n);
      }
      _exit(0);
    }
    close(pipes[c][1]);
  }
  std::string all;
  for (int c = 0; c < 2; ++c) {
    char buffer[65536];
    ssize_t n;
    while ((n = read(pipes[c][0], buffer, sizeof buffer)) > 0)
      all.append(buffer, n);
    close(pipes[c][0]);
    int status = 0;
    waitpid(children[c], &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::vector<uint64_t> values;
  for (size_t start = 0; start < all.size();) {
    const size_t comma = all.find(',', start);
    values.push_back(std::stoull(all.substr(start, comma - start)));
    start = comma + 1;
  }
  std::sort(values.begin(), values.end());
  ASSERT_EQ(values.size(), 2u * kPerProcess);
  // Exactly 1..2N: unique and without gaps.
  for (size_t i = 0; i < values.size(); ++i)
    ASSERT_EQ(values[i], i + 1);
  munmap(p, sizeof(std::atomic<uint64_t>));
}

}  // namespace template_test
}  // namespace millstone::mock
