// `millstone k8s render FILE.yaml --agents N` (docs/agents.md#kubernetes):
// the manifests of one run over agents on a cluster, for `kubectl apply -f -`.
// A Secret with the join token (or a reference to an existing one), the
// scenario and its data files as a ConfigMap, the coordinator as a Job behind
// a Service, the agents as an Indexed Job. The command lines it writes are
// parsed by millstone's own parser before anything is printed.
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/k8s_yaml.h"
#include "cluster/token.h"
#include "scenario/loader.h"
#include "text/printable.h"

namespace millstone::cli {

namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kTokenDir = "/etc/millstone/token";
constexpr const char* kScenarioDir = "/etc/millstone/scenario";
constexpr const char* kResultsDir = "/results";
// What Kubernetes accepts in one ConfigMap (keys and values together).
constexpr size_t kMaxConfigMapBytes = size_t{1} << 20;
// The longest --name: "-coordinator" and the pods' suffixes must still fit
// the 63 characters of a label value and a DNS label.
constexpr size_t kMaxName = 40;

// `millstone run` flags render writes itself: after `--` they would contradict it.
constexpr std::string_view kRenderedRunFlags[] = {
    "--agents", "--agent-listen", "--token-file", "--agent-wait", "--on-agent-loss",
    "-o",       "--out",          "--report",     "--no-history", "--history",
    "-w",       "--workers",      "--monitor",    "--live-events"};

int usage(const std::string& message) {
  fmt::print(stderr, "millstone k8s render: {}\n", message);
  return kExitUsage;
}

int config_error(const std::string& message) {
  fmt::print(stderr, "millstone k8s render: {}\n", message);
  return kExitConfig;
}

// RFC 1123 label: what Kubernetes requires of names, namespaces and Services.
bool dns_label(const std::string& s, size_t max) {
  static const std::regex kLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  return !s.empty() && s.size() <= max && std::regex_match(s, kLabel);
}

// A Kubernetes quantity as people write them for CPU and memory (2, 500m, 1.5,
// 512Mi, 2G), above zero.
bool quantity(const std::string& s) {
  static const std::regex kQuantity(
      R"(([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?)");
  return std::regex_match(s, kQuantity) &&
         s.find_first_of("123456789") < s.find_first_not_of("0123456789.");
}

// Cores a CPU quantity asks for, rounded up: the agent's --workers.
uint32_t cores_of(const std::string& cpu) {
  double value = std::strtod(cpu.c_str(), nullptr);
  if (!cpu.empty() && cpu.back() == 'm') value /= 1000;
  return static_cast<uint32_t>(std::max(1.0, std::ceil(value - 1e-9)));
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// A ConfigMap key for the file at `relative` (keys are [-._a-zA-Z0-9]+, no
// folders: the volume's items put each key back at its path).
std::string configmap_key(const std::string& relative, std::set<std::string>* used) {
  std::string key = relative;
  for (char& c : key) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (!ok) c = '-';
  }
  if (key.size() > 200) key = key.substr(key.size() - 200);
  if (key == "." || key == "..") key = "file";
  std::string unique = key;
  for (int n = 2; used->count(unique) > 0; ++n)
    unique = fmt::format("{}-{}", n, key);
  used->insert(unique);
  return unique;
}

struct MountedFile {
  std::string key;       // in the ConfigMap
  std::string relative;  // path under kScenarioDir
  std::string bytes;
};

Json labels(const K8sRenderOptions& o, const char* component) {
  return Json{{"app.kubernetes.io/name", "millstone"},
              {"app.kubernetes.io/instance", o.name},
              {"app.kubernetes.io/component", component}};
}

Json metadata(const K8sRenderOptions& o, const std::string& name, const char* component) {
  Json m{{"name", name}};
  if (!o.kube_namespace.empty()) m["namespace"] = o.kube_namespace;
  m["labels"] = labels(o, component);
  return m;
}

Json resources(const std::string& cpu, const std::string& memory) {
  // No CPU limit: CFS throttling would stall the event loops mid-request and
  // show up as the target's latency. Memory: request and limit alike.
  Json requests{{"cpu", cpu}};
  if (memory.empty()) return Json{{"requests", requests}};
  requests["memory"] = memory;
  return Json{{"requests", requests}, {"limits", Json{{"memory", memory}}}};
}

Json token_volume(const std::string& secret) {
  // 0400 (256): millstone refuses a token file its group or others may read.
  return Json{
      {"name", "token"},
      {"secret", Json{{"secretName", secret},
                      {"defaultMode", 256},
                      {"items", Json::array({Json{{"key", "token"}, {"path", "token"}}})}}}};
}

Json hardened() {
  // Root in the container (Kubernetes makes Secret files root's; fsGroup
  // would make the token group-readable, which millstone refuses), but no
  // capabilities and no way to gain any.
  return Json{{"allowPrivilegeEscalation", false},
              {"capabilities", Json{{"drop", Json::array({"ALL"})}}}};
}

// The coordinator's container command: millstone, then (with a hold) the pod
// stays up with /results so `kubectl cp` can fetch the report, and exits
// with millstone's code. SIGTERM (kubectl delete) is passed on to millstone.
std::string coordinator_script(int64_t hold_us) {
  std::string script =
      "trap 'kill -TERM \"$pid\" 2>/dev/null' TERM INT\n"
      "millstone \"$@\" & pid=$!\n"
      "while :; do wait \"$pid\"; code=$?; kill -0 \"$pid\" 2>/dev/null || break; done\n";
  if (hold_us > 0) {
    const int64_t seconds = (hold_us + 999'999) / 1'000'000;
    script += fmt::format(
        "trap 'exit \"$code\"' TERM INT\n"
        "echo \"millstone exited $code; {0} is kept {1} s: kubectl cp "
        "$POD_NAMESPACE/$POD_NAME:{0} ./results\" >&2\n"
        "sleep {1} & wait $!\n",
        kResultsDir, seconds);
  }
  return script + "exit \"$code\"\n";
}

// Runs argv through millstone's own parser (flags, values, ranges).
bool parses(std::vector<std::string> args) {
  args.insert(args.begin(), "millstone");
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  return main_command(static_cast<int>(args.size()), argv.data(), true) == kExitOk;
}

// Reads the file the scenario names `name` (relative to its folder, as the
// loader resolves it) into *file; "" or why not (exit 3).
std::string mount_file(const std::string& scenario, const std::filesystem::path& folder,
                       const std::string& name, const char* what, std::set<std::string>* keys,
                       MountedFile* file) {
  namespace fs = std::filesystem;
  fs::path path(name);
  if (path.is_relative()) path = fs::path(scenario).parent_path() / path;
  const fs::path absolute = fs::absolute(path).lexically_normal();
  const std::string relative = absolute.lexically_relative(folder).string();
  if (relative.empty() || relative.rfind("..", 0) == 0) {
    return fmt::format(
        "{}: {} {} is outside the scenario's folder {}; the coordinator's pod mounts that folder "
        "from a ConfigMap: move the file under it",
        text::printable(scenario), what, text::printable(name), text::printable(folder.string()));
  }
  std::ifstream in(absolute, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    return fmt::format("{} {}: cannot read: {}", what, text::printable(absolute.string()),
                       std::strerror(errno));
  }
  *file = {configmap_key(relative, keys), relative, bytes.str()};
  return "";
}

}  // namespace

int k8s_render_command(const K8sRenderOptions& o) {
  if (!dns_label(o.name, kMaxName)) {
    return usage(
        fmt::format("--name '{}': expected a DNS label of at most {} characters "
                    "(lowercase letters, digits and '-', a letter or digit at both ends)",
                    text::printable(o.name), kMaxName));
  }
  if (!o.kube_namespace.empty() && !dns_label(o.kube_namespace, 63)) {
    return usage(
        fmt::format("--namespace '{}': expected a DNS label (lowercase letters, digits "
                    "and '-', at most 63 characters)",
                    text::printable(o.kube_namespace)));
  }
  if (o.image.empty() || o.image.find_first_of(" \t\r\n") != std::string::npos ||
      !yaml_printable(o.image)) {
    return usage(
        fmt::format("--image '{}': expected an image reference such as "
                    "registry.example/millstone:0.1.0",
                    text::printable(o.image)));
  }
  if (!o.token_secret.empty() && !o.token_file.empty()) {
    return usage(
        "--token-secret and --token-file: give one (--token-secret names an existing "
        "Secret; --token-file puts that token in a rendered one)");
  }
  if (!o.token_secret.empty() && !dns_label(o.token_secret, 63) &&
      !std::regex_match(o.token_secret, std::regex("[a-z0-9]([-a-z0-9.]*[a-z0-9])?"))) {
    return usage(
        fmt::format("--token-secret '{}': expected a Secret's name (lowercase letters, "
                    "digits, '-' and '.')",
                    text::printable(o.token_secret)));
  }
  for (const auto& [flag, value] :
       {std::pair{"--agent-cpu", o.agent_cpu}, std::pair{"--coordinator-cpu", o.coordinator_cpu},
        std::pair{"--agent-memory", o.agent_memory},
        std::pair{"--coordinator-memory", o.coordinator_memory}}) {
    if ((!value.empty() || std::string_view(flag).find("cpu") != std::string_view::npos) &&
        !quantity(value)) {
      return usage(
          fmt::format("{} '{}': expected a Kubernetes quantity above zero such as 2, "
                      "500m, 512Mi or 4Gi",
                      flag, text::printable(value)));
    }
  }
  for (const std::string& arg : o.run_args) {
    if (!yaml_printable(arg)) {
      return usage(fmt::format("'{}' after --: not printable UTF-8", text::printable(arg)));
    }
    const std::string flag = arg.substr(0, arg.find('='));
    if (std::find(std::begin(kRenderedRunFlags), std::end(kRenderedRunFlags), flag) !=
        std::end(kRenderedRunFlags)) {
      return usage(fmt::format("{} after --: k8s render sets it itself{}", flag,
                               flag == "--agents" || flag == "--agent-wait" ||
                                       flag == "--on-agent-loss" || flag == "--token-file"
                                   ? fmt::format(" (give {} to k8s render)", flag)
                                   : std::string()));
    }
  }

  // The scenario as the coordinator will load it, so a broken file fails here.
  std::unique_ptr<scenario::Plan> plan;
  try {
    plan = scenario::load_scenario_file(o.scenario, scenario_parameters(o.env));
  } catch (const scenario::ScenarioError& e) {
    return config_error(e.what());
  }
  namespace fs = std::filesystem;
  const fs::path scenario_path(o.scenario);
  const fs::path folder = fs::absolute(scenario_path).parent_path().lexically_normal();
  std::set<std::string> keys;
  std::vector<MountedFile> files;
  {
    std::ifstream in(o.scenario, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in) return config_error(fmt::format("{}: cannot read", text::printable(o.scenario)));
    const std::string name = scenario_path.filename().string();
    const std::string key = configmap_key(name, &keys);
    files.push_back({key, key, bytes.str()});
  }
  for (const scenario::DataSource& source : plan->data) {
    MountedFile file;
    const std::string why = mount_file(o.scenario, folder, source.path, "data file", &keys, &file);
    if (!why.empty()) return config_error(why);
    if (std::none_of(files.begin() + 1, files.end(),
                     [&](const MountedFile& f) { return f.relative == file.relative; })) {
      files.push_back(std::move(file));
    } else {
      keys.erase(file.key);
    }
  }
  // The scenario's TLS files are read when it loads: they travel with it. A
  // private key goes in a Secret, not in the ConfigMap.
  std::vector<MountedFile> private_files;
  for (const auto& [name, what] : {std::pair{plan->tls.ca_file, "tls ca file"},
                                   std::pair{plan->tls.cert_file, "tls cert file"},
                                   std::pair{plan->tls.key_file, "tls key file"}}) {
    if (name.empty()) continue;
    MountedFile file;
    const std::string why = mount_file(o.scenario, folder, name, what, &keys, &file);
    if (!why.empty()) return config_error(why);
    (std::string_view(what) == "tls key file" ? private_files : files).push_back(std::move(file));
  }
  size_t total = 0;
  for (const MountedFile& f : files)
    total += f.key.size() + f.bytes.size();
  if (total > kMaxConfigMapBytes) {
    const auto largest = std::max_element(files.begin(), files.end(), [](auto& a, auto& b) {
      return a.bytes.size() < b.bytes.size();
    });
    return config_error(fmt::format(
        "{} and its data files come to {} bytes, more than the 1 MiB a ConfigMap holds (the "
        "largest: {}, {} bytes); expected smaller data files",
        text::printable(o.scenario), total, text::printable(largest->relative),
        largest->bytes.size()));
  }

  std::string token;
  if (o.token_secret.empty()) {
    try {
      token = (o.token_file.empty() ? cluster::Token::generate()
                                    : cluster::Token::read_file(o.token_file))
                  .text();
    } catch (const cluster::TokenError& e) {
      return config_error(e.what());
    }
  }

  // The command lines, checked by millstone's own parser before printing.
  const std::string token_path = std::string(kTokenDir) + "/token";
  const std::string coordinator = o.name + "-coordinator";
  std::vector<std::string> run_args = {"run",
                                       std::string(kScenarioDir) + "/" + files.front().relative,
                                       "--agents",
                                       std::to_string(o.agents),
                                       "--agent-listen",
                                       fmt::format("0.0.0.0:{}", o.port),
                                       "--token-file",
                                       token_path,
                                       "--agent-wait",
                                       o.agent_wait,
                                       "--on-agent-loss",
                                       o.on_agent_loss,
                                       "--no-history",
                                       "--quiet",
                                       "-o",
                                       std::string(kResultsDir) + "/summary.json",
                                       "--report",
                                       std::string(kResultsDir) + "/report.html"};
  // The parameters the scenario used, as render saw them: the pod's
  // environment is not this shell's.
  for (const auto& [name, value] : plan->variables.used_parameters()) {
    if (!yaml_printable(value)) {
      return usage(fmt::format("parameter {}: its value is not printable UTF-8", name));
    }
    run_args.push_back("-e");
    run_args.push_back(name + "=" + value);
  }
  run_args.insert(run_args.end(), o.run_args.begin(), o.run_args.end());
  const uint32_t workers = o.agent_workers > 0 ? o.agent_workers : cores_of(o.agent_cpu);
  const std::vector<std::string> agent_args = {
      "agent",        "--join",    fmt::format("{}:{}", coordinator, o.port),
      "--token-file", token_path,  "--join-timeout",
      o.agent_wait,   "--workers", std::to_string(workers)};
  if (!parses(run_args)) {
    return usage(
        "the coordinator's `millstone run` command line above does not parse (check "
        "the flags after --)");
  }
  if (!parses(agent_args)) {
    return usage("the agents' `millstone agent` command line above does not parse");
  }

  const std::string secret = o.token_secret.empty() ? o.name + "-token" : o.token_secret;
  std::vector<Json> docs;
  if (o.token_secret.empty()) {
    docs.push_back(Json{{"apiVersion", "v1"},
                        {"kind", "Secret"},
                        {"metadata", metadata(o, secret, "token")},
                        {"type", "Opaque"},
                        {"stringData", Json{{"token", token}}}});
  }
  Json data = Json::object();
  Json binary = Json::object();
  Json items = Json::array();
  for (const MountedFile& f : files) {
    if (yaml_printable(f.bytes)) {
      data[f.key] = f.bytes;
    } else {
      binary[f.key] = base64(f.bytes);
    }
    items.push_back(Json{{"key", f.key}, {"path", f.relative}});
  }
  Json scenario_volume{{"name", "scenario"},
                       {"configMap", Json{{"name", o.name + "-scenario"}, {"items", items}}}};
  if (!private_files.empty()) {
    Json secret_items = Json::array();
    Json secret_data = Json::object();
    for (const MountedFile& f : private_files) {
      secret_data[f.key] = base64(f.bytes);
      secret_items.push_back(Json{{"key", f.key}, {"path", f.relative}, {"mode", 256}});
    }
    docs.push_back(Json{{"apiVersion", "v1"},
                        {"kind", "Secret"},
                        {"metadata", metadata(o, o.name + "-scenario-keys", "scenario")},
                        {"type", "Opaque"},
                        {"data", secret_data}});
    // One folder holding both: a projected volume of the ConfigMap and the Secret.
    scenario_volume = Json{
        {"name", "scenario"},
        {"projected",
         Json{{"sources", Json::array({Json{{"configMap", Json{{"name", o.name + "-scenario"},
                                                               {"items", items}}}},
                                       Json{{"secret", Json{{"name", o.name + "-scenario-keys"},
                                                            {"items", secret_items}}}}})}}}};
  }
  Json configmap{{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", metadata(o, o.name + "-scenario", "scenario")}};
  if (!data.empty()) configmap["data"] = data;
  if (!binary.empty()) configmap["binaryData"] = binary;
  docs.push_back(configmap);

  const Json port_number = o.port;
  docs.push_back(Json{{"apiVersion", "v1"},
                      {"kind", "Service"},
                      {"metadata", metadata(o, coordinator, "coordinator")},
                      {"spec", Json{{"selector", labels(o, "coordinator")},
                                    {"ports", Json::array({Json{{"name", "agents"},
                                                                {"port", port_number},
                                                                {"targetPort", port_number},
                                                                {"protocol", "TCP"}}})}}}});

  const auto field_env = [](const char* name, const char* path) {
    return Json{{"name", name}, {"valueFrom", Json{{"fieldRef", Json{{"fieldPath", path}}}}}};
  };
  Json coordinator_container{
      {"name", "coordinator"},
      {"image", o.image},
      {"command",
       Json::array({"/bin/sh", "-c", coordinator_script(o.results_hold_us), "millstone"})},
      {"args", run_args},
      {"env", Json::array({field_env("POD_NAME", "metadata.name"),
                           field_env("POD_NAMESPACE", "metadata.namespace")})},
      {"ports", Json::array({Json{{"name", "agents"}, {"containerPort", port_number}}})},
      {"resources", resources(o.coordinator_cpu, o.coordinator_memory)},
      {"securityContext", hardened()},
      {"volumeMounts",
       Json::array({Json{{"name", "token"}, {"mountPath", kTokenDir}, {"readOnly", true}},
                    Json{{"name", "scenario"}, {"mountPath", kScenarioDir}, {"readOnly", true}},
                    Json{{"name", "results"}, {"mountPath", kResultsDir}}})}};
  docs.push_back(Json{
      {"apiVersion", "batch/v1"},
      {"kind", "Job"},
      {"metadata", metadata(o, coordinator, "coordinator")},
      {"spec", Json{{"backoffLimit", 0},
                    {"template",
                     Json{{"metadata", Json{{"labels", labels(o, "coordinator")}}},
                          {"spec", Json{{"restartPolicy", "Never"},
                                        {"containers", Json::array({coordinator_container})},
                                        {"volumes",
                                         Json::array({token_volume(secret), scenario_volume,
                                                      Json{{"name", "results"},
                                                           {"emptyDir", Json::object()}}})}}}}}}}});

  Json agent_container{
      {"name", "agent"},
      {"image", o.image},
      {"args", agent_args},
      {"resources", resources(o.agent_cpu, o.agent_memory)},
      {"securityContext", hardened()},
      {"volumeMounts",
       Json::array({Json{{"name", "token"}, {"mountPath", kTokenDir}, {"readOnly", true}}})}};
  docs.push_back(Json{
      {"apiVersion", "batch/v1"},
      {"kind", "Job"},
      {"metadata", metadata(o, o.name + "-agents", "agent")},
      {"spec",
       Json{{"completionMode", "Indexed"},
            {"completions", o.agents},
            {"parallelism", o.agents},
            {"backoffLimit", 0},
            {"template",
             Json{{"metadata", Json{{"labels", labels(o, "agent")}}},
                  {"spec", Json{{"restartPolicy", "Never"},
                                // One agent per node where the cluster allows: agents
                                // sharing a node share its cores and its network.
                                {"topologySpreadConstraints",
                                 Json::array({Json{{"maxSkew", 1},
                                                   {"topologyKey", "kubernetes.io/hostname"},
                                                   {"whenUnsatisfiable", "ScheduleAnyway"},
                                                   {"labelSelector",
                                                    Json{{"matchLabels", labels(o, "agent")}}}}})},
                                {"containers", Json::array({agent_container})},
                                {"volumes", Json::array({token_volume(secret)})}}}}}}}});

  std::string out = fmt::format(
      "# millstone {}: {} over {} agents, for kubectl apply -f\n"
      "# Follow: kubectl logs -f job/{}; the report and JSON summary are in the pod's {} "
      "(docs/agents.md#kubernetes).\n",
      MILLSTONE_VERSION, text::printable(scenario_path.filename().string()), o.agents, coordinator,
      kResultsDir);
  for (size_t i = 0; i < docs.size(); ++i) {
    out += i == 0 ? "" : "---\n";
    out += to_yaml(docs[i]);
  }
  fmt::print("{}", out);
  return std::fflush(stdout) == 0 ? kExitOk : kExitInternal;
}

}  // namespace millstone::cli
