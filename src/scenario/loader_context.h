#pragma once
// Shared state of one scenario compile, split across loader.cc (top level,
// variables, data, thresholds), loader_slo.cc (slo:), loader_flows.cc (flows, steps, requests),
// loader_checks.cc (checks and extraction) and loader_scenarios.cc
// (executors and the timeline).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/yaml_fields.h"
#include "scenario/loader.h"
#include "scenario/plan.h"

namespace millstone::scenario {

// The scenario reads YAML with config/'s reader; `yaml::` is its name here.
namespace yaml = config;
}  // namespace millstone::scenario

namespace millstone::scenario::detail {

// Names templates may not define: they are built-ins of the template language.
inline constexpr std::string_view kReservedNames[] = {
    "vu", "iteration", "worker", "uuid", "now", "now_ms", "now_iso", "random", "env", "corr"};

struct LoadContext {
  LoadContext(yaml::Reader& r, Plan& p) : reader(r), plan(p) {}

  yaml::Reader& reader;
  Plan& plan;
  Overrides overrides;                       // from the command line
  const GrpcReflector* reflector = nullptr;  // grpc: {reflection: true}; null: not asked

  std::vector<std::string> constant_names;      // from vars:, for messages
  std::vector<int> slot_data_source;            // variable slot -> index into plan.data, or -1
  std::map<std::string, YAML::Mark> extracted;  // names set by some extract:, first place seen
  // defaults: headers. Literal ones go to Plan::default_headers; templated ones
  // are copied into every request (the engine renders only request headers).
  std::vector<std::pair<std::string, Template>> templated_default_headers;
  bool default_content_type = false;  // defaults: headers has a Content-Type

  // Name components of every step ("shopper", "checkout", "pay") and every
  // check, by index, for resolving the short names thresholds may use.
  std::vector<std::vector<std::string>> step_components;
  std::vector<std::vector<std::string>> check_components;

  // The variable slot of a data column, or -1.
  int data_source_of_slot(uint32_t slot) const {
    return slot < slot_data_source.size() ? slot_data_source[slot] : -1;
  }
};

bool is_reserved_name(std::string_view name);

// The longest name of a drill, a proxy or a monitored endpoint: names are
// shown in summaries, series labels and reports.
inline constexpr size_t kMaxNameBytes = 64;

inline bool contains(config::Keys keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// The whole text is a JSON number (RFC 8259 grammar): a plain YAML scalar
// that reads as one is passed on as a number.
bool is_json_number(std::string_view text);

// http: 2, 1.1 (or 1): the HTTP version of requests, in defaults: or a step.
uint8_t compile_http_version(yaml::Reader& reader, const yaml::Field& field);

// Compiles a scalar's text as a template against ctx.plan.variables, with
// errors at the exact column. `what` names the field in messages.
Template compile_template(LoadContext& ctx, const YAML::Node& node, const YAML::Mark& mark,
                          std::string_view text, std::string_view what);

// A headers: map: names are HTTP tokens, values templates.
std::vector<std::pair<std::string, Template>> compile_headers(LoadContext& ctx,
                                                              const yaml::Field& field);

// A request's extract: and check: (loader_checks.cc). Checks come back in
// file order, unnamed: the caller gives them indexes and names.
std::vector<Extraction> compile_extractions(LoadContext& ctx, const yaml::Field& field);
// `grpc`: a grpc step's checks (grpc_status, grpc_message; no HTTP status).
std::vector<Check> compile_checks(LoadContext& ctx, const yaml::Field& field, bool grpc = false);

// Pass one: interns every name an extract: declares, anywhere in the file, so
// a template may use a value that another step (or flow) extracts.
void collect_extracted_names(LoadContext& ctx, const yaml::Field& flows);
// Pass two: flows, in file order.
void compile_flows(LoadContext& ctx, const yaml::Field& flows);
// scenarios: (or the default), with start times laid out.
void compile_scenarios(LoadContext& ctx, const yaml::Field* scenarios);
// drills: (loader_drills.cc), after the scenarios they may start after.
// `base_dir` resolves pid files.
void compile_drills(LoadContext& ctx, const yaml::Field& drills, const std::string& base_dir);
// proxies: (loader_drills.cc), before the drills that address them by name.
void compile_proxies(LoadContext& ctx, const yaml::Field& proxies);

// Resolves the step, check and flow names a threshold's {tag=...} gives
// (loader.cc); `node` is the scalar it was parsed from.
void resolve_threshold_names(LoadContext& ctx, Threshold& threshold, const YAML::Node& node,
                             const YAML::Mark& mark);
// slo: (loader_slo.cc), after the flows and their names.
void compile_objectives(LoadContext& ctx, const yaml::Field& slo);

// amqp: (loader_amqp.cc), before the flows whose amqp.* steps need it; and
// one amqp.publish or amqp.expect step's settings.
void compile_amqp(LoadContext& ctx, const yaml::Field& field);
AmqpStep compile_amqp_step(LoadContext& ctx, const yaml::Field& action);

// grpc: (loader_grpc.cc), before the flows whose grpc steps need it: the
// .proto files or server reflection (the coordinator) or the descriptors it
// sent (a worker, `data_files` given). And one grpc step's call; `json_text` turns a YAML
// message into JSON template text (the flow compiler's, as for json: bodies).
using JsonText = std::function<std::string(const YAML::Node&, const YAML::Mark&)>;
// `flows`: read for the services grpc steps call, which reflection is asked for.
void compile_grpc(LoadContext& ctx, const yaml::Field& field, const yaml::Field& flows,
                  const std::string& base_dir, const DataFileSet* data_files);
std::shared_ptr<const GrpcCall> compile_grpc_call(LoadContext& ctx, const yaml::Field& action,
                                                  const JsonText& json_text,
                                                  std::string* method_name);

// monitor: (loader_monitor.cc): the endpoints the coordinator scrapes.
void compile_monitors(LoadContext& ctx, const yaml::Field& field);

}  // namespace millstone::scenario::detail
