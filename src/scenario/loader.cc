// Scenario files -> Plan: the top level (target, defaults, vars, data,
// thresholds) and the order of the passes. Flows are compiled in
// loader_flows.cc, scenarios and their timeline in loader_scenarios.cc.
#include "scenario/loader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "http/request_builder.h"
#include "http/syntax.h"
#include "http/url.h"
#include "scenario/data_file.h"
#include "scenario/loader_context.h"
#include "scenario/target_thresholds.h"
#include "scenario/threshold_parse.h"
#include "tls/client_context.h"

namespace millstone::scenario {
namespace detail {

using yaml::Field;
using yaml::MapFields;
using yaml::shown;

namespace {

// Scenario files are written by hand; data belongs in data files.
constexpr size_t kMaxScenarioBytes = size_t{4} << 20;

std::exception_ptr make_scenario_error(const std::string& message) {
  return std::make_exception_ptr(ScenarioError(message));
}

// Soak tests run for hours; a week is beyond any real run and keeps sums of
// durations far from overflow.
constexpr config::FileKind kScenarioFile{
    make_scenario_error,
    "the scenario expands to more than 256 MiB through YAML aliases; expected a smaller file",
    7 * 24 * 3600e6, "a week; expected at most 168h"};
constexpr size_t kMaxThresholds = 1000;
constexpr size_t kMaxBodyCapture = size_t{64} << 20;
// A CA bundle of a few hundred certificates is ~250 KB.
constexpr size_t kMaxPemBytes = size_t{1} << 20;

constexpr std::string_view kTopKeys[] = {"name",   "target",  "seed",      "defaults",   "vars",
                                         "data",   "flows",   "scenarios", "thresholds", "slo",
                                         "drills", "proxies", "monitor",   "amqp",       "grpc"};
constexpr std::string_view kDefaultsKeys[] = {"headers", "timeout", "max_body_capture", "tls",
                                              "http"};
// The names of quick mode's flags (-k, --cacert, --cert, --key, --tls-min,
// --tls-max, --no-tls-resumption), spelt as YAML keys.
constexpr std::string_view kTlsKeys[] = {"insecure",    "ca",          "cert",       "key",
                                         "min_version", "max_version", "resumption", "server_name"};
constexpr std::string_view kDataKeys[] = {"file", "mode"};
constexpr std::string_view kModes[] = {"sequential", "random", "unique", "per_vu"};

constexpr std::string_view kBuiltinsHint =
    "vu, iteration, worker, uuid, random(A, B), now, now_ms, now_iso, corr";

using http::syntax::iequals;

// " (did you mean "shopper/login"?)" for "logn": names may be given by a
// unique ending ("login"), so a typo is compared with every ending of every
// name, and the suggestion is the full name it belongs to.
std::string suggest_full_name(std::string_view name,
                              const std::vector<std::vector<std::string>>& components,
                              const std::vector<std::string>& full_names) {
  std::vector<std::string> endings;
  std::vector<size_t> owner;
  for (size_t i = 0; i < components.size() && i < full_names.size(); ++i) {
    std::string ending;
    for (size_t c = components[i].size(); c-- > 0;) {
      ending = ending.empty() ? components[i][c] : components[i][c] + "/" + ending;
      endings.push_back(ending);
      owner.push_back(i);
    }
  }
  if (const auto best = yaml::closest(name, endings)) {
    const size_t at =
        static_cast<size_t>(std::find(endings.begin(), endings.end(), *best) - endings.begin());
    return fmt::format(" (did you mean {}?)", shown(full_names[owner[at]]));
  }
  return yaml::did_you_mean(name, full_names);
}

class TopLevel {
 public:
  TopLevel(yaml::Reader& reader, Plan& plan, std::string base_dir, const Overrides& overrides,
           const DataFileSet* data_files, const GrpcReflector* reflector)
      : reader_(reader),
        plan_(plan),
        ctx_{reader, plan},
        base_dir_(std::move(base_dir)),
        data_files_(data_files) {
    ctx_.overrides = overrides;
    ctx_.reflector = reflector;
  }

