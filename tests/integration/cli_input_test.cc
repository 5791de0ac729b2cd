// Command-line input: every bad flag value is one line and exit 2 before
// anything starts; quick-mode requests follow the scenario rules; outputs are
// checked before the run; durations and rates share the files' grammar.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <fstream>

#include <gtest/gtest.h>

#include "support.h"

namespace millstone::testing {
namespace cli_input_test {

constexpr const char* kMockYaml = "routes:\n  - path: /x\n    status: 200\n    body: ok\n";

size_t line_count(const std::string& s) {
  size_t n = 0;
  for (char c : s)
    n += c == '\n';
  return n;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void expect_usage_error(const std::vector<std::string>& args, const std::string& expected) {
  auto r = run_millstone(args, 20);
  std::string shown;
  for (const std::string& a : args)
    shown += a + " ";
  EXPECT_EQ(r.exit_code, 2) << shown << "\n" << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << shown << "\n" << r.err;
  EXPECT_TRUE(contains(r.err, expected)) << shown << "\n" << r.err;
  EXPECT_TRUE(r.out.empty()) << shown << "\n" << r.out;
}

// Nothing listens on port 1: a flag error must come before the connect.
TEST(CliInput, BadNumbersExit2WithFlagValueAndExpectation) {
  const std::string url = "http://127.0.0.1:1/";
  expect_usage_error({"run", url, "--rate", "nan"}, "--rate \"nan\" is not a rate");
  expect_usage_error({"run", url, "--rate", "inf"}, "--rate \"inf\" is not a rate");
  expect_usage_error({"run", url, "--rate", "0"}, "--rate \"0\" is zero");
  expect_usage_error({"run", url, "--rate", "-5"}, "--rate \"-5\" is not a rate");
  expect_usage_error({"run", url, "-c", "-1"},
                     "--connections \"-1\" is not a whole number; expected 1 to 10000000");
  expect_usage_error({"run", url, "-c", "0"}, "--connections \"0\" is out of range");
  expect_usage_error({"run", url, "-c", "1e3"}, "--connections \"1e3\" is not a whole number");
  expect_usage_error({"run", url, "-w", "0"}, "--workers \"0\" is out of range");
  expect_usage_error({"run", url, "-w", "x"}, "--workers \"x\" is not a whole number");
  expect_usage_error({"run", url, "--timeout", "0s"}, "--timeout \"0s\" is zero");
  expect_usage_error({"run", url, "--timeout", "5"}, "--timeout \"5\" has no unit");
  expect_usage_error({"run", url, "--connect-timeout", "-1s"},
                     "--connect-timeout \"-1s\" is negative");
  expect_usage_error({"run", url, "-d", "10days"}, "--duration \"10days\" has unknown unit");
  expect_usage_error({"run", url, "--percentiles", "0,50"}, "is not a percentile");
  expect_usage_error({"run", url, "--percentiles", "100.5"}, "is not a percentile");
  expect_usage_error({"mock", "--seed", "-1"}, "--seed \"-1\" is not a whole number");
  expect_usage_error({"mock", "-w", "nan"}, "--workers \"nan\" is not a whole number");
  expect_usage_error({"demo", "-c", "-3"}, "--connections \"-3\" is not a whole number");
  expect_usage_error({"demo", "-d", "1"}, "--duration \"1\" has no unit");
  expect_usage_error({"runs", "-n", "-2"}, "--limit \"-2\" is not a whole number");
  expect_usage_error({"compare", "last", "--tolerance", "nan"}, "--tolerance 'nan'");
  expect_usage_error({"run", url, "--metrics-listen", "127.0.0.1:nan"},
                     "--metrics-listen 127.0.0.1:nan: port 'nan'");
}

// docs/mock.md: the seed is 0 to 2^64-1, from the file or --seed alike.
TEST(CliInput, MockSeedTakesTheWholeDocumentedRange) {
  auto r = run_millstone({"mock", "--seed", "18446744073709551616", "--listen", "127.0.0.1:0"}, 10);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "expected 0 to 18446744073709551615")) << r.err;
  // The top of the range is accepted: the server starts (and is stopped by the timeout).
  Process mock({"mock", "--seed", "18446744073709551615", "--listen", "127.0.0.1:0", "-q"});
  usleep(300'000);
  mock.signal(SIGTERM);
  auto top = mock.wait(10);
  EXPECT_NE(top.exit_code, 2) << top.err;
}

TEST(CliInput, QuickModeRequestsFollowTheScenarioRules) {
  const std::string url = "http://127.0.0.1:1/";
  expect_usage_error({"run", url, "-H", "Content-Length: 5"},
                     "-H 'Content-Length: 5': Content-Length is set by millstone");
  expect_usage_error({"run", url, "-H", "Transfer-Encoding: chunked"},
                     "Transfer-Encoding is set by millstone");
  expect_usage_error({"run", url, "-H", "connection: close"}, "connection is set by millstone");
  expect_usage_error({"run", url, "-m", "GE T"}, "-m \"GE T\" is not an HTTP method");
  expect_usage_error({"run", url, "-m", "get"},
                     "-m \"get\" has lowercase letters, and HTTP methods are case-sensitive; "
                     "expected GET");
}

TEST(CliInput, UnwritableOutputsFailBeforeTheRun) {
  MockServer mock(kMockYaml);
  for (const char* flag : {"-o", "--report", "--junit", "--timeseries"}) {
    const std::string path =
        std::string("/nonexistent-dir/out") + (std::string(flag) == "--timeseries" ? ".csv" : ".x");
    auto r = run_millstone({"run", mock.url("/x"), "-d", "30s", "-c", "1", flag, path}, 20);
    EXPECT_EQ(r.exit_code, 2) << flag << "\n" << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_TRUE(contains(r.err, path)) << r.err;
    EXPECT_TRUE(contains(r.err, "No such file or directory")) << r.err;
  }
  // Nothing was sent: the check comes before the workers start.
  EXPECT_EQ(mock.stats()["routes"][0]["requests"].get<uint64_t>(), 0u) << mock.stats().dump();
  // The check leaves no empty file behind when the run then stops early.
  const std::string dir = temp_dir();
  auto r = run_millstone({"run", "http://127.0.0.1:1/", "-o", dir + "/s.json"}, 20);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(access((dir + "/s.json").c_str(), F_OK), 0);
}

TEST(CliInput, OutDashWritesTheJsonAloneToStdout) {
  MockServer mock(kMockYaml);
  const std::string dir = temp_dir();
  ASSERT_EQ(chdir(dir.c_str()), 0);
  auto r = run_millstone({"run", mock.url("/x"), "-d", "1s", "-c", "1", "-q", "-o", "-"}, 30);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(access((dir + "/-").c_str(), F_OK), 0) << "a file named '-' was written";
  nlohmann::json summary = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(summary.is_discarded()) << r.out;
  EXPECT_GT(summary["requests"].get<uint64_t>(), 0u);
  EXPECT_TRUE(contains(r.err, "requests")) << "the text summary goes to stderr: " << r.err;
}

TEST(CliInput, DurationsAndRatesTakeTheFileGrammar) {
  MockServer mock(kMockYaml);
  const std::string dir = temp_dir();
  // 120/m = 2 per second for 1.5 s: 3 requests are due.
  auto r = run_millstone({"run", mock.url("/x"), "-d", "1s500ms", "--rate", "120/m", "-c", "1",
                          "-w", "1", "-q", "-o", dir + "/s.json"},
                         30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json s = read_json(dir + "/s.json");
  EXPECT_EQ(s["planned_duration_s"].get<double>(), 1.5);
  EXPECT_EQ(s["rate"].get<double>(), 2.0);
  EXPECT_EQ(s["schedule"]["scheduled"].get<uint64_t>(), 3u) << s["schedule"].dump();
  EXPECT_EQ(mock.stats()["routes"][0]["requests"].get<uint64_t>(), 3u) << mock.stats().dump();
}

TEST(CliInput, HeaderNumbersArePlainAndCountsAgree) {
  MockServer mock(kMockYaml);
  auto r = run_millstone(
      {"run", mock.url("/x"), "-d", "1s", "-c", "1", "-w", "1", "--rate", "10000000", "-q"}, 30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "open model, 10000000 req/s, 1 connection, 1 worker,")) << r.out;
  EXPECT_FALSE(contains(r.out, "e+07")) << r.out;
  // The recorded run reads the same.
  auto shown = run_millstone({"show", "last"}, 20);
  EXPECT_TRUE(contains(shown.out, "open model, 10000000 req/s over 1 connection, 1 worker;"))
      << shown.out;
}

TEST(CliInput, PercentilesAreChosenForTextAndJson) {
  MockServer mock(kMockYaml);
  const std::string dir = temp_dir();
  auto r = run_millstone({"run", mock.url("/x"), "-d", "1s", "-c", "1", "-q", "--percentiles",
                          "75,99.99", "-o", dir + "/s.json"},
                         30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "p75 ")) << r.out;
  EXPECT_TRUE(contains(r.out, "p99.99 ")) << r.out;
  EXPECT_FALSE(contains(r.out, "p50 ")) << r.out;
  nlohmann::json s = read_json(dir + "/s.json");
  EXPECT_EQ(s["percentiles_ms"].size(), 2u) << s["percentiles_ms"].dump();
  EXPECT_TRUE(s["percentiles_ms"].contains("75"));
  EXPECT_TRUE(s["percentiles_ms"].contains("99.99"));
  // p95 is shown by default, as k6 does.
  auto d = run_millstone({"run", mock.url("/x"), "-d", "1s", "-c", "1", "-q"}, 30);
  EXPECT_TRUE(contains(d.out, " p95 ")) << d.out;
}

// Workers compile the scenario themselves: the parameter values reach them in
// the run plan, with -e over the coordinator's environment.
TEST(CliInput, ScenarioParametersReachEveryWorker) {
  MockServer mock(kMockYaml);
  const std::string dir = temp_dir();
  const std::string path = dir + "/p.yaml";
  std::ofstream(path) << "target: '{{ env.MS_TARGET }}'\n"
                         "flows: {a: {steps: [{get: '{{ env.MS_PATH }}'}]}}\n"
                         "scenarios:\n"
                         "  s: {executor: iterations, vus: 2, iterations: 6}\n";
  ASSERT_EQ(setenv("MS_PATH", "/wrong", 1), 0);
  ASSERT_EQ(setenv("MS_TARGET", ("http://127.0.0.1:" + std::to_string(mock.port())).c_str(), 1), 0);
  auto r = run_millstone({"run", path, "-e", "MS_PATH=/x", "-w", "2", "-q"}, 30);
  unsetenv("MS_PATH");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(mock.stats()["routes"][0]["requests"].get<uint64_t>(), 6u) << mock.stats().dump();
  // Unset and without a default: one line with the place, before anything is sent.
  auto missing = run_millstone({"run", path, "-q"}, 30);
  unsetenv("MS_TARGET");
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_EQ(line_count(missing.err), 1u) << missing.err;
  EXPECT_TRUE(contains(missing.err, path + ":2:31: path uses parameter env.MS_PATH, which is not "
                                           "set"))
      << missing.err;
  expect_usage_error({"run", path, "-e", "1X=2"}, "-e '1X=2' is not a parameter");
  expect_usage_error({"run", path, "-e", "NOEQUALS"}, "-e 'NOEQUALS' is not a parameter");
}

TEST(CliInput, OverridesChangeTheFileScenarios) {
  MockServer mock(kMockYaml);
  const std::string dir = temp_dir();
  const std::string path = dir + "/o.yaml";
  std::ofstream(path) << "target: http://127.0.0.1:" << mock.port()
                      << "\nflows: {a: {steps: [{get: /x}]}}\n"
                         "scenarios:\n"
                         "  s: {executor: constant-arrival-rate, rate: 1000, duration: 1m, "
                         "pre_allocated_vus: 2}\n";
  // 120/m for 1.5 s: 3 iterations, one request each.
  auto r = run_millstone(
      {"run", path, "--rate", "120/m", "-d", "1s500ms", "-q", "-o", dir + "/s.json"}, 30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mock.stats()["routes"][0]["requests"].get<uint64_t>(), 3u) << mock.stats().dump();
  EXPECT_EQ(read_json(dir + "/s.json")["planned_duration_s"].get<double>(), 1.5 + 5)
      << "1.5 s plus the default graceful stop";
  expect_usage_error({"run", path, "--vus", "3"},
                     "--vus does not apply to scenario s at " + path + ":4:17");
  expect_usage_error({"run", path, "-c", "3"}, "-c, -m, -H, --body and --body-file apply to a URL");
}

}  // namespace cli_input_test
}  // namespace millstone::testing
