// The webhook: the Slack-shaped payload, and the POST to a receiver on loopback.
#include "results/webhook.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "../support/http_receiver.h"
namespace millstone::results {
namespace webhook_test {

using Receiver = millstone::testing::HttpReceiver;

RunRecord url_record() {
  RunRecord r;
  r.id = "20261123-032041-4f2a";
  r.name = "http://127.0.0.1:8080/hello";
  r.env.millstone_version = "0.1.0";
  r.env.host = "ci-7";
  r.summary = nlohmann::json::parse(R"({
    "requests": 1000, "rps": 500.0, "duration_s": 2.0, "error_total": 10,
    "errors": {"timeout": 7, "reset": 3},
    "latency_ms": {"p50": 1.25, "p99": 9.87}, "complete": true, "interrupted": false})");
  r.exit_code = 0;
  return r;
}

RunRecord failed_scenario_record() {
  RunRecord r = url_record();
  r.name = "tests/shop.yaml";
  r.summary["scenario"] = "shop";
  r.summary["checks"] = nlohmann::json::parse(
      R"([{"name": "a", "passed": 10, "failed": 2}, {"name": "b", "passed": 5, "failed": 0}])");
  r.summary["thresholds"] = nlohmann::json::parse(R"([
    {"threshold": "p99 < 5ms", "passed": false, "observed": "9.87 ms"},
    {"threshold": "error_rate < 5%", "passed": true, "observed": "0.99%"}])");
  r.summary["thresholds_passed"] = false;
  r.exit_code = 99;
  return r;
}

const nlohmann::json& fields_of(const nlohmann::json& payload) {
  return payload["blocks"][1]["fields"];
}

std::string all_text(const nlohmann::json& payload) {
  return payload.dump();
}

