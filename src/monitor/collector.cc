#include "monitor/collector.h"

#include <curl/curl.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

namespace millstone::monitor {

namespace {

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Body {
  std::string bytes;
  size_t limit = 0;
  bool over = false;
};

size_t collect(char* data, size_t size, size_t count, void* user) {
  Body* body = static_cast<Body*>(user);
  const size_t n = size * count;
  if (body->bytes.size() + n > body->limit) {
    body->over = true;
    return 0;  // curl stops with CURLE_WRITE_ERROR
  }
  body->bytes.append(data, n);
  return n;
}

}  // namespace

bool scrape_once(const std::string& url, int64_t timeout_ms, size_t max_body_bytes,
                 Exposition* exposition, std::string* error) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    *error = "cannot start libcurl";
    return false;
  }
  CURL* c = curl.get();
  std::unique_ptr<curl_slist, CurlDeleter> headers(
      curl_slist_append(nullptr, "Accept: text/plain;version=0.0.4"));
  Body body;
  body.limit = max_body_bytes;
  char curl_error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, timeout_ms)));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip is counted after decoding
  curl_easy_setopt(c, CURLOPT_USERAGENT, "millstone-monitor/" MILLSTONE_VERSION);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
  const CURLcode rc = curl_easy_perform(c);
  if (body.over) {
    *error = fmt::format("the body is over {} bytes", max_body_bytes);
    return false;
  }
  if (rc != CURLE_OK) {
    *error = curl_error[0] ? curl_error : curl_easy_strerror(rc);
    return false;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    *error = fmt::format("HTTP status {}; expected 200", status);
    return false;
  }
  ParseError parse_error;
  if (!parse_text(body.bytes, exposition, &parse_error)) {
    *error = fmt::format("not the Prometheus text format: line {}: {}", parse_error.line,
                         parse_error.message);
    return false;
  }
  return true;
}

struct Collector::Worker {
  explicit Worker(Target t) : target(t), builder(std::move(t)) {}
  Target target;
  std::mutex mutex;  // guards builder and stop
  std::condition_variable wake;
  bool stop = false;
  SeriesBuilder builder;
  std::thread thread;

  void run(int64_t start_ns, int64_t end_ns, const CollectorOptions& options) {
    const int64_t interval_ns = std::max<int64_t>(1, target.interval_ms) * 1'000'000;
    const int64_t timeout_ms =
        std::clamp<int64_t>(target.interval_ms * 9 / 10, 1, options.max_scrape_ms);
    for (int64_t k = 0;; ++k) {
      const int64_t due = start_ns + k * interval_ns;
      if (due > end_ns) return;
      {
        std::unique_lock<std::mutex> lock(mutex);
        // steady_clock is CLOCK_MONOTONIC here, the run's clock.
        const auto deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(due));
        wake.wait_until(lock, deadline, [&] { return stop; });
        // Stopped: the scrapes due by now still happen (the one at the
        // run's end closes its last second), later ones do not.
        if (stop && monotonic_ns() < due) return;
      }
      const int64_t began = monotonic_ns();
      Exposition exposition;
      std::string error;
      const bool ok =
          scrape_once(target.url, timeout_ms, options.max_body_bytes, &exposition, &error);
      std::lock_guard<std::mutex> lock(mutex);
      if (ok) {
        builder.add(static_cast<double>(began - start_ns) / 1e9, exposition);
      } else {
        builder.add_failure(error);
      }
      // A scrape that overran its interval skips the dues it missed.
      const int64_t now = monotonic_ns();
      if (now > start_ns + (k + 1) * interval_ns) k = (now - start_ns) / interval_ns;
    }
  }
};

Collector::Collector(std::vector<Target> targets, CollectorOptions options) : options_(options) {
  for (Target& t : targets)
    workers_.push_back(std::make_unique<Worker>(std::move(t)));
}

Collector::~Collector() {
  finish();
}

void Collector::start(int64_t start_ns, int64_t end_ns) {
  for (auto& w : workers_) {
    if (w->thread.joinable()) continue;
    Worker* worker = w.get();
    worker->thread =
        std::thread([worker, start_ns, end_ns, this] { worker->run(start_ns, end_ns, options_); });
  }
}

MonitorResult Collector::finish() {
  MonitorResult result;
  for (auto& w : workers_) {
    {
      std::lock_guard<std::mutex> lock(w->mutex);
      w->stop = true;
    }
    w->wake.notify_all();
    if (w->thread.joinable()) w->thread.join();
    result.targets.push_back(w->builder.outcome());
    for (Series& s : w->builder.series())
      result.series.push_back(std::move(s));
  }
  return result;
}

}  // namespace millstone::monitor