  void compile(const YAML::Node& root);

 private:
  void compile_target(const Field& field);
  void compile_defaults(const Field& field);
  void compile_tls(const Field& field);
  std::string read_pem(const Field& field);
  void compile_vars(const Field& field);
  void compile_data(const Field& field);
  DataSource load_data_source(const Field& field);
  void compile_thresholds(const Field& field);
  void check_new_name(std::string_view name, const YAML::Mark& mark, std::string_view what);

  yaml::Reader& reader_;
  Plan& plan_;
  LoadContext ctx_;
  std::string base_dir_;
  const DataFileSet* data_files_;  // nullptr: read from disk
};

void TopLevel::compile(const YAML::Node& root) {
  const YAML::Mark start = root.Mark().is_null() ? YAML::Mark() : root.Mark();
  if (root.IsNull()) {
    reader_.fail(start, "the scenario is empty; expected a map with target: and flows:");
  }
  const MapFields map = reader_.read_map(root, start, "the scenario", kTopKeys);

  if (const Field* name = map.find("name")) {
    plan_.name = reader_.scalar(*name, "a name for the report");
  } else {
    plan_.name = std::filesystem::path(plan_.source_path).stem().string();
  }
  if (plan_.name.empty()) {
    plan_.name = "scenario";
  }
  const Field* target = map.find("target");
  if (target == nullptr) {
    reader_.fail(map.mark,
                 "the scenario has no target; expected e.g. target: http://127.0.0.1:8080");
  }
  compile_target(*target);
  if (const Field* seed = map.find("seed")) {
    const std::string text = reader_.scalar(*seed, "a whole number");
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), plan_.seed);
    if (ec != std::errc() || end != text.data() + text.size()) {
      reader_.fail(seed->mark, fmt::format("seed {} is not a whole number; expected 0 to {}",
                                           shown(text), UINT64_MAX));
    }
    plan_.seed_given = true;
  }
  if (const Field* vars = map.find("vars")) {
    compile_vars(*vars);
  }
  if (const Field* data = map.find("data")) {
    compile_data(*data);
  }
  // Defaults may use templates, so they come after the variables they read.
  if (const Field* defaults = map.find("defaults")) {
    compile_defaults(*defaults);
  }
  const Field* flows = map.find("flows");
  if (flows == nullptr) {
    reader_.fail(map.mark, "the scenario has no flows; expected flows: with at least one flow");
  }
  if (const Field* grpc = map.find("grpc")) {
    compile_grpc(ctx_, *grpc, *flows, base_dir_, data_files_);
  }
  if (const Field* amqp = map.find("amqp")) {
    compile_amqp(ctx_, *amqp);
  }
  collect_extracted_names(ctx_, *flows);
  compile_flows(ctx_, *flows);
  compile_scenarios(ctx_, map.find("scenarios"));
  // Before thresholds and slo: target.NAME.* names one of them.
  if (const Field* monitor = map.find("monitor")) {
    compile_monitors(ctx_, *monitor);
  }
  if (const Field* thresholds = map.find("thresholds")) {
    compile_thresholds(*thresholds);
  }
  if (const Field* slo = map.find("slo")) {
    compile_objectives(ctx_, *slo);
  }
  // Before drills: a drill's proxy: may name one of them.
  if (const Field* proxies = map.find("proxies")) {
    compile_proxies(ctx_, *proxies);
  }
  // After scenarios: a drill may start when one of them starts.
  if (const Field* drills = map.find("drills")) {
    compile_drills(ctx_, *drills, base_dir_);
  }
}

// target: and vars: are fixed for the run: of the template language they take
// {{ env.NAME }} (run parameters) only.
std::string expand_parameters(LoadContext& ctx, const YAML::Node& node, const YAML::Mark& mark,
                              const std::string& text, std::string_view what) {
  if (text.find("{{") == std::string::npos) return text;
  const Template compiled = compile_template(ctx, node, mark, text, what);
  if (!compiled.is_literal()) {
    ctx.reader.fail(mark, fmt::format("{} {} changes per request; expected text and {{{{ env.NAME "
                                      "}}}} parameters only, as it is fixed for the run",
                                      what, shown(text)));
  }
  return compiled.render(RenderContext{});
}

void TopLevel::compile_target(const Field& field) {
  const std::string text =
      expand_parameters(ctx_, field.value, field.mark,
                        reader_.scalar(field, "a URL such as http://127.0.0.1:8080"), "target");
  std::string error;
  std::optional<http::Url> url = http::parse_url(text, &error);
  if (!url) {
    reader_.fail(field.mark, fmt::format("target {}: {}", shown(text), error));
  }
  // One base for every request: a path here would have to be joined with each
  // step's path, and --target could not replace it cleanly.
  if (url->target != "/") {
    reader_.fail(field.mark, fmt::format("target {} has a path or query {}; expected only scheme, "
                                         "host and port, such as http://127.0.0.1:8080 (paths "
                                         "belong in the steps)",
                                         shown(text), shown(url->target)));
  }
  plan_.target = std::move(*url);
}

void TopLevel::compile_defaults(const Field& field) {
  const MapFields map = reader_.read_map(field.value, field.mark, "defaults", kDefaultsKeys);
  if (const Field* headers = map.find("headers")) {
    for (auto& [name, value] : compile_headers(ctx_, *headers)) {
      ctx_.default_content_type = ctx_.default_content_type || iequals(name, "Content-Type");
      if (value.is_literal()) {
        plan_.default_headers.emplace_back(name, value.render(RenderContext{}));
      } else {
        ctx_.templated_default_headers.emplace_back(std::move(name), std::move(value));
      }
    }
  }
  if (const Field* timeout = map.find("timeout")) {
    plan_.timeout_us = reader_.duration_us(*timeout);
    if (plan_.timeout_us <= 0) {
      reader_.fail(timeout->mark, "timeout is 0; expected a duration above 0, such as 5s");
    }
  }
  if (const Field* capture = map.find("max_body_capture")) {
    plan_.max_body_capture = static_cast<size_t>(
        reader_.number(*capture, 0, static_cast<double>(kMaxBodyCapture), /*whole=*/true));
  }
  if (const Field* tls = map.find("tls")) {
    compile_tls(*tls);
  }
  if (const Field* http = map.find("http")) {
    plan_.http_version = compile_http_version(reader_, *http);
  }
}

// A PEM file named by defaults: tls:, relative to the scenario file, read
// now: a missing or empty file is an error at its line, not at the first
// connection. Workers load the scenario again and read it themselves.
std::string TopLevel::read_pem(const Field& field) {
  const std::string name = reader_.scalar(field, "a path to a PEM file");
  if (name.empty()) {
    reader_.fail(field.mark, fmt::format("{} is empty; expected a path to a PEM file", field.key));
  }
  std::filesystem::path path(name);
  if (path.is_relative() && !base_dir_.empty()) {
    path = std::filesystem::path(base_dir_) / path;
  }
  // Regular files only (read_whole_file): /dev/zero would never end.
  std::string content;
  const int error = config::read_whole_file(path.string(), kMaxPemBytes + 1, &content);
  if (error != 0 || content.empty() || content.size() > kMaxPemBytes) {
    reader_.fail(field.mark, fmt::format("tls {} file {} cannot be read: {}; expected a PEM file "
                                         "relative to the scenario file",
                                         field.key, shown(path.lexically_normal().string()),
                                         error != 0        ? std::strerror(error)
                                         : content.empty() ? "the file is empty"
                                                           : "it is larger than 1 MiB"));
  }
  reader_.charge(content.size(), field.mark);
  return content;
}

void TopLevel::compile_tls(const Field& field) {
  const MapFields map = reader_.read_map(field.value, field.mark, "tls", kTlsKeys);
  tls::TlsClientOptions& options = plan_.tls;
  if (const Field* insecure = map.find("insecure")) {
    options.insecure = reader_.boolean(*insecure);
  }
  if (const Field* resumption = map.find("resumption")) {
    options.resume_sessions = reader_.boolean(*resumption);
  }
  const auto version = [&](const char* key, tls::TlsVersion fallback) {
    const Field* given = map.find(key);
    if (given == nullptr) return fallback;
    const std::string text = reader_.scalar(*given, "1.2 or 1.3");
    if (text == "1.2") return tls::TlsVersion::k1_2;
    if (text == "1.3") return tls::TlsVersion::k1_3;
    reader_.fail(given->mark, fmt::format("{} {} is not a TLS version millstone speaks; expected "
                                          "1.2 or 1.3",
                                          key, shown(text)));
  };
  options.min_version = version("min_version", tls::TlsVersion::k1_2);
  options.max_version = version("max_version", tls::TlsVersion::k1_3);
  if (options.min_version > options.max_version) {
    reader_.fail(map.find("min_version")->mark,
                 "min_version 1.3 is above max_version 1.2; expected min_version <= max_version");
  }
  const Field* ca = map.find("ca");
  const Field* cert = map.find("cert");
  const Field* key = map.find("key");
  if ((cert == nullptr) != (key == nullptr)) {
    reader_.fail(cert ? cert->key_mark : key->key_mark,
                 cert ? "tls has cert but no key; expected key: with the client certificate's "
                        "private key"
                      : "tls has key but no cert; expected cert: with the client certificate");
  }
  if (ca != nullptr) {
    options.ca_pem = read_pem(*ca);
    options.ca_file = reader_.scalar(*ca, "a path");
  }
  if (cert != nullptr) {
    options.cert_pem = read_pem(*cert);
    options.cert_file = reader_.scalar(*cert, "a path");
    options.key_pem = read_pem(*key);
    options.key_file = reader_.scalar(*key, "a path");
  }
  if (const Field* name = map.find("server_name")) {
    plan_.tls_server_name = reader_.scalar(*name, "a host name such as api.example.com");
    std::string error;
    const std::optional<http::Url> url =
        http::parse_url(fmt::format("https://{}/", plan_.tls_server_name), &error);
    if (plan_.tls_server_name.empty() || !url || url->host != plan_.tls_server_name) {
      reader_.fail(name->mark, fmt::format("server_name {} is not a host name; expected e.g. "
                                           "api.example.com (sent as SNI and verified)",
                                           shown(plan_.tls_server_name)));
    }
  }
  // The same check the workers' contexts will make: a certificate that does
  // not parse, or a key that does not match it, is a load error here.
  try {
    tls::TlsClientContext check(options);
  } catch (const tls::TlsSetupError& e) {
    reader_.fail(field.mark, fmt::format("tls: {}", e.what()));
  }
}

void TopLevel::check_new_name(std::string_view name, const YAML::Mark& mark,
                              std::string_view what) {
  if (!yaml::is_identifier(name)) {
    reader_.fail(mark, fmt::format("{} name {} is not usable in templates; expected letters, "
                                   "digits and _, not starting with a digit",
                                   what, shown(name)));
  }
  if (is_reserved_name(name)) {
    reader_.fail(mark, fmt::format("{} name {} is a built-in of templates; expected another name "
                                   "(built-ins: {})",
                                   what, shown(name), kBuiltinsHint));
  }
}

void TopLevel::compile_vars(const Field& field) {
  const MapFields map = reader_.read_map(field.value, field.mark, "vars", {});
  for (const Field& var : map.fields) {
    check_new_name(var.key, var.key_mark, "variable");
    const std::string value =
        expand_parameters(ctx_, var.value, var.mark,
                          reader_.scalar(var.value, var.mark, fmt::format("variable {}", var.key),
                                         "a text or number (vars are constants)"),
                          fmt::format("variable {}", var.key));
    plan_.constants.emplace_back(plan_.variables.intern(var.key), value);
    ctx_.constant_names.push_back(var.key);
  }
}

void TopLevel::compile_data(const Field& field) {
  const MapFields map = reader_.read_map(field.value, field.mark, "data", {});
  for (const Field& source : map.fields) {
    check_new_name(source.key, source.key_mark, "data source");
    if (std::find(ctx_.constant_names.begin(), ctx_.constant_names.end(), source.key) !=
        ctx_.constant_names.end()) {
      reader_.fail(source.key_mark, fmt::format("data source {} has the name of a variable in "
                                                "vars:; expected distinct names",
                                                shown(source.key)));
    }
    DataSource loaded = load_data_source(source);
    const auto index = static_cast<int>(plan_.data.size());
    for (size_t c = 0; c < loaded.column_slots.size(); ++c) {
      const uint32_t slot = loaded.column_slots[c];
      if (ctx_.slot_data_source.size() <= slot) {
        ctx_.slot_data_source.resize(slot + 1, -1);
      }
      ctx_.slot_data_source[slot] = index;
    }
    plan_.data.push_back(std::move(loaded));
  }
}

DataSource TopLevel::load_data_source(const Field& field) {
  DataSource source;
  source.name = field.key;
  const Field* file = &field;
  std::optional<MapFields> map;
  // `users: users.csv` is the short form of `users: {file: users.csv}`.
  if (!field.value.IsScalar()) {
    map = reader_.read_map(field.value, field.mark, fmt::format("data source {}", field.key),
                           kDataKeys);
    file = map->find("file");
    if (file == nullptr) {
      reader_.fail(map->mark, fmt::format("data source {} has no file; expected e.g. {{file: "
                                          "users.csv, mode: unique}}",
                                          shown(field.key)));
    }
    if (const Field* mode = map->find("mode")) {
      const std::string text = reader_.scalar(*mode, "a mode");
      const auto found = std::find(std::begin(kModes), std::end(kModes), text);
      if (found == std::end(kModes)) {
        const auto suggestion = yaml::closest(text, kModes);
        reader_.fail(
            mode->mark,
            fmt::format(
                "unknown mode {}{}; expected sequential, random, unique or per_vu", shown(text),
                suggestion ? fmt::format(" (did you mean \"{}\"?)", *suggestion) : std::string()));
      }
      source.mode = static_cast<DataSource::Mode>(found - std::begin(kModes));
    }
  }
  const std::string name = reader_.scalar(*file, "a path to a .csv or .json file");
  std::filesystem::path path(name);
  if (path.is_relative() && !base_dir_.empty()) {
    path = std::filesystem::path(base_dir_) / path;
  }
  source.path = path.lexically_normal().string();
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  if (extension != ".csv" && extension != ".json") {
    reader_.fail(file->mark, fmt::format("data file {} is neither .csv nor .json; expected a CSV "
                                         "file with a header row or a JSON array of objects",
                                         shown(name)));
  }
  int error = 0;
  std::shared_ptr<const DataBytes> bytes;
  if (data_files_ != nullptr) {
    // A worker: the coordinator sent the bytes with Start.
    const auto sent = data_files_->find(source.path);
    if (sent == data_files_->end()) {
      reader_.fail(file->mark, fmt::format("data file {} was not sent with the run's Start; "
                                           "expected the coordinator to send every data file",
                                           shown(source.path)));
    }
    bytes = sent->second;
    if (bytes->view().size() > kMaxDataFileBytes) error = EFBIG;
  } else {
    // Mapped, not read: the coordinator's copy costs no private memory (see data_file.h).
    bytes = DataBytes::map_file(source.path, kMaxDataFileBytes, &error);
  }
  if (error == EFBIG) {
    reader_.fail(file->mark, fmt::format("data file {} is larger than 100 MiB; expected a smaller "
                                         "file (every worker indexes all rows)",
                                         shown(source.path)));
  }
  if (bytes == nullptr) {
    reader_.fail(file->mark, fmt::format("data file {} cannot be read: {}; expected a path "
                                         "relative to the scenario file",
                                         shown(source.path), std::strerror(error)));
  }
  source.table = extension == ".csv" ? parse_csv(std::move(bytes), source.path)
                                     : parse_json_rows(bytes->view(), source.path);
  for (const std::string& column : source.table.columns) {
    source.column_slots.push_back(plan_.variables.intern(source.name + "." + column));
  }
  return source;
}

void TopLevel::compile_thresholds(const Field& field) {
  if (!field.value.IsSequence()) {
    reader_.fail(field.mark, fmt::format("thresholds is {}; expected a list of strings such as "
                                         "[\"latency.p99 < 200ms\", \"checks > 99%\"]",
                                         yaml::kind_of(field.value)));
  }
  for (const YAML::Node& item : field.value) {
    const YAML::Mark mark = item.Mark().is_null() ? field.mark : item.Mark();
    if (plan_.thresholds.size() == kMaxThresholds) {
      reader_.fail(mark, fmt::format("more than {} thresholds; expected fewer", kMaxThresholds));
    }
    if (item.IsMap()) {
      // `- checks{check=login: status 200} > 99%` reads as a map because of ": ".
      reader_.fail(mark,
                   "threshold is a map (YAML reads \": \" as a key); expected a string, "
                   "in quotes when it contains \": \"");
    }
    const std::string text =
        reader_.scalar(item, mark, "threshold", "a string such as \"latency.p99 < 200ms\"");
    std::string error;
    size_t offset = 0;
    std::optional<Threshold> threshold = parse_threshold(text, &error, &offset);
    if (!threshold) {
      reader_.fail(reader_.mark_at(item, mark, offset), error);
    }
    threshold->location = reader_.location(mark);
    resolve_threshold_names(ctx_, *threshold, item, mark);
    plan_.thresholds.push_back(std::move(*threshold));
  }
}

}  // namespace

