// check: and extract: of a request step: what to assert about a response
// and what to take from it. Compiled into Check and Extractor objects.
#include <algorithm>
#include <vector>

#include <fmt/format.h>
#include <re2/re2.h>

#include "grpc/status.h"
#include "scenario/loader.h"
#include "scenario/loader_context.h"

namespace millstone::scenario::detail {
namespace {

using yaml::Field;
using yaml::Keys;
using yaml::MapFields;
using yaml::shown;

constexpr std::string_view kCheckKeys[] = {"status", "header", "body", "json", "duration"};
constexpr std::string_view kGrpcCheckKeys[] = {"grpc_status", "grpc_message", "header",
                                               "body",        "json",         "duration"};
constexpr std::string_view kGrpcMessageOps[] = {"equals",  "not_equals", "contains", "not_contains",
                                                "matches", "exists",     "one_of"};
constexpr std::string_view kExtractKeys[] = {"json",   "regex",  "group", "header",
                                             "cookie", "status", "body",  "default"};
constexpr std::string_view kExtractSources[] = {"json",   "regex",  "header",
                                                "cookie", "status", "body"};
constexpr std::string_view kHeaderOps[] = {"equals",  "not_equals", "contains", "not_contains",
                                           "matches", "exists",     "one_of"};
constexpr std::string_view kBodyOps[] = {"contains", "not_contains", "matches", "equals"};
constexpr std::string_view kJsonOps[] = {
    "equals", "not_equals", "contains", "not_contains", "matches", "exists", "not_exists",
    "lt",     "le",         "gt",       "ge",           "length",  "one_of"};
constexpr std::string_view kDurationOps[] = {"lt", "le", "gt", "ge"};

class ResponseRules {
 public:
  explicit ResponseRules(LoadContext& ctx) : ctx_(ctx), reader_(ctx.reader) {}

  std::vector<Extraction> extractions(const Field& field);
  std::vector<Check> checks(const Field& field, bool grpc);

 private:
  std::vector<Expectation> expectations(const Field& spec, Keys ops, bool shorthand,
                                        std::string_view subject, bool durations);
  Expectation expectation(const Field& op, std::string_view subject, bool durations);

