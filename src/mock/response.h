// What `millstone mock` answers on a route: the error rule drawn for a
// request, and the prebuilt HTTP/1.1 response bytes.
#pragma once

#include <string>
#include <string_view>

#include "mock/config.h"
#include "random/randomness.h"

namespace millstone::mock {

// One uniform draw against the route's cumulative error rates: the rule to
// apply, or nullptr to answer normally. Draws nothing if the route has no rules.
const ErrorRule* pick_error(const Route& route, Prng& prng);

// Complete HTTP/1.1 response bytes, built once per route at start-up. Adds
// Content-Length (not for 204/304, which carry no body) and "Connection: close"
// when !keep_alive. No Date header: see docs/mock.md.
std::string build_response(int status, const Headers& headers, std::string_view body,
                           bool keep_alive);

}  // namespace millstone::mock
