// SLO objectives and abort guards end to end: `millstone run` against
// `millstone mock`, judged against the mock's own configuration (a fixed
// delay on a route) and its own request counts.
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace slo_test {

// The mock delays every answer of /slow by 40 ms: no response of that step
// can be faster, whatever the machine's load.
const char* kMock = R"(
routes:
  - path: /fast
    body: "fast\n"
  - path: /slow
    body: "slow\n"
    latency: 40ms
)";

uint64_t route_requests(const nlohmann::json& stats, const std::string& name) {
  for (const nlohmann::json& route : stats["routes"]) {
    if (route["name"] == name) return route["requests"].get<uint64_t>();
  }
  ADD_FAILURE() << "no route " << name << " in " << stats.dump();
  return 0;
}

const nlohmann::json& step_named(const nlohmann::json& summary, const std::string& name) {
  for (const nlohmann::json& step : summary["steps"]) {
    if (step["name"] == name) return step;
  }
  static const nlohmann::json none;
  ADD_FAILURE() << "no step " << name;
  return none;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(SloIntegration, ASlowRouteFailsItsObjectiveInEveryWindowByTheMocksOwnDelay) {
  MockServer mock(kMock);
  const std::string path = write_temp_file(R"(
target: http://127.0.0.1:1
flows:
  shop:
    steps:
      - {name: fast, get: /fast}
      - {name: slow, get: /slow}
scenarios:
  main: {executor: constant-vus, vus: 2, duration: 2s}
slo:
  window: 1s
  objectives:
    - latency.p50{step=slow} < 20ms
    - error_rate < 1%
    - requests{step=slow} >= 1
)",
                                           ".yaml");
  const std::string out = write_temp_file("", ".json");
  const std::string junit = write_temp_file("", ".xml");
  auto r = run_millstone(
      {"run", path, "--target", mock.url(""), "-w", "1", "-q", "-o", out, "--junit", junit}, 60);
  ASSERT_EQ(r.exit_code, 99) << r.out << r.err;
  EXPECT_NE(r.err.find("SLOs failed"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("SLOs by phase"), std::string::npos) << r.out;
  expect_valid_summary(out);
  const nlohmann::json j = read_json(out);
  const nlohmann::json& slo = j["slo"];
  EXPECT_FALSE(slo["passed"].get<bool>());
  ASSERT_EQ(slo["phases"].size(), 1u);  // no fault: the run is one phase
  EXPECT_EQ(slo["phases"][0]["name"], "run");
  ASSERT_EQ(slo["objectives"].size(), 3u);

  // The slow step's median cannot be below the mock's 40 ms delay, in the
  // phase and in every one-second window.
  const nlohmann::json& slow = slo["objectives"][0];
  EXPECT_FALSE(slow["passed"].get<bool>());
  EXPECT_FALSE(slow["phases"][0]["passed"].get<bool>());
  EXPECT_GE(slow["phases"][0]["value"].get<double>(), 40'000);
  EXPECT_GE(slow["windows"]["count"].get<uint64_t>(), 2u);
  EXPECT_EQ(slow["windows"]["failed"], slow["windows"]["count"]);
  EXPECT_GE(slow["windows"]["worst"]["value"].get<double>(), 40'000);

  // The mock answered everything: the error objective held.
  EXPECT_TRUE(slo["objectives"][1]["passed"].get<bool>()) << slo["objectives"][1].dump();

  // The phase merges every second: its count is the mock's own.
  const uint64_t served = route_requests(mock.stats(), "GET /slow");
  EXPECT_GT(served, 0u);
  EXPECT_EQ(slo["objectives"][2]["phases"][0]["value"].get<double>(),
            static_cast<double>(step_named(j, "shop/slow")["requests"].get<uint64_t>()));
  EXPECT_EQ(step_named(j, "shop/slow")["requests"].get<uint64_t>() + j["in_flight"].get<uint64_t>(),
            served);

  const std::string xml = read_text(junit);
  EXPECT_NE(xml.find("<testsuite name=\"slo\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("testcase name=\"latency.p50{step=slow} &lt; 20ms [run]\""), std::string::npos)
      << xml;
  // A passed case is closed at once: no <failure>.
  EXPECT_TRUE(std::regex_search(xml, std::regex("testcase name=\"error_rate &lt; 1% \\[run\\]\" "
                                                "classname=\"[^\"]*\\.slo\" time=\"0\"/>")))
      << xml;
}

TEST(SloIntegration, AFailingGuardStopsTheRunWithExit97) {
  MockServer mock(kMock);
  const std::string path = write_temp_file(R"(
target: http://127.0.0.1:1
flows:
  shop:
    steps:
      - {name: slow, get: /slow}
scenarios:
  main: {executor: constant-vus, vus: 2, duration: 60s}
slo:
  guards:
    - objective: latency.p50 < 20ms
      for: 1s
)",
                                           ".yaml");
  const std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", path, "--target", mock.url(""), "-w", "1", "-q", "-o", out}, 60);
  ASSERT_EQ(r.exit_code, 97) << r.out << r.err;
  EXPECT_NE(r.err.find("stopped early: abort guard \"latency.p50 < 20ms\""), std::string::npos)
      << r.err;
  expect_valid_summary(out);
  const nlohmann::json j = read_json(out);
  const nlohmann::json& abort = j["slo"]["abort"];
  ASSERT_TRUE(abort.is_object()) << j["slo"].dump();
  // Seconds 0 and 1 fail (the mock delays every answer 40 ms): two in a
  // row is longer than for: 1s, so second 1 trips it.
  EXPECT_EQ(abort["second"], 1);
  EXPECT_EQ(abort["failing_s"], 2);
  EXPECT_LT(j["duration_s"].get<double>(), 30);
  // Stopped gracefully: what the mock served was counted, or still in flight.
  const uint64_t served = route_requests(mock.stats(), "GET /slow");
  const uint64_t requests = j["requests"].get<uint64_t>();
  EXPECT_GE(served, requests);
  EXPECT_LE(served, requests + j["in_flight"].get<uint64_t>());
}

}  // namespace slo_test
}  // namespace millstone::testing