TEST(WebhookPayload, PassedUrlRunSaysSoInOneLine) {
  nlohmann::json p = webhook_payload(url_record());
  std::string text = p["text"];
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  EXPECT_EQ(text.rfind("✅ COMPLETED", 0), 0u) << text;  // no thresholds judged it
  EXPECT_NE(text.find("http://127.0.0.1:8080/hello"), std::string::npos) << text;
  EXPECT_NE(text.find("500.0 rps"), std::string::npos) << text;
  EXPECT_NE(text.find("p99 9.87 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("errors 0.99%"), std::string::npos) << text;  // 10 of 1010
  RunRecord with_http_failures = url_record();
  with_http_failures.summary["error_rate"] = 0.045;  // the summary's one definition
  std::string text2 = webhook_payload(with_http_failures)["text"];
  EXPECT_NE(text2.find("errors 4.50%"), std::string::npos) << text2;
  EXPECT_NE(text.find("20261123-032041-4f2a"), std::string::npos) << text;

  ASSERT_TRUE(p["blocks"].is_array());
  EXPECT_EQ(p["blocks"][0]["type"], "header");
  EXPECT_EQ(p["blocks"][0]["text"]["type"], "plain_text");
  EXPECT_EQ(p["blocks"][1]["type"], "section");
  std::string fields = fields_of(p).dump();
  EXPECT_NE(fields.find("*Requests*\\n1000"), std::string::npos) << fields;
  EXPECT_NE(fields.find("1.25 ms / 9.87 ms"), std::string::npos) << fields;
  EXPECT_NE(fields.find("10 (0.99%)"), std::string::npos) << fields;
  // No checks or thresholds in a URL run.
  EXPECT_EQ(fields.find("Checks"), std::string::npos);
  EXPECT_EQ(fields.find("Thresholds"), std::string::npos);
  EXPECT_NE(all_text(p).find("timeout: 7"), std::string::npos);
}

TEST(WebhookPayload, FailedScenarioListsThresholdVerdicts) {
  nlohmann::json p = webhook_payload(failed_scenario_record());
  std::string text = p["text"];
  EXPECT_EQ(text.rfind("❌ FAILED (thresholds failed): shop", 0), 0u) << text;
  std::string fields = fields_of(p).dump();
  EXPECT_NE(fields.find("15 passed, 2 failed"), std::string::npos) << fields;
  EXPECT_NE(fields.find("1 of 2 passed"), std::string::npos) << fields;
  bool found = false;
  for (const auto& block : p["blocks"]) {
    if (block["type"] != "section" || !block.contains("text")) continue;
    std::string t = block["text"]["text"];
    if (t.rfind("*Thresholds*", 0) != 0) continue;
    found = true;
    EXPECT_NE(t.find("❌ `p99 &lt; 5ms` observed 9.87 ms"), std::string::npos) << t;
    EXPECT_NE(t.find("✅ `error_rate &lt; 5%` observed 0.99%"), std::string::npos) << t;
  }
  EXPECT_TRUE(found) << p.dump(2);
}

TEST(WebhookPayload, OtherFailuresSayWhy) {
  RunRecord r = url_record();
  r.summary["interrupted"] = true;
  r.exit_code = 130;
  EXPECT_EQ(webhook_payload(r)["text"].get<std::string>().rfind("❌ FAILED (interrupted)", 0), 0u);
  r.summary["complete"] = false;
  r.exit_code = 5;
  EXPECT_EQ(webhook_payload(r)["text"].get<std::string>().rfind("❌ FAILED (incomplete)", 0), 0u);
}

TEST(WebhookPayload, UserTextCannotMentionOrLink) {
  RunRecord r = url_record();
  r.name = "<!channel> & <http://evil|x>";
  std::string text = webhook_payload(r)["text"];
  EXPECT_EQ(text.find("<!channel>"), std::string::npos) << text;
  EXPECT_NE(text.find("&lt;!channel&gt; &amp; &lt;http://evil|x&gt;"), std::string::npos) << text;
}

TEST(WebhookPayload, StaysWithinSlackLimits) {
  RunRecord r = failed_scenario_record();
  r.summary["scenario"] = std::string(400, 'n') + "é";
  nlohmann::json thresholds = nlohmann::json::array();
  for (int i = 0; i < 500; ++i)
    thresholds.push_back({{"threshold", "p99 < " + std::to_string(i) + "ms ünïcödé"},
                          {"passed", i % 2 == 0},
                          {"observed", std::string(30, 'o')}});
  r.summary["thresholds"] = thresholds;
  nlohmann::json errors;
  for (int i = 0; i < 300; ++i)
    errors["cause_" + std::to_string(i)] = i;
  r.summary["errors"] = errors;
  nlohmann::json p = webhook_payload(r);
  ASSERT_NO_THROW(p.dump());  // would throw on a UTF-8 sequence cut in half
  EXPECT_LE(p["blocks"].size(), 50u);
  EXPECT_LE(p["text"].get<std::string>().size(), 3000u);
  EXPECT_LE(p["blocks"][0]["text"]["text"].get<std::string>().size(), 150u);
  for (const auto& block : p["blocks"]) {
    if (block.contains("text") && block["type"] == "section") {
      EXPECT_LE(block["text"]["text"].get<std::string>().size(), 3000u);
    }
    if (block.contains("fields")) {
      EXPECT_LE(block["fields"].size(), 10u);
      for (const auto& f : block["fields"]) {
        EXPECT_LE(f["text"].get<std::string>().size(), 2000u);
      }
    }
  }
  EXPECT_NE(p.dump().find("…"), std::string::npos);  // the long lists were cut, visibly
}

TEST(WebhookPost, PostsTheJsonPayloadToTheReceiver) {
  Receiver receiver(200, "ok");
  std::string error;
  RunRecord record = failed_scenario_record();
  ASSERT_TRUE(post_webhook(receiver.url("/hook?token=a"), record, &error)) << error;
  auto request = receiver.first();
  ASSERT_TRUE(request);
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->path, "/hook?token=a");
  EXPECT_NE(request->head.find("\r\nContent-Type: application/json\r\n"), std::string::npos)
      << request->head;
  EXPECT_EQ(request->head.find("Expect:"), std::string::npos) << request->head;
  EXPECT_EQ(nlohmann::json::parse(request->body), webhook_payload(record));
}

TEST(WebhookPost, Non2xxIsAnErrorQuotingTheStartOfTheBody) {
  Receiver receiver(500, "boom: " + std::string(400, 'x'));
  std::string error;
  EXPECT_FALSE(post_webhook(receiver.url("/hook"), url_record(), &error));
  const std::string prefix = "HTTP 500 from " + receiver.url("/hook") + ": boom: xxx";
  EXPECT_EQ(error.rfind(prefix, 0), 0u) << error;
  EXPECT_LE(error.size(), prefix.size() + 200) << error;
  EXPECT_TRUE(receiver.first());
}

TEST(WebhookPost, UnreachableAndUnsupportedUrlsAreErrors) {
  int port;
  {
    Receiver gone(200, "");
    port = gone.port();
  }  // closed: nothing listens there now
  std::string error;
  EXPECT_FALSE(
      post_webhook("http://127.0.0.1:" + std::to_string(port) + "/hook", url_record(), &error));
  EXPECT_NE(error.find("cannot connect to http://127.0.0.1:"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(post_webhook("file:///etc/hostname", url_record(), &error));
  EXPECT_FALSE(error.empty());
}

}  // namespace webhook_test
}  // namespace millstone::results
