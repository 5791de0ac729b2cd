#include "serve/api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "results/compare.h"
#include "results/history.h"
#include "serve/console.h"
#include "serve/saved_scenarios.h"

namespace millstone::serve {

namespace {

std::string sha256(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiResponse json_response(int status, const nlohmann::json& body) {
  ApiResponse r;
  r.status = status;
  r.body = dump(body);
  return r;
}

// Splits "/v1/runs/ID/what" against "/v1/runs/{id}/what"; the id is one
// segment of letters, digits, '-' and '_'.
bool match(std::string_view pattern, std::string_view path, std::string_view* id) {
  while (!pattern.empty() || !path.empty()) {
    const size_t p_end = pattern.find('/', 1);
    const size_t q_end = path.find('/', 1);
    const std::string_view p = pattern.substr(0, p_end);
    const std::string_view q = path.substr(0, q_end);
    if (p == "/{id}") {
      if (q.size() < 2) return false;
      for (char c : q.substr(1)) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
      }
      *id = q.substr(1);
    } else if (p != q) {
      return false;
    }
    pattern = p_end == std::string_view::npos ? std::string_view() : pattern.substr(p_end);
    path = q_end == std::string_view::npos ? std::string_view() : path.substr(q_end);
  }
  return true;
}

}  // namespace

ApiResponse error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}, {"status", status}});
}

ServeApi::ServeApi(RunQueue& runs, std::string token, std::string scenarios_dir)
    : runs_(runs), token_digest_(sha256(token)), scenarios_dir_(std::move(scenarios_dir)) {}

const std::vector<ServeApi::Route>& ServeApi::routes() {
  static const std::vector<Route> table = {
      {"GET", "/v1/scenarios", {200, 401, 500}, &ServeApi::list_scenarios},
      {"GET", "/v1/runs", {200, 401}, &ServeApi::list_runs},
      {"POST", "/v1/runs", {202, 400, 401, 413, 500}, &ServeApi::create_run},
      {"GET", "/v1/runs/{id}", {200, 401, 404}, &ServeApi::get_run},
      {"GET", "/v1/runs/{id}/events", {200, 401, 404}, &ServeApi::run_events},
      {"POST", "/v1/runs/{id}/stop", {202, 401, 404, 409}, &ServeApi::stop_run},
      {"POST", "/v1/runs/{id}/abort", {202, 401, 404, 409}, &ServeApi::abort_run},
      {"GET", "/v1/runs/{id}/summary", {200, 401, 404, 409}, &ServeApi::run_summary},
      {"GET", "/v1/runs/{id}/report", {200, 401, 404, 409}, &ServeApi::run_report},
      {"GET", "/v1/runs/{id}/junit", {200, 401, 404, 409}, &ServeApi::run_junit},
      {"POST", "/v1/runs/{id}/baseline", {200, 401, 404, 409}, &ServeApi::mark_baseline},
      {"GET", "/v1/runs/{id}/compare", {200, 400, 401, 404, 409}, &ServeApi::compare_run},
  };
  return table;
}

bool ServeApi::authorized(std::string_view header) const {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return false;
    }
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  // Digests of equal length, compared without an early exit: the time
  // taken says nothing about the token.
  const std::string digest = sha256(token);
  return CRYPTO_memcmp(digest.data(), token_digest_.data(), digest.size()) == 0;
}

ApiResponse ServeApi::handle(const http::RequestParser& request) {
  const std::string_view path = request.path();
  // The console's files hold no data: no token (a browser cannot send one
  // when it opens a page); the page sends it with each API call.
  if (request.method() == "GET" || request.method() == "HEAD") {
    if (std::optional<ApiResponse> page = console_file(path)) return std::move(*page);
  }
  std::vector<std::string> allowed;
  for (const Route& route : routes()) {
    std::string_view id;
    if (!match(route.path, path, &id)) continue;
    if (request.method() != route.method) {
      allowed.push_back(route.method);
      continue;
    }
    // Nothing is looked at, let alone started, before the token checks.
    if (!authorized(request.header("Authorization"))) {
      ApiResponse r = error_response(401,
                                     "missing or wrong bearer token (Authorization: Bearer "
                                     "TOKEN, the token in serve's --token-file)");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"millstone\"");
      return r;
    }
    return (this->*route.handler)(request, id);
  }
  if (!allowed.empty()) {
    std::string list;
    for (const std::string& m : allowed)
      list += (list.empty() ? "" : ", ") + m;
    ApiResponse r =
        error_response(405, fmt::format("{} is not allowed here; use {}", request.method(), list));
    r.headers.emplace_back("Allow", list);
    return r;
  }
  return error_response(
      404, "no such endpoint; the API is under /v1/runs and /v1/scenarios (docs/serve.md)");
}

