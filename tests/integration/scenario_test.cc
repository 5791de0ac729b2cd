// End-to-end scenario runs: `millstone run FILE.yaml` against `millstone mock`.
#include <fstream>
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace scenario_test {

const char* kMock = R"(
routes:
  - path: /api/items
    headers: {Content-Type: application/json}
    body: '{"items":[{"id":7,"name":"bolt"},{"id":9,"name":"nut"}]}'
  - path: /api/echo/:id
    headers: {Content-Type: application/json, Set-Cookie: "seen={{ path.id }}; Path=/"}
    body: '{"id":"{{ path.id }}","cookie":"{{ request.header.Cookie | json }}"}'
  - method: POST
    path: /api/orders
    status: 201
    headers: {Content-Type: application/json}
    body: '{"id":{{ counter }},"user":"{{ request.json.user | json }}"}'
  - path: /slow
    body: "slow\n"
    latency: 50ms
)";

std::string scenario_file(const std::string& body) {
  std::string users = write_temp_file("name,age\nann,31\nbob,42\n", ".csv");
  std::string text = body;
  text = std::regex_replace(text, std::regex("USERS_CSV"), users);
  return write_temp_file(text, ".yaml");
}

const char* kFlow = R"(
name: flow-test
target: http://127.0.0.1:1
data:
  users: {file: USERS_CSV, mode: sequential}
flows:
  buyer:
    on_check_failure: abort_iteration
    steps:
      - name: items
        get: /api/items
        check:
          status: 200
          json: {"$.items[0].id": 7, "$.items": {length: 2}}
        extract:
          item: {json: "$.items[-1].id"}
      - name: order
        post: /api/orders
        json: {user: "{{ users.name }}", item: "{{ item }}"}
        check:
          status: 201
          json: {"$.user": {one_of: [ann, bob]}}
        extract:
          order: {json: $.id}
      - name: echo
        get: "/api/echo/{{ order }}"
        check:
          json: {"$.id": {exists: true}}
      - name: echo again
        get: "/api/echo/{{ item }}"
        check:
          body: {contains: "seen="}
scenarios:
  main: {executor: constant-vus, vus: 4, duration: 2s}
thresholds:
  - latency.p99 < 1s
  - checks > 99%
  - error_rate < 1%
  - iterations{flow=buyer} > 10
)";

TEST(ScenarioIntegration, ExtractsCarriesCookiesAndPassesThresholds) {
  MockServer mock(kMock);
  std::string path = scenario_file(kFlow);
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-w", "2", "-q", "-o", out}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = read_json(out);
  EXPECT_TRUE(j["thresholds_passed"].get<bool>());
  ASSERT_EQ(j["steps"].size(), 4u);
  EXPECT_EQ(j["steps"][0]["name"], "buyer/items");
  uint64_t iterations = j["flows"][0]["iterations"].get<uint64_t>();
  EXPECT_GT(iterations, 10u);
  for (const auto& step : j["steps"]) {
    EXPECT_GE(step["requests"].get<uint64_t>(), iterations) << step.dump();
    EXPECT_EQ(step["failed"].get<uint64_t>(), 0u) << step.dump();
  }
  for (const auto& check : j["checks"]) {
    EXPECT_EQ(check["failed"].get<uint64_t>(), 0u) << check.dump();
  }
  EXPECT_EQ(j["requests"].get<uint64_t>(), mock.stats()["requests"].get<uint64_t>())
      << "every request the mock served was counted";
}

TEST(ScenarioIntegration, AFailedCheckExits99AndSaysWhichAndWhy) {
  MockServer mock(kMock);
  std::string text = std::regex_replace(
      std::string(kFlow), std::regex("\"\\$.items\\[0\\].id\": 7"), "\"$.items[0].id\": 8");
  std::string path = scenario_file(text);
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-w", "1", "-q", "-o", out}, 60);
  EXPECT_EQ(r.exit_code, 99) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL buyer/items: json $.items[0].id"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("is 7"), std::string::npos) << r.out;
  auto j = read_json(out);
  EXPECT_FALSE(j["thresholds_passed"].get<bool>());
  // abort_iteration: nothing after the failed step ran.
  EXPECT_EQ(j["steps"][1]["requests"].get<uint64_t>(), 0u);
  EXPECT_GT(j["flows"][0]["aborted"].get<uint64_t>(), 0u);
}

