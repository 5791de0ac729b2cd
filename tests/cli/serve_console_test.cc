// The web console's files (serve/console.*) and the saved scenarios it
// offers (serve/saved_scenarios.*), without processes: the page is served
// without the token and holds no data, the API beside it still asks for it,
// and only scenario files are listed.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "http/request_parser.h"
#include "net/event_loop.h"
#include "serve/api.h"
#include "serve/run_queue.h"
#include "serve/saved_scenarios.h"

namespace millstone::serve {
namespace serve_console_test {

ApiResponse call(ServeApi& api, const std::string& method, const std::string& path,
                 bool with_token) {
  http::RequestParser parser;
  const std::string request = method + " " + path + " HTTP/1.1\r\nHost: x\r\n" +
                              (with_token ? "Authorization: Bearer secret\r\n" : "") + "\r\n";
  EXPECT_EQ(parser.feed(request.data(), request.size()).state,
            http::RequestParser::State::kComplete);
  return api.handle(parser);
}

std::string header(const ApiResponse& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(ServeConsole, ThePagesNeedNoTokenAndTheApiBesideThemStillDoes) {
  net::EventLoop loop;
  RunQueue runs(loop, {::testing::TempDir() + "serve_console", "/bin/false", "/"});
  std::string error;
  ASSERT_TRUE(runs.open(&error)) << error;
  ServeApi api(runs, "secret");
  const ApiResponse page = call(api, "GET", "/", false);
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script src=\"/console.js\">"), std::string::npos);
  EXPECT_NE(header(page, "Content-Security-Policy").find("connect-src 'self'"), std::string::npos);
  EXPECT_NE(header(page, "Content-Security-Policy").find("frame-ancestors 'none'"),
            std::string::npos);
  for (const char* file : {"/console.js", "/console.css", "/uplot.js", "/uplot.css"}) {
    const ApiResponse r = call(api, "GET", file, false);
    EXPECT_EQ(r.status, 200) << file;
    EXPECT_GT(r.body.size(), 1000u) << file;
    EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff") << file;
  }
  // The pages are the only things without the token; nothing else is a page.
  EXPECT_EQ(call(api, "GET", "/v1/runs", false).status, 401);
  EXPECT_EQ(call(api, "GET", "/v1/scenarios", false).status, 401);
  EXPECT_EQ(call(api, "GET", "/console.js.map", false).status, 404);
  EXPECT_EQ(call(api, "POST", "/", true).status, 404);
}

TEST(ServeConsole, SavedScenariosAreTheYamlFilesOfTheDirectorySortedByName) {
  const std::string dir = ::testing::TempDir() + "saved_scenarios";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/nested.yaml");  // a directory: not offered
  for (const char* name : {"b.yaml", "a.yml", ".hidden.yaml", "notes.txt", "c.yaml.bak"})
    std::ofstream(dir + "/" + name) << "target: http://127.0.0.1:1\n";
  std::vector<SavedScenario> saved;
  std::string error;
  ASSERT_TRUE(list_saved_scenarios(dir, &saved, &error)) << error;
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].name, "a.yml");
  EXPECT_EQ(saved[0].path, dir + "/a.yml");
  EXPECT_EQ(saved[0].bytes, 27u);
  EXPECT_GT(saved[0].modified_ms, 0);
  EXPECT_EQ(saved[1].name, "b.yaml");
  // No directory configured: none, and no error.
  ASSERT_TRUE(list_saved_scenarios("", &saved, &error));
  EXPECT_TRUE(saved.empty());
  // One that went away: an error naming it, which the API answers with 500.
  EXPECT_FALSE(list_saved_scenarios(dir + "/gone", &saved, &error));
  EXPECT_NE(error.find(dir + "/gone"), std::string::npos) << error;
  net::EventLoop loop;
  RunQueue runs(loop, {::testing::TempDir() + "serve_console2", "/bin/false", "/"});
  ASSERT_TRUE(runs.open(&error)) << error;
  ServeApi api(runs, "secret", dir + "/gone");
  const ApiResponse r = call(api, "GET", "/v1/scenarios", true);
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("--scenarios"), std::string::npos) << r.body;
}

}  // namespace serve_console_test
}  // namespace millstone::serve
