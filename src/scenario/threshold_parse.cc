#include "scenario/threshold_parse.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "config/yaml_fields.h"

namespace millstone::scenario {
namespace {

namespace yaml = config;
using yaml::shown;

constexpr std::string_view kMetrics[] = {"latency", "checks",     "error_rate",         "requests",
                                         "rps",     "iterations", "dropped_iterations", "target"};
constexpr std::string_view kMetricHint =
    "expected latency.pNN (p50, p95, p99.9...), latency.min, latency.max, latency.mean, checks, "
    "error_rate, requests, rps, iterations, dropped_iterations or target.SERIES";
constexpr std::string_view kTargetHint =
    "expected target.cpu, target.memory, target.network.rx, target.network.tx, or "
    "target.MONITOR.SERIES (a monitor: name and a metric it keeps), each optionally followed by "
    ".max (the default), .min, .avg or .pNN";

struct MetricInfo {
  Threshold::Metric metric;
  std::vector<std::string_view> tags;
};

std::optional<MetricInfo> metric_info(std::string_view base) {
  using M = Threshold::Metric;
  if (base == "latency") return MetricInfo{M::kLatency, {"step"}};
  if (base == "checks") return MetricInfo{M::kCheckPassRate, {"check"}};
  if (base == "error_rate") return MetricInfo{M::kErrorRate, {"step"}};
  if (base == "requests") return MetricInfo{M::kRequests, {"step"}};
  if (base == "rps") return MetricInfo{M::kRps, {"step"}};
  if (base == "iterations") return MetricInfo{M::kIterations, {"flow"}};
  if (base == "dropped_iterations") return MetricInfo{M::kDroppedIterations, {}};
  return std::nullopt;
}

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

class ThresholdParser {
 public:
  explicit ThresholdParser(std::string_view text) : text_(text) {}

  std::optional<Threshold> parse(std::string* error, size_t* offset) {
    error_ = error;
    offset_ = offset;
    size_t begin = 0;
    size_t end = text_.size();
    while (begin < end && is_blank(text_[begin]))
      ++begin;
    while (end > begin && is_blank(text_[end - 1]))
      --end;
    threshold_.text = std::string(text_.substr(begin, end - begin));
    if (begin == end) {
      return failed(0, "the threshold is empty; expected e.g. \"latency.p99 < 200ms\"");
    }
    at_ = begin;
    end_ = end;
    if (!parse_metric() || (threshold_.metric != Threshold::Metric::kTarget && !parse_tag()) ||
        !parse_operator() || !parse_value()) {
      return std::nullopt;
    }
    return std::move(threshold_);
  }

 private:
  std::nullopt_t failed(size_t at, std::string message) {
    *error_ = std::move(message);
    *offset_ = at;
    return std::nullopt;
  }

  bool fail(size_t at, std::string message) {
    failed(at, std::move(message));
    return false;
  }

  void skip_spaces() {
    while (at_ < end_ && is_blank(text_[at_]))
      ++at_;
  }

  bool parse_metric() {
    const size_t start = at_;
    while (at_ < end_ && !is_blank(text_[at_]) &&
           std::string_view("{<>=!").find(text_[at_]) == std::string_view::npos) {
      ++at_;
    }
    const std::string_view token = text_.substr(start, at_ - start);
    const size_t dot = token.find('.');
    const std::string_view base = token.substr(0, dot);
    if (base == "target") {
      at_ = start;
      return parse_target();
    }
    const std::optional<MetricInfo> info = metric_info(base);
    if (!info) {
      std::string hint;
      if (base.starts_with("http_req_duration") || base == "duration") {
        hint = " (did you mean \"latency\"?)";
      } else if (auto best = yaml::closest(base, kMetrics)) {
        hint = fmt::format(" (did you mean \"{}\"?)", *best);
      }
      failed(start,
             fmt::format("unknown metric {}{}; {}",
                         shown(token.empty() ? text_.substr(start, 1) : token), hint, kMetricHint));
      return false;
    }
    threshold_.metric = info->metric;
    tags_ = info->tags;
    base_ = base;
    if (info->metric != Threshold::Metric::kLatency) {
      if (dot != std::string_view::npos) {
        failed(start + dot, fmt::format("{} has no statistic {}; expected {} alone, e.g. {}", base,
                                        shown(token.substr(dot)), base, example()));
        return false;
      }
      return true;
    }
    if (dot == std::string_view::npos) {
      failed(start + token.size(),
             "latency needs a statistic; expected latency.p99, latency.p95, "
             "latency.min, latency.max or latency.mean");
      return false;
    }
    return parse_statistic(token.substr(dot + 1), start + dot + 1);
  }

