#pragma once
// The REST API of `millstone serve` (docs/serve.md, docs/api/openapi.yaml):
// routing, the bearer token, and the JSON answers, on parsed requests. The
// route table is the router: docs/api/openapi.yaml is checked against it
// (tests/serve/openapi_test.cc), so the two cannot drift.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/api_server.h"
#include "http/request_parser.h"
#include "serve/run_queue.h"

namespace millstone::serve {

// An answer; `event_stream` (GET /v1/runs/{id}/events) names the run whose
// Server-Sent Events the connection becomes.
using ApiResponse = http::ApiReply;

class ServeApi {
 public:
  // `token`: what `Authorization: Bearer` must carry; `scenarios_dir`: the
  // saved scenarios GET /v1/scenarios lists (absolute, or empty for none).
  ServeApi(RunQueue& runs, std::string token, std::string scenarios_dir = "");

  ApiResponse handle(const http::RequestParser& request);

  struct Route {
    const char* method;
    const char* path;           // OpenAPI form: /v1/runs/{id}/stop
    std::vector<int> statuses;  // every status it answers (401 included)
    ApiResponse (ServeApi::*handler)(const http::RequestParser&, std::string_view id);
  };
  static const std::vector<Route>& routes();

  // The largest request body (POST /v1/runs); larger is 413.
  static constexpr size_t kMaxBodyBytes = 1 << 20;

 private:
  bool authorized(std::string_view header) const;
  ApiResponse list_scenarios(const http::RequestParser&, std::string_view);
  ApiResponse list_runs(const http::RequestParser&, std::string_view);
  ApiResponse create_run(const http::RequestParser&, std::string_view);
  ApiResponse get_run(const http::RequestParser&, std::string_view id);
  ApiResponse run_events(const http::RequestParser&, std::string_view id);
  ApiResponse stop_run(const http::RequestParser&, std::string_view id);
  ApiResponse abort_run(const http::RequestParser&, std::string_view id);
  ApiResponse run_summary(const http::RequestParser&, std::string_view id);
  ApiResponse run_report(const http::RequestParser&, std::string_view id);
  ApiResponse run_junit(const http::RequestParser&, std::string_view id);
  ApiResponse mark_baseline(const http::RequestParser&, std::string_view id);
  ApiResponse compare_run(const http::RequestParser&, std::string_view id);
  // The run's id in the history (its summary's run_id), or an error answer.
  std::optional<std::string> history_id(std::string_view id, ApiResponse* refusal);
  ApiResponse run_file(std::string_view id, const char* what, std::string RunFiles::*file,
                       const char* content_type);
  ApiResponse signal_run(std::string_view id, bool abort);

  RunQueue& runs_;
  std::string token_digest_;  // SHA-256 of the token: compared in constant time
  std::string scenarios_dir_;
};

// {"error": message, "status": status} with that status.
ApiResponse error_response(int status, const std::string& message);

}  // namespace millstone::serve
