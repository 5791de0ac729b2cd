#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "mock/config.h"
#include "mock/response.h"
#include "mock/router.h"

namespace millstone::mock {
namespace router_test {

const char* const kRoutes = R"(
routes:
  - {method: GET, path: /hello}
  - {method: POST, path: /hello}
  - {method: GET, path: /api/items}
  - {method: '*', path: /api/*}
  - {method: DELETE, path: /api}
  - {method: '*', path: /any}
  - {method: GET, path: /static/*}
  - {method: POST, path: /static/special}
)";

class RouterTest : public ::testing::Test {
 protected:
  MockConfig config_ = parse_mock_config(kRoutes, "routes.yaml");
  Router router_{config_};
};

TEST_F(RouterTest, ExactPathAndMethod) {
  EXPECT_EQ(router_.match("GET", "/hello"), 0);
  EXPECT_EQ(router_.match("POST", "/hello"), 1);
  EXPECT_EQ(router_.match("PUT", "/hello"), -1);
  EXPECT_EQ(router_.match("GET", "/hello/"), -1);
  EXPECT_EQ(router_.match("GET", "/hell"), -1);
  // Methods are case-sensitive in HTTP.
  EXPECT_EQ(router_.match("get", "/hello"), -1);
}

TEST_F(RouterTest, AnyMethod) {
  EXPECT_EQ(router_.match("GET", "/any"), 5);
  EXPECT_EQ(router_.match("PATCH", "/any"), 5);
}

TEST_F(RouterTest, PrefixFallsBehindEarlierExactRoute) {
  EXPECT_EQ(router_.match("GET", "/api/items"), 2);
  EXPECT_EQ(router_.match("POST", "/api/items"), 3);
  EXPECT_EQ(router_.match("GET", "/api/"), 3);
  EXPECT_EQ(router_.match("GET", "/api/a/b/c"), 3);
  // "/api/*" does not cover "/api" itself.
  EXPECT_EQ(router_.match("DELETE", "/api"), 4);
  EXPECT_EQ(router_.match("GET", "/api"), -1);
}

TEST_F(RouterTest, EarlierPrefixBeatsLaterExactRoute) {
  // The exact-path table finds route 7 for /static/special, but config order
  // decides: for GET the earlier prefix route wins.
  EXPECT_EQ(router_.match("GET", "/static/special"), 6);
  EXPECT_EQ(router_.match("POST", "/static/special"), 7);
  EXPECT_EQ(router_.match("GET", "/static/x.css"), 6);
}

TEST_F(RouterTest, QueryIsIgnored) {
  EXPECT_EQ(router_.match("GET", "/hello?name=x"), 0);
  EXPECT_EQ(router_.match("GET", "/api/items?page=2"), 2);
  EXPECT_EQ(router_.match("GET", "/nothing?x=/hello"), -1);
}

TEST_F(RouterTest, NotFoundIsMinusOne) {
  EXPECT_EQ(router_.match("GET", "/"), -1);
  EXPECT_EQ(router_.match("GET", ""), -1);
  EXPECT_EQ(router_.match("", "/hello"), -1);
}

TEST_F(RouterTest, AgreesWithThePlainScan) {
  const char* methods[] = {"GET", "POST", "DELETE", "PUT", ""};
  const char* targets[] = {"/hello",          "/hello?x", "/api",    "/api/",
                           "/api/items",      "/api/x/y", "/any",    "/static/",
                           "/static/special", "/",        "/static", "/hello/x"};
  for (const char* method : methods) {
    for (const char* target : targets) {
      const Route* expected = match_route(config_, method, target);
      const int index = router_.match(method, target);
      EXPECT_EQ(index, expected == nullptr ? -1 : static_cast<int>(expected - &config_.routes[0]))
          << method << " " << target;
    }
  }
}

TEST(RouterMatchTest, CatchAllPrefix) {
  const MockConfig config =
      parse_mock_config("routes:\n  - {path: /a}\n  - {method: '*', path: /*}\n", "x.yaml");
  const Router router(config);
  EXPECT_EQ(router.match("GET", "/a"), 0);
  EXPECT_EQ(router.match("POST", "/a"), 1);
  EXPECT_EQ(router.match("GET", "/"), 1);
  EXPECT_EQ(router.match("GET", "/zzz"), 1);
}

TEST(BuildResponseTest, KeepAlive) {
  EXPECT_EQ(build_response(200, {{"Content-Type", "text/plain"}}, "hello\n", true),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 6\r\n"
            "\r\n"
            "hello\n");
}

TEST(BuildResponseTest, CloseAndEmptyBody) {
  EXPECT_EQ(build_response(503, {}, "", false),
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(BuildResponseTest, NoContentHasNoLengthNorBody) {
  EXPECT_EQ(build_response(204, {{"X-A", "1"}}, "", true),
            "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
  EXPECT_EQ(build_response(304, {}, "", true), "HTTP/1.1 304 Not Modified\r\n\r\n");
}

TEST(BuildResponseTest, UnknownStatusKeepsAValidStatusLine) {
  EXPECT_EQ(build_response(299, {}, "x", true), "HTTP/1.1 299 \r\nContent-Length: 1\r\n\r\nx");
}
}  // namespace router_test
}  // namespace millstone::mock