TEST(ScenarioIntegration, ArrivalRateStartsIterationsOnScheduleAndCountsDrops) {
  MockServer mock(kMock);
  std::string path = scenario_file(R"(
name: rate
target: http://127.0.0.1:1
flows:
  slow:
    steps:
      - {name: slow, get: /slow}
scenarios:
  main: {executor: constant-arrival-rate, rate: 100, duration: 2s, pre_allocated_vus: 2, max_vus: 2}
)");
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-w", "1", "-q", "-o", out}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = read_json(out);
  // Two VUs at 50 ms per iteration manage about 40/s of the 100/s asked for.
  uint64_t done = j["flows"][0]["iterations"].get<uint64_t>();
  uint64_t dropped = j["dropped_iterations"].get<uint64_t>();
  EXPECT_GT(dropped, 60u);
  EXPECT_NEAR(static_cast<double>(done + dropped), 200, 10);
}

TEST(ScenarioIntegration, RampingVusFollowsItsStages) {
  MockServer mock(kMock);
  std::string path = scenario_file(R"(
name: ramp
target: http://127.0.0.1:1
flows:
  reader:
    steps:
      - {name: items, get: /api/items}
      - think: 100ms
scenarios:
  main:
    executor: ramping-vus
    start_vus: 0
    stages: [{duration: 1s, target: 10}, {duration: 1s, target: 10}, {duration: 1s, target: 0}]
)");
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-w", "2", "-q", "-o", out}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = read_json(out);
  // About 10 VUs x 10 iterations/s during the plateau, half that while ramping.
  uint64_t iterations = j["flows"][0]["iterations"].get<uint64_t>();
  EXPECT_GT(iterations, 120u);
  EXPECT_LT(iterations, 260u);
}

TEST(ScenarioIntegration, IterationsExecutorRunsExactlyItsIterationsThenTheNextScenario) {
  MockServer mock(kMock);
  std::string path = scenario_file(R"(
name: sequence
target: http://127.0.0.1:1
flows:
  first:
    steps:
      - {name: items, get: /api/items}
  second:
    steps:
      - {name: slow, get: /slow}
scenarios:
  fixed: {executor: iterations, vus: 3, iterations: 50, max_duration: 2s, flows: [first], graceful_stop: 0s}
  then:
    executor: ramping-arrival-rate
    start_rate: 10
    stages: [{duration: 1s, target: 30}]
    pre_allocated_vus: 5
    max_vus: 20
    flows: [second]
    start: after fixed
)");
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-w", "2", "-q", "-o", out}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = read_json(out);
  EXPECT_EQ(j["flows"][0]["iterations"].get<uint64_t>(), 50u) << j["flows"].dump();
  // A ramp from 10/s to 30/s over one second starts about 20 iterations.
  uint64_t ramped = j["flows"][1]["iterations"].get<uint64_t>();
  EXPECT_GE(ramped, 17u);
  EXPECT_LE(ramped, 21u);
  EXPECT_EQ(j["dropped_iterations"].get<uint64_t>(), 0u);
}

// With fewer VUs than workers, the workers without a VU used to be given
// iterations anyway, and those were never run. The mock counts what arrived.
TEST(ScenarioIntegration, IterationsWithFewerVusThanWorkersAllRun) {
  MockServer mock(kMock);
  struct Case {
    int vus;
    int iterations;
    int workers;
  };
  for (const Case c : {Case{1, 5, 2}, Case{1, 7, 3}, Case{2, 7, 3}, Case{1, 3, 3}}) {
    std::string path = scenario_file(fmt::format(R"(
target: http://127.0.0.1:1
flows:
  one: {{steps: [{{get: /api/items}}]}}
scenarios:
  fixed: {{executor: iterations, vus: {}, iterations: {}, max_duration: 10s, flows: [one]}}
)",
                                                 c.vus, c.iterations));
    const uint64_t before = mock.stats()["requests"].get<uint64_t>();
    std::string out = write_temp_file("", ".json");
    auto r = run_millstone(
        {"run", path, "--target", mock.url(""), "-w", std::to_string(c.workers), "-q", "-o", out},
        60);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const uint64_t served = mock.stats()["requests"].get<uint64_t>() - before;
    EXPECT_EQ(served, static_cast<uint64_t>(c.iterations))
        << "vus " << c.vus << ", iterations " << c.iterations << ", -w " << c.workers;
    EXPECT_EQ(read_json(out)["flows"][0]["iterations"].get<uint64_t>(),
              static_cast<uint64_t>(c.iterations));
  }
}

