#include "serve/console.h"

#include <string>

namespace millstone::serve {

namespace assets {
// Generated from console/ and uPlot (src/CMakeLists.txt, cmake/embed_assets.cmake).
std::string_view console_html();
std::string_view console_js();
std::string_view console_css();
std::string_view console_uplot_js();
std::string_view console_uplot_css();
}  // namespace assets

namespace {

// Scripts and styles from serve only; API calls to serve only. Inline script
// and style are allowed because the console shows a run's report in a
// sandboxed frame (srcdoc, an opaque origin that cannot read the token), and
// a frame's document inherits this policy; the report is one self-contained
// file of inline scripts. The console itself builds its DOM from text nodes.
constexpr const char* kPolicy =
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data: blob:; frame-src 'self' blob: data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

ApiResponse file(std::string_view content, const char* type) {
  ApiResponse r;
  r.content_type = type;
  r.body = std::string(content);
  r.headers.emplace_back("Content-Security-Policy", kPolicy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

}  // namespace

std::optional<ApiResponse> console_file(std::string_view path) {
  if (path == "/" || path == "/index.html") {
    return file(assets::console_html(), "text/html; charset=utf-8");
  }
  if (path == "/console.js") return file(assets::console_js(), "text/javascript; charset=utf-8");
  if (path == "/console.css") return file(assets::console_css(), "text/css; charset=utf-8");
  if (path == "/uplot.js")
    return file(assets::console_uplot_js(), "text/javascript; charset=utf-8");
  if (path == "/uplot.css") return file(assets::console_uplot_css(), "text/css; charset=utf-8");
  return std::nullopt;
}

}  // namespace millstone::serve
