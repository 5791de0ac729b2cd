// Route paths with parameters: "/api/orders/:id" matches "/api/orders/42" and
// captures "42" as path.id. Kept apart from the Router so that the config
// parser (validation, reachability), the Router and the plain reference scan
// share one definition of what a pattern matches.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace millstone::mock {

// More would be a strange URL; the bound lets a match capture into a fixed
// array on the request path instead of allocating.
inline constexpr size_t kMaxPathParams = 8;

// One "/"-separated segment of a pattern: literal text, or a parameter that
// matches any non-empty segment.
struct PathSegment {
  std::string text;  // the literal, or the parameter's name (without ':')
  bool param = false;
};

// The segments captured by a match, in pattern order, as views into the
// request target (still percent-encoded).
struct PathParams {
  std::array<std::string_view, kMaxPathParams> values{};
  size_t count = 0;
};

// Splits a path such as "/api/orders/:id" into segments. A segment is a
// parameter when it starts with ':'; *error is set (and the result is
// meaningless) when a parameter's name is not [A-Za-z_][A-Za-z0-9_]*, is
// repeated, or there are more than kMaxPathParams.
std::vector<PathSegment> parse_path_pattern(std::string_view path, std::string* error);

bool has_path_params(const std::vector<PathSegment>& pattern);

// Whether path (no query) matches; captured values go to *params when given.
bool match_path_pattern(const std::vector<PathSegment>& pattern, std::string_view path,
                        PathParams* params);

// The literal text before the first parameter, "/api/orders/" for
// "/api/orders/:id": every path the pattern matches starts with it.
std::string pattern_literal_head(const std::vector<PathSegment>& pattern);

// Whether every path that `later` matches is also matched by `earlier`.
bool pattern_covers(const std::vector<PathSegment>& earlier, const std::vector<PathSegment>& later);

}  // namespace millstone::mock
