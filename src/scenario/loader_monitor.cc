// monitor: -> Plan::monitors: Prometheus text endpoints the coordinator
// scrapes during the run (docs/monitoring.md). Checked here: the URL, the
// patterns (RE2 must accept them), the interval, distinct names. Whether the
// endpoint answers is the run's business: a dead one is a warning there.
#include <algorithm>

#include <fmt/format.h>
#include <re2/re2.h>

#include "config/yaml_text.h"
#include "http/url.h"
#include "scenario/loader_context.h"

namespace millstone::scenario::detail {

namespace {

using yaml::Field;
using yaml::MapFields;
using yaml::shown;

constexpr size_t kMaxMonitors = 16;
constexpr size_t kMaxPatterns = 64;
constexpr int64_t kMinIntervalUs = 100'000;
constexpr int64_t kMaxIntervalUs = 3'600'000'000;
constexpr std::string_view kMonitorKeys[] = {"name", "url", "metrics", "interval"};

class MonitorCompiler {
 public:
  explicit MonitorCompiler(LoadContext& ctx) : ctx_(ctx), reader_(ctx.reader) {}

  void compile(const Field& field) {
    if (!field.value.IsSequence()) {
      reader_.fail(field.mark, fmt::format("monitor is {}; expected a list of endpoints such as "
                                           "[{{name: node, url: http://127.0.0.1:9100/metrics}}]",
                                           yaml::kind_of(field.value)));
    }
    std::vector<MonitorEndpoint>& monitors = ctx_.plan.monitors;
    for (const YAML::Node& item : field.value) {
      const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
      if (monitors.size() == kMaxMonitors) {
        reader_.fail(mark,
                     fmt::format("more than {} monitor endpoints; expected fewer", kMaxMonitors));
      }
      MonitorEndpoint endpoint = item.IsScalar() ? from_url(item, mark) : from_map(item, mark);
      const auto same = std::find_if(monitors.begin(), monitors.end(),
                                     [&](const auto& m) { return m.name == endpoint.name; });
      if (same != monitors.end()) {
        reader_.fail(mark, fmt::format("monitor name {} is used twice (first at {}); expected "
                                       "distinct names (name: sets one)",
                                       shown(endpoint.name), same->location));
      }
      monitors.push_back(std::move(endpoint));
    }
  }

 private:
  // `- http://host:9100/metrics`: the URL alone, named HOST:PORT.
  MonitorEndpoint from_url(const YAML::Node& node, const YAML::Mark& mark) {
    MonitorEndpoint endpoint;
    endpoint.location = reader_.location(mark);
    endpoint.url = reader_.scalar(node, mark, "monitor entry", "a URL or a map");
    endpoint.name = check_url(endpoint.url, mark);
    return endpoint;
  }

  MonitorEndpoint from_map(const YAML::Node& node, const YAML::Mark& mark) {
    const MapFields map = reader_.read_map(node, mark, "monitor entry", kMonitorKeys);
    MonitorEndpoint endpoint;
    endpoint.location = reader_.location(map.mark);
    const Field* url = map.find("url");
    if (url == nullptr) {
      reader_.fail(map.mark,
                   "monitor entry has no url; expected e.g. url: "
                   "http://127.0.0.1:9100/metrics (a Prometheus text endpoint)");
    }
    endpoint.url = reader_.scalar(*url, "a URL such as http://127.0.0.1:9100/metrics");
    endpoint.name = check_url(endpoint.url, url->mark);
    if (const Field* name = map.find("name")) {
      endpoint.name = reader_.scalar(*name, "a name such as node");
      if (endpoint.name.empty() || endpoint.name.size() > kMaxNameBytes) {
        reader_.fail(
            name->mark,
            fmt::format("monitor name {} is {}; expected 1 to {} bytes", shown(endpoint.name),
                        endpoint.name.empty() ? "empty" : "too long", kMaxNameBytes));
      }
    }
    if (const Field* metrics = map.find("metrics")) compile_metrics(*metrics, &endpoint);
    if (const Field* interval = map.find("interval")) {
      endpoint.interval_us = reader_.duration_us(*interval);
      if (endpoint.interval_us < kMinIntervalUs || endpoint.interval_us > kMaxIntervalUs) {
        reader_.fail(interval->mark, "monitor interval is out of range; expected 100ms to 1h");
      }
    }
    return endpoint;
  }

  // The endpoint's default name, HOST:PORT, or a failure at `mark`.
  std::string check_url(const std::string& text, const YAML::Mark& mark) {
    std::string error;
    const std::optional<http::Url> url = http::parse_url(text, &error);
    if (!url) {
      reader_.fail(mark, fmt::format("monitor url {}: {}; expected e.g. "
                                     "http://127.0.0.1:9100/metrics",
                                     shown(text), error));
    }
    return url->ipv6_literal ? fmt::format("[{}]:{}", url->host, url->port)
                             : fmt::format("{}:{}", url->host, url->port);
  }

  void compile_metrics(const Field& field, MonitorEndpoint* endpoint) {
    std::vector<std::pair<std::string, YAML::Mark>> patterns;
    if (field.value.IsScalar()) {
      patterns.emplace_back(reader_.scalar(field, "a regular expression"), field.mark);
    } else if (field.value.IsSequence()) {
      for (const YAML::Node& item : field.value) {
        const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
        if (patterns.size() == kMaxPatterns) {
          reader_.fail(mark, fmt::format("more than {} metrics patterns; expected fewer (one "
                                         "pattern can match many names: 'http_.*')",
                                         kMaxPatterns));
        }
        patterns.emplace_back(reader_.scalar(item, mark, "metrics entry", "a regular expression"),
                              mark);
      }
    } else {
      reader_.fail(field.mark, fmt::format("metrics is {}; expected a list of metric names or "
                                           "regular expressions such as [process_cpu_seconds_"
                                           "total, 'http_.*']",
                                           yaml::kind_of(field.value)));
    }
    for (auto& [pattern, mark] : patterns) {
      RE2::Options options;
      options.set_log_errors(false);
      const RE2 probe(pattern, options);
      if (pattern.empty() || !probe.ok()) {
        reader_.fail(mark,
                     fmt::format("metrics pattern {} {}; expected an RE2 regular "
                                 "expression matching whole metric names",
                                 shown(pattern),
                                 pattern.empty() ? "is empty" : "is not valid: " + probe.error()));
      }
      endpoint->metrics.push_back(std::move(pattern));
    }
  }

  LoadContext& ctx_;
  yaml::Reader& reader_;
};

}  // namespace

void compile_monitors(LoadContext& ctx, const Field& field) {
  MonitorCompiler(ctx).compile(field);
}

}  // namespace millstone::scenario::detail
