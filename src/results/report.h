#pragma once
// The HTML report (`--report FILE`, `millstone report RUN`), and the HTML
// comparison (`millstone compare --report FILE`): one self-contained file that works
// offline. Charts use uPlot, embedded at build time from the npm registry
// (report/package.json); the run's data is embedded as JSON.
#include <string>

#include "results/compare.h"
#include "results/record.h"

namespace millstone::results {

std::string html_report(const RunRecord& record);
// Throws ResultsError naming the file when it cannot be written.
void write_html_report(const RunRecord& record, const std::string& path);

// `millstone compare --report`: the comparison (verdicts, load differences)
// and both runs' series overlaid, in the same self-contained page.
std::string html_comparison(const Comparison& comparison, const RunRecord& run,
                            const RunRecord& baseline);
void write_html_comparison(const Comparison& comparison, const RunRecord& run,
                           const RunRecord& baseline, const std::string& path);

}  // namespace millstone::results