  // target.SELECTOR[.STAT]: the selector runs to the comparison, and may
  // hold a series' labels in braces (with quoted values holding anything).
  bool parse_target() {
    const size_t start = at_;
    constexpr std::string_view kPrefix = "target.";
    if (text_.substr(start, kPrefix.size()) != kPrefix) {
      return fail(start + std::min(text_.size() - start, std::string_view("target").size()),
                  fmt::format("target needs a series; {}", kTargetHint));
    }
    const size_t from = start + kPrefix.size();
    size_t i = from;
    int depth = 0;
    bool quoted = false;
    // Dots outside braces split the selector; remembered as offsets in text_.
    std::vector<size_t> dots;
    for (; i < end_; ++i) {
      const char c = text_[i];
      if (quoted) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          quoted = false;
        }
        continue;
      }
      if (depth > 0 && c == '"') {
        quoted = true;
      } else if (c == '{') {
        ++depth;
      } else if (c == '}') {
        if (depth == 0) break;
        --depth;
      } else if (depth == 0 &&
                 (is_blank(c) || std::string_view("<>=!").find(c) != std::string_view::npos)) {
        break;
      } else if (depth == 0 && c == '.') {
        dots.push_back(i);
      }
    }
    if (quoted || depth > 0) {
      return fail(from,
                  "the series' labels are not closed; expected e.g. "
                  "target.api.http_requests_total{code=\"500\"}");
    }
    at_ = i;
    size_t sel_end = i;
    Threshold::TargetSeries& target = threshold_.target;
    threshold_.metric = Threshold::Metric::kTarget;
    // A last component that is a statistic is the aggregation.
    if (!dots.empty()) {
      const size_t dot = dots.back();
      const std::string_view last = text_.substr(dot + 1, sel_end - dot - 1);
      std::optional<Threshold::TargetSeries::Aggregate> aggregate;
      using A = Threshold::TargetSeries::Aggregate;
      if (last == "max") aggregate = A::kMax;
      if (last == "min") aggregate = A::kMin;
      if (last == "avg" || last == "mean") aggregate = A::kAvg;
      if (last.size() > 1 && last[0] == 'p' &&
          last.find_first_not_of("0123456789.", 1) == std::string_view::npos) {
        const std::optional<double> p = yaml::parse_double(last.substr(1));
        if (!p || *p <= 0 || *p > 100) {
          return fail(dot + 1, fmt::format("percentile {} is out of range; expected p followed "
                                           "by a number above 0 and at most 100, such as p95",
                                           shown(last)));
        }
        aggregate = A::kPercentile;
        target.percentile = *p;
      }
      if (aggregate) {
        target.aggregate = *aggregate;
        sel_end = dot;
        dots.pop_back();
      }
    }
    const std::string_view selector = text_.substr(from, sel_end - from);
    using K = Threshold::TargetSeries::Kind;
    struct Alias {
      std::string_view name;
      K kind;
    };
    constexpr Alias kAliases[] = {{"network.rx", K::kNetworkRx},
                                  {"network.tx", K::kNetworkTx},
                                  {"cpu", K::kCpu},
                                  {"memory", K::kMemory}};
    for (const Alias& alias : kAliases) {
      if (selector == alias.name) {
        target.kind = alias.kind;
        return true;
      }
      if (selector.size() > alias.name.size() + 1 && selector.ends_with(alias.name) &&
          selector[selector.size() - alias.name.size() - 1] == '.') {
        target.kind = alias.kind;
        target.monitor = std::string(selector.substr(0, selector.size() - alias.name.size() - 1));
        return true;
      }
    }
    if (selector.empty() || selector == "network" || selector.ends_with(".network")) {
      return fail(from + selector.size(),
                  fmt::format("target series {} is incomplete; {}", shown(selector), kTargetHint));
    }
    if (dots.empty()) {
      std::string hint;
      constexpr std::string_view kNames[] = {"cpu", "memory", "network.rx", "network.tx"};
      if (auto best = yaml::closest(selector, kNames)) {
        hint = fmt::format(" (did you mean \"target.{}\"?)", *best);
      }
      return fail(
          from, fmt::format("unknown target series {}{}; {}", shown(selector), hint, kTargetHint));
    }
    const size_t split = dots.back();
    target.kind = K::kSelected;
    target.monitor = std::string(text_.substr(from, split - from));
    target.series = std::string(text_.substr(split + 1, sel_end - split - 1));
    const std::string_view metric =
        std::string_view(target.series)
            .substr(0, std::min(target.series.size(), target.series.find('{')));
    const bool valid_name =
        !metric.empty() && !std::isdigit(static_cast<unsigned char>(metric[0])) &&
        metric.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") ==
            std::string_view::npos;
    if (!valid_name || (metric.size() < target.series.size() && !target.series.ends_with('}'))) {
      return fail(split + 1, fmt::format("{} is not a Prometheus series; expected a metric name "
                                         "([a-zA-Z_:][a-zA-Z0-9_:]*), optionally with its labels "
                                         "as the summary shows them, e.g. "
                                         "http_requests_total{{code=\"500\"}}",
                                         shown(target.series)));
    }
    if (target.monitor.empty()) {
      return fail(from, fmt::format("the monitor's name is empty; {}", kTargetHint));
    }
    return true;
  }

