// `millstone mock` with templated responses, path parameters and shared
// counters, through the real binary and real sockets on 127.0.0.1.
#include <algorithm>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace mock_templates_test {

const char* const kShop = R"(
routes:
  - method: POST
    path: /login
    headers: {Content-Type: application/json}
    body: '{"token":"tok-{{ request.json.user | json }}-{{ uuid }}"}'
  - method: POST
    path: /orders
    status: 201
    headers: {Location: "/orders/{{ counter }}"}
    body: '{"id":{{ counter }}}'
  - path: /orders/:id
    headers: {Content-Type: application/json}
    body: '{"id":"{{ path.id | json }}"}'
  - path: /plain
    body: "plain\n"
)";

TEST(MockTemplates, LoginTokenCarriesTheUser) {
  MockServer mock(kShop);
  const HttpResponse response =
      http_request(mock.port(), "POST", "/login", R"({"user":"ann","password":"secret"})",
                   {{"Content-Type", "application/json"}});
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(std::regex_match(response.body, std::regex(R"(\{"token":"tok-ann-[0-9a-f-]{36}"\})")))
      << response.body;
  // Content-Length is computed for the rendered body.
  EXPECT_NE(response.head.find("Content-Length: " + std::to_string(response.body.size())),
            std::string::npos)
      << response.head;
}

TEST(MockTemplates, PathParameterIsEchoed) {
  MockServer mock(kShop);
  EXPECT_EQ(http_get(mock.port(), "/orders/42"), R"({"id":"42"})");
  EXPECT_EQ(http_get(mock.port(), "/orders/a%22b"), R"({"id":"a\"b"})");
  EXPECT_EQ(http_get(mock.port(), "/plain"), "plain\n");
}

TEST(MockTemplates, OrderIdsAreUniqueAcrossTwoWorkers) {
  MockServer mock(kShop, 2);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::mutex mutex;
  std::vector<int> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        const HttpResponse r = http_request(mock.port(), "POST", "/orders");
        std::smatch m;
        const std::regex id(R"(\{"id":(\d+)\})");
        if (r.status != 201 || !std::regex_match(r.body, m, id)) continue;
        const int value = std::stoi(m[1]);
        // The header and the body of one response show the same value.
        if (r.head.find("Location: /orders/" + std::to_string(value) + "\r\n") ==
            std::string::npos) {
          continue;
        }
        std::lock_guard lock(mutex);
        ids.push_back(value);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
  std::sort(ids.begin(), ids.end());
  // 1, 2, 3, ... with no value given twice and none skipped.
  for (size_t i = 0; i < ids.size(); ++i)
    ASSERT_EQ(ids[i], static_cast<int>(i) + 1);
}

}  // namespace mock_templates_test
}  // namespace millstone::testing
