#pragma once
// `--timeseries FILE`: the per-second series of a run, for people who plot it
// themselves. FILE ending in .csv gives CSV with a header row; .ndjson or
// .jsonl gives one JSON object per line. Columns: docs/summary-json.md.
#include <string>

#include "results/record.h"

namespace millstone::results {

enum class SeriesFormat { kCsv, kNdjson };
// From the file name; nullopt-like false when the extension is neither.
bool series_format_for(const std::string& path, SeriesFormat* format);
std::string timeseries_text(const RunRecord& record, SeriesFormat format);
// Throws ResultsError naming the file when it cannot be written.
void write_timeseries(const RunRecord& record, const std::string& path);

}  // namespace millstone::results