// Unique rows run out: each row is used once, and VUs that find none left are
// neither counted as aborted iterations nor replaced by ramping-vus (which
// reported "5 iterations (353 aborted)").
TEST(ScenarioIntegration, RampingVusWithUniqueDataUsesEachRowOnceAndAbortsNothing) {
  MockServer mock(kMock);
  std::string path = scenario_file(R"(
target: http://127.0.0.1:1
data:
  users: {file: USERS_CSV, mode: unique}
flows:
  signup: {steps: [{get: "/api/echo/{{ users.name }}"}]}
scenarios:
  ramp: {executor: ramping-vus, start_vus: 1, stages: [{duration: 1s, target: 4}], flows: [signup]}
)");
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-w", "2", "-q", "-o", out}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = read_json(out);
  EXPECT_EQ(mock.stats()["requests"].get<uint64_t>(), 2u) << "two rows, one request each";
  EXPECT_EQ(j["flows"][0]["iterations"].get<uint64_t>(), 2u) << j["flows"].dump();
  EXPECT_EQ(j["flows"][0]["aborted"].get<uint64_t>(), 0u) << j["flows"].dump();
}

// VUs that all finish within the first second were sampled at its end:
// peak_vus read 0. A check whose flow never ran said "ok 0/0".
TEST(ScenarioIntegration, PeakVusAndChecksThatNeverRan) {
  MockServer mock(kMock);
  std::string path = write_temp_file(R"(
name: short
target: http://127.0.0.1:1
flows:
  used:
    steps:
      - {name: items, get: /api/items, check: {status: 200}}
  unused:
    steps:
      - {name: never, get: /api/items, check: {status: 200}}
scenarios:
  quick: {executor: iterations, vus: 4, iterations: 4, max_duration: 5s, flows: [used]}
)",
                                     ".yaml");
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-w", "1", "-q", "-o", out}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = read_json(out);
  EXPECT_EQ(j["requests"], 4);
  EXPECT_EQ(j["peak_vus"], 4) << j["timeline"].dump();
  EXPECT_NE(r.out.find("up to 4 VUs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unused/never: status in [200]  not run"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("0/0"), std::string::npos) << r.out;
}

TEST(ScenarioIntegration, ValidateReportsFileLineAndColumn) {
  std::string path = write_temp_file(
      "name: x\ntarget: http://127.0.0.1:1\nflows:\n  f:\n    steps:\n      - get: /a\n"
      "        chek: {status: 200}\n",
      ".yaml");
  auto r = run_millstone({"validate", path});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find(path + ":7:9"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chek"), std::string::npos) << r.err;
  auto ok = run_millstone({"validate", std::string(MILLSTONE_SOURCE_DIR) + "/examples/shop.yaml"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(ScenarioIntegration, ShopExamplePassesAgainstTheShopMock) {
  std::ifstream in(std::string(MILLSTONE_SOURCE_DIR) + "/examples/shop-mock.yaml");
  std::string mock_yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  MockServer mock(mock_yaml, 2);
  std::string out = write_temp_file("", ".json");
  // The file as shipped, but 3 s per scenario instead of 10 s: the flows,
  // checks and thresholds are the file's own; 14 s less of a serial test.
  auto r = run_millstone({"run", std::string(MILLSTONE_SOURCE_DIR) + "/examples/shop.yaml",
                          "--target", mock.url(""), "-d", "3s", "-q", "-o", out},
                         120);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = read_json(out);
  EXPECT_TRUE(j["thresholds_passed"].get<bool>()) << j["thresholds"].dump(2);
  EXPECT_EQ(j["error_total"].get<uint64_t>(), 0u);
}

TEST(ScenarioIntegration, ShopExampleWithABrokenCheckExits99AndShowsTheCheck) {
  std::string dir = std::string(MILLSTONE_SOURCE_DIR) + "/examples/";
  std::ifstream mock_in(dir + "shop-mock.yaml");
  std::string mock_yaml((std::istreambuf_iterator<char>(mock_in)),
                        std::istreambuf_iterator<char>());
  MockServer mock(mock_yaml, 2);
  std::ifstream in(dir + "shop.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The same file, shorter, expecting an order status the shop never sends.
  text = std::regex_replace(text, std::regex("duration: 10s"), "duration: 2s");
  text = std::regex_replace(text, std::regex("\\$\\.status\": created"), "$.status\": shipped");
  text = std::regex_replace(text, std::regex("shop-users\\.csv"), dir + "shop-users.csv");
  ASSERT_NE(text.find("shipped"), std::string::npos);
  std::string path = write_temp_file(text, ".yaml");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-q"}, 60);
  EXPECT_EQ(r.exit_code, 99) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL shopper/checkout/order: json $.status == \"shipped\""),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("$.status is \"created\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL checks > 99%"), std::string::npos) << r.out;
}

}  // namespace scenario_test
}  // namespace millstone::testing