// Thresholds name steps, checks and flows; a name that matches nothing would
// make the gate pass vacuously, so every name must resolve to exactly one.
void resolve_threshold_names(LoadContext& ctx, Threshold& threshold, const YAML::Node& node,
                             const YAML::Mark& mark) {
  const std::string& text = node.Scalar();
  auto at_tag = [&](const std::string& value) {
    const size_t open = text.find('{');
    const size_t at = open == std::string::npos ? std::string::npos : text.find(value, open);
    return ctx.reader.mark_at(node, mark, at == std::string::npos ? 0 : at);
  };
  auto resolve = [&](std::string& name, std::string_view kind,
                     const std::vector<std::vector<std::string>>& components,
                     const std::vector<std::string>& full_names) {
    const std::vector<size_t> matches = resolve_suffix(name, components);
    if (matches.size() == 1) {
      name = full_names[matches[0]];
      return;
    }
    if (matches.empty()) {
      ctx.reader.fail(
          at_tag(name),
          fmt::format("no {} is named {}{}; expected one of: {}", kind, shown(name),
                      suggest_full_name(name, components, full_names), yaml::join(full_names, 12)));
    }
    std::vector<std::string> candidates;
    for (size_t i : matches) {
      candidates.push_back(full_names[i]);
    }
    ctx.reader.fail(at_tag(name), fmt::format("{} {} is ambiguous; expected one of the full names: "
                                              "{}",
                                              kind, shown(name), yaml::join(candidates, 12)));
  };
  if (!threshold.step.empty()) {
    resolve(threshold.step, "step", ctx.step_components, ctx.plan.step_names);
  }
  if (!threshold.check.empty()) {
    resolve(threshold.check, "check", ctx.check_components, ctx.plan.check_names);
  }
  if (!threshold.flow.empty()) {
    std::vector<std::string> flows;
    for (const Flow& flow : ctx.plan.flows) {
      flows.push_back(flow.name);
    }
    if (std::find(flows.begin(), flows.end(), threshold.flow) == flows.end()) {
      ctx.reader.fail(
          at_tag(threshold.flow),
          fmt::format("no flow is named {}{}; expected one of: {}", shown(threshold.flow),
                      yaml::did_you_mean(threshold.flow, flows), yaml::join(flows, 12)));
    }
  }
  if (threshold.metric == Threshold::Metric::kTarget && !threshold.target.monitor.empty()) {
    // target.NAME.*: NAME is a monitor: entry of the file (docs/monitoring.md).
    std::vector<monitor::Target> endpoints;
    for (const MonitorEndpoint& m : ctx.plan.monitors)
      endpoints.push_back({m.name, m.url, m.metrics, m.interval_us / 1000, m.location});
    const size_t at = text.find("target.");
    const YAML::Mark name_mark =
        ctx.reader.mark_at(node, mark, at == std::string::npos ? 0 : at + 7);
    if (endpoints.empty()) {
      ctx.reader.fail(name_mark,
                      fmt::format("no monitor: entry is named {}; expected a monitor: entry with "
                                  "name: {} (or target.cpu, target.memory... for every endpoint)",
                                  shown(threshold.target.monitor), threshold.target.monitor));
    }
    Threshold unlocated = threshold;
    unlocated.location.clear();
    if (const std::string problem = target_threshold_problem(unlocated, endpoints);
        !problem.empty()) {
      ctx.reader.fail(name_mark, problem);
    }
  }
  if (threshold.metric == Threshold::Metric::kCheckPassRate && ctx.plan.check_names.empty()) {
    ctx.reader.fail(mark,
                    "a checks threshold, but no step has a check:; expected check: on the "
                    "steps it should judge (with no checks it would measure nothing)");
  }
}

