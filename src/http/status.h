#pragma once

#include <string_view>

namespace millstone::http {

// The reason phrase RFC 9110 gives a status code, or "" for a code it does
// not name (an empty reason phrase is valid on a status line). One table for
// every server millstone runs: the mock, `millstone serve` and the proxy's
// control API.
std::string_view reason_phrase(int status);

}  // namespace millstone::http
