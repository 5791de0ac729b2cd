#pragma once
// Scrapes the run's monitored endpoints while it goes (docs/monitoring.md):
// one thread per endpoint in the coordinator, a scrape at the run's start
// and at every interval after it on the run's clock, each bounded in time
// and in body size. A dead or garbage endpoint is counted and named once in
// the result, never a failed run.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "monitor/series.h"

namespace millstone::monitor {

struct CollectorOptions {
  size_t max_body_bytes = size_t{4} << 20;  // a larger answer is a failed scrape
  // A scrape's whole time is bounded by 90% of the interval and by this.
  int64_t max_scrape_ms = 5000;
};

// One scrape, blocking and bounded: true with *body set, or false with
// *error saying why ("connection refused", "HTTP status 404", "the body is
// over 4 MiB", "line 3: ..." when it is not the text format).
bool scrape_once(const std::string& url, int64_t timeout_ms, size_t max_body_bytes,
                 Exposition* exposition, std::string* error);

class Collector {
 public:
  // Throws std::invalid_argument for a metrics pattern RE2 does not accept.
  explicit Collector(std::vector<Target> targets, CollectorOptions options = {});
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Starts scraping on CLOCK_MONOTONIC: at start_ns and every interval
  // until end_ns (the run's planned end). Once.
  void start(int64_t start_ns, int64_t end_ns);
  // Stops (a scrape under way ends within its bound), joins the threads,
  // and returns what was gathered. Once; safe without start().
  MonitorResult finish();

 private:
  struct Worker;
  std::vector<std::unique_ptr<Worker>> workers_;
  CollectorOptions options_;
};

}  // namespace millstone::monitor
