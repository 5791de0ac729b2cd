// Fuzzes the Prometheus text parser (monitor/prom_text.h): whatever it
// accepts must stay within its limits and round-trip: each sample written
// back as `series_key value` parses to the same key and value. Accepted
// expositions also go through the series builder, as a scrape's would.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "monitor/prom_text.h"
#include "monitor/series.h"

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "prom_text_fuzz: %s\n", what);
  std::abort();
}

using namespace millstone::monitor;

std::string value_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{:.17g}", v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  ParseLimits limits;
  limits.max_samples = 1000;
  Exposition e;
  ParseError error;
  if (!parse_text(text, &e, &error, limits)) {
    if (error.message.empty() || error.line == 0) die("rejected without a line and a message");
    return 0;
  }
  if (e.samples.size() > limits.max_samples) die("more samples than the limit");
  std::string again;
  for (const Sample& s : e.samples) {
    if (s.labels.size() > limits.max_labels) die("more labels than the limit");
    again += series_key(s) + " " + value_text(s.value) + "\n";
  }
  Exposition back;
  if (!parse_text(again, &back, &error, limits)) die("written samples do not parse back");
  if (back.samples.size() != e.samples.size()) die("sample count changed");
  for (size_t i = 0; i < e.samples.size(); ++i) {
    const double a = e.samples[i].value;
    const double b = back.samples[i].value;
    if (series_key(back.samples[i]) != series_key(e.samples[i])) die("series key changed");
    if (!(a == b || (std::isnan(a) && std::isnan(b)))) die("value changed");
  }
  SeriesBuilder builder(Target{"fuzz", "http://127.0.0.1/metrics", {".*"}, 1000, ""});
  builder.add(0, e);
  builder.add(1, e);
  (void)builder.series();
  return 0;
}
