#pragma once
// The web console (docs/console.md): one page, its script and style sheet and
// uPlot, compiled in from console/ and report/node_modules at build time, so
// the console needs no network beyond serve itself. They are served without
// the token: they hold no data; the page asks for the token and sends it as a
// bearer header with each API call.
#include <optional>
#include <string_view>

#include "serve/api.h"

namespace millstone::serve {

// The console file at `path` ("/", "/console.js", ...), or nullopt.
std::optional<ApiResponse> console_file(std::string_view path);

}  // namespace millstone::serve