  bool parse_statistic(std::string_view stat, size_t at) {
    using S = Threshold::Statistic;
    if (stat == "min") {
      threshold_.statistic = S::kMin;
      return true;
    }
    if (stat == "max") {
      threshold_.statistic = S::kMax;
      return true;
    }
    if (stat == "mean") {
      threshold_.statistic = S::kMean;
      return true;
    }
    std::string hint;
    if (stat == "avg" || stat == "average") {
      hint = " (did you mean \"mean\"?)";
    } else if (stat == "med" || stat == "median") {
      hint = " (did you mean \"p50\"?)";
    } else if (stat.starts_with("p(") && stat.ends_with(")")) {
      hint = fmt::format(" (did you mean \"p{}\"?)", stat.substr(2, stat.size() - 3));
    } else if (stat.size() > 1 && (stat[0] == 'p' || stat[0] == 'P')) {
      const std::optional<double> p = yaml::parse_double(stat.substr(1));
      if (p && *p > 0 && *p <= 100 && stat[0] == 'p') {
        threshold_.statistic = S::kPercentile;
        threshold_.percentile = *p;
        return true;
      }
      if (p) {
        failed(at, fmt::format("percentile {} is out of range; expected p followed by a number "
                               "above 0 and at most 100, such as p99 or p99.9",
                               shown(stat)));
        return false;
      }
    }
    failed(at, fmt::format("unknown latency statistic {}{}; expected p50, p90, p95, p99, p99.9 "
                           "(any pNN), min, max or mean",
                           shown(stat), hint));
    return false;
  }

  std::string example() const {
    switch (threshold_.metric) {
      case Threshold::Metric::kCheckPassRate:
        return "checks > 99%";
      case Threshold::Metric::kErrorRate:
        return "error_rate < 1%";
      case Threshold::Metric::kRps:
        return "rps > 50";
      case Threshold::Metric::kDroppedIterations:
        return "dropped_iterations < 1";
      case Threshold::Metric::kIterations:
        return "iterations > 100";
      case Threshold::Metric::kRequests:
        return "requests > 100";
      case Threshold::Metric::kTarget:
        switch (threshold_.target.kind) {
          case Threshold::TargetSeries::Kind::kCpu:
            return "target.cpu < 80%";
          case Threshold::TargetSeries::Kind::kMemory:
            return "target.memory < 2GiB";
          case Threshold::TargetSeries::Kind::kNetworkRx:
          case Threshold::TargetSeries::Kind::kNetworkTx:
            return "target.network.rx < 100MB/s";
          case Threshold::TargetSeries::Kind::kSelected:
            return "target.api.db_pool_in_use.max < 50";
        }
        break;
      case Threshold::Metric::kLatency:
        break;
    }
    return "latency.p99 < 200ms";
  }

