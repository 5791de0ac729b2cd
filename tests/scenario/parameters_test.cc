// Run parameters ({{ env.NAME }}) and command-line overrides (--vus,
// --duration, --rate) as the loader applies them: docs/scenarios.md#parameters
// and #overrides.
#include <string>

#include <gtest/gtest.h>

#include "scenario/loader.h"

namespace millstone::scenario {
namespace parameters_test {

std::unique_ptr<Plan> load(std::string_view yaml, const Parameters& parameters = {},
                           const Overrides& overrides = {}) {
  return parse_scenario(yaml, "s.yaml", ".", parameters, overrides);
}

std::string load_error(std::string_view yaml, const Parameters& parameters = {},
                       const Overrides& overrides = {}) {
  try {
    load(yaml, parameters, overrides);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(Parameters, FillPathsHeadersBodiesTargetAndVars) {
  auto plan = load(R"yaml(target: "{{ env.BASE }}"
vars: {token: "t-{{ env.TOKEN }}"}
flows:
  a:
    steps:
      - get: "{{ env.PREFIX }}/items?q={{ env.Q | urlencode }}"
        headers: {Authorization: "Bearer {{ token }}", X-Env: "{{ env.TOKEN }}"}
)yaml",
                   {{"BASE", "http://127.0.0.1:9"},
                    {"TOKEN", "s3cret"},
                    {"PREFIX", "/api"},
                    {"Q", "a b"},
                    {"UNUSED", "x"}});
  EXPECT_EQ(plan->target.port, 9);
  const HttpRequest& get = plan->flows[0].requests[0];
  EXPECT_TRUE(get.target.is_literal());  // fixed for the run: no work per request
  EXPECT_EQ(get.target.render(RenderContext{}), "/api/items?q=a%20b");
  ASSERT_EQ(plan->constants.size(), 1u);
  EXPECT_EQ(plan->constants[0].second, "t-s3cret");
  // Only the parameters the file uses travel to the workers.
  EXPECT_EQ(
      plan->variables.used_parameters(),
      (Parameters{
          {"BASE", "http://127.0.0.1:9"}, {"PREFIX", "/api"}, {"Q", "a b"}, {"TOKEN", "s3cret"}}));
}

TEST(Parameters, DefaultsApplyOnlyWhenNotSet) {
  const std::string_view yaml = R"yaml(target: http://127.0.0.1:9
flows:
  a:
    steps:
      - get: '{{ env.P | default("/x \"y\"") }}'
)yaml";
  EXPECT_EQ(load(yaml)->flows[0].requests[0].target.render(RenderContext{}), "/x \"y\"");
  EXPECT_EQ(load(yaml, {{"P", "/set"}})->flows[0].requests[0].target.render(RenderContext{}),
            "/set");
}

// query: values are URL-encoded unless the expression names a filter; a
// default is not a filter.
TEST(Parameters, QueryValuesAreEncodedWithOrWithoutADefault) {
  auto plan = load(R"yaml(target: http://127.0.0.1:9
flows:
  a:
    steps:
      - get: /items
        query: {q: '{{ env.Q | default("a b") }}', r: "{{ env.R }}"}
)yaml",
                   {{"R", "c&d"}});
  EXPECT_EQ(plan->flows[0].requests[0].target.render(RenderContext{}), "/items?q=a%20b&r=c%26d");
}

TEST(Parameters, UnsetIsAnErrorNamingThePlace) {
  EXPECT_EQ(load_error(R"yaml(target: http://127.0.0.1:9
flows:
  a:
    steps:
      - get: /items
        headers: {X-Key: "k={{ env.API_KEY }}"}
)yaml"),
            "s.yaml:6:32: header X-Key uses parameter env.API_KEY, which is not set; expected -e "
            "API_KEY=VALUE on the command line, API_KEY in the environment, or {{ env.API_KEY | "
            "default(\"...\") }}");
  EXPECT_EQ(load_error(R"yaml(target: http://127.0.0.1:9
flows:
  a:
    steps:
      - get: "/{{ env.MISSING }}"
)yaml"),
            "s.yaml:5:19: path uses parameter env.MISSING, which is not set; expected -e "
            "MISSING=VALUE on the command line, MISSING in the environment, or {{ env.MISSING | "
            "default(\"...\") }}");
}

TEST(Parameters, TargetAndVarsTakeParametersOnly) {
  EXPECT_NE(load_error(R"yaml(target: http://127.0.0.1:9
vars: {id: "{{ vu }}"}
flows: {a: {steps: [{get: /}]}}
)yaml")
                .find("s.yaml:2:12: variable id \"{{ vu }}\" changes per request"),
            std::string::npos);
  EXPECT_NE(load_error(R"yaml(target: http://127.0.0.1:9
vars: {env: x}
flows: {a: {steps: [{get: /}]}}
)yaml")
                .find("env"),
            std::string::npos);
}

const char* kMixed = R"yaml(target: http://127.0.0.1:9
flows: {a: {steps: [{get: /}]}}
scenarios:
  steady: {executor: constant-vus, vus: 2, duration: 10s}
  open: {executor: constant-arrival-rate, rate: 5, duration: 10s, pre_allocated_vus: 2, start: after steady}
)yaml";

