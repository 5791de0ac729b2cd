#include "scenario/delivery_stamp.h"

#include <cmath>
#include <cstdlib>

#include "metrics/histogram.h"

namespace millstone::scenario {

std::optional<uint64_t> delivery_latency_us(const JsonEvaluator::Value& stamp, int64_t now_us) {
  double sent = stamp.number;
  if (stamp.type == JsonEvaluator::Value::Type::kString) {
    char* end = nullptr;
    sent = std::strtod(stamp.text.c_str(), &end);
    if (stamp.text.empty() || end != stamp.text.c_str() + stamp.text.size()) return std::nullopt;
  } else if (stamp.type != JsonEvaluator::Value::Type::kNumber) {
    return std::nullopt;
  }
  // 1e17 us is the year 5138: beyond it the conversion below would overflow.
  if (!std::isfinite(sent) || sent <= 0 || sent >= 1e17) return std::nullopt;
  const int64_t sent_us =
      sent >= 1e14 ? static_cast<int64_t>(sent) : static_cast<int64_t>(sent * 1000);
  if (sent_us > now_us) return std::nullopt;
  const uint64_t latency_us = static_cast<uint64_t>(now_us - sent_us);
  if (latency_us > metrics::Histogram::kMaxValue) return std::nullopt;
  return latency_us;
}

}  // namespace millstone::scenario
