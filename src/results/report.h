#pragma once
// The HTML report (`--report FILE`): one self-contained file that works
// offline. Charts use uPlot, embedded at build time from the npm registry
// (report/package.json); the run's data is embedded as JSON.
#include <string>

#include "results/record.h"

namespace millstone::results {

std::string html_report(const RunRecord& record);
// Throws ResultsError naming the file when it cannot be written.
void write_html_report(const RunRecord& record, const std::string& path);

}  // namespace millstone::results
