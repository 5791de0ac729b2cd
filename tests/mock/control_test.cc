// The control API's patches (mock/control.h): read and validated by the
// config parser's own code, with the file's error texts, merged into the
// shared state and applied over the file's config.
#include "mock/control.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace millstone::mock {
namespace control_test {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const char* const kFile = R"(
routes:
  - path: /hello
    body: "hello\n"
  - name: orders
    method: POST
    path: /api/orders/:id
    status: 201
    headers: {X-Order: "{{ counter.orders }}"}
    latency: 5ms
    errors:
      - {rate: 1%, status: 503}
  - path: /empty
    status: 204
websockets:
  - name: ticker
    path: /ws/ticker
    push: {every: 1s, message: tick}
  - path: /ws/echo
    echo: true
)";

const MockConfig& file() {
  static const MockConfig config = parse_mock_config(kFile, "mock.yaml");
  return config;
}

// The merged state, or the error.
struct Merge {
  bool ok = false;
  std::string state;
  PatchError error;
};

Merge merge(std::string_view body, size_t index = 0, std::string_view state = {},
            ControlTarget target = ControlTarget::kHttp) {
  Merge m;
  m.ok = merge_patch(file(), state, target, index, body, &m.state, &m.error);
  return m;
}

// What the file parser says about `route_yaml` as route 0, after its position.
std::string file_error(const std::string& route_yaml) {
  try {
    parse_mock_config("routes:\n  - " + route_yaml + "\n", "mock.yaml");
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    return what.substr(what.find(": ") + 2);
  }
  return "";
}

std::string after_position(const std::string& message) {
  return message.substr(message.find(": ") + 2);
}

TEST(MockControlPatch, SetsLatencyStatusAndErrors) {
  const Merge m = merge(
      R"({"status": 503, "latency": {"distribution": "lognormal", "median": "20ms", "p99": "80ms"},
          "errors": [{"rate": "50%", "status": 500}, {"rate": 0.1, "reset": true},
                     {"rate": 0.05, "stall": "forever"}]})");
  ASSERT_TRUE(m.ok) << m.error.message;
  const MockConfig effective = apply_state(file(), m.state);
  const Route& route = effective.routes[0];
  EXPECT_EQ(route.status, 503);
  EXPECT_EQ(route.latency.distribution, LatencyModel::Distribution::kLognormal);
  ASSERT_EQ(route.errors.size(), 3u);
  EXPECT_DOUBLE_EQ(route.errors[0].rate, 0.5);
  EXPECT_EQ(route.errors[0].status, 500);
  EXPECT_EQ(route.errors[1].kind, ErrorRule::kReset);
  EXPECT_EQ(route.errors[2].stall_us, kStallForever);
  // The other routes are the file's.
  EXPECT_EQ(effective.routes[1].status, 201);
  EXPECT_EQ(effective.routes[1].errors.size(), 1u);
}

TEST(MockControlPatch, LaterPatchesReplaceOnlyTheirFields) {
  const Merge first = merge(R"({"status": 503, "latency": "100ms"})");
  ASSERT_TRUE(first.ok);
  const Merge second = merge(R"({"latency": "7ms"})", 0, first.state);
  ASSERT_TRUE(second.ok);
  const Route route = apply_state(file(), second.state).routes[0];
  EXPECT_EQ(route.status, 503);
  EXPECT_DOUBLE_EQ(route.latency.value_us, 7000);
  // null: back to the file's value for that field only.
  const Merge third = merge(R"({"status": null})", 0, second.state);
  ASSERT_TRUE(third.ok);
  const Route back = apply_state(file(), third.state).routes[0];
  EXPECT_EQ(back.status, 200);
  EXPECT_DOUBLE_EQ(back.latency.value_us, 7000);
  const nlohmann::json j = nlohmann::json::parse(route_json(back, third.state, 0));
  EXPECT_EQ(j["changed"], nlohmann::json::array({"latency"}));
}

TEST(MockControlPatch, EmptyErrorListTurnsErrorsOff) {
  const Merge m = merge(R"({"errors": []})", 1);
  ASSERT_TRUE(m.ok) << m.error.message;
  EXPECT_TRUE(apply_state(file(), m.state).routes[1].errors.empty());
}

TEST(MockControlPatch, StatusOfATemplatedRouteChangesItsTemplate) {
  const Merge m = merge(R"({"status": 202})", 1);
  ASSERT_TRUE(m.ok) << m.error.message;
  const Route route = apply_state(file(), m.state).routes[1];
  ASSERT_TRUE(route.templated);
  EXPECT_EQ(route.templated->status, 202);
}

TEST(MockControlPatch, ResetRouteDropsItsChanges) {
  const Merge a = merge(R"({"status": 500})", 0);
  const Merge b = merge(R"({"status": 500})", 1, a.state);
  ASSERT_TRUE(b.ok);
  const std::string state = reset_route(b.state, ControlTarget::kHttp, 0);
  const MockConfig effective = apply_state(file(), state);
  EXPECT_EQ(effective.routes[0].status, 200);
  EXPECT_EQ(effective.routes[1].status, 500);
  EXPECT_EQ(reset_route(state, ControlTarget::kHttp, 1), "");
}

