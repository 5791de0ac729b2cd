#include "mock/path_pattern.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace millstone::mock {
namespace {

bool is_param_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

std::vector<PathSegment> parse_path_pattern(std::string_view path, std::string* error) {
  std::vector<PathSegment> segments;
  size_t params = 0;
  // The leading '/' starts the first segment; "/" alone is one empty segment.
  size_t start = path.empty() ? 0 : 1;
  for (;;) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view text = path.substr(start, end - start);
    PathSegment segment;
    if (!text.empty() && text.front() == ':') {
      segment.param = true;
      segment.text = std::string(text.substr(1));
      if (!is_param_name(segment.text)) {
        *error = fmt::format(
            "parameter \"{}\" is not a name; expected e.g. :id (letters, digits "
            "and _, not starting with a digit)",
            text);
        return {};
      }
      for (const PathSegment& other : segments) {
        if (other.param && other.text == segment.text) {
          *error =
              fmt::format("parameter :{} appears twice; expected distinct names", segment.text);
          return {};
        }
      }
      if (++params > kMaxPathParams) {
        *error = fmt::format("more than {} parameters; expected at most {}", kMaxPathParams,
                             kMaxPathParams);
        return {};
      }
    } else {
      segment.text = std::string(text);
    }
    segments.push_back(std::move(segment));
    if (end >= path.size()) {
      break;
    }
    start = end + 1;
  }
  return segments;
}

bool has_path_params(const std::vector<PathSegment>& pattern) {
  return std::any_of(pattern.begin(), pattern.end(),
                     [](const PathSegment& segment) { return segment.param; });
}

bool match_path_pattern(const std::vector<PathSegment>& pattern, std::string_view path,
                        PathParams* params) {
  if (path.empty() || path.front() != '/') {
    return false;
  }
  size_t count = 0;
  size_t start = 1;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const size_t slash = path.find('/', start);
    const bool last = i + 1 == pattern.size();
    // The last segment must reach the end of the path; others end at a '/'.
    if (last != (slash == std::string_view::npos)) {
      return false;
    }
    const size_t end = last ? path.size() : slash;
    const std::string_view text = path.substr(start, end - start);
    if (pattern[i].param) {
      if (text.empty()) {
        return false;
      }
      if (params != nullptr && count < kMaxPathParams) {
        params->values[count] = text;
      }
      ++count;
    } else if (text != pattern[i].text) {
      return false;
    }
    start = end + 1;
  }
  if (params != nullptr) {
    params->count = std::min(count, kMaxPathParams);
  }
  return true;
}

std::string pattern_literal_head(const std::vector<PathSegment>& pattern) {
  std::string head = "/";
  for (const PathSegment& segment : pattern) {
    if (segment.param) {
      break;
    }
    head += segment.text;
    head += '/';
  }
  return head;
}

bool pattern_covers(const std::vector<PathSegment>& earlier,
                    const std::vector<PathSegment>& later) {
  if (earlier.size() != later.size()) {
    return false;
  }
  for (size_t i = 0; i < earlier.size(); ++i) {
    if (earlier[i].param) {
      continue;
    }
    if (later[i].param || later[i].text != earlier[i].text) {
      return false;
    }
  }
  return true;
}

}  // namespace millstone::mock
