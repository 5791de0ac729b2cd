#include "results/webhook.h"

#include <curl/curl.h>

#include <cmath>
#include <memory>
#include <mutex>

#include <fmt/format.h>

namespace millstone::results {
namespace {

// Slack's limits (api.slack.com/reference/block-kit): header text 150
// characters, section text 3000, a field 2000, at most 10 fields.
constexpr size_t kHeaderMax = 150;
constexpr size_t kSectionMax = 3000;
constexpr size_t kFieldMax = 2000;

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence, marking the cut.
std::string truncate_utf8(std::string s, size_t max) {
  if (s.size() <= max) return s;
  const std::string_view ellipsis = "…";
  size_t cut = max > ellipsis.size() ? max - ellipsis.size() : 0;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut;
  s.resize(cut);
  s += ellipsis;
  return s;
}

// Slack mrkdwn treats &, < and > as markup; user text must not form links or mentions.
std::string escape_mrkdwn(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const nlohmann::json* find(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &j;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

double number(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* v = find(j, path);
  return v && v->is_number() ? v->get<double>() : 0.0;
}

uint64_t count(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* v = find(j, path);
  return v && v->is_number_unsigned() ? v->get<uint64_t>()
         : v && v->is_number()        ? static_cast<uint64_t>(std::max(0.0, v->get<double>()))
                                      : 0;
}

std::string text(const nlohmann::json& j, const char* key) {
  const nlohmann::json* v = find(j, {key});
  return v && v->is_string() ? v->get<std::string>() : "";
}

std::string format_ms(double ms) {
  if (ms >= 1000) return fmt::format("{:.2f} s", ms / 1000);
  if (ms >= 10) return fmt::format("{:.1f} ms", ms);
  return fmt::format("{:.2f} ms", ms);
}

// Why a run did not pass, in a few words, from its summary.
std::string failure_reason(const RunRecord& record) {
  const nlohmann::json& s = record.summary;
  const nlohmann::json* complete = find(s, {"complete"});
  if (complete && complete->is_boolean() && !complete->get<bool>()) return "incomplete";
  const nlohmann::json* interrupted = find(s, {"interrupted"});
  if (interrupted && interrupted->is_boolean() && interrupted->get<bool>()) return "interrupted";
  const nlohmann::json* thresholds = find(s, {"thresholds_passed"});
  if (thresholds && thresholds->is_boolean() && !thresholds->get<bool>())
    return "thresholds failed";
  return fmt::format("exit code {}", record.exit_code);
}

nlohmann::json mrkdwn(std::string s, size_t max) {
  return {{"type", "mrkdwn"}, {"text", truncate_utf8(std::move(s), max)}};
}

}  // namespace

nlohmann::json webhook_payload(const RunRecord& record) {
  const nlohmann::json& s = record.summary;
  const bool passed = record.passed();
  // The report's word for a run that ended well (PASSED only when thresholds
  // judged it, COMPLETED otherwise); FAILED with the reason otherwise.
  const std::string verdict = passed ? run_verdict(record).word : "FAILED";
  const std::string icon = passed ? "✅" : "❌";
  const std::string scenario = text(s, "scenario");
  const std::string name = scenario.empty() ? record.name : scenario;
  const uint64_t requests = count(s, {"requests"});
  const uint64_t errors = count(s, {"error_total"});
  const double rps = number(s, {"rps"});
  const double p50 = number(s, {"latency_ms", "p50"});
  const double p99 = number(s, {"latency_ms", "p99"});
  const uint64_t attempts = requests + errors;
  // The summary's error rate (HTTP failures and transport errors); older
  // summaries have only transport errors.
  const nlohmann::json* rate = find(s, {"error_rate"});
  const double error_pct = rate && rate->is_number() ? 100.0 * rate->get<double>()
                           : attempts ? 100.0 * static_cast<double>(errors) / attempts
                                      : 0.0;

  std::string line =
      fmt::format("{} {}{}: {} — {:.1f} rps, p99 {}, errors {:.2f}% (run {})", icon, verdict,
                  passed ? "" : " (" + failure_reason(record) + ")", escape_mrkdwn(name), rps,
                  format_ms(p99), error_pct, escape_mrkdwn(record.id));

  nlohmann::json blocks = nlohmann::json::array();
  blocks.push_back(
      {{"type", "header"},
       {"text",
        {{"type", "plain_text"},
         {"text",
          truncate_utf8(fmt::format("{} millstone {}: {}", icon, verdict, name), kHeaderMax)},
         {"emoji", true}}}});

  nlohmann::json fields = nlohmann::json::array();
  fields.push_back(mrkdwn(fmt::format("*Requests*\n{}", requests), kFieldMax));
  fields.push_back(
      mrkdwn(fmt::format("*Throughput*\n{:.1f} rps over {:.1f} s", rps, number(s, {"duration_s"})),
             kFieldMax));
  fields.push_back(mrkdwn(
      fmt::format("*Latency p50 / p99*\n{} / {}", format_ms(p50), format_ms(p99)), kFieldMax));
  fields.push_back(mrkdwn(fmt::format("*Errors*\n{} ({:.2f}%)", errors, error_pct), kFieldMax));
  const nlohmann::json* checks = find(s, {"checks"});
  if (checks && checks->is_array() && !checks->empty()) {
    uint64_t pass = 0, fail = 0;
    for (const nlohmann::json& c : *checks) {
      pass += count(c, {"passed"});
      fail += count(c, {"failed"});
    }
    fields.push_back(mrkdwn(fmt::format("*Checks*\n{} passed, {} failed", pass, fail), kFieldMax));
  }
  const nlohmann::json* thresholds = find(s, {"thresholds"});
  size_t thresholds_failed = 0;
  if (thresholds && thresholds->is_array() && !thresholds->empty()) {
    for (const nlohmann::json& t : *thresholds) {
      const nlohmann::json* ok = find(t, {"passed"});
      if (!(ok && ok->is_boolean() && ok->get<bool>())) ++thresholds_failed;
    }
    fields.push_back(mrkdwn(fmt::format("*Thresholds*\n{} of {} passed",
                                        thresholds->size() - thresholds_failed, thresholds->size()),
                            kFieldMax));
  }
  fields.push_back(mrkdwn(fmt::format("*Run*\n{}", escape_mrkdwn(record.id)), kFieldMax));
  blocks.push_back({{"type", "section"}, {"fields", fields}});  // at most 7 of Slack's 10

  if (thresholds && thresholds->is_array() && !thresholds->empty()) {
    std::string list;
    for (const nlohmann::json& t : *thresholds) {
      const nlohmann::json* ok = find(t, {"passed"});
      bool t_passed = ok && ok->is_boolean() && ok->get<bool>();
      list += fmt::format("{} `{}` observed {}\n", t_passed ? "✅" : "❌",
                          escape_mrkdwn(text(t, "threshold")), escape_mrkdwn(text(t, "observed")));
    }
    blocks.push_back({{"type", "section"}, {"text", mrkdwn("*Thresholds*\n" + list, kSectionMax)}});
  }
  const nlohmann::json* causes = find(s, {"errors"});
  if (causes && causes->is_object() && !causes->empty()) {
    std::string list;
    for (const auto& [cause, n] : causes->items())
      list += fmt::format("• {}: {}\n", escape_mrkdwn(cause), n.is_number() ? n.dump() : "?");
    blocks.push_back(
        {{"type", "section"}, {"text", mrkdwn("*Errors by cause*\n" + list, kSectionMax)}});
  }
  std::string context = fmt::format("millstone {}", escape_mrkdwn(record.env.millstone_version));
  if (!record.env.host.empty()) context += " on " + escape_mrkdwn(record.env.host);
  if (!scenario.empty()) context += " · " + escape_mrkdwn(record.name);
  blocks.push_back(
      {{"type", "context"}, {"elements", nlohmann::json::array({mrkdwn(context, kFieldMax)})}});

  return {{"text", truncate_utf8(line, kSectionMax)}, {"blocks", blocks}};
}

namespace {

size_t collect_body(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  // Only the start is ever shown; keep memory bounded whatever the receiver sends.
  if (body->size() < 4096) body->append(data, std::min(size * n, 4096 - body->size()));
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

bool post_webhook(const std::string& url, const RunRecord& record, std::string* error) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    *error = "cannot initialise libcurl";
    return false;
  }
  // Names and URLs come from the user and may hold invalid UTF-8: replace
  // rather than throw, so the notification still goes out.
  const std::string body =
      webhook_payload(record).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  curl_slist* raw_headers = curl_slist_append(nullptr, "Content-Type: application/json");
  // No "Expect: 100-continue" round trip for bodies over 1 KiB.
  raw_headers = curl_slist_append(raw_headers, "Expect:");
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);
  std::string response;
  char curl_error[CURL_ERROR_SIZE] = {};
  const std::string agent = "millstone/" MILLSTONE_VERSION;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, agent.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    const char* why = curl_error[0] ? curl_error : curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
        *error = fmt::format("cannot connect to {}: {}", url, why);
        break;
      case CURLE_OPERATION_TIMEDOUT:
        *error = fmt::format("no answer from {} within 10 s: {}", url, why);
        break;
      default:
        *error = fmt::format("POST to {} failed: {}", url, why);
    }
    return false;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    std::string excerpt = truncate_utf8(response, 200);
    for (char& ch : excerpt)
      if (ch == '\n' || ch == '\r') ch = ' ';  // the warning stays one line
    *error = fmt::format("HTTP {} from {}: {}", status, url, excerpt);
    return false;
  }
  return true;
}

}  // namespace millstone::results
