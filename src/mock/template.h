// Templated response bodies and header values of `millstone mock`:
// '{"token":"tok-{{ request.json.user }}-{{ uuid }}"}'. Compiled once at config
// load into literal and expression segments; rendered per request by the
// worker's TemplateRenderer, which appends to a caller's buffer and keeps its
// own buffers across requests. Routes without expressions never get here:
// their responses stay prebuilt bytes. Syntax: docs/mock.md#templates.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mock/path_pattern.h"
#include "random/randomness.h"

namespace millstone::http {
class RequestParser;
}

namespace millstone::mock {

// The shared generator and delay model (src/random/), under the names the
// mock's code and tests have always used.
using random::kMaxLatencyUs;
using random::LatencyModel;
using random::Prng;

class Template {
 public:
  enum class Filter : uint8_t { kJson, kUrlEncode };

  struct Segment {
    enum class Kind : uint8_t {
      kLiteral,
      kMethod,        // request.method
      kPath,          // request.path (no query)
      kQuery,         // request.query.NAME, percent-decoded
      kHeader,        // request.header.NAME
      kBody,          // request.body
      kJson,          // request.json.A.B; text is the JSON pointer "/A/B"
      kPathParam,     // path.NAME; index into the route's parameters
      kUuid,          // once per request
      kRandom,        // random(A, B), a fresh draw per occurrence
      kRouteCounter,  // counter: the route's own
      kNamedCounter,  // counter.NAME; index into the config's counter names
      kNowMs,         // once per request
      kNowUs,         // once per request (the same clock reading as now_ms)
    };
    Kind kind = Kind::kLiteral;
    std::vector<Filter> filters;  // applied left to right
    std::string text;             // literal text, query or header name, JSON pointer
    uint32_t index = 0;
    int64_t low = 0;
    int64_t high = 0;
  };

  // What names a template may use.
  struct Scope {
    std::span<const PathSegment> path;  // the route's path: its parameters are path.NAME
    // Named counters of the whole config; unknown names are added.
    std::vector<std::string>* counter_names = nullptr;
  };

  // On failure returns nullopt with a one-line *error ("unknown expression
  // \"request.pth\" (did you mean \"request.path\"?); expected ...") and
  // *error_offset, the byte offset in text of the offending expression.
  static std::optional<Template> compile(std::string_view text, const Scope& scope,
                                         std::string* error, size_t* error_offset);
  // Text used as it is, no expressions (a body_file beside templated headers).
  static Template literal(std::string text);

  // True when there is nothing to evaluate: literal_text() is the whole value
  // (with "\{{" already turned into "{{").
  bool is_literal() const;
  std::string literal_text() const;
  // The same, moved out of a template that is not used again (a config's
  // prebuilt responses): a large body is not copied.
  std::string take_literal_text() &&;
  bool uses_json() const;
  const std::vector<Segment>& segments() const { return segments_; }

 private:
  std::vector<Segment> segments_;
};

// A response with templated parts, compiled from a route or a status error rule.
struct ResponseTemplate {
  int status = 200;
  std::vector<std::pair<std::string, Template>> headers;  // names are literal
  Template body;
  bool uses_json = false;  // request.json somewhere: parse the body once per request
};

// The request a response is rendered for. Views must outlive the render.
struct RenderRequest {
  const http::RequestParser* request = nullptr;
  PathParams path_params;
  size_t route_index = 0;
};

// Per worker. Evaluates expressions against one request at a time; values
// that are "once per request" (counters, uuid, now_ms, the parsed JSON body)
// are remembered from begin() to the next begin(), so a header and the body
// see the same order id. Never throws; a missing value renders as "".
class TemplateRenderer {
 public:
  // counters: the shared counter slots: [route index] for each route's own
  // counter, then [named_base + i] for named counter i. fetch_add on them
  // makes values unique across worker processes.
  TemplateRenderer(Prng& prng, std::span<std::atomic<uint64_t>> counters, size_t named_base);
  ~TemplateRenderer();
  TemplateRenderer(const TemplateRenderer&) = delete;
  TemplateRenderer& operator=(const TemplateRenderer&) = delete;

  void begin(const RenderRequest& request);
  void render(const Template& t, std::string* out);
  // The whole HTTP/1.1 response, as build_response would make it.
  void render_response(const ResponseTemplate& response, bool keep_alive, std::string* out,
                       size_t* header_bytes);

 private:
  struct Json;
  void append_value(const Template::Segment& segment, std::string* out);
  uint64_t counter_value(size_t slot);

  Prng& prng_;
  std::span<std::atomic<uint64_t>> counters_;
  size_t named_base_;
  RenderRequest request_;
  // Per-request values, filled on first use.
  std::vector<std::pair<size_t, uint64_t>> counter_values_;  // slot, value
  std::string uuid_;
  int64_t now_us_ = -1;
  std::unique_ptr<Json> json_;
  bool json_parsed_ = false;
  std::string scratch_;   // a value before filtering
  std::string filtered_;  // between two filters of a chain
  std::string body_;      // rendered before the headers, for Content-Length
};

// Filters, exposed for tests. Both append to out (the json filter is
// text::append_json_escaped).
void append_url_encoded(std::string_view text, std::string* out);
void append_url_decoded(std::string_view text, bool plus_is_space, std::string* out);

}  // namespace millstone::mock
