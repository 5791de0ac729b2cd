#pragma once
// The Prometheus text exposition format, version 0.0.4 (what node_exporter
// and every Prometheus client library serve on /metrics), parsed strictly:
// anything the format does not allow is an error naming the line, never a
// guess. Bounded: the sample, label and line counts are capped, so a hostile
// endpoint costs at most what the caller's body limit lets in.
//
//   # HELP name text with \\ and \n escapes
//   # TYPE name counter|gauge|histogram|summary|untyped
//   name{label="value with \" \\ \n",other="x"} 1.5e3 1700000000000
//   name NaN | +Inf | -Inf
//
// No exceptions: the data plane's error style (a bool and a ParseError).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace millstone::monitor {

enum class MetricType : uint8_t { kUntyped, kCounter, kGauge, kHistogram, kSummary };
// "counter", "gauge", ...
const char* metric_type_name(MetricType type);

struct Family {
  std::string name;
  MetricType type = MetricType::kUntyped;
  std::string help;  // unescaped
};

struct Sample {
  std::string name;  // as written: "x_bucket" for histogram x
  std::vector<std::pair<std::string, std::string>> labels;  // in the order written, unescaped
  double value = 0;
  std::optional<int64_t> timestamp_ms;
  // From the family's TYPE: a histogram's _bucket, _sum and _count samples
  // are counters here, a summary's quantiles gauges and its _sum and _count
  // counters; untyped when no TYPE line named the family.
  MetricType type = MetricType::kUntyped;
  std::string_view label(std::string_view name) const;
};

struct Exposition {
  std::vector<Family> families;  // those named by HELP or TYPE lines
  std::vector<Sample> samples;
};

struct ParseLimits {
  size_t max_samples = 200'000;
  size_t max_labels = 64;       // per sample
  size_t max_line = 64 * 1024;  // bytes
  size_t max_families = 50'000;
};

struct ParseError {
  size_t line = 0;  // 1-based
  std::string message;
};

// False with *error set (and *out unspecified) on the first problem.
bool parse_text(std::string_view text, Exposition* out, ParseError* error,
                const ParseLimits& limits = {});

// `name{a="x",b="y"}`: a sample's identity, labels in the order written and
// values escaped as in the format. Just `name` without labels.
std::string series_key(const Sample& sample);

}  // namespace millstone::monitor
