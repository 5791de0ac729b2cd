// The body of `millstone serve`'s POST /v1/runs (serve/run_request.h) from
// raw bytes: JSON parsing, every field's check, and the `millstone run`
// command line an accepted body becomes. A refused body must say why; an
// accepted one names exactly one thing to run and becomes `run TARGET ...`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "serve/run_request.h"

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "serve_request_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string error;
  // A base directory that does not exist: relative scenario paths never resolve.
  const auto request =
      millstone::serve::parse_run_request(text, "/nonexistent-serve-fuzz-base", &error);
  if (!request) {
    if (error.empty()) die("refused without a reason");
    return 0;
  }
  const int given =
      !request->url.empty() + !request->scenario.empty() + !request->scenario_yaml.empty();
  if (given != 1) die("accepted a body that does not name exactly one run");
  millstone::serve::RunFiles files{
      "/d",           "/d/s.yaml",     "/d/summary.json", "/d/report.html",
      "/d/junit.xml", "/d/output.log", "/d/history.db"};
  const std::vector<std::string> args = millstone::serve::run_arguments(*request, files, 3);
  if (args.size() < 2 || args[0] != "run" || args[1].empty() || args[1][0] == '-')
    die("the command line does not start with run TARGET");
  (void)millstone::serve::run_request_json(*request).dump(-1, ' ', false,
                                                          nlohmann::json::error_handler_t::replace);
  return 0;
}