TEST(MockControlPatch, ErrorsNameTheFieldWithTheFileParsersWords) {
  struct Case {
    const char* patch;
    const char* field;
    const char* file_route;  // the same mistake in a file
  };
  const Case cases[] = {
      {R"({"latency": "20"})", "latency", "{path: /x, latency: \"20\"}"},
      {R"({"status": 99})", "status", "{path: /x, status: 99}"},
      {R"({"staus": 503})", "staus", "{path: /x, staus: 503}"},
      {R"({"errors": [{"rate": 0.7, "status": 500}, {"rate": 0.7, "reset": true}]})", "errors",
       "{path: /x, errors: [{rate: 0.7, status: 500}, {rate: 0.7, reset: true}]}"},
      {R"({"errors": [{"rate": "2", "status": 500}]})", "errors",
       "{path: /x, errors: [{rate: \"2\", status: 500}]}"},
      {R"({"errors": [{"rate": 0.1}]})", "errors", "{path: /x, errors: [{rate: 0.1}]}"},
      {R"({"latency": {"distribution": "lognormal", "median": "5ms", "p99": "1ms"}})", "latency",
       "{path: /x, latency: {distribution: lognormal, median: 5ms, p99: 1ms}}"},
  };
  for (const Case& c : cases) {
    const Merge m = merge(c.patch);
    ASSERT_FALSE(m.ok) << c.patch;
    EXPECT_EQ(m.error.field, c.field) << c.patch;
    EXPECT_THAT(m.error.message, StartsWith("body:1:")) << c.patch;
    std::string expected = file_error(c.file_route);
    // The file's unknown-key message names "route"; the patch's "route patch".
    if (std::string(c.field) == "staus") {
      EXPECT_THAT(
          after_position(m.error.message),
          HasSubstr("(did you mean \"status\"?); expected one of: status, latency, errors"));
      continue;
    }
    EXPECT_EQ(after_position(m.error.message), expected) << c.patch;
  }
}

TEST(MockControlPatch, OtherMistakes) {
  EXPECT_EQ(merge(R"({"status": 204})").error.message,
            "body:1:12: status 204 has no body in HTTP; expected no body");
  EXPECT_TRUE(merge(R"({"status": 204})", 2).ok);  // /empty has no body
  const Merge counter =
      merge(R"({"errors": [{"rate": 0.1, "status": 500, "body": "{{ counter.x }}"}]})");
  EXPECT_EQ(counter.error.field, "errors");
  EXPECT_THAT(counter.error.message, HasSubstr("counter.x is not used in the file"));
  // The file's counters may be used.
  EXPECT_TRUE(
      merge(R"({"errors": [{"rate": 0.1, "status": 500, "body": "{{ counter.orders }}"}]})").ok);
  EXPECT_THAT(merge("[1, 2").error.message, HasSubstr("invalid YAML"));
  EXPECT_THAT(merge("[1, 2]").error.message, HasSubstr("route patch is a list; expected a map"));
  EXPECT_THAT(merge(std::string(kMaxPatchBytes + 1, ' ')).error.message,
              HasSubstr("expected at most 65536 bytes"));
}

TEST(MockControlPatch, SocketPushInterval) {
  const Merge m = merge(R"({"push": {"every": "50ms"}})", 0, {}, ControlTarget::kSocket);
  ASSERT_TRUE(m.ok) << m.error.message;
  EXPECT_EQ(apply_state(file(), m.state).websockets[0].push->every_us, 50000);
  const Merge fast = merge(R"({"push": {"every": "100us"}})", 0, {}, ControlTarget::kSocket);
  EXPECT_EQ(fast.error.field, "push.every");
  EXPECT_EQ(after_position(fast.error.message),
            "every \"100us\" is shorter than 1ms; expected 1ms or more");
  const Merge message =
      merge(R"({"push": {"every": "1s", "message": "x"}})", 0, {}, ControlTarget::kSocket);
  EXPECT_EQ(message.error.field, "push");
  EXPECT_THAT(message.error.message, HasSubstr("unknown key \"message\""));
  const Merge none = merge(R"({"push": {"every": "1s"}})", 1, {}, ControlTarget::kSocket);
  EXPECT_THAT(none.error.message, HasSubstr("has no push in the file"));
  EXPECT_EQ(merge(R"({"echo": false})", 1, {}, ControlTarget::kSocket).error.field, "echo");
}

TEST(MockControlPatch, RoutesJsonSaysWhatIsInForce) {
  const Merge m = merge(R"({"latency": "1.5ms", "errors": [{"rate": 0.25, "stall": "2s"}]})");
  ASSERT_TRUE(m.ok);
  const nlohmann::json j =
      nlohmann::json::parse(routes_json(apply_state(file(), m.state), m.state, 7));
  EXPECT_EQ(j["generation"], 7);
  EXPECT_EQ(j["routes"][0]["latency"]["distribution"], "fixed");
  EXPECT_EQ(j["routes"][0]["latency"]["value_us"], 1500);
  EXPECT_EQ(j["routes"][0]["errors"][0]["stall_us"], 2000000);
  EXPECT_EQ(j["routes"][0]["changed"], nlohmann::json::array({"latency", "errors"}));
  EXPECT_EQ(j["routes"][1]["changed"], nlohmann::json::array());
  EXPECT_EQ(j["sockets"][0]["push"]["every_us"], 1000000);
}

TEST(MockControlShared, UpdateReadAndApplied) {
  SharedControl shared(2);
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(shared.generation(), 0u);
  const uint64_t g = shared.update([](const std::string& state, std::string* next) {
    *next = state + "x";
    return true;
  });
  EXPECT_EQ(g, 1u);
  EXPECT_EQ(shared.update([](const std::string&, std::string*) { return false; }), 0u);
  std::string state;
  EXPECT_EQ(shared.read(&state), 1u);
  EXPECT_EQ(state, "x");
  EXPECT_EQ(shared.applied_count(1), 0u);
  shared.set_applied(0, 1);
  EXPECT_EQ(shared.applied_count(1), 1u);
  shared.set_applied(1, 1);
  EXPECT_EQ(shared.applied_count(1), 2u);
}

}  // namespace control_test
}  // namespace millstone::mock