ApiResponse ServeApi::list_scenarios(const http::RequestParser&, std::string_view) {
  std::vector<SavedScenario> saved;
  std::string error;
  if (!list_saved_scenarios(scenarios_dir_, &saved, &error)) return error_response(500, error);
  nlohmann::json list = nlohmann::json::array();
  for (const SavedScenario& s : saved) {
    list.push_back({{"name", s.name},
                    {"path", s.path},
                    {"bytes", s.bytes},
                    {"modified_at", iso_time(s.modified_ms)}});
  }
  return json_response(
      200, {{"dir", scenarios_dir_.empty() ? nlohmann::json() : nlohmann::json(scenarios_dir_)},
            {"scenarios", list}});
}

ApiResponse ServeApi::list_runs(const http::RequestParser&, std::string_view) {
  nlohmann::json runs = nlohmann::json::array();
  for (const Run* run : runs_.newest_first())
    runs.push_back(runs_.run_json(*run, false));
  return json_response(200, {{"runs", runs}});
}

ApiResponse ServeApi::create_run(const http::RequestParser& request, std::string_view) {
  const std::string_view key = request.header("Idempotency-Key");
  if (key.size() > 255 || std::any_of(key.begin(), key.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e;
      })) {
    return error_response(400, "Idempotency-Key: expected 1 to 255 visible ASCII characters");
  }
  std::string error;
  std::optional<RunRequest> parsed =
      parse_run_request(request.body(), runs_.options().base_dir, &error);
  if (!parsed) return error_response(400, error);
  const RunQueue::Submitted submitted = runs_.submit(std::move(*parsed), std::string(key), &error);
  if (submitted.run == nullptr) return error_response(500, error);
  ApiResponse r = json_response(202, {{"id", submitted.run->id},
                                      {"state", run_state_name(submitted.run->state)},
                                      {"existing", submitted.existing}});
  r.headers.emplace_back("Location", "/v1/runs/" + submitted.run->id);
  return r;
}

ApiResponse ServeApi::get_run(const http::RequestParser&, std::string_view id) {
  const Run* run = runs_.find(id);
  if (run == nullptr) return error_response(404, fmt::format("no run {}", id));
  return json_response(200, runs_.run_json(*run, true));
}

ApiResponse ServeApi::run_events(const http::RequestParser&, std::string_view id) {
  if (runs_.find(id) == nullptr) return error_response(404, fmt::format("no run {}", id));
  ApiResponse r;
  r.event_stream = std::string(id);
  return r;
}

ApiResponse ServeApi::signal_run(std::string_view id, bool abort) {
  if (runs_.find(id) == nullptr) return error_response(404, fmt::format("no run {}", id));
  std::string error;
  if (!runs_.stop(id, abort, &error)) return error_response(409, error);
  const Run* run = runs_.find(id);
  return json_response(202, {{"id", run->id}, {"state", run_state_name(run->state)}});
}

ApiResponse ServeApi::stop_run(const http::RequestParser&, std::string_view id) {
  return signal_run(id, false);
}

ApiResponse ServeApi::abort_run(const http::RequestParser&, std::string_view id) {
  return signal_run(id, true);
}

ApiResponse ServeApi::run_file(std::string_view id, const char* what, std::string RunFiles::*file,
                               const char* content_type) {
  const Run* run = runs_.find(id);
  if (run == nullptr) return error_response(404, fmt::format("no run {}", id));
  if (!run->ended()) {
    return error_response(409, fmt::format("run {} is {}; its {} is written when it ends", id,
                                           run_state_name(run->state), what));
  }
  std::ifstream in(run->files.*file, std::ios::binary);
  std::ostringstream content;
  if (in) content << in.rdbuf();
  if (!in) {
    return error_response(404, fmt::format("run {} wrote no {} (it ended {}{}{})", id, what,
                                           run_state_name(run->state),
                                           run->message.empty() ? "" : ": ", run->message));
  }
  ApiResponse r;
  r.content_type = content_type;
  r.body = content.str();
  return r;
}

