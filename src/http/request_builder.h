#pragma once
// Serializes the request a load run sends: built once, then the same bytes go
// out on every connection for every request.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/url.h"

namespace millstone::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A complete HTTP/1.1 request. Adds "Host" and "User-Agent: millstone/<ver>"
// unless the caller gave them, and "Content-Length" when the body is not empty
// or the method is POST, PUT or PATCH (servers may answer 411 otherwise),
// unless the caller gave Content-Length or Transfer-Encoding: then framing is
// theirs. Headers are expected to be valid (see parse_header_arg).
std::string build_request(std::string_view method, const Url& url, const HeaderList& headers,
                          std::string_view body);

// Parses a command-line header "Name: value" (curl's -H syntax). Surrounding
// whitespace of name and value is dropped; the name must be an HTTP token and
// the value free of CR, LF and other control characters (they would let a
// typo inject headers). On failure returns false with a message in *error.
bool parse_header_arg(std::string_view arg, std::pair<std::string, std::string>* out,
                      std::string* error);

// Why `method` cannot be a request's method, or nullopt when it can: it must be
// an HTTP token, and as methods are case-sensitive and every registered one is
// uppercase, lowercase letters are refused with the uppercase spelling
// ("has lowercase letters, and HTTP methods are case-sensitive; expected GET").
// The text follows the quoted method in the caller's message.
std::optional<std::string> method_problem(std::string_view method);

// Content-Length, Transfer-Encoding and Connection: millstone frames bodies
// and reuses connections itself, so a user's value would desynchronize it
// from the server (0 responses, or requests read as bodies).
bool is_framing_header(std::string_view name);

}  // namespace millstone::http
