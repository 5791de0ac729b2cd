#pragma once
// What extractors and checks see of one HTTP response.
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace millstone::scenario {

struct ResponseView {
  int status = 0;
  // All header lines in order, names as sent (compare case-insensitively).
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view body;   // captured prefix (up to the scenario's max body capture)
  int64_t latency_us = 0;  // from intended start to complete response
  // grpc steps: the call's status and its (percent-decoded) grpc-message;
  // the body is then the response message as JSON (a list when streamed).
  int grpc_status = -1;
  bool has_grpc_message = false;
  std::string_view grpc_message;

  // First header with that name, case-insensitive; empty if absent.
  std::string_view header(std::string_view name) const;
  // Like header(), but tells an absent header (nullptr) from an empty one.
  const std::string_view* find_header(std::string_view name) const;
};

}  // namespace millstone::scenario