ApiResponse ServeApi::run_summary(const http::RequestParser&, std::string_view id) {
  return run_file(id, "summary", &RunFiles::summary, "application/json");
}

ApiResponse ServeApi::run_report(const http::RequestParser&, std::string_view id) {
  return run_file(id, "report", &RunFiles::report, "text/html; charset=utf-8");
}

ApiResponse ServeApi::run_junit(const http::RequestParser&, std::string_view id) {
  return run_file(id, "JUnit XML", &RunFiles::junit, "application/xml");
}

std::optional<std::string> ServeApi::history_id(std::string_view id, ApiResponse* refusal) {
  const Run* run = runs_.find(id);
  if (run == nullptr) {
    *refusal = error_response(404, fmt::format("no run {}", id));
    return std::nullopt;
  }
  if (!run->ended()) {
    *refusal = error_response(409, fmt::format("run {} is {}; it is recorded when it ends", id,
                                               run_state_name(run->state)));
    return std::nullopt;
  }
  std::ifstream in(run->files.summary, std::ios::binary);
  std::ostringstream content;
  if (in) content << in.rdbuf();
  const nlohmann::json summary = nlohmann::json::parse(content.str(), nullptr, false);
  if (!summary.is_object() || !summary.contains("run_id") || !summary["run_id"].is_string()) {
    *refusal = error_response(
        404, fmt::format("run {} was not recorded (it ended {})", id, run_state_name(run->state)));
    return std::nullopt;
  }
  return summary["run_id"].get<std::string>();
}

ApiResponse ServeApi::mark_baseline(const http::RequestParser&, std::string_view id) {
  ApiResponse refusal;
  const std::optional<std::string> recorded = history_id(id, &refusal);
  if (!recorded) return refusal;
  try {
    results::History history(runs_.options().data_dir + "/history.db",
                             results::History::Mode::kMustExist);
    history.set_baseline(*recorded);
    const results::RunRecord record = history.find(*recorded);
    return json_response(200,
                         {{"id", std::string(id)}, {"run_id", *recorded}, {"key", record.key}});
  } catch (const results::ResultsError& e) {
    return error_response(
        404, fmt::format("run {} ({}) is not in the history: {}", id, *recorded, e.what()));
  }
}

ApiResponse ServeApi::compare_run(const http::RequestParser& request, std::string_view id) {
  results::CompareOptions options;
  // ?tolerance=10%25 or ?tolerance=0.1
  std::string_view query = request.query();
  if (!query.empty()) {
    if (query.rfind("tolerance=", 0) != 0 || query.find('&') != std::string_view::npos) {
      return error_response(400, "the only query parameter is tolerance (10%25 or 0.1)");
    }
    std::string value(query.substr(10));
    if (const size_t at = value.find("%25"); at != std::string::npos) value.replace(at, 3, "%");
    std::string error;
    if (!results::parse_tolerance(value, &options.tolerance, &error)) {
      return error_response(400, fmt::format("tolerance {}", error));
    }
  }
  ApiResponse refusal;
  const std::optional<std::string> recorded = history_id(id, &refusal);
  if (!recorded) return refusal;
  try {
    results::History history(runs_.options().data_dir + "/history.db",
                             results::History::Mode::kMustExist);
    const results::RunRecord run = history.find(*recorded);
    const std::optional<std::string> baseline_id = history.baseline_for(run.key);
    if (!baseline_id) {
      return error_response(404, fmt::format("no baseline for {}; mark one with POST "
                                             "/v1/runs/{{id}}/baseline",
                                             run.key));
    }
    const results::RunRecord baseline = history.find(*baseline_id);
    const results::Comparison comparison = results::compare_runs(run, baseline, options);
    return json_response(200, results::to_json(comparison));
  } catch (const results::ResultsError& e) {
    return error_response(
        404, fmt::format("run {} ({}) cannot be compared: {}", id, *recorded, e.what()));
  }
}

}  // namespace millstone::serve