TEST(Overrides, SetVusDurationAndRateWhereTheyApply) {
  Overrides o;
  o.duration_us = 90'000'000;
  auto plan = load(kMixed, {}, o);
  EXPECT_EQ(plan->scenarios[0].executor.vus, 2u);
  EXPECT_EQ(plan->scenarios[0].executor.duration_us, 90'000'000);
  EXPECT_EQ(plan->scenarios[1].executor.duration_us, 90'000'000);
  EXPECT_EQ(plan->scenarios[1].executor.rate, 5);
  // "start: after steady" follows the new length (plus steady's graceful stop).
  EXPECT_EQ(plan->scenarios[1].start_us, plan->scenarios[0].end_us());
  EXPECT_GE(plan->scenarios[1].start_us, 90'000'000);
}

TEST(Overrides, RateSetsConstantArrivalRate) {
  Overrides o;
  o.rate = 50;
  auto plan = load(R"yaml(target: http://127.0.0.1:9
flows: {a: {steps: [{get: /}]}}
scenarios:
  open: {executor: constant-arrival-rate, rate: 5, duration: 10s, pre_allocated_vus: 2}
)yaml",
                   {}, o);
  EXPECT_EQ(plan->scenarios[0].executor.rate, 50);
  EXPECT_EQ(plan->scenarios[0].executor.duration_us, 10'000'000);
}

TEST(Overrides, ADefaultScenarioTakesVusAndDuration) {
  Overrides o;
  o.vus = 20;
  o.duration_us = 60'000'000;
  auto plan = load("target: http://127.0.0.1:9\nflows: {a: {steps: [{get: /}]}}\n", {}, o);
  ASSERT_EQ(plan->scenarios.size(), 1u);
  EXPECT_EQ(plan->scenarios[0].executor.vus, 20u);
  EXPECT_EQ(plan->scenarios[0].executor.duration_us, 60'000'000);
}

TEST(Overrides, RefusedWhereTheyDoNotApply) {
  Overrides vus;
  vus.vus = 3;
  EXPECT_EQ(load_error(kMixed, {}, vus),
            "--vus does not apply to scenario open at s.yaml:5:20 (constant-arrival-rate: the "
            "rate sets the load, pre_allocated_vus the VUs); it sets the vus of constant-vus and "
            "iterations executors");
  Overrides rate;
  rate.rate = 3;
  EXPECT_EQ(load_error(kMixed, {}, rate),
            "--rate does not apply to scenario steady at s.yaml:4:22 (constant-vus: it runs VUs "
            "back to back, not at a rate); it sets the rate of constant-arrival-rate executors");
  Overrides duration;
  duration.duration_us = 1'000'000;
  const std::string ramp = R"yaml(target: http://127.0.0.1:9
flows: {a: {steps: [{get: /}]}}
scenarios:
  ramp: {executor: ramping-vus, stages: [{duration: 5s, target: 3}]}
)yaml";
  try {
    load(ramp, {}, duration);
    ADD_FAILURE() << "loaded";
  } catch (const OverrideError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--duration does not apply to scenario ramp at s.yaml:4:20 (ramping-vus: its "
              "stages set the durations); it sets the duration of constant-vus and "
              "constant-arrival-rate executors");
  }
}

}  // namespace parameters_test
}  // namespace millstone::scenario
