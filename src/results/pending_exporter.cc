// TEMPORARY placeholder so the tree links while this writer is built in
// parallel; deleted by whoever implements it.
#include "results/metrics_exporter.h"
#include "results/webhook.h"
namespace millstone::results {
nlohmann::json webhook_payload(const RunRecord&) {
  return {};
}
bool post_webhook(const std::string&, const RunRecord&, std::string* error) {
  *error = "pending";
  return false;
}
MetricsExporter::~MetricsExporter() = default;
std::unique_ptr<MetricsExporter> MetricsExporter::start(const std::string&, ExporterLabels,
                                                        std::string* error) {
  *error = "pending";
  return nullptr;
}
}  // namespace millstone::results
