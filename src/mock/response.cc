#include "mock/response.h"

#include <fmt/format.h>

namespace millstone::mock {

const ErrorRule* pick_error(const Route& route, Prng& prng) {
  if (route.errors.empty()) {
    return nullptr;
  }
  const double u = prng.uniform();
  double cumulative = 0;
  for (const ErrorRule& rule : route.errors) {
    cumulative += rule.rate;
    if (u < cumulative) {
      return &rule;
    }
  }
  return nullptr;
}

std::string_view reason_phrase(int status) {
  static constexpr std::pair<int, std::string_view> kPhrases[] = {
      {100, "Continue"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {206, "Partial Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {410, "Gone"},
      {413, "Content Too Large"},
      {415, "Unsupported Media Type"},
      {422, "Unprocessable Content"},
      {429, "Too Many Requests"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  };
  for (const auto& [code, phrase] : kPhrases) {
    if (code == status) {
      return phrase;
    }
  }
  return "";
}

std::string build_response(int status, const Headers& headers, std::string_view body,
                           bool keep_alive) {
  const bool bodiless = status == 204 || status == 304 || (status >= 100 && status < 200);
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
  for (const auto& [name, value] : headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!bodiless) {
    out += fmt::format("Content-Length: {}\r\n", body.size());
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  if (!bodiless) {
    out += body;
  }
  return out;
}

}  // namespace millstone::mock
