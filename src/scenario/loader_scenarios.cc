// scenarios: -> Plan::scenarios: executors with validated parameters, the
// flows each runs, and start times laid out on one timeline ("after NAME").
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "config/quantity.h"
#include "scenario/loader.h"
#include "scenario/loader_context.h"

namespace millstone::scenario::detail {
namespace {

using yaml::Field;
using yaml::Keys;
using yaml::MapFields;
using yaml::shown;

constexpr double kMaxVus = 10'000'000;
constexpr double kMaxRate = 10'000'000;  // iterations per second
constexpr double kMaxIterations = 1e12;
constexpr int64_t kDefaultGracefulStopUs = 5'000'000;
constexpr int64_t kDefaultMaxDurationUs = 600'000'000;  // iterations executor: 10m
constexpr int64_t kDefaultDurationUs = 10'000'000;      // the implicit scenario

constexpr std::string_view kScenarioKeys[] = {
    "executor",          "start",     "graceful_stop", "flows",       "vus",
    "duration",          "start_vus", "stages",        "rate",        "start_rate",
    "pre_allocated_vus", "max_vus",   "iterations",    "max_duration"};
constexpr std::string_view kCommonKeys[] = {"executor", "start", "graceful_stop", "flows"};
constexpr std::string_view kStageKeys[] = {"duration", "target"};

struct ExecutorShape {
  std::string_view name;
  Executor::Kind kind;
  std::vector<std::string_view> keys;  // beyond the common ones
  std::string_view example;
};

const ExecutorShape kShapes[] = {
    {"constant-vus",
     Executor::Kind::kConstantVus,
     {"vus", "duration"},
     "{executor: constant-vus, vus: 10, duration: 30s}"},
    {"ramping-vus",
     Executor::Kind::kRampingVus,
     {"start_vus", "stages"},
     "{executor: ramping-vus, start_vus: 0, stages: [{duration: 10s, target: 50}]}"},
    {"constant-arrival-rate",
     Executor::Kind::kConstantArrivalRate,
     {"rate", "duration", "pre_allocated_vus", "max_vus"},
     "{executor: constant-arrival-rate, rate: 100, duration: 30s, pre_allocated_vus: 20}"},
    {"ramping-arrival-rate",
     Executor::Kind::kRampingArrivalRate,
     {"start_rate", "stages", "pre_allocated_vus", "max_vus"},
     "{executor: ramping-arrival-rate, start_rate: 10, stages: [{duration: 30s, target: 100}], "
     "pre_allocated_vus: 20}"},
    {"iterations",
     Executor::Kind::kIterations,
     {"vus", "iterations", "max_duration"},
     "{executor: iterations, vus: 10, iterations: 1000}"},
};

bool is_arrival_rate(Executor::Kind kind) {
  return kind == Executor::Kind::kConstantArrivalRate ||
         kind == Executor::Kind::kRampingArrivalRate;
}

struct StartSpec {
  std::string after;  // empty: start_us is given
  YAML::Mark mark;
};

class ScenarioCompiler {
 public:
  explicit ScenarioCompiler(LoadContext& ctx) : ctx_(ctx), reader_(ctx.reader) {}

  void compile(const Field* scenarios);

 private:
  ScenarioRun compile_scenario(const Field& field, StartSpec* start);
  double rate(const Field& field, double min);
  uint32_t vus(const Field& field, double min);
  std::vector<Stage> stages(const Field& field, bool rates);
  std::vector<uint32_t> flows(const Field& field);
  void apply_overrides(Executor& ex, std::string_view scenario, std::string_view kind,
                       const YAML::Mark& mark);
  void lay_out(const std::vector<StartSpec>& starts);

