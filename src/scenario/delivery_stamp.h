#pragma once
// `latency_from:` on a WebSocket/TCP step: the send time a pushed message
// carries, turned into its delivery latency (docs/scenarios.md).
#include <cstdint>
#include <optional>

#include "scenario/extract.h"

namespace millstone::scenario {

// The latency in microseconds of a message stamped `stamp` (a JSON number or
// numeric string: Unix time in microseconds when >= 1e14, else milliseconds)
// arriving at `now_us` (Unix time, microseconds). nullopt when the stamp
// cannot give one, so that it is counted as invalid rather than recorded as
// a made-up latency: not a number, not positive, later than now (the sender's
// clock is ahead), or older than the histogram can hold (about 19 hours).
std::optional<uint64_t> delivery_latency_us(const JsonEvaluator::Value& stamp, int64_t now_us);

}  // namespace millstone::scenario
