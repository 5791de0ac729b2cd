// Request routing of `millstone mock`: which configured route answers a
// request (docs/mock.md#routes).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mock/config.h"
#include "mock/path_pattern.h"

namespace millstone::mock {

// Finds the first route, in config order, matching a request. Compiled once:
// an exact-path hash lookup plus a scan of the (usually few) prefix and
// parameter routes that come before the exact match.
class Router {
 public:
  explicit Router(const MockConfig& config);

  // The index into config.routes, or -1 for the implicit 404. target may be
  // the full request-target; the query ("?...") is ignored. For a route with
  // path parameters, *params (when given) receives the captured segments.
  int match(std::string_view method, std::string_view target, PathParams* params = nullptr) const;

 private:
  struct Candidate {
    int index;
    std::string method;
  };
  // A prefix route (pattern empty) or a route with path parameters.
  struct ScannedRoute {
    int index;
    std::string method;
    std::string prefix;
    std::vector<PathSegment> pattern;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  // Candidates per exact path, in config order.
  std::unordered_map<std::string, std::vector<Candidate>, StringHash, std::equal_to<>> exact_;
  std::vector<ScannedRoute> scanned_;  // in config order
};

// The same answer as Router::match by a plain scan; the reference the Router
// is tested against, and enough for one-off lookups.
const Route* match_route(const MockConfig& config, std::string_view method,
                         std::string_view target);

}  // namespace millstone::mock
