#include "mock/router.h"

namespace millstone::mock {

Router::Router(const MockConfig& config) {
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const Route& route = config.routes[i];
    const int index = static_cast<int>(i);
    if (route.prefix || !route.pattern.empty()) {
      scanned_.push_back(ScannedRoute{index, route.method, route.path, route.pattern});
    } else {
      exact_[route.path].push_back(Candidate{index, route.method});
    }
  }
}

int Router::match(std::string_view method, std::string_view target, PathParams* params) const {
  const std::string_view path = target.substr(0, target.find('?'));
  int best = -1;
  if (auto it = exact_.find(path); it != exact_.end()) {
    for (const Candidate& candidate : it->second) {
      if (candidate.method == "*" || candidate.method == method) {
        best = candidate.index;
        break;
      }
    }
  }
  for (const ScannedRoute& route : scanned_) {
    if (best >= 0 && route.index > best) {
      break;
    }
    if (route.method != "*" && route.method != method) {
      continue;
    }
    const bool matches = route.pattern.empty() ? path.starts_with(route.prefix)
                                               : match_path_pattern(route.pattern, path, params);
    if (matches) {
      return route.index;
    }
  }
  return best;
}

const Route* match_route(const MockConfig& config, std::string_view method,
                         std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  for (const Route& route : config.routes) {
    if (route.method != "*" && route.method != method) {
      continue;
    }
    const bool matches = route.prefix            ? path.starts_with(route.path)
                         : route.pattern.empty() ? path == route.path
                                                 : match_path_pattern(route.pattern, path, nullptr);
    if (matches) {
      return &route;
    }
  }
  return nullptr;
}

}  // namespace millstone::mock
