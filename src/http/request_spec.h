#pragma once
// A request described without a protocol: what the command line (and later
// the scenario loader) produces. Each Session kind encodes it once into its
// own PreparedRequest (HTTP/1.1: bytes; HTTP/2: a header block and a body).
#include <string>
#include <utility>
#include <vector>

namespace millstone::http {

struct RequestSpec {
  std::string method = "GET";
  std::string scheme = "http";  // "http" or "https"
  std::string authority;        // host[:port] as the Host header would carry it
  std::string path = "/";       // path and query
  // Extra headers as given (-H), names as typed; framing headers excluded.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  friend bool operator==(const RequestSpec&, const RequestSpec&) = default;
};

}  // namespace millstone::http
