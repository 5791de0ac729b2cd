// `millstone run --webhook URL` against `millstone mock`, with a receiver
// thread in the test standing in for Slack.
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
#include "support.h"

namespace millstone::testing {
namespace webhook_test {

// Answers "ok" to 200 and "invalid_token" otherwise, like Slack.
struct Receiver : HttpReceiver {
  explicit Receiver(int status) : HttpReceiver(status, status == 200 ? "ok" : "invalid_token") {}
};

const char* kRoutes = "routes:\n  - path: /hello\n    body: \"hello\\n\"\n";

TEST(WebhookIntegration, PostsTheRunSummaryWhenTheRunEnds) {
  MockServer mock(kRoutes);
  Receiver receiver(200);
  std::string out = write_temp_file("", ".json");
  auto r = run_millstone({"run", mock.url("/hello"), "-c", "2", "-d", "2s", "-w", "1", "-q", "-o",
                          out, "--webhook", receiver.url("/hook")},
                         40);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("--webhook"), std::string::npos) << r.err;
  auto request = receiver.first(5);
  ASSERT_TRUE(request) << "no POST arrived";
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->path, "/hook");
  EXPECT_NE(request->head.find("\r\nContent-Type: application/json"), std::string::npos)
      << request->head;
  nlohmann::json body = nlohmann::json::parse(request->body);
  nlohmann::json summary = read_json(out);
  const std::string run_id = summary["run_id"];
  std::string text = body["text"];
  EXPECT_EQ(text.rfind("✅ COMPLETED", 0), 0u) << text;  // no thresholds judged it
  EXPECT_NE(text.find(mock.url("/hello")), std::string::npos) << text;
  EXPECT_NE(text.find(run_id), std::string::npos) << text;
  ASSERT_TRUE(body["blocks"].is_array());
  EXPECT_LE(body["blocks"].size(), 50u);
  EXPECT_EQ(body["blocks"][0]["type"], "header");
  std::string fields = body["blocks"][1]["fields"].dump();
  EXPECT_NE(fields.find("*Requests*\\n" + std::to_string(summary["requests"].get<uint64_t>())),
            std::string::npos)
      << fields;
}

TEST(WebhookIntegration, AFailingReceiverIsAWarningNotAFailure) {
  MockServer mock(kRoutes);
  Receiver receiver(500);
  auto r = run_millstone({"run", mock.url("/hello"), "-c", "2", "-d", "2s", "-w", "1", "-q",
                          "--webhook", receiver.url("/hook")},
                         40);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(receiver.first(5));
  EXPECT_NE(r.err.find("--webhook " + receiver.url("/hook") + ": HTTP 500 from " +
                       receiver.url("/hook") + ": invalid_token"),
            std::string::npos)
      << r.err;
}

}  // namespace webhook_test
}  // namespace millstone::testing
