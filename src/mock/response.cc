#include "mock/response.h"

#include <fmt/format.h>

#include "http/status.h"

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

std::string build_response(int status, const Headers& headers, std::string_view body,
                           bool keep_alive) {
  const bool bodiless = status == 204 || status == 304 || (status >= 100 && status < 200);
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", status, http::reason_phrase(status));
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
