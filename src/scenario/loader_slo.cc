// slo: -> Plan::objectives (docs/scenarios.md#slos-and-phases). Either a list
// of objectives, or a map with window:, recovery_window:, objectives: and
// guards:. An objective is a threshold line, or a map with objective: and its
// own window:, recovery_window:, guard: and for:.
#include <optional>

#include <fmt/format.h>

#include "scenario/loader_context.h"
#include "scenario/threshold_parse.h"

namespace millstone::scenario::detail {

using yaml::Field;
using yaml::MapFields;

namespace {

// Each objective is merged over every window of the run; a thousand keeps a
// long run's judgment within seconds.
constexpr size_t kMaxObjectives = 1000;

constexpr std::string_view kSloKeys[] = {"window", "recovery_window", "objectives", "guards",
                                         "tolerance"};
constexpr std::string_view kToleranceKeys[] = {"p99", "error_rate"};
constexpr std::string_view kObjectiveKeys[] = {"objective", "window", "recovery_window", "guard",
                                               "for"};
constexpr std::string_view kGuardKeys[] = {"objective", "window", "recovery_window", "for"};
constexpr std::string_view kExample = "\"latency.p99 < 250ms\"";

struct Defaults {
  int64_t window_s = 10;
  int64_t recovery_window_s = 5;
};

// The judgment works on whole seconds of the run's per-second snapshots.
int64_t whole_seconds(yaml::Reader& reader, const Field& field, int64_t min_s) {
  const int64_t us = reader.duration_us(field);
  if (us % 1'000'000 != 0) {
    reader.fail(field.mark,
                fmt::format("{} {} is not a whole number of seconds; expected e.g. "
                            "5s (SLOs are judged on the run's per-second data)",
                            field.key, yaml::shown(reader.scalar(field, "a duration"))));
  }
  if (us / 1'000'000 < min_s) {
    reader.fail(field.mark, fmt::format("{} is 0s; expected at least {}s", field.key, min_s));
  }
  return us / 1'000'000;
}

class ObjectiveReader {
 public:
  explicit ObjectiveReader(LoadContext& ctx) : ctx_(ctx), reader_(ctx.reader) {}

  void read(const Field& slo) {
    if (slo.value.IsSequence()) {
      read_list(slo, false);
      return;
    }
    if (!slo.value.IsMap()) {
      reader_.fail(slo.mark,
                   fmt::format("slo is {}; expected a list of objectives such as [{}], or a map "
                               "with window:, recovery_window:, objectives: and guards:",
                               yaml::kind_of(slo.value), kExample));
    }
    const MapFields map = reader_.read_map(slo.value, slo.mark, "slo", kSloKeys);
    if (const Field* window = map.find("window"))
      defaults_.window_s = whole_seconds(reader_, *window, 1);
    if (const Field* recovery = map.find("recovery_window")) {
      defaults_.recovery_window_s = whole_seconds(reader_, *recovery, 1);
    }
    ctx_.plan.recovery_tolerance.window_s = defaults_.recovery_window_s;
    const Field* tolerance = map.find("tolerance");
    if (tolerance != nullptr) read_tolerance(*tolerance);
    const Field* objectives = map.find("objectives");
    const Field* guards = map.find("guards");
    if (objectives == nullptr && guards == nullptr && tolerance == nullptr) {
      reader_.fail(map.mark, fmt::format("slo has no objectives: and no guards:; expected e.g. "
                                         "objectives: [{}]",
                                         kExample));
    }
    if (objectives) read_list(*objectives, false);
    if (guards) read_list(*guards, true);
  }

 private:
  // tolerance: {p99: 20% or 5ms, error_rate: 1%}: how close to the 'before'
  // phase a second must be to count as recovered.
  void read_tolerance(const Field& field) {
    const MapFields map =
        reader_.read_map(field.value, field.mark, "slo tolerance", kToleranceKeys);
    RecoveryTolerance& t = ctx_.plan.recovery_tolerance;
    auto percent = [&](const Field& f) -> std::optional<double> {
      const std::string text(yaml::trim(reader_.scalar(f, "a percentage such as 20%")));
      if (text.empty() || text.back() != '%') return std::nullopt;
      const std::optional<double> n = yaml::parse_double(text.substr(0, text.size() - 1));
      if (!n || *n < 0 || *n > 1000) {
        reader_.fail(f.mark, fmt::format("slo tolerance {} {} is not a percentage from 0% to "
                                         "1000%; expected e.g. 20%",
                                         f.key, yaml::shown(text)));
      }
      return *n / 100;
    };
    if (const Field* p99 = map.find("p99")) {
      if (const std::optional<double> ratio = percent(*p99)) {
        t.p99_ratio = *ratio;
      } else {
        t.p99_slack_us = reader_.duration_us(*p99);
      }
    }
    if (const Field* errors = map.find("error_rate")) {
      const std::optional<double> points = percent(*errors);
      if (!points || *points > 1) {
        reader_.fail(errors->mark, fmt::format("slo tolerance error_rate {} is not a percentage "
                                               "from 0% to 100%; expected e.g. 1% (percentage "
                                               "points above the 'before' phase)",
                                               yaml::shown(reader_.scalar(*errors, ""))));
      }
      t.error_rate_points = *points;
    }
  }

