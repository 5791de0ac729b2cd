#pragma once
// What `millstone run` and `millstone grpc` share once a quick-mode plan is
// built (src/cli/run_command.cc): the output checks, TLS options, and the run
// itself (resolve, pre-flight, workers, summary, outputs, history).
#include "cli/commands.h"
#include "cli/summary.h"
#include "engine/run_plan.h"
#include "http/url.h"

namespace millstone::cli {

// --out, --report, --junit, --timeseries and --metrics-listen can be used; false after one line.
bool check_run_outputs(const RunOptions& options);
// https: the plan's TLS options (files read, context checked). 0 or the exit code.
int prepare_run_tls(const RunOptions& options, const http::Url& url, engine::RunPlan* plan);
// Runs a URL plan (not a scenario) and reports; returns the exit code.
int execute_run(const RunOptions& options, engine::RunPlan plan, const http::Url& url,
                RunDescription description);

}  // namespace millstone::cli