  bool parse_tag() {
    skip_spaces();
    if (at_ >= end_ || text_[at_] != '{') {
      return true;
    }
    const size_t open = at_;
    // The filter ends at the '}' that a comparison follows, so a name may
    // itself contain braces ("GET /items/{{ id }}").
    size_t close = std::string_view::npos;
    for (size_t i = text_.find('}', open); i < end_; i = text_.find('}', i + 1)) {
      size_t next = i + 1;
      while (next < end_ && is_blank(text_[next]))
        ++next;
      if (next == end_ || std::string_view("<>=!").find(text_[next]) != std::string_view::npos) {
        close = i;
        break;
      }
    }
    if (close == std::string_view::npos) {
      failed(open, "the tag filter is not closed; expected {name=value}, e.g. {step=login}");
      return false;
    }
    const std::string_view inside = text_.substr(open + 1, close - open - 1);
    const size_t equals = inside.find('=');
    if (equals == std::string_view::npos) {
      failed(open + 1, fmt::format("tag filter {} has no '='; expected {{name=value}}, e.g. "
                                   "{{step=login}}",
                                   shown(inside)));
      return false;
    }
    const std::string_view key = yaml::trim(inside.substr(0, equals));
    const std::string_view value = yaml::trim(inside.substr(equals + 1));
    if (std::find(tags_.begin(), tags_.end(), key) == tags_.end()) {
      const std::string allowed = tags_.empty()
                                      ? std::string("no tag filter")
                                      : fmt::format("one of: {}", yaml::join(yaml::Keys(tags_)));
      failed(open + 1,
             fmt::format("{} cannot be filtered by {}; expected {}", base_, shown(key), allowed));
      return false;
    }
    if (value.empty()) {
      failed(open + 1 + equals + 1,
             fmt::format("tag {} has no value; expected a name, e.g. {{{}=...}}", key, key));
      return false;
    }
    std::string& slot = key == "step"   ? threshold_.step
                        : key == "flow" ? threshold_.flow
                                        : threshold_.check;
    slot = std::string(value);
    at_ = close + 1;
    return true;
  }

  bool parse_operator() {
    skip_spaces();
    const size_t start = at_;
    using O = Threshold::Op;
    auto take = [&](std::string_view op) {
      if (text_.substr(at_, op.size()) == op) {
        at_ += op.size();
        return true;
      }
      return false;
    };
    if (take("<=")) {
      threshold_.op = O::kLe;
    } else if (take(">=")) {
      threshold_.op = O::kGe;
    } else if (take("==")) {
      threshold_.op = O::kEq;
    } else if (take("<")) {
      threshold_.op = O::kLt;
    } else if (take(">")) {
      threshold_.op = O::kGt;
    } else if (take("=")) {
      failed(start, "'=' is not a comparison; expected ==, <, <=, > or >=");
      return false;
    } else {
      failed(start, fmt::format("{} where a comparison belongs; expected <, <=, >, >= or ==, e.g. "
                                "{}",
                                at_ < end_ ? shown(text_.substr(at_, 1)) : "the end", example()));
      return false;
    }
    return true;
  }

  bool parse_value() {
    skip_spaces();
    const size_t start = at_;
    const std::string_view raw = text_.substr(at_, end_ - at_);
    if (raw.empty()) {
      failed(start, fmt::format("no value after the comparison; expected e.g. {}", example()));
      return false;
    }
    using M = Threshold::Metric;
    switch (threshold_.metric) {
      case M::kLatency:
        return parse_latency_value(raw, start);
      case M::kCheckPassRate:
      case M::kErrorRate:
        return parse_rate_value(raw, start);
      case M::kRps: {
        std::string_view number = raw;
        if (number.ends_with("/s")) {
          number = yaml::trim(number.substr(0, number.size() - 2));
        }
        const std::optional<double> value = yaml::parse_double(number);
        if (!value || *value < 0) {
          failed(start, fmt::format("{} is not a rate; expected requests per second, such as 50",
                                    shown(raw)));
          return false;
        }
        threshold_.value = *value;
        return true;
      }
      case M::kTarget:
        return parse_target_value(raw, start);
      case M::kRequests:
      case M::kIterations:
      case M::kDroppedIterations: {
        const std::optional<double> value = yaml::parse_double(raw);
        if (!value || *value < 0 || *value != std::floor(*value)) {
          failed(start, fmt::format("{} is not a count; expected a whole number, e.g. {}",
                                    shown(raw), example()));
          return false;
        }
        threshold_.value = *value;
        return true;
      }
    }
    return false;
  }

  bool parse_latency_value(std::string_view raw, size_t start) {
    const size_t unit_at = std::min(raw.size(), raw.find_first_not_of("0123456789.+-"));
    const std::optional<double> number = yaml::parse_double(raw.substr(0, unit_at));
    const std::string_view unit = yaml::trim(raw.substr(unit_at));
    if (!number || *number < 0) {
      failed(start, fmt::format("{} is not a duration; expected a number and a unit, such as "
                                "200ms, 1.5s or 500us",
                                shown(raw)));
      return false;
    }
    double scale = 0;
    if (unit == "us" || unit == "\xc2\xb5s") {
      scale = 1;
    } else if (unit == "ms") {
      scale = 1e3;
    } else if (unit == "s") {
      scale = 1e6;
    } else if (unit.empty()) {
      // k6 takes milliseconds here silently; a wrong guess would make the gate meaningless.
      failed(start, fmt::format("latency {} has no unit; expected a number and a unit, such as "
                                "{}ms",
                                shown(raw), raw));
      return false;
    } else {
      failed(start + unit_at, fmt::format("unknown unit {}; expected us, ms or s", shown(unit)));
      return false;
    }
    threshold_.value = *number * scale;
    return true;
  }

