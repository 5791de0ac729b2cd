#pragma once
// `--webhook URL`: when the run ends, POST its summary with pass/fail as JSON
// in the shape Slack-compatible incoming webhooks accept ("text" plus
// "blocks"; Mattermost, Rocket.Chat and Teams connectors read "text").
#include <string>

#include <nlohmann/json.hpp>

#include "results/record.h"

namespace millstone::results {

nlohmann::json webhook_payload(const RunRecord& record);
// Blocking POST with a 10 s timeout (libcurl: http and https). Returns false
// and sets *error ("HTTP 404 from URL", "cannot connect to ...") on failure.
bool post_webhook(const std::string& url, const RunRecord& record, std::string* error);

}  // namespace millstone::results
