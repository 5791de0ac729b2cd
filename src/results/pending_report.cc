// TEMPORARY placeholder so the tree links while this writer is built in
// parallel; deleted by whoever implements it.
#include "results/junit.h"
#include "results/report.h"
#include "results/timeseries.h"
namespace millstone::results {
std::string html_report(const RunRecord&) {
  throw ResultsError("pending");
}
void write_html_report(const RunRecord&, const std::string&) {
  throw ResultsError("pending");
}
std::string junit_xml(const RunRecord&) {
  throw ResultsError("pending");
}
void write_junit(const RunRecord&, const std::string&) {
  throw ResultsError("pending");
}
bool series_format_for(const std::string& path, SeriesFormat* f) {
  *f = SeriesFormat::kCsv;
  return true;
}
std::string timeseries_text(const RunRecord&, SeriesFormat) {
  throw ResultsError("pending");
}
void write_timeseries(const RunRecord&, const std::string&) {
  throw ResultsError("pending");
}
}  // namespace millstone::results