  // In the series' unit: percent for CPU, bytes (and bytes/s) with an
  // optional SI or IEC unit for memory and network, a plain number otherwise.
  bool parse_target_value(std::string_view raw, size_t start) {
    using K = Threshold::TargetSeries::Kind;
    const K kind = threshold_.target.kind;
    if (kind == K::kCpu) {
      std::string_view number = raw;
      if (number.ends_with('%')) number = yaml::trim(number.substr(0, number.size() - 1));
      const std::optional<double> value = yaml::parse_double(number);
      if (!value || *value < 0 || *value > 100) {
        failed(start, fmt::format("{} is not a CPU share; expected a percentage from 0% to 100%, "
                                  "such as 80%",
                                  shown(raw)));
        return false;
      }
      threshold_.value = *value;
      return true;
    }
    if (kind == K::kSelected) {
      const std::optional<double> value = yaml::parse_double(raw);
      if (!value || !std::isfinite(*value)) {
        failed(start, fmt::format("{} is not a number; expected the series' value as the summary "
                                  "shows it (counters as rates per second), e.g. {}",
                                  shown(raw), example()));
        return false;
      }
      threshold_.value = *value;
      return true;
    }
    const bool network = kind != K::kMemory;
    std::string_view text = raw;
    if (network && text.ends_with("/s")) text = yaml::trim(text.substr(0, text.size() - 2));
    const size_t unit_at = std::min(text.size(), text.find_first_not_of("0123456789.+-eE"));
    const std::optional<double> number = yaml::parse_double(text.substr(0, unit_at));
    const std::string_view unit = yaml::trim(text.substr(unit_at));
    struct Unit {
      std::string_view name;
      double scale;
    };
    constexpr Unit kUnits[] = {{"", 1},
                               {"B", 1},
                               {"kB", 1e3},
                               {"KB", 1e3},
                               {"MB", 1e6},
                               {"GB", 1e9},
                               {"TB", 1e12},
                               {"KiB", 1024.0},
                               {"MiB", 1048576.0},
                               {"GiB", 1073741824.0},
                               {"TiB", 1099511627776.0}};
    const Unit* found = nullptr;
    for (const Unit& u : kUnits) {
      if (u.name == unit) found = &u;
    }
    if (!number || *number < 0 || found == nullptr) {
      failed(start, fmt::format("{} is not {}; expected a number with an optional unit (B, kB, MB, "
                                "GB, TB, KiB, MiB, GiB, TiB), such as {}",
                                shown(raw), network ? "a rate in bytes per second" : "a size",
                                network ? "100MB/s" : "2GiB"));
      return false;
    }
    threshold_.value = *number * found->scale;
    return true;
  }

  bool parse_rate_value(std::string_view raw, size_t start) {
    std::string_view number = raw;
    const bool percent = number.ends_with('%');
    if (percent) {
      number = yaml::trim(number.substr(0, number.size() - 1));
    }
    const std::optional<double> value = yaml::parse_double(number);
    const double limit = percent ? 100 : 1;
    if (!value || *value < 0 || *value > limit) {
      failed(start, fmt::format("{} is not a rate; expected a percentage such as 99.9% or a "
                                "fraction from 0 to 1 such as 0.999",
                                shown(raw)));
      return false;
    }
    threshold_.value = percent ? *value / 100 : *value;
    return true;
  }

  std::string_view text_;
  size_t at_ = 0;
  size_t end_ = 0;
  std::string* error_ = nullptr;
  size_t* offset_ = nullptr;
  Threshold threshold_;
  std::vector<std::string_view> tags_;
  std::string_view base_;
};

}  // namespace

std::optional<Threshold> parse_threshold(std::string_view text, std::string* error,
                                         size_t* error_offset) {
  return ThresholdParser(text).parse(error, error_offset);
}

std::vector<size_t> resolve_suffix(std::string_view wanted,
                                   const std::vector<std::vector<std::string>>& names) {
  std::vector<size_t> full;
  std::vector<size_t> suffix;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::vector<std::string>& parts = names[i];
    std::string tail;
    for (size_t k = parts.size(); k-- > 0;) {
      tail = k + 1 == parts.size() ? parts[k] : parts[k] + "/" + tail;
      if (tail == wanted) {
        (k == 0 ? full : suffix).push_back(i);
        break;
      }
    }
  }
  return full.empty() ? suffix : full;
}

}  // namespace millstone::scenario
