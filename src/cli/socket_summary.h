#pragma once
// The "sockets" part of a scenario summary: WebSocket and TCP figures of runs
// whose flows have socket steps (nothing otherwise).
#include <string>

#include <nlohmann/json.hpp>

#include "metrics/snapshot.h"
#include "scenario/plan.h"

namespace millstone::cli {

// Text lines for the summary; "" when the run had no socket steps.
std::string format_socket_summary(const scenario::Plan& plan, const metrics::Snapshot& total);
// summary["sockets"], only when the run had socket steps (docs/summary-json.md).
void add_socket_json(const scenario::Plan& plan, const metrics::Snapshot& total,
                     nlohmann::json* summary);

}  // namespace millstone::cli