  void read_list(const Field& list, bool guards) {
    if (!list.value.IsSequence()) {
      reader_.fail(list.mark, fmt::format("{} is {}; expected a list such as [{}]", list.key,
                                          yaml::kind_of(list.value), kExample));
    }
    for (const YAML::Node& item : list.value) {
      const YAML::Mark mark = item.Mark().is_null() ? list.mark : item.Mark();
      if (ctx_.plan.objectives.size() == kMaxObjectives) {
        reader_.fail(mark,
                     fmt::format("more than {} SLO objectives; expected fewer", kMaxObjectives));
      }
      Objective objective;
      objective.window_s = defaults_.window_s;
      objective.recovery_window_s = defaults_.recovery_window_s;
      objective.guard = guards;
      if (item.IsMap()) {
        read_map(item, mark, guards, &objective);
      } else {
        objective.threshold = parse(item, mark);
      }
      if (objective.guard && objective.threshold.metric == Threshold::Metric::kTarget) {
        // Guards judge each second as it arrives; the target's scrapes are
        // judged when the run has ended (docs/monitoring.md).
        reader_.fail(mark, fmt::format("guard {} is on the target's series; expected an "
                                       "objective (not a guard): target.* series are judged "
                                       "after the run",
                                       yaml::shown(objective.threshold.text)));
      }
      ctx_.plan.objectives.push_back(std::move(objective));
    }
  }

  void read_map(const YAML::Node& item, const YAML::Mark& mark, bool guards, Objective* objective) {
    if (!item["objective"]) {
      for (const auto& entry : item) {
        const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
        if (key.find_first_of("{<>. ") != std::string::npos) {
          // `- latency.p99{step=a: b} < 1s` reads as a map because of ": ".
          reader_.fail(mark,
                       "objective is a map (YAML reads \": \" as a key); expected a "
                       "threshold line, in quotes when it contains \": \"");
        }
      }
    }
    const MapFields map =
        reader_.read_map(item, mark, guards ? "guard" : "objective",
                         guards ? yaml::Keys(kGuardKeys) : yaml::Keys(kObjectiveKeys));
    const Field* text = map.find("objective");
    if (text == nullptr) {
      reader_.fail(mark, fmt::format("{} has no objective:; expected objective: {}",
                                     guards ? "guard" : "objective", kExample));
    }
    if (!text->value.IsScalar()) {
      reader_.fail(text->mark, fmt::format("objective is {}; expected a threshold line such as {}",
                                           yaml::kind_of(text->value), kExample));
    }
    objective->threshold = parse(text->value, text->mark);
    if (const Field* window = map.find("window")) {
      objective->window_s = whole_seconds(reader_, *window, 1);
    }
    if (const Field* recovery = map.find("recovery_window")) {
      objective->recovery_window_s = whole_seconds(reader_, *recovery, 1);
    }
    if (const Field* guard = map.find("guard")) objective->guard = reader_.boolean(*guard);
    if (const Field* for_field = map.find("for")) {
      if (!objective->guard) {
        reader_.fail(for_field->key_mark,
                     "for: applies to abort guards; expected guard: true beside it (or the "
                     "objective under guards:)");
      }
      objective->guard_for_s = whole_seconds(reader_, *for_field, 0);
    }
  }

  Threshold parse(const YAML::Node& node, const YAML::Mark& mark) {
    const std::string text = reader_.scalar(node, mark, "objective",
                                            "a threshold line such as " + std::string(kExample));
    std::string error;
    size_t offset = 0;
    std::optional<Threshold> threshold = parse_threshold(text, &error, &offset);
    if (!threshold) reader_.fail(reader_.mark_at(node, mark, offset), error);
    threshold->location = reader_.location(mark);
    resolve_threshold_names(ctx_, *threshold, node, mark);
    return std::move(*threshold);
  }

  LoadContext& ctx_;
  yaml::Reader& reader_;
  Defaults defaults_;
};

}  // namespace

void compile_objectives(LoadContext& ctx, const Field& slo) {
  ObjectiveReader(ctx).read(slo);
}

}  // namespace millstone::scenario::detail