  LoadContext& ctx_;
  yaml::Reader& reader_;
};

void ScenarioCompiler::compile(const Field* scenarios) {
  Plan& plan = ctx_.plan;
  std::vector<uint32_t> all_flows(plan.flows.size());
  for (uint32_t i = 0; i < all_flows.size(); ++i) {
    all_flows[i] = i;
  }
  if (scenarios == nullptr) {
    // No scenarios: a smoke test, one VU for 10 s running every flow.
    ScenarioRun run;
    run.name = "default";
    run.executor.kind = Executor::Kind::kConstantVus;
    run.executor.vus = 1;
    run.executor.duration_us = kDefaultDurationUs;
    run.executor.graceful_stop_us = kDefaultGracefulStopUs;
    run.flows = all_flows;
    apply_overrides(run.executor, "default (the file has no scenarios:)", "constant-vus",
                    YAML::Mark::null_mark());
    plan.scenarios.push_back(std::move(run));
    return;
  }
  const MapFields map = reader_.read_map(scenarios->value, scenarios->mark, "scenarios", {});
  if (map.fields.empty()) {
    reader_.fail(scenarios->mark,
                 "scenarios is empty; expected at least one scenario, e.g. "
                 "steady: {executor: constant-vus, vus: 10, duration: 30s}");
  }
  std::vector<StartSpec> starts;
  for (const Field& field : map.fields) {
    if (field.key.empty()) {
      reader_.fail(field.key_mark, "scenario name is empty; expected a name such as steady");
    }
    StartSpec start;
    ScenarioRun run = compile_scenario(field, &start);
    if (run.flows.empty()) {
      run.flows = all_flows;
    }
    plan.scenarios.push_back(std::move(run));
    starts.push_back(std::move(start));
  }
  lay_out(starts);
}

ScenarioRun ScenarioCompiler::compile_scenario(const Field& field, StartSpec* start) {
  const std::string what = fmt::format("scenario {}", field.key);
  const MapFields map = reader_.read_map(field.value, field.mark, what, kScenarioKeys);
  ScenarioRun run;
  run.name = field.key;
  const Field* executor = map.find("executor");
  if (executor == nullptr) {
    reader_.fail(map.mark, fmt::format("{} has no executor; expected executor: constant-vus, "
                                       "ramping-vus, constant-arrival-rate, ramping-arrival-rate "
                                       "or iterations",
                                       what));
  }
  const std::string name = reader_.scalar(*executor, "an executor name");
  const ExecutorShape* shape = nullptr;
  std::vector<std::string> names;
  for (const ExecutorShape& candidate : kShapes) {
    names.emplace_back(candidate.name);
    if (candidate.name == name) {
      shape = &candidate;
    }
  }
  if (shape == nullptr) {
    reader_.fail(executor->mark, fmt::format("unknown executor {}{}; expected constant-vus, "
                                             "ramping-vus, constant-arrival-rate, "
                                             "ramping-arrival-rate or iterations",
                                             shown(name), yaml::did_you_mean(name, names)));
  }
  for (const Field& param : map.fields) {
    const bool common = std::find(std::begin(kCommonKeys), std::end(kCommonKeys), param.key) !=
                        std::end(kCommonKeys);
    if (!common &&
        std::find(shape->keys.begin(), shape->keys.end(), param.key) == shape->keys.end()) {
      reader_.fail(param.key_mark,
                   fmt::format("{} does not apply to {}; expected {} (and start, graceful_stop, "
                               "flows), e.g. {}",
                               param.key, name, yaml::join(Keys(shape->keys)), shape->example));
    }
  }
  auto required = [&](std::string_view key) -> const Field& {
    const Field* found = map.find(key);
    if (found == nullptr) {
      reader_.fail(map.mark, fmt::format("{} executor needs {}; expected e.g. {}", name, key,
                                         shape->example));
    }
    return *found;
  };
  auto positive_duration = [&](const Field& param) {
    const int64_t us = reader_.duration_us(param);
    if (us <= 0) {
      reader_.fail(param.mark, fmt::format("{} is 0; expected a duration above 0", param.key));
    }
    return us;
  };

  Executor& ex = run.executor;
  ex.kind = shape->kind;
  ex.graceful_stop_us = kDefaultGracefulStopUs;
  if (const Field* graceful = map.find("graceful_stop")) {
    ex.graceful_stop_us = reader_.duration_us(*graceful);
  }
  switch (ex.kind) {
    case Executor::Kind::kConstantVus:
      if (const Field* count = map.find("vus")) {
        ex.vus = vus(*count, 1);
      }
      ex.duration_us = positive_duration(required("duration"));
      break;
    case Executor::Kind::kRampingVus: {
      ex.vus = 0;
      if (const Field* count = map.find("start_vus")) {
        ex.vus = vus(*count, 0);
      }
      const Field& list = required("stages");
      ex.stages = stages(list, /*rates=*/false);
      const bool any = ex.vus > 0 || std::any_of(ex.stages.begin(), ex.stages.end(),
                                                 [](const Stage& s) { return s.target > 0; });
      if (!any) {
        reader_.fail(list.mark,
                     "every stage targets 0 VUs and start_vus is 0; expected some "
                     "stage with target above 0");
      }
      break;
    }
    case Executor::Kind::kConstantArrivalRate:
      ex.rate = rate(required("rate"), 0);
      if (ex.rate <= 0) {
        reader_.fail(map.find("rate")->mark, "rate is 0; expected iterations per second above 0");
      }
      ex.duration_us = positive_duration(required("duration"));
      break;
    case Executor::Kind::kRampingArrivalRate: {
      if (const Field* start_rate = map.find("start_rate")) {
        ex.start_rate = rate(*start_rate, 0);
      }
      const Field& list = required("stages");
      ex.stages = stages(list, /*rates=*/true);
      const bool any =
          ex.start_rate > 0 || std::any_of(ex.stages.begin(), ex.stages.end(),
                                           [](const Stage& s) { return s.target > 0; });
      if (!any) {
        reader_.fail(list.mark,
                     "every stage targets a rate of 0 and start_rate is 0; expected "
                     "some stage with target above 0");
      }
      break;
    }
    case Executor::Kind::kIterations: {
      if (const Field* count = map.find("vus")) {
        ex.vus = vus(*count, 1);
      }
      const Field& total = required("iterations");
      ex.iterations =
          static_cast<uint64_t>(reader_.number(total, 1, kMaxIterations, /*whole=*/true));
      if (ex.vus > ex.iterations) {
        reader_.fail(total.mark, fmt::format("iterations {} is fewer than vus {}; expected at "
                                             "least one iteration per VU",
                                             ex.iterations, ex.vus));
      }
      ex.duration_us = kDefaultMaxDurationUs;
      if (const Field* max_duration = map.find("max_duration")) {
        ex.duration_us = positive_duration(*max_duration);
      }
      break;
    }
  }
  apply_overrides(ex, field.key, shape->name, executor->mark);
  if (is_arrival_rate(ex.kind)) {
    const Field& pre = required("pre_allocated_vus");
    ex.pre_allocated_vus = vus(pre, 1);
    ex.max_vus = ex.pre_allocated_vus;
    if (const Field* max = map.find("max_vus")) {
      ex.max_vus = vus(*max, 1);
      if (ex.max_vus < ex.pre_allocated_vus) {
        reader_.fail(max->mark, fmt::format("max_vus {} is below pre_allocated_vus {}; expected "
                                            "max_vus >= pre_allocated_vus",
                                            ex.max_vus, ex.pre_allocated_vus));
      }
    }
  }

  if (const Field* list = map.find("flows")) {
    run.flows = flows(*list);
  }
  start->mark = executor->key_mark;
  if (const Field* when = map.find("start")) {
    const std::string text = reader_.scalar(*when, "a duration such as 30s, or after NAME");
    start->mark = when->mark;
    if (text.starts_with("after ") || text == "after") {
      start->after = std::string(yaml::trim(std::string_view(text).substr(5)));
      if (start->after.empty()) {
        reader_.fail(when->mark, "start: after names no scenario; expected after NAME");
      }
    } else {
      run.start_us = reader_.duration_us(*when);
    }
  }
  return run;
}

double ScenarioCompiler::rate(const Field& field, double min) {
  const std::string raw = reader_.scalar(field, "iterations per second, such as 100 or 6000/m");
  std::string problem;
  const std::optional<double> per_s =
      config::parse_rate_per_s(raw, "iterations", min, kMaxRate, &problem);
  if (!per_s) reader_.fail(field.mark, fmt::format("{} {} {}", field.key, shown(raw), problem));
  return *per_s;
}

void ScenarioCompiler::apply_overrides(Executor& ex, std::string_view scenario,
                                       std::string_view kind, const YAML::Mark& mark) {
  const Overrides& o = ctx_.overrides;
  using K = Executor::Kind;
  auto refuse = [&](std::string_view flag, std::string_view why, std::string_view applies) {
    throw OverrideError(fmt::format("{} does not apply to scenario {} at {} ({}: {}); it sets {}",
                                    flag, scenario, reader_.location(mark), kind, why, applies));
  };
  if (o.vus) {
    if (ex.kind == K::kConstantVus) {
      ex.vus = *o.vus;
    } else if (ex.kind == K::kIterations) {
      if (*o.vus > ex.iterations) {
        refuse("--vus", fmt::format("{} iterations are fewer than {} VUs", ex.iterations, *o.vus),
               "the vus of constant-vus and iterations executors");
      }
      ex.vus = *o.vus;
    } else {
      refuse("--vus",
             ex.kind == K::kRampingVus ? "its stages set the VUs"
                                       : "the rate sets the load, pre_allocated_vus the VUs",
             "the vus of constant-vus and iterations executors");
    }
  }
  if (o.duration_us) {
    if (ex.kind == K::kConstantVus || ex.kind == K::kConstantArrivalRate) {
      ex.duration_us = *o.duration_us;
    } else {
      refuse("--duration",
             ex.kind == K::kIterations ? "it runs a number of iterations"
                                       : "its stages set the durations",
             "the duration of constant-vus and constant-arrival-rate executors");
    }
  }
  if (o.rate) {
    if (ex.kind == K::kConstantArrivalRate) {
      ex.rate = *o.rate;
    } else {
      refuse("--rate",
             ex.kind == K::kRampingArrivalRate ? "its stages set the rates"
                                               : "it runs VUs back to back, not at a rate",
             "the rate of constant-arrival-rate executors");
    }
  }
}

uint32_t ScenarioCompiler::vus(const Field& field, double min) {
  return static_cast<uint32_t>(reader_.number(field, min, kMaxVus, /*whole=*/true));
}

std::vector<Stage> ScenarioCompiler::stages(const Field& field, bool rates) {
  if (!field.value.IsSequence() || field.value.size() == 0) {
    reader_.fail(field.mark, fmt::format("stages is {}; expected a list such as [{{duration: 10s, "
                                         "target: 50}}]",
                                         field.value.IsSequence() ? "an empty list"
                                                                  : yaml::kind_of(field.value)));
  }
  std::vector<Stage> out;
  int64_t total_us = 0;
  for (const YAML::Node& item : field.value) {
    const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
    const MapFields map = reader_.read_map(item, mark, "stage", kStageKeys);
    const Field* duration = map.find("duration");
    const Field* target = map.find("target");
    if (duration == nullptr || target == nullptr) {
      reader_.fail(map.mark, fmt::format("stage has no {}; expected e.g. {{duration: 10s, "
                                         "target: 50}}",
                                         duration == nullptr ? "duration" : "target"));
    }
    Stage stage;
    stage.duration_us = reader_.duration_us(*duration);
    stage.target = rates ? rate(*target, 0) : vus(*target, 0);
    total_us += stage.duration_us;
    out.push_back(stage);
  }
  if (total_us <= 0) {
    reader_.fail(field.mark,
                 "stages last 0s in total; expected some stage with a duration above "
                 "0");
  }
  return out;
}

std::vector<uint32_t> ScenarioCompiler::flows(const Field& field) {
  std::vector<std::string> names;
  for (const Flow& flow : ctx_.plan.flows) {
    names.push_back(flow.name);
  }
  if (!field.value.IsSequence() || field.value.size() == 0) {
    reader_.fail(field.mark, fmt::format("flows is {}; expected a list of flow names such as [{}] "
                                         "(leave flows out to run all)",
                                         field.value.IsSequence() ? "an empty list"
                                                                  : yaml::kind_of(field.value),
                                         names.front()));
  }
  std::vector<uint32_t> out;
  for (const YAML::Node& item : field.value) {
    const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
    const std::string name = reader_.scalar(item, mark, "flow", "a flow name");
    const auto found = std::find(names.begin(), names.end(), name);
    if (found == names.end()) {
      reader_.fail(mark, fmt::format("no flow is named {}{}; expected one of: {}", shown(name),
                                     yaml::did_you_mean(name, names), yaml::join(names, 20)));
    }
    const auto index = static_cast<uint32_t>(found - names.begin());
    if (std::find(out.begin(), out.end(), index) != out.end()) {
      reader_.fail(mark, fmt::format("flow {} is listed twice; expected each flow once (weights "
                                     "set the mix)",
                                     shown(name)));
    }
    out.push_back(index);
  }
  return out;
}

// Resolves "after NAME" into start times: a scenario starts when the one it
// follows has ended, graceful stop included.
void ScenarioCompiler::lay_out(const std::vector<StartSpec>& starts) {
  std::vector<ScenarioRun>& runs = ctx_.plan.scenarios;
  std::vector<std::string> names;
  for (const ScenarioRun& run : runs) {
    names.push_back(run.name);
  }
  enum class State { kPending, kVisiting, kDone };
  std::vector<State> state(runs.size(), State::kPending);
  std::vector<size_t> chain;
  auto visit = [&](auto&& self, size_t i) -> void {
    if (state[i] == State::kDone) {
      return;
    }
    if (state[i] == State::kVisiting) {
      // Told from the scenario whose start: closes the cycle, where the error points.
      const auto from = std::find(chain.begin(), chain.end(), i);
      std::vector<size_t> cycle{chain.back()};
      cycle.insert(cycle.end(), from, chain.end() - 1);
      std::string text = shown(runs[cycle[0]].name);
      for (size_t k = 1; k < cycle.size(); ++k) {
        text += fmt::format(" starts after {}, which", shown(runs[cycle[k]].name));
      }
      text += fmt::format(" starts after {}", shown(runs[cycle[0]].name));
      reader_.fail(starts[chain.back()].mark,
                   fmt::format("start: after makes a cycle: {}; expected each scenario to follow "
                               "one that can start without it",
                               text));
    }
    if (starts[i].after.empty()) {
      state[i] = State::kDone;
      return;
    }
    state[i] = State::kVisiting;
    chain.push_back(i);
    const auto found = std::find(names.begin(), names.end(), starts[i].after);
    if (found == names.end()) {
      reader_.fail(starts[i].mark,
                   fmt::format("start: after {} names no scenario{}; expected one of: {}",
                               shown(starts[i].after), yaml::did_you_mean(starts[i].after, names),
                               yaml::join(names, 20)));
    }
    const auto other = static_cast<size_t>(found - names.begin());
    if (other == i) {
      reader_.fail(starts[i].mark, fmt::format("scenario {} starts after itself; expected another "
                                               "scenario's name",
                                               shown(runs[i].name)));
    }
    self(self, other);
    runs[i].start_us = runs[other].end_us();
    chain.pop_back();
    state[i] = State::kDone;
  };
  for (size_t i = 0; i < runs.size(); ++i) {
    visit(visit, i);
  }
}

}  // namespace

void compile_scenarios(LoadContext& ctx, const Field* scenarios) {
  ScenarioCompiler(ctx).compile(scenarios);
}

}  // namespace millstone::scenario::detail
