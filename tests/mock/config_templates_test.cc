// The config side of templates and path parameters: which routes become
// templated, error positions inside YAML scalars, and routing with parameters.
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_text.h"
#include "mock/config.h"
#include "mock/router.h"

namespace millstone::mock {
namespace config_templates_test {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

using config_text::error_of;
using config_text::parse;

TEST(MockTemplateConfigTest, PlainRoutesStayPrebuilt) {
  const MockConfig config = parse(R"(
routes:
  - path: /plain
    headers: {X-A: "1"}
    body: 'no expressions here'
  - path: /escaped
    body: '\{{ literal }}'
)");
  EXPECT_FALSE(config.routes[0].templated);
  EXPECT_FALSE(config.routes[1].templated);
  EXPECT_EQ(config.routes[1].body, "{{ literal }}");
  EXPECT_TRUE(config.counter_names.empty());
}

TEST(MockTemplateConfigTest, TemplatedBodyOrHeaderMakesATemplatedRoute) {
  const MockConfig config = parse(R"(
routes:
  - method: POST
    path: /orders
    status: 201
    headers: {Content-Type: application/json, Location: "/orders/{{ counter }}"}
    body: '{"id":{{ counter }},"n":{{ counter.all }}}'
  - path: /echo
    body: '{{ request.json.user }}'
    errors:
      - {rate: 0.5, status: 503, body: "busy {{ request.path }}", headers: {X-N: "{{ counter.all }}"}}
      - {rate: 0.1, status: 500, body: "plain"}
)");
  const Route& orders = config.routes[0];
  ASSERT_TRUE(orders.templated);
  EXPECT_EQ(orders.templated->status, 201);
  ASSERT_EQ(orders.templated->headers.size(), 2u);
  EXPECT_EQ(orders.templated->headers[0].first, "Content-Type");
  EXPECT_TRUE(orders.templated->headers[0].second.is_literal());
  EXPECT_FALSE(orders.templated->headers[1].second.is_literal());
  EXPECT_FALSE(orders.templated->uses_json);
  // The source is kept for reference.
  EXPECT_EQ(orders.body, R"({"id":{{ counter }},"n":{{ counter.all }}})");

  const Route& echo = config.routes[1];
  ASSERT_TRUE(echo.templated);
  EXPECT_TRUE(echo.templated->uses_json);
  ASSERT_TRUE(echo.errors[0].templated);
  EXPECT_EQ(echo.errors[0].templated->status, 503);
  EXPECT_FALSE(echo.errors[1].templated);
  // One name, shared by the two routes that use it.
  EXPECT_THAT(config.counter_names, ElementsAre("all"));
}

TEST(MockTemplateConfigTest, BodyFileIsNotATemplate) {
  const std::string path = ::testing::TempDir() + "/template_body.json";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("{{ not evaluated }}", f);
  std::fclose(f);
  const MockConfig config = parse(
      "routes:\n  - path: /f\n    headers: {X-Id: '{{ uuid }}'}\n    body_file: " + path + "\n");
  ASSERT_TRUE(config.routes[0].templated);
  EXPECT_TRUE(config.routes[0].templated->body.is_literal());
  EXPECT_EQ(config.routes[0].templated->body.literal_text(), "{{ not evaluated }}");
}

TEST(MockTemplateConfigTest, PathParameters) {
  const MockConfig config = parse(R"(
routes:
  - path: /orders/new
  - path: /orders/:id
    body: '{"id":"{{ path.id }}"}'
  - path: /users/:user/orders/:order_id
  - path: /a:b/c
)");
  EXPECT_TRUE(config.routes[0].pattern.empty());
  ASSERT_EQ(config.routes[1].pattern.size(), 2u);
  EXPECT_EQ(config.routes[1].path, "/orders/:id");
  EXPECT_EQ(config.routes[1].name, "GET /orders/:id");
  EXPECT_TRUE(config.routes[1].pattern[1].param);
  EXPECT_EQ(config.routes[1].pattern[1].text, "id");
  EXPECT_EQ(config.routes[2].pattern.size(), 4u);
  // ':' inside a segment is literal.
  EXPECT_TRUE(config.routes[3].pattern.empty());
}

TEST(MockTemplateConfigTest, ShopExampleLoads) {
  const MockConfig config =
      load_mock_config_file(std::string(MILLSTONE_SOURCE_DIR) + "/examples/shop-mock.yaml");
  const Router router(config);
  PathParams params;
  const int order = router.match("GET", "/api/orders/42", &params);
  ASSERT_GE(order, 0);
  EXPECT_EQ(config.routes[static_cast<size_t>(order)].name, "show order");
  EXPECT_EQ(params.values[0], "42");
  const int login = router.match("POST", "/login");
  ASSERT_GE(login, 0);
  EXPECT_TRUE(config.routes[static_cast<size_t>(login)].templated);
  const int list = router.match("GET", "/api/products");
  ASSERT_GE(list, 0);
  EXPECT_FALSE(config.routes[static_cast<size_t>(list)].templated);
}

struct PositionCase {
  std::string yaml;
  std::string message;
};

class MockTemplateErrorTest : public ::testing::TestWithParam<PositionCase> {};

TEST_P(MockTemplateErrorTest, PointsIntoTheScalar) {
  EXPECT_EQ(error_of(GetParam().yaml), GetParam().message);
}

constexpr std::string_view kKnown =
    "expected one of request.method, request.path, request.query.NAME, request.header.NAME, "
    "request.body, request.json.FIELD, path.NAME, uuid, random(A, B), counter, counter.NAME, "
    "now_ms or now_us";

INSTANTIATE_TEST_SUITE_P(
    Positions, MockTemplateErrorTest,
    ::testing::Values(
        // Plain scalar: exact column.
        PositionCase{"routes:\n  - path: /x\n    body: a {{ uuid }} {{ uid }}\n",
                     "mock.yaml:3:27: unknown expression \"uid\" (did you mean \"uuid\"?); " +
                         std::string(kKnown)},
        // Double-quoted, after the quote.
        PositionCase{"routes:\n  - path: /x\n    body: \"{{ request.pth }}\"\n",
                     "mock.yaml:3:15: unknown expression \"request.pth\" (did you mean "
                     "\"request.path\"?); " +
                         std::string(kKnown)},
        // Single-quoted with the same text twice: the second one is meant.
        PositionCase{"routes:\n  - path: /x\n    body: '{{ now }} {{ now }}'\n",
                     "mock.yaml:3:15: unknown expression \"now\"; " + std::string(kKnown)},
        // Block scalar: the line inside the block.
        PositionCase{"routes:\n  - path: /x\n    body: |\n      first\n      x {{ counter.a b }}\n",
                     "mock.yaml:5:20: \"counter.a b\" is not a counter name; expected letters, "
                     "digits, _ or -, such as counter.orders"},
        // A header value in a flow map.
        PositionCase{"routes:\n  - path: /o/:id\n    headers: {X-A: 'v {{ path.di }}'}\n",
                     "mock.yaml:3:31: \"path.di\" is not a parameter of the route's path; "
                     "expected one of :id"},
        // An error rule's body.
        PositionCase{"routes:\n  - path: /x\n    errors:\n      - {rate: 1, status: 500, body: "
                     "'{{ uuid | base64 }}'}\n",
                     "mock.yaml:4:49: unknown filter \"base64\"; expected json or urlencode"},
        PositionCase{"routes:\n  - path: /x\n    body: 'a {{ uuid'\n",
                     "mock.yaml:3:14: unclosed \"{{\"; expected \"}}\" after the expression "
                     "(write \\{{ for a literal \"{{\")"},
        // Path parameters.
        PositionCase{"routes:\n  - path: /o/:1d\n",
                     "mock.yaml:2:11: path \"/o/:1d\": parameter \":1d\" is not a name; expected "
                     "e.g. :id (letters, digits and _, not starting with a digit)"},
        PositionCase{"routes:\n  - path: /o/:id/:id\n",
                     "mock.yaml:2:11: path \"/o/:id/:id\": parameter :id appears twice; expected "
                     "distinct names"},
        PositionCase{"routes:\n  - path: /o/:id/*\n",
                     "mock.yaml:2:11: path \"/o/:id/*\" has both parameters and a trailing *; "
                     "expected one or the other"},
        // Reachability with parameters.
        PositionCase{"routes:\n  - path: /o/:id\n  - path: /o/new\n",
                     "mock.yaml:3:5: route \"GET /o/new\" can never match: route \"GET /o/:id\" "
                     "at line 2 takes all its requests; expected every route to be reachable "
                     "(put more specific routes first)"},
        PositionCase{"routes:\n  - path: /o/:id\n  - path: /o/:other\n",
                     "mock.yaml:3:5: route \"GET /o/:other\" can never match: route \"GET "
                     "/o/:id\" at line 2 takes all its requests; expected every route to be "
                     "reachable (put more specific routes first)"},
        PositionCase{"routes:\n  - path: /o/*\n  - path: /o/:id\n",
                     "mock.yaml:3:5: route \"GET /o/:id\" can never match: route \"GET /o/*\" at "
                     "line 2 takes all its requests; expected every route to be reachable (put "
                     "more specific routes first)"},
        PositionCase{"routes:\n  - {method: '*', path: '/:a/:b'}\n  - path: /x/:id\n",
                     "mock.yaml:3:5: route \"GET /x/:id\" can never match: route \"* /:a/:b\" at "
                     "line 2 takes all its requests; expected every route to be reachable (put "
                     "more specific routes first)"}));

class ParamRouterTest : public ::testing::Test {
 protected:
  MockConfig config_ = parse(R"(
routes:
  - {path: /orders/new}
  - {path: /orders/:id}
  - {method: POST, path: /orders/:id}
  - {path: /orders/:id/items/:item}
  - {path: /orders}
  - {method: '*', path: /orders/*}
  - {path: /:anything}
)");
  Router router_{config_};
};

TEST_F(ParamRouterTest, MatchesOneSegmentPerParameter) {
  PathParams params;
  EXPECT_EQ(router_.match("GET", "/orders/new"), 0);
  EXPECT_EQ(router_.match("GET", "/orders/42?x=1", &params), 1);
  ASSERT_EQ(params.count, 1u);
  EXPECT_EQ(params.values[0], "42");
  EXPECT_EQ(router_.match("POST", "/orders/42"), 2);
  EXPECT_EQ(router_.match("GET", "/orders/7/items/x%20y", &params), 3);
  ASSERT_EQ(params.count, 2u);
  EXPECT_EQ(params.values[0], "7");
  EXPECT_EQ(params.values[1], "x%20y");
  EXPECT_EQ(router_.match("GET", "/orders"), 4);
  // Empty segments and extra segments go to the prefix route.
  EXPECT_EQ(router_.match("GET", "/orders/"), 5);
  EXPECT_EQ(router_.match("GET", "/orders/42/"), 5);
  EXPECT_EQ(router_.match("DELETE", "/orders/42"), 5);
  EXPECT_EQ(router_.match("GET", "/zzz"), 6);
  EXPECT_EQ(router_.match("GET", "/"), -1);
  EXPECT_EQ(router_.match("GET", "/a/b"), -1);
}

TEST_F(ParamRouterTest, AgreesWithThePlainScan) {
  const char* methods[] = {"GET", "POST", "DELETE"};
  const char* targets[] = {"/orders/new", "/orders/1",       "/orders/1/items/2",
                           "/orders",     "/orders/",        "/orders/1/items/",
                           "/x",          "/orders/1/items", "/",
                           "/orders//",   "/orders/new?q=1", "//"};
  for (const char* method : methods) {
    for (const char* target : targets) {
      const Route* expected = match_route(config_, method, target);
      EXPECT_EQ(router_.match(method, target),
                expected == nullptr ? -1 : static_cast<int>(expected - &config_.routes[0]))
          << method << " " << target;
    }
  }
}

}  // namespace config_templates_test
}  // namespace millstone::mock
