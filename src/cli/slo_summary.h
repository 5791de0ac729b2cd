#pragma once
// The SLO parts of a scenario run (docs/scenarios.md#slos-and-phases): the
// table of objectives by phase, time to recover per fault, the `slo` object of
// the JSON summary, and the progress sink that runs the abort guards live.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cluster/coordinator.h"
#include "net/stop_request.h"
#include "scenario/slo.h"
#include "scenario/slo_guard.h"

namespace millstone::cli {

// Feeds each whole second to the guards; the first trip requests the stop.
class GuardProgress final : public cluster::ProgressSink {
 public:
  GuardProgress(const scenario::Plan& plan, net::StopRequest* stop) : monitor_(plan), stop_(stop) {}
  void on_second(uint64_t index, const metrics::Snapshot& second,
                 const metrics::Snapshot& total) override;
  const std::optional<scenario::GuardTrip>& trip() const { return monitor_.trip(); }

 private:
  scenario::GuardMonitor monitor_;
  net::StopRequest* stop_;
};

std::string format_slo_summary(const scenario::SloJudgment& judgment,
                               const std::optional<scenario::GuardTrip>& trip);
// Sets summary["slo"] (docs/summary-json.md#slo).
void add_slo_json(const scenario::SloJudgment& judgment,
                  const std::optional<scenario::GuardTrip>& trip, nlohmann::json* summary);

}  // namespace millstone::cli