bool is_json_number(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
    return i > from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

bool is_reserved_name(std::string_view name) {
  return std::find(std::begin(kReservedNames), std::end(kReservedNames), name) !=
         std::end(kReservedNames);
}

uint8_t compile_http_version(yaml::Reader& reader, const yaml::Field& field) {
  const std::string text = reader.scalar(field, "an HTTP version, 2 or 1.1");
  if (text == "2" || text == "2.0") return 2;
  if (text == "1.1" || text == "1") return 1;
  reader.fail(field.mark, fmt::format("http: {}; expected 2 (HTTP/2: h2 by ALPN over TLS, prior "
                                      "knowledge over cleartext) or 1.1",
                                      shown(text)));
}

Template compile_template(LoadContext& ctx, const YAML::Node& node, const YAML::Mark& mark,
                          std::string_view text, std::string_view what) {
  std::string error;
  size_t offset = 0;
  std::optional<Template> compiled =
      Template::compile(text, ctx.plan.variables, /*allow_new=*/false, &error, &offset);
  if (compiled) {
    return std::move(*compiled);
  }
  const YAML::Mark at = ctx.reader.mark_at(node, mark, offset);
  constexpr std::string_view kUnknown = "unknown variable '";
  if (error.starts_with(kUnknown)) {
    const size_t end = error.find('\'', kUnknown.size());
    const std::string name = error.substr(kUnknown.size(), end - kUnknown.size());
    std::vector<std::string> known;
    for (size_t slot = 0; slot < ctx.plan.variables.size(); ++slot) {
      known.push_back(ctx.plan.variables.name(static_cast<uint32_t>(slot)));
    }
    std::vector<std::string> candidates = known;
    candidates.insert(candidates.end(), std::begin(kReservedNames), std::end(kReservedNames));
    ctx.reader.fail(
        at, fmt::format("{} uses unknown variable {}{}; expected a name from vars:, a data column "
                        "(source.column), a name some extract: sets, or a built-in ({}); known: {}",
                        what, shown(name), yaml::did_you_mean(name, candidates), kBuiltinsHint,
                        known.empty() ? std::string("none") : yaml::join(known, 20)));
  }
  if (error.starts_with("parameter env.")) {
    ctx.reader.fail(at, fmt::format("{} uses {}", what, error));
  }
  if (error.find("expected") != std::string::npos) {
    ctx.reader.fail(at, fmt::format("{} has a broken template: {}", what, error));
  }
  ctx.reader.fail(at, fmt::format("{} has a broken template: {}; expected {{{{ name }}}}, "
                                  "{{{{ name | urlencode }}}} or {{{{ random(1, 10) }}}} (see "
                                  "docs/scenarios.md#templates)",
                                  what, error));
}

std::vector<std::pair<std::string, Template>> compile_headers(LoadContext& ctx,
                                                              const Field& field) {
  // Any header name is a valid key, so the map is read without a key list.
  const MapFields map = ctx.reader.read_map(field.value, field.mark, field.key, {});
  std::vector<std::pair<std::string, Template>> headers;
  for (const Field& header : map.fields) {
    const std::string& name = header.key;
    if (!http::syntax::is_token(name)) {
      ctx.reader.fail(header.key_mark, fmt::format("header name {} is not an HTTP token; expected "
                                                   "letters, digits and !#$%&'*+-.^_`|~",
                                                   shown(name)));
    }
    // Host comes from target:; the rest is framing (shared with quick mode's -H).
    if (iequals(name, "Host") || http::is_framing_header(name)) {
      ctx.reader.fail(header.key_mark,
                      fmt::format("header {} is set by millstone (from target: and the body); "
                                  "expected other headers",
                                  name));
    }
    const std::string value = ctx.reader.scalar(header, "a header value");
    const auto bad = std::find_if(value.begin(), value.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u != '\t' && (u < 0x20 || u == 0x7f);
    });
    if (bad != value.end()) {
      ctx.reader.fail(
          ctx.reader.mark_at(header.value, header.mark, static_cast<size_t>(bad - value.begin())),
          fmt::format("header {} value {} contains control characters; expected one "
                      "line of text",
                      name, shown(value)));
    }
    headers.emplace_back(name, compile_template(ctx, header.value, header.mark, value,
                                                fmt::format("header {}", name)));
  }
  return headers;
}

}  // namespace detail