  LoadContext& ctx_;
  yaml::Reader& reader_;
};

std::vector<Extraction> ResponseRules::extractions(const Field& field) {
  std::vector<Extraction> out;
  const MapFields map = reader_.read_map(field.value, field.mark, "extract", {});
  for (const Field& item : map.fields) {
    const MapFields spec =
        reader_.read_map(item.value, item.mark, fmt::format("extract {}", item.key), kExtractKeys);
    const Field* source = nullptr;
    for (const Field& key : spec.fields) {
      if (!contains(kExtractSources, key.key)) {
        continue;
      }
      if (source != nullptr) {
        reader_.fail(key.key_mark, fmt::format("extract {} has both {} and {}; expected one "
                                               "source",
                                               item.key, source->key, key.key));
      }
      source = &key;
    }
    if (source == nullptr) {
      reader_.fail(spec.mark, fmt::format("extract {} has no source; expected one of json, regex, "
                                          "header, cookie, status or body, e.g. {{json: $.token}}",
                                          item.key));
    }
    const Field* group = spec.find("group");
    if (group != nullptr && source->key != "regex") {
      reader_.fail(group->key_mark, "group applies only to regex; expected no group here");
    }
    std::optional<Extractor> extractor;
    std::string error;
    if (source->key == "json") {
      const std::string path = reader_.scalar(*source, "a JSON path such as $.token");
      extractor = Extractor::json(path, &error);
    } else if (source->key == "regex") {
      const std::string pattern = reader_.scalar(*source, "a regular expression");
      RE2::Options options;
      options.set_log_errors(false);
      const RE2 probe(pattern, options);
      const int groups = probe.ok() ? probe.NumberOfCapturingGroups() : 0;
      // Without group:, the first capture group if there is one: what
      // 'order-(\d+)' is written for.
      int index = groups > 0 ? 1 : 0;
      if (group != nullptr) {
        index = static_cast<int>(reader_.number(*group, 0, 1000, /*whole=*/true));
        if (probe.ok() && index > groups) {
          reader_.fail(group->mark, fmt::format("group {} is out of range: the regex has {} "
                                                "capture group{}; expected 0 (the whole match) "
                                                "to {}",
                                                index, groups, groups == 1 ? "" : "s", groups));
        }
      }
      extractor = Extractor::regex(pattern, index, &error);
    } else if (source->key == "header" || source->key == "cookie") {
      const std::string name = reader_.scalar(*source, "a name");
      if (name.empty()) {
        reader_.fail(source->mark, fmt::format("{} name is empty; expected a name", source->key));
      }
      extractor = source->key == "header" ? Extractor::header(name) : Extractor::cookie(name);
    } else {
      if (!reader_.boolean(*source)) {
        reader_.fail(source->mark, fmt::format("{}: false extracts nothing; expected {}: true",
                                               source->key, source->key));
      }
      extractor = source->key == "status" ? Extractor::status() : Extractor::body();
    }
    if (!extractor) {
      reader_.fail(source->mark,
                   error.find("expected") != std::string::npos
                       ? fmt::format("extract {}: {}", item.key, error)
                       : fmt::format("extract {}: {}; expected a valid {}", item.key, error,
                                     source->key == "json" ? "JSON path such as $.items[0].id"
                                                           : "RE2 pattern"));
    }
    Extraction extraction{static_cast<uint32_t>(ctx_.plan.variables.intern(item.key)),
                          std::move(*extractor), std::nullopt};
    if (const Field* fallback = spec.find("default")) {
      extraction.default_value = reader_.scalar(*fallback, "a text");
    }
    out.push_back(std::move(extraction));
  }
  return out;
}

std::vector<Check> ResponseRules::checks(const Field& field, bool grpc) {
  if (grpc && field.value.IsMap()) {
    for (const auto& entry : field.value) {
      if (entry.first.IsScalar() && entry.first.Scalar() == "status") {
        reader_.fail(entry.first.Mark(),
                     "check status: applies to HTTP steps; expected "
                     "grpc_status: (such as OK or [OK, NOT_FOUND]) in a grpc "
                     "step");
      }
    }
  }
  const MapFields map = grpc ? reader_.read_map(field.value, field.mark, "check", kGrpcCheckKeys)
                             : reader_.read_map(field.value, field.mark, "check", kCheckKeys);
  std::vector<Check> checks;
  for (const Field& subject : map.fields) {
    if (subject.key == "grpc_status") {
      auto code = [&](const YAML::Node& node, const YAML::Mark& mark) {
        const std::string text = reader_.scalar(node, mark, "grpc_status", "a gRPC status");
        const std::optional<uint32_t> value = grpc::status_from_text(text);
        if (!value || *value > grpc::kLastStatus) {
          reader_.fail(mark, fmt::format("grpc_status {} is not a gRPC status; expected a name "
                                         "such as OK, NOT_FOUND or UNAVAILABLE, a code 0 to 16, "
                                         "or a list of them",
                                         shown(text)));
        }
        return static_cast<int>(*value);
      };
      std::vector<int> codes;
      if (subject.value.IsSequence()) {
        for (const YAML::Node& item : subject.value) {
          codes.push_back(code(item, item.Mark().is_null() ? subject.mark : item.Mark()));
        }
        if (codes.empty()) {
          reader_.fail(subject.mark, "grpc_status is an empty list; expected e.g. [OK, NOT_FOUND]");
        }
      } else {
        codes.push_back(code(subject.value, subject.mark));
      }
      checks.push_back(Check::grpc_status_in(std::move(codes)));
    } else if (subject.key == "grpc_message") {
      for (Expectation& e : expectations(subject, kGrpcMessageOps, true, "grpc_message", false)) {
        checks.push_back(Check::grpc_message(std::move(e)));
      }
    } else if (subject.key == "status") {
      auto code = [&](const YAML::Node& node, const YAML::Mark& mark) {
        const std::string text = reader_.scalar(node, mark, "status", "a status code");
        const std::optional<double> value = yaml::parse_double(text);
        if (!value || *value != static_cast<int>(*value) || *value < 100 || *value > 599) {
          reader_.fail(mark, fmt::format("status {} is not an HTTP status; expected 100 to 599, a "
                                         "list such as [200, 201], or a class such as \"2xx\"",
                                         shown(text)));
        }
        return static_cast<int>(*value);
      };
      if (subject.value.IsSequence()) {
        std::vector<int> codes;
        for (const YAML::Node& item : subject.value) {
          codes.push_back(code(item, item.Mark().is_null() ? subject.mark : item.Mark()));
        }
        if (codes.empty()) {
          reader_.fail(subject.mark, "status is an empty list; expected e.g. [200, 201]");
        }
        checks.push_back(Check::status_in(std::move(codes)));
      } else if (subject.value.IsScalar() && subject.value.Scalar().size() == 3 &&
                 (subject.value.Scalar().ends_with("xx") ||
                  subject.value.Scalar().ends_with("XX"))) {
        const char digit = subject.value.Scalar()[0];
        if (digit < '1' || digit > '5') {
          reader_.fail(subject.mark, fmt::format("status class {} does not exist; expected 1xx to "
                                                 "5xx",
                                                 shown(subject.value.Scalar())));
        }
        checks.push_back(Check::status_class(digit - '0'));
      } else {
        checks.push_back(Check::status_in({code(subject.value, subject.mark)}));
      }
    } else if (subject.key == "header") {
      const MapFields headers = reader_.read_map(subject.value, subject.mark, "header", {});
      for (const Field& header : headers.fields) {
        for (Expectation& e :
             expectations(header, kHeaderOps, true, fmt::format("header {}", header.key), false)) {
          checks.push_back(Check::header(header.key, std::move(e)));
        }
      }
    } else if (subject.key == "body") {
      for (Expectation& e : expectations(subject, kBodyOps, false, "body", false)) {
        checks.push_back(Check::body(std::move(e)));
      }
    } else if (subject.key == "json") {
      const MapFields paths = reader_.read_map(subject.value, subject.mark, "json", {});
      for (const Field& path : paths.fields) {
        for (Expectation& e :
             expectations(path, kJsonOps, true, fmt::format("json {}", path.key), false)) {
          std::string error;
          std::optional<Check> check = Check::json(path.key, std::move(e), &error);
          if (!check) {
            reader_.fail(path.key_mark,
                         error.find("expected") != std::string::npos
                             ? fmt::format("json check: {}", error)
                             : fmt::format("json check: {}; expected a JSON path such as $.token "
                                           "or $.items[0].id",
                                           error));
          }
          checks.push_back(std::move(*check));
        }
      }
    } else {
      for (Expectation& e : expectations(subject, kDurationOps, false, "duration", true)) {
        checks.push_back(Check::duration(std::move(e)));
      }
    }
  }
  return checks;
}

// A check's expectations: a scalar (equals, where `shorthand`), a map of
// operators ({gt: 1, lt: 10} is two checks) or a list of such maps.
std::vector<Expectation> ResponseRules::expectations(const Field& spec, Keys ops, bool shorthand,
                                                     std::string_view subject, bool durations) {
  std::vector<Expectation> out;
  const std::string usage =
      fmt::format("a map of {}, e.g. {{{}: ...}}", yaml::join(ops, " | "), ops.front());
  if (spec.value.IsScalar() && shorthand) {
    Field equals = spec;
    equals.key = "equals";
    out.push_back(expectation(equals, subject, durations));
    return out;
  }
  if (spec.value.IsSequence()) {
    for (const YAML::Node& item : spec.value) {
      Field element = spec;
      element.value = item;
      element.mark = item.Mark().is_null() ? spec.mark : item.Mark();
      if (!item.IsMap()) {
        reader_.fail(element.mark, fmt::format("check on {} is {}; expected {}", subject,
                                               yaml::kind_of(item), usage));
      }
      for (Expectation& e : expectations(element, ops, false, subject, durations)) {
        out.push_back(std::move(e));
      }
    }
    return out;
  }
  if (!spec.value.IsMap()) {
    reader_.fail(spec.mark,
                 fmt::format("check on {} is {}; expected {}{}", subject, yaml::kind_of(spec.value),
                             usage, shorthand ? " or a value to equal" : ""));
  }
  const MapFields map =
      reader_.read_map(spec.value, spec.mark, fmt::format("check on {}", subject), ops);
  if (map.fields.empty()) {
    reader_.fail(spec.mark, fmt::format("check on {} is empty; expected {}", subject, usage));
  }
  for (const Field& op : map.fields) {
    out.push_back(expectation(op, subject, durations));
  }
  return out;
}

Expectation ResponseRules::expectation(const Field& op, std::string_view subject, bool durations) {
  std::string error;
  std::optional<Expectation> e;
  if (op.value.IsSequence()) {
    std::vector<std::string> values;
    for (const YAML::Node& item : op.value) {
      values.push_back(
          reader_.scalar(item, item.Mark().is_null() ? op.mark : item.Mark(), op.key, "a value"));
    }
    e = make_expectation(op.key, std::move(values), &error);
  } else {
    std::string text = reader_.scalar(op, "a value");
    bool is_number = op.value.Tag() == "?" && yaml::parse_double(yaml::trim(text)).has_value();
    if (durations) {
      text = std::to_string(reader_.duration_us(op));
      is_number = true;
    }
    e = make_expectation(op.key, text, is_number, &error);
  }
  if (!e) {
    std::string_view hint = "a value";
    if (op.key == "lt" || op.key == "le" || op.key == "gt" || op.key == "ge") {
      hint = "a number, such as {gt: 10}";
    } else if (op.key == "length") {
      hint = "a whole number, such as {length: 3}";
    } else if (op.key == "matches") {
      hint = "an RE2 regular expression, such as 'id\":\\d+'";
    } else if (op.key == "exists" || op.key == "not_exists") {
      hint = "true or false";
    } else if (op.key == "one_of") {
      hint = "a list such as {one_of: [paid, created]}";
    }
    reader_.fail(op.mark, fmt::format("check on {}: {}; expected {}", subject, error, hint));
  }
  return std::move(*e);
}

}  // namespace

std::vector<Extraction> compile_extractions(LoadContext& ctx, const Field& field) {
  return ResponseRules(ctx).extractions(field);
}

std::vector<Check> compile_checks(LoadContext& ctx, const Field& field, bool grpc) {
  return ResponseRules(ctx).checks(field, grpc);
}

}  // namespace millstone::scenario::detail
