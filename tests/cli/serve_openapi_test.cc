// docs/api/openapi.yaml against the server's route table (serve/api.h), both
// ways, so the published API cannot drift from what `millstone serve` does:
// every path, method and status in the file is routed and answered by the
// server, and every route the server has is in the file with its statuses.
#include <algorithm>
#include <set>
#include <string>
#include <tuple>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "http/request_parser.h"
#include "net/event_loop.h"
#include "serve/api.h"
#include "serve/run_queue.h"

namespace millstone::serve {
namespace serve_openapi_test {

using Operation = std::tuple<std::string, std::string, int>;  // method, path, status

std::set<Operation> operations_in_file() {
  const YAML::Node spec = YAML::LoadFile(MILLSTONE_SOURCE_DIR "/docs/api/openapi.yaml");
  std::set<Operation> out;
  for (const auto& path : spec["paths"]) {
    for (const auto& op : path.second) {
      const std::string method = op.first.as<std::string>();
      if (method == "parameters") continue;
      std::string upper = method;
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      for (const auto& response : op.second["responses"]) {
        out.emplace(upper, path.first.as<std::string>(),
                    std::stoi(response.first.as<std::string>()));
      }
    }
  }
  return out;
}

TEST(ServeOpenApi, EveryPathMethodAndStatusInTheFileIsTheRoutersAndBack) {
  std::set<Operation> routed;
  for (const ServeApi::Route& route : ServeApi::routes()) {
    for (int status : route.statuses)
      routed.emplace(route.method, route.path, status);
  }
  const std::set<Operation> documented = operations_in_file();
  for (const Operation& op : documented) {
    EXPECT_TRUE(routed.count(op)) << "docs/api/openapi.yaml has " << std::get<0>(op) << " "
                                  << std::get<1>(op) << " " << std::get<2>(op)
                                  << " that the server does not answer";
  }
  for (const Operation& op : routed) {
    EXPECT_TRUE(documented.count(op))
        << "the server answers " << std::get<0>(op) << " " << std::get<1>(op) << " "
        << std::get<2>(op) << " that docs/api/openapi.yaml does not list";
  }
}

// The table is what the router dispatches on: each documented operation
// reaches its handler (an unknown run is 404, not "no such endpoint" or 405),
// and without the token is 401.
TEST(ServeOpenApi, TheRouterServesEveryDocumentedOperation) {
  net::EventLoop loop;
  RunQueue runs(loop, {::testing::TempDir() + "serve_openapi", "/bin/false", "/"});
  std::string error;
  ASSERT_TRUE(runs.open(&error)) << error;
  ServeApi api(runs, "secret");
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& [method, path, status] : operations_in_file()) {
    if (!seen.emplace(method, path).second) continue;
    std::string target = path;
    if (const size_t at = target.find("{id}"); at != std::string::npos)
      target.replace(at, 4, "no-such-run");
    for (const bool with_token : {false, true}) {
      http::RequestParser parser;
      const std::string request = method + " " + target + " HTTP/1.1\r\nHost: x\r\n" +
                                  (with_token ? "Authorization: Bearer secret\r\n" : "") +
                                  "Content-Length: 2\r\n\r\n{}";
      ASSERT_EQ(parser.feed(request.data(), request.size()).state,
                http::RequestParser::State::kComplete);
      const ApiResponse response = api.handle(parser);
      if (!with_token) {
        EXPECT_EQ(response.status, 401) << method << " " << path;
        continue;
      }
      const int expected = path == "/v1/runs"        ? (method == "GET" ? 200 : 400)
                           : path == "/v1/scenarios" ? 200
                                                     : 404;
      EXPECT_EQ(response.status, expected) << method << " " << path << ": " << response.body;
      EXPECT_EQ(response.body.find("no such endpoint"), std::string::npos) << method << " " << path;
    }
  }
  EXPECT_EQ(seen.size(), ServeApi::routes().size());
}

}  // namespace serve_openapi_test
}  // namespace millstone::serve