std::unique_ptr<Plan> parse_scenario(std::string_view yaml_text, const std::string& source_name,
                                     const std::string& base_dir, const Parameters& parameters,
                                     const Overrides& overrides, const DataFileSet* data_files,
                                     const GrpcReflector* reflector) {
  if (yaml_text.size() > detail::kMaxScenarioBytes) {
    throw ScenarioError(
        fmt::format("{}: the scenario is {} bytes; expected at most 4 MiB (put "
                    "data in data files)",
                    source_name, yaml_text.size()));
  }
  const std::string text(yaml_text);
  const YAML::Node root = yaml::load_document(text, source_name, detail::kScenarioFile);
  auto plan = std::make_unique<Plan>();
  plan->source_path = source_name;
  plan->variables.set_parameters(parameters);
  yaml::Reader reader(source_name, text, detail::kScenarioFile);
  try {
    detail::TopLevel(reader, *plan, base_dir, overrides, data_files, reflector).compile(root);
  } catch (const YAML::Exception& e) {
    // Conversions inside yaml-cpp (a bad alias...) are still the file's fault.
    throw ScenarioError(fmt::format("{}: invalid YAML: {}; expected well-formed YAML",
                                    reader.location(e.mark), e.msg));
  }
  return plan;
}

std::unique_ptr<Plan> load_scenario_file(const std::string& path, const Parameters& parameters,
                                         const Overrides& overrides,
                                         const GrpcReflector* reflector) {
  std::string text;
  // One byte over the limit is enough for parse_scenario to report the size.
  if (const int error = yaml::read_whole_file(path, detail::kMaxScenarioBytes + 1, &text)) {
    throw ScenarioError(fmt::format("{}: cannot read: {}", path, std::strerror(error)));
  }
  return parse_scenario(text, path, std::filesystem::path(path).parent_path().string(), parameters,
                        overrides, nullptr, reflector);
}

}  // namespace millstone::scenario
