#pragma once
// A compiled scenario file: immutable once loaded, shared by every virtual
// user of a worker. Nothing here is YAML: templates, JSON paths and regexes
// are compiled; names are resolved to indexes.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/url.h"
#include "mock/randomness.h"
#include "scenario/check.h"
#include "scenario/extract.h"
#include "scenario/template.h"
#include "scenario/values.h"

namespace millstone::scenario {

struct Extraction {
  uint32_t slot = 0;  // variable set
  Extractor extractor;
  std::optional<std::string> default_value;  // used when absent; without it, absence fails the step
};

struct NamedCheck {
  uint32_t check_index = 0;  // into Plan::check_names (results are per check)
  Check check;
};

struct HttpRequest {
  std::string method = "GET";
  Template target;  // path and query, e.g. "/items/{{ id }}?page=2"
  std::vector<std::pair<std::string, Template>> headers;  // rendered per request
  Template body;                                          // empty literal = no body
  std::string content_type;  // set from json:/form: bodies unless given in headers
  std::vector<Extraction> extractions;
  std::vector<NamedCheck> checks;
  int64_t timeout_us = 0;  // 0 = the scenario default
};

// A flow compiles to a flat program; loops become jumps, groups become name prefixes.
struct Instruction {
  enum class Op : uint8_t {
    kRequest,    // send requests[arg], wait for the response, record under step `metric`
    kThink,      // pause for think_times[arg]
    kLoopBegin,  // start a loop of `count` iterations; body follows; `jump` = index after kLoopEnd
    kLoopEnd,    // count down; jump back to `jump` (first body instruction) if more remain
  };
  Op op = Op::kRequest;
  uint32_t arg = 0;
  uint32_t metric = 0;  // kRequest: index into Plan::step_names
  uint32_t count = 0;   // kLoopBegin
  uint32_t jump = 0;
};

struct Flow {
  std::string name;
  double weight = 1;
  std::vector<Instruction> program;
  std::vector<HttpRequest> requests;
  std::vector<mock::LatencyModel> think_times;
  bool abort_on_check_failure = false;  // end the iteration at the first failed check
  std::vector<uint32_t> data_sources;   // indexes into Plan::data, a row is taken per iteration
  uint32_t max_loop_depth = 0;
};

struct DataSource {
  enum class Mode { kSequential, kRandom, kUnique, kPerVu };
  std::string name;
  std::string path;  // for messages
  Mode mode = Mode::kSequential;
  std::vector<uint32_t> column_slots;          // variable slot per column ("users.email")
  std::vector<std::vector<std::string>> rows;  // rows[r][c]
};

struct Stage {
  int64_t duration_us = 0;
  double target = 0;  // VUs, or iterations per second for arrival-rate executors
};

struct Executor {
  enum class Kind {
    kConstantVus,
    kRampingVus,
    kConstantArrivalRate,
    kRampingArrivalRate,
    kIterations
  };
  Kind kind = Kind::kConstantVus;
  uint32_t vus = 1;                // constant-vus, iterations; start VUs for ramping-vus
  int64_t duration_us = 0;         // constant-*; max duration for iterations
  std::vector<Stage> stages;       // ramping-*
  double rate = 0;                 // constant-arrival-rate: iterations per second
  double start_rate = 0;           // ramping-arrival-rate
  uint32_t pre_allocated_vus = 0;  // arrival-rate: VUs created at start
  uint32_t max_vus = 0;            // arrival-rate: upper bound; beyond it iterations are dropped
  uint64_t iterations = 0;         // iterations executor: total across all workers
  int64_t graceful_stop_us = 0;    // running iterations may finish within this after the end
};

struct ScenarioRun {
  std::string name;
  Executor executor;
  std::vector<uint32_t> flows;  // indexes into Plan::flows (weights come from the flows)
  int64_t start_us = 0;  // offset from the run's start (sequential scenarios are laid out here)
  // Total length including graceful stop; computed by the loader.
  int64_t end_us() const;
};

struct Threshold {
  std::string text;      // as written, for the report
  std::string location;  // "shop.yaml:42:7"
  enum class Metric {
    kLatency,        // percentile or statistic of request latency
    kErrorRate,      // failed requests / requests (transport errors + failed checks? see docs)
    kCheckPassRate,  // passed checks / evaluated checks
    kRequests,       // count
    kRps,            // requests per second
    kIterations,     // completed iterations
    kDroppedIterations,
  };
  Metric metric = Metric::kLatency;
  std::string step;   // empty = all steps; else a name from Plan::step_names
  std::string flow;   // for kIterations; empty = all flows
  std::string check;  // for kCheckPassRate; empty = all checks
  enum class Statistic { kPercentile, kMin, kMax, kMean } statistic = Statistic::kPercentile;
  double percentile = 0;  // 0..100, kLatency with kPercentile
  enum class Op { kLt, kLe, kGt, kGe, kEq } op = Op::kLt;
  double value = 0;  // latency in microseconds; rates as fractions 0..1; counts as numbers
};

struct Plan {
  std::string source_path;
  std::string name;
  http::Url target;  // base of every request
  std::vector<std::pair<std::string, std::string>> default_headers;
  int64_t timeout_us = 10'000'000;
  size_t max_body_capture = 64 * 1024;  // bytes of each response kept for checks/extraction
  uint64_t seed = 0;
  bool seed_given = false;
  VariableTable variables;
  std::vector<std::pair<uint32_t, std::string>> constants;  // vars: name -> value, set at VU start
  std::vector<Flow> flows;
  std::vector<DataSource> data;
  std::vector<ScenarioRun> scenarios;
  std::vector<Threshold> thresholds;
  std::vector<std::string> step_names;   // metric index -> "flow/group/step"
  std::vector<std::string> check_names;  // check index -> "flow/step: status in [200]"
  int64_t total_duration_us() const;     // end of the last scenario
};

}  // namespace millstone::scenario
