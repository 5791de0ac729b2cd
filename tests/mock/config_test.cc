#include "mock/config.h"
#include "config_text.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace millstone::mock {
namespace config_test {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

using config_text::error_of;
using config_text::parse;

TEST(MockConfigTest, MinimalRouteGetsDefaults) {
  const MockConfig config = parse("routes:\n  - path: /x\n");
  EXPECT_FALSE(config.seed_given);
  ASSERT_EQ(config.routes.size(), 1u);
  const Route& route = config.routes[0];
  EXPECT_EQ(route.name, "GET /x");
  EXPECT_EQ(route.method, "GET");
  EXPECT_EQ(route.path, "/x");
  EXPECT_FALSE(route.prefix);
  EXPECT_EQ(route.status, 200);
  EXPECT_TRUE(route.headers.empty());
  EXPECT_EQ(route.body, "");
  EXPECT_TRUE(route.latency.always_zero());
  EXPECT_TRUE(route.errors.empty());
}

TEST(MockConfigTest, FullRoute) {
  const MockConfig config = parse(R"(
seed: 18446744073709551615
routes:
  - name: orders
    method: POST
    path: /api/orders
    status: 201
    headers: {Content-Type: application/json, X-B: "2", X-A: 1}
    body: '{"id":1}'
    latency: 20ms
    errors:
      - {rate: 0.01, status: 503, body: busy, headers: {Retry-After: "1"}}
      - {rate: 1%, reset: true}
      - {rate: 0.001, stall: 2s}
      - {rate: 0, stall: forever}
)");
  EXPECT_TRUE(config.seed_given);
  EXPECT_EQ(config.seed, UINT64_MAX);
  const Route& route = config.routes.at(0);
  EXPECT_EQ(route.name, "orders");
  EXPECT_EQ(route.method, "POST");
  EXPECT_EQ(route.status, 201);
  // Config order is kept: it is the order on the wire.
  EXPECT_THAT(route.headers, ElementsAre(Pair("Content-Type", "application/json"), Pair("X-B", "2"),
                                         Pair("X-A", "1")));
  EXPECT_EQ(route.body, R"({"id":1})");
  EXPECT_EQ(route.latency.distribution, LatencyModel::Distribution::kFixed);
  EXPECT_DOUBLE_EQ(route.latency.value_us, 20000);
  ASSERT_EQ(route.errors.size(), 4u);
  EXPECT_EQ(route.errors[0].kind, ErrorRule::kStatus);
  EXPECT_DOUBLE_EQ(route.errors[0].rate, 0.01);
  EXPECT_EQ(route.errors[0].status, 503);
  EXPECT_EQ(route.errors[0].body, "busy");
  EXPECT_THAT(route.errors[0].headers, ElementsAre(Pair("Retry-After", "1")));
  EXPECT_EQ(route.errors[1].kind, ErrorRule::kReset);
  EXPECT_DOUBLE_EQ(route.errors[1].rate, 0.01);
  EXPECT_EQ(route.errors[2].kind, ErrorRule::kStall);
  EXPECT_EQ(route.errors[2].stall_us, 2'000'000);
  EXPECT_EQ(route.errors[3].stall_us, kStallForever);
}

TEST(MockConfigTest, MethodStarAndPrefixPath) {
  const MockConfig config = parse("routes:\n  - {method: '*', path: /api/*}\n  - path: /*\n");
  EXPECT_EQ(config.routes[0].method, "*");
  EXPECT_EQ(config.routes[0].path, "/api/");
  EXPECT_TRUE(config.routes[0].prefix);
  EXPECT_EQ(config.routes[0].name, "* /api/*");
  EXPECT_EQ(config.routes[1].path, "/");
  EXPECT_TRUE(config.routes[1].prefix);
}

TEST(MockConfigTest, Durations) {
  auto fixed_us = [](std::string_view duration) {
    const MockConfig config =
        parse("routes:\n  - path: /x\n    latency: " + std::string(duration) + "\n");
    return config.routes[0].latency.value_us;
  };
  EXPECT_DOUBLE_EQ(fixed_us("250us"), 250);
  EXPECT_DOUBLE_EQ(fixed_us("250µs"), 250);
  EXPECT_DOUBLE_EQ(fixed_us("20ms"), 20'000);
  EXPECT_DOUBLE_EQ(fixed_us("1.5s"), 1'500'000);
  EXPECT_DOUBLE_EQ(fixed_us("2m"), 120'000'000);
  EXPECT_DOUBLE_EQ(fixed_us("1h"), 3'600'000'000);
  EXPECT_DOUBLE_EQ(fixed_us("0ms"), 0);
  EXPECT_DOUBLE_EQ(fixed_us("\"5 ms\""), 5'000);
}

TEST(MockConfigTest, EveryDistribution) {
  auto latency = [](std::string_view map) {
    return parse("routes:\n  - path: /x\n    latency: " + std::string(map) + "\n")
        .routes[0]
        .latency;
  };
  using D = LatencyModel::Distribution;
  LatencyModel m = latency("{distribution: fixed, value: 3ms}");
  EXPECT_EQ(m.distribution, D::kFixed);
  EXPECT_DOUBLE_EQ(m.value_us, 3000);

  m = latency("{distribution: uniform, min: 1ms, max: 3ms}");
  EXPECT_EQ(m.distribution, D::kUniform);
  EXPECT_DOUBLE_EQ(m.min_us, 1000);
  EXPECT_DOUBLE_EQ(m.max_us, 3000);

  // The range shorthand of docs/mock.md#latency, shared with scenario think times.
  m = latency("5ms..15ms");
  EXPECT_EQ(m.distribution, D::kUniform);
  EXPECT_DOUBLE_EQ(m.min_us, 5000);
  EXPECT_DOUBLE_EQ(m.max_us, 15000);

  m = latency("{distribution: normal, mean: 10ms, stddev: 2ms}");
  EXPECT_EQ(m.distribution, D::kNormal);
  EXPECT_DOUBLE_EQ(m.mean_us, 10'000);
  EXPECT_DOUBLE_EQ(m.stddev_us, 2'000);

  m = latency("{distribution: lognormal, median: 5ms, p99: 50ms}");
  EXPECT_EQ(m.distribution, D::kLognormal);
  EXPECT_NEAR(std::exp(m.mu), 5000, 1e-6);
  EXPECT_NEAR(std::exp(m.mu + 2.3263478740408408 * m.sigma), 50'000, 1e-6);

  m = latency("{distribution: lognormal, median: 5ms, sigma: 0.5}");
  EXPECT_NEAR(std::exp(m.mu), 5000, 1e-6);
  EXPECT_DOUBLE_EQ(m.sigma, 0.5);

  m = latency("{distribution: exponential, mean: 2ms}");
  EXPECT_EQ(m.distribution, D::kExponential);
  EXPECT_DOUBLE_EQ(m.mean_us, 2000);
}

TEST(MockConfigTest, BodyFileIsRelativeToTheConfig) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("millstone_mock_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "bodies");
  std::ofstream(dir / "bodies" / "items.json") << "[1,2,3]";
  std::ofstream(dir / "mock.yaml")
      << "routes:\n  - path: /items\n    body_file: bodies/items.json\n";

  const MockConfig config = load_mock_config_file((dir / "mock.yaml").string());
  EXPECT_EQ(config.routes.at(0).body, "[1,2,3]");

  std::ofstream(dir / "bad.yaml") << "routes:\n  - path: /items\n    body_file: nope.json\n";
  try {
    load_mock_config_file((dir / "bad.yaml").string());
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              (dir / "bad.yaml").string() + ":3:16: body_file \"" + (dir / "nope.json").string() +
                  "\" is not a readable regular file; expected a path relative to the config "
                  "file");
  }
  std::filesystem::remove_all(dir);
}

TEST(MockConfigTest, ExampleFileLoads) {
  const MockConfig config =
      load_mock_config_file(std::string(MILLSTONE_SOURCE_DIR) + "/examples/mock.yaml");
  EXPECT_TRUE(config.seed_given);
  EXPECT_GE(config.routes.size(), 5u);
}

TEST(MockConfigTest, MissingFile) {
  try {
    load_mock_config_file("/nonexistent/mock.yaml");
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/mock.yaml: cannot read: No such file or directory");
  }
}

// The one-line promise holds even when the file name is what breaks it: a
// path from the command line can contain a line break.
TEST(MockConfigTest, MessagesStayOneLineWhateverThePath) {
  try {
    load_mock_config_file("/nonexistent/two\nlines.yaml");
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/two lines.yaml: cannot read: No such file or directory");
  }
  try {
    parse_mock_config("routes:\n  - path: /a\n---\nroutes: []\n", "two\rlines.yaml");
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), StartsWith("two lines.yaml:3:"));
    EXPECT_THAT(e.what(), HasSubstr("a second YAML document"));
  }
}

// Each error names the file, the 1-based line and column of the offending
// node, what was wrong and what was expected, on one line.
struct ErrorCase {
  const char* text;
  const char* message;
};

// Short, shell-safe, distinct test names for ctest: the start of the expected
// message and the length of the input.
void PrintTo(const ErrorCase& error, std::ostream* os) {
  std::string_view message = error.message;
  message.remove_prefix(std::min(message.size(), message.find(": ") + 2));
  std::string name;
  for (char c : message.substr(0, 40)) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      name += c;
    } else if (!name.empty() && name.back() != '_') {
      name += '_';
    }
  }
  *os << name << std::string_view(error.text).size();
}

class MockConfigErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(MockConfigErrorTest, ExactMessage) {
  const std::string message = error_of(GetParam().text);
  EXPECT_EQ(message, GetParam().message);
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, MockConfigErrorTest,
    ::testing::Values(
        // File structure.
        ErrorCase{"", "mock.yaml:1:1: the config is empty; expected a map with a routes list"},
        ErrorCase{"# nothing\n",
                  "mock.yaml:1:1: the config is empty; expected a map with a routes list"},
        ErrorCase{"- a\n", "mock.yaml:1:1: the config is a list; expected a map"},
        ErrorCase{"routes: [\n",
                  "mock.yaml:2:1: invalid YAML: end of sequence flow not found; expected "
                  "well-formed YAML"},
        ErrorCase{"routes:\n  - path: /x\n   body: x\n",
                  "mock.yaml:3:4: invalid YAML: end of sequence not found; expected well-formed "
                  "YAML"},
        ErrorCase{"routes: [{path: /x}]\n---\nroutes: []\n",
                  "mock.yaml:2:1: a second YAML document starts here; expected one document "
                  "per file"},
        // yaml-cpp 0.7 would loop forever on this (found by the fuzzer).
        ErrorCase{",routes:\n  - path: /x\n",
                  "mock.yaml:1:1: invalid YAML: unexpected \",\"; expected well-formed YAML"},
        ErrorCase{"# comment\n,\n",
                  "mock.yaml:2:1: invalid YAML: unexpected \",\"; expected well-formed YAML"},
        ErrorCase{"seeed: 1\n",
                  "mock.yaml:1:1: unknown key \"seeed\" in the config (did you mean \"seed\"?); "
                  "expected one of: seed, routes, websockets, tcp, grpc, grpc_reflection, amqp"},
        ErrorCase{
            "seed: 1\n",
            "mock.yaml:1:1: the config has no routes; expected a routes list (or grpc, websockets "
            "or tcp)"},
        ErrorCase{"seed: -1\nroutes: [{path: /x}]\n",
                  "mock.yaml:1:7: seed \"-1\" is not a whole number; expected 0 to "
                  "18446744073709551615"},
        ErrorCase{"routes: []\n",
                  "mock.yaml:1:9: routes is an empty list; expected a list of routes, each "
                  "starting with \"- path: ...\""},
        ErrorCase{"routes:\n  path: /x\n",
                  "mock.yaml:2:3: routes is a map; expected a list of routes, each starting "
                  "with \"- path: ...\""},
        ErrorCase{"routes:\n  - path: /x\n    path: /y\n",
                  "mock.yaml:3:5: duplicate key \"path\" in route; expected each key once"},
        // Route fields.
        ErrorCase{"routes:\n  - path: /x\n    staus: 200\n",
                  "mock.yaml:3:5: unknown key \"staus\" in route (did you mean \"status\"?); "
                  "expected one of: name, method, path, status, headers, body, body_file, "
                  "latency, errors, publish"},
        ErrorCase{"routes:\n  - status: 200\n",
                  "mock.yaml:2:5: route has no path; expected e.g. path: /hello"},
        ErrorCase{"routes:\n  - path: hello\n",
                  "mock.yaml:2:11: path \"hello\" does not start with /; expected e.g. /hello or "
                  "/api/*"},
        ErrorCase{"routes:\n  - path: /a/*/b\n",
                  "mock.yaml:2:11: path \"/a/*/b\" contains \"*\"; expected a plain path, with * "
                  "only at the end for a prefix match (queries are ignored)"},
        ErrorCase{"routes:\n  - path: /x\n    method: get\n",
                  "mock.yaml:3:13: method \"get\" has lowercase letters, and HTTP methods are "
                  "case-sensitive; expected GET"},
        ErrorCase{"routes:\n  - path: /x\n    method: G T\n",
                  "mock.yaml:3:13: method \"G T\" is not an HTTP method; expected e.g. GET, POST "
                  "or * for any"},
        ErrorCase{"routes:\n  - path: /x\n    status: 99\n",
                  "mock.yaml:3:13: status \"99\" is not a final HTTP status; expected 200 to 599"},
        ErrorCase{"routes:\n  - path: /x\n    status:\n",
                  "mock.yaml:3:5: status is empty; expected an HTTP status code from 200 to 599"},
        ErrorCase{"routes:\n  - path: /x\n    status: 204\n    body: hi\n",
                  "mock.yaml:4:11: status 204 has no body in HTTP; expected no body"},
        ErrorCase{"routes:\n  - path: /x\n    body: a\n    body_file: b\n",
                  "mock.yaml:4:5: route has both body and body_file; expected one of them"},
        ErrorCase{"routes:\n  - path: /x\n    body: [1]\n",
                  "mock.yaml:3:11: body is a list; expected a string"},
        ErrorCase{"routes:\n  - path: /x\n    headers: {Content-Length: 3}\n",
                  "mock.yaml:3:15: header Content-Length is set by the mock server; expected "
                  "other headers (it follows body and keep-alive)"},
        ErrorCase{"routes:\n  - path: /x\n    headers: {\"a b\": 1}\n",
                  "mock.yaml:3:15: header name \"a b\" is not an HTTP token; expected letters, "
                  "digits and !#$%&'*+-.^_`|~"},
        ErrorCase{"routes:\n  - path: /x\n    headers: {X-A: \"a\\nb\"}\n",
                  "mock.yaml:3:20: header X-A value \"a\\x0ab\" contains control characters; "
                  "expected one line of text"},
        ErrorCase{"routes:\n  - path: /x\n    headers: [a]\n",
                  "mock.yaml:3:14: headers is a list; expected a map"},
        // Durations.
        ErrorCase{"routes:\n  - path: /x\n    latency: 20\n",
                  "mock.yaml:3:14: latency \"20\" has no unit; expected a number and a unit, "
                  "such as 20ms, 1.5s, 250us or 2m"},
        ErrorCase{"routes:\n  - path: /x\n    latency: 20sec\n",
                  "mock.yaml:3:14: latency \"20sec\" has unknown unit \"sec\"; expected one of "
                  "us, ms, s, m, h"},
        ErrorCase{"routes:\n  - path: /x\n    latency: fast\n",
                  "mock.yaml:3:14: latency \"fast\" is not a duration; expected a number and a "
                  "unit, such as 20ms, 1.5s, 250us or 2m"},
        ErrorCase{"routes:\n  - path: /x\n    latency: -5ms\n",
                  "mock.yaml:3:14: latency \"-5ms\" is negative; expected a duration of 0 or "
                  "more"},
        ErrorCase{"routes:\n  - path: /x\n    latency: 25h\n",
                  "mock.yaml:3:14: latency \"25h\" is longer than 24h; expected at most 24h"},
        // Distributions.
        ErrorCase{
            "routes:\n  - path: /x\n    latency: [1ms]\n",
            "mock.yaml:3:14: latency is a list; expected a duration such as 1s, a range such as "
            "1s..3s or a map such as {distribution: lognormal, median: 1s, p99: 5s}"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {value: 1ms}\n",
                  "mock.yaml:3:14: latency has no distribution; expected distribution: fixed, "
                  "uniform, normal, lognormal or exponential"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {distribution: gamma}\n",
                  "mock.yaml:3:29: unknown distribution \"gamma\"; expected fixed, uniform, "
                  "normal, lognormal or exponential"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {distribution: uniform, min: 10ms, max: "
                  "5ms}\n",
                  "mock.yaml:3:54: uniform max is below min; expected min <= max"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {distribution: uniform, min: 10ms}\n",
                  "mock.yaml:3:14: a uniform distribution needs max; expected min and max"},
        ErrorCase{
            "routes:\n  - path: /x\n    latency: {distribution: normal, mean: 1ms, "
            "median: 1ms}\n",
            "mock.yaml:3:48: median does not apply to a normal distribution; expected mean and "
            "stddev"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {distribution: normal, mean: 1ms, "
                  "stddev: 1}\n",
                  "mock.yaml:3:56: stddev \"1\" has no unit; expected a number and a unit, such "
                  "as 20ms, 1.5s, 250us or 2m"},
        ErrorCase{
            "routes:\n  - path: /x\n    latency:\n      distribution: lognormal\n      "
            "median: 5ms\n",
            "mock.yaml:4:7: a lognormal distribution needs exactly one of p99 or sigma; expected "
            "median and either p99 or sigma"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {distribution: lognormal, median: 5ms, "
                  "p99: 2ms}\n",
                  "mock.yaml:3:58: lognormal p99 is below the median; expected p99 >= "
                  "median"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {distribution: lognormal, median: 0ms, "
                  "p99: 2ms}\n",
                  "mock.yaml:3:48: lognormal median is 0; expected a median above 0"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {distribution: lognormal, median: 1ms, "
                  "sigma: -1}\n",
                  "mock.yaml:3:60: sigma \"-1\" is out of range; expected a plain number from 0 "
                  "to 10 (the spread of ln(duration), e.g. 0.5)"},
        ErrorCase{"routes:\n  - path: /x\n    latency: {distribution: exponential, mean: 0s}\n",
                  "mock.yaml:3:48: exponential mean is 0; expected a mean above 0"},
        // Error rules.
        ErrorCase{"routes:\n  - path: /x\n    errors:\n      - {rate: 0.6, status: 503}\n"
                  "      - {rate: 0.5, reset: true}\n",
                  "mock.yaml:3:5: error rates add up to 1.1; expected at most 1"},
        ErrorCase{"routes:\n  - path: /x\n    errors: [{rate: 1.5, status: 503}]\n",
                  "mock.yaml:3:21: rate \"1.5\" is not a probability; expected a number between "
                  "0 and 1, such as 0.01 or 1%"},
        ErrorCase{"routes:\n  - path: /x\n    errors: [{status: 503}]\n",
                  "mock.yaml:3:14: error rule has no rate; expected a rate such as {rate: 0.01, "
                  "status: 503}"},
        ErrorCase{"routes:\n  - path: /x\n    errors: [{rate: 0.1}]\n",
                  "mock.yaml:3:14: error rule says what to do in none of status, reset or stall; "
                  "expected e.g. {rate: 0.01, status: 503}"},
        ErrorCase{"routes:\n  - path: /x\n    errors:\n      - rate: 0.1\n        status: 503\n"
                  "        reset: true\n",
                  "mock.yaml:6:9: error rule has both status and reset; expected exactly one of "
                  "status, reset or stall"},
        ErrorCase{"routes:\n  - path: /x\n    errors: [{rate: 0.1, reset: false}]\n",
                  "mock.yaml:3:33: reset must be true; expected {rate: 0.001, reset: true}"},
        ErrorCase{"routes:\n  - path: /x\n    errors: [{rate: 0.1, stall: 1s, body: x}]\n",
                  "mock.yaml:3:37: body applies only to status errors; expected no body with "
                  "stall"},
        ErrorCase{"routes:\n  - path: /x\n    errors: [{rate: 0.1, stall: never}]\n",
                  "mock.yaml:3:33: stall \"never\" is not a duration; expected a number and a "
                  "unit, such as 20ms, 1.5s, 250us or 2m"},
        ErrorCase{"routes:\n  - path: /x\n    errors: {rate: 0.1, reset: true}\n",
                  "mock.yaml:3:13: errors is a map; expected a list such as [{rate: 0.01, "
                  "status: 503}]"},
        ErrorCase{"routes:\n  - path: /x\n    errors: [{rate: 0.1, reest: true}]\n",
                  "mock.yaml:3:26: unknown key \"reest\" in error rule (did you mean \"reset\"?); "
                  "expected one of: rate, status, body, headers, reset, stall"},
        // Reachability and names.
        ErrorCase{"routes:\n  - path: /x\n  - path: /x\n",
                  "mock.yaml:3:5: route \"GET /x\" can never match: route \"GET /x\" at line 2 "
                  "takes all its requests; expected every route to be reachable (put more "
                  "specific routes first)"},
        ErrorCase{"routes:\n  - path: /a/*\n  - path: /a/b\n",
                  "mock.yaml:3:5: route \"GET /a/b\" can never match: route \"GET /a/*\" at line "
                  "2 takes all its requests; expected every route to be reachable (put more "
                  "specific routes first)"},
        ErrorCase{"routes:\n  - {method: '*', path: /a}\n  - {method: POST, path: /a}\n",
                  "mock.yaml:3:5: route \"POST /a\" can never match: route \"* /a\" at line 2 "
                  "takes all its requests; expected every route to be reachable (put more "
                  "specific routes first)"},
        ErrorCase{"routes:\n  - path: /*\n  - path: /a/*\n",
                  "mock.yaml:3:5: route \"GET /a/*\" can never match: route \"GET /*\" at line 2 "
                  "takes all its requests; expected every route to be reachable (put more "
                  "specific routes first)"},
        ErrorCase{"routes:\n  - {name: a, path: /x}\n  - {name: a, path: /y}\n",
                  "mock.yaml:3:5: route name \"a\" is already used at line 2; expected unique "
                  "names (they label per-route counts)"}));

TEST(MockConfigTest, ReachableRoutesAreAccepted) {
  // Different methods, a more specific route before a prefix, "*" after a
  // specific method: every one of these can match something.
  EXPECT_EQ(error_of("routes:\n"
                     "  - {method: GET, path: /a}\n"
                     "  - {method: POST, path: /a}\n"
                     "  - {method: '*', path: /a}\n"
                     "  - {path: /api/items}\n"
                     "  - {path: /api/*}\n"
                     "  - {method: '*', path: /api/*}\n"
                     "  - {path: /api}\n"),
            "");
}

TEST(MockConfigTest, RatesThatRoundToOneAreAccepted) {
  EXPECT_EQ(error_of("routes:\n  - path: /x\n    errors:\n"
                     "      - {rate: 0.1, reset: true}\n"
                     "      - {rate: 0.2, reset: true}\n"
                     "      - {rate: 0.7, reset: true}\n"),
            "");
}

TEST(MockConfigTest, TooLargeIsRejectedBeforeParsing) {
  const std::string big(kMaxConfigBytes + 1, '#');
  EXPECT_THAT(error_of(big), StartsWith("mock.yaml: the config is 1048577 bytes; expected at "
                                        "most 1 MiB"));
}

TEST(MockConfigTest, AliasExpansionIsBounded) {
  // Under 1 MiB of YAML, but every route copies the same 900 KB body through
  // an alias: 1,000 routes would be 900 MB. (Few large copies rather than
  // many small ones: the sanitized build pays per copy.)
  std::string text = "routes:\n  - {path: /r0, body: &b \"" + std::string(900'000, 'x') + "\"}\n";
  for (int i = 1; i < 1'000; ++i) {
    text += "  - {path: /r" + std::to_string(i) + ", body: *b}\n";
  }
  ASSERT_LT(text.size(), kMaxConfigBytes);
  EXPECT_THAT(error_of(text), HasSubstr(": the config expands to more than 256 MiB (through YAML "
                                        "aliases or body files); expected a smaller config"));
}

// A "billion laughs" (aliases of aliases) is refused while the YAML is read,
// before yaml-cpp's nodes are walked: the check is shared with scenario files
// (config/yaml_fields.cc), and it names where the expansion crossed the limit.
TEST(MockConfigTest, AliasBombIsRefusedBeforeItExpands) {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  const std::string names = "abcdefghi";
  for (size_t i = 1; i < names.size(); ++i) {
    std::string prev(1, names[i - 1]);
    text += std::string(1, names[i]) + ": &" + names[i] + " [";
    for (int k = 0; k < 10; ++k)
      text += (k ? ", *" : "*") + prev;
    text += "]\n";
  }
  EXPECT_THAT(error_of(text),
              ::testing::MatchesRegex("mock\\.yaml:[0-9]+:[0-9]+: invalid YAML: aliases expand the "
                                      "document to more than 4000000 nodes.*"));
}

TEST(MockConfigTest, DeepNestingIsAConfigError) {
  EXPECT_THAT(error_of(std::string(600, '[')),
              ::testing::MatchesRegex("mock\\.yaml:1:1: invalid YAML: nested [0-9]+ levels deep; "
                                      "expected a shallower document"));
}

TEST(MockConfigTest, YamlSyntaxErrorsAreConfigErrors) {
  for (const char* text : {"{", "[", "a: b: c", "\"", "routes: *nope", "!<tag> [", "a:\n\tb"}) {
    EXPECT_THAT(error_of(text), StartsWith("mock.yaml:")) << text;
  }
}

}  // namespace config_test
}  // namespace millstone::mock
