// dashboards/grafana/millstone.json: every metric a panel asks for is one the
// exporter emits, and every expression is PromQL that Prometheus can parse.
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "results/metrics_exporter.h"

namespace millstone::results {
namespace dashboard_test {

const std::string kDashboard = MILLSTONE_SOURCE_DIR "/dashboards/grafana/millstone.json";
constexpr const char* kPromtool = "/usr/bin/promtool";

nlohmann::json load_dashboard() {
  std::ifstream in(kDashboard);
  EXPECT_TRUE(in) << kDashboard;
  return nlohmann::json::parse(in);
}

// Panels, including those nested in collapsed rows.
void collect_panels(const nlohmann::json& panels, std::vector<nlohmann::json>* out) {
  for (const auto& p : panels) {
    out->push_back(p);
    if (p.contains("panels")) collect_panels(p["panels"], out);
  }
}

std::vector<std::string> panel_exprs(const nlohmann::json& dashboard) {
  std::vector<nlohmann::json> panels;
  collect_panels(dashboard["panels"], &panels);
  std::vector<std::string> exprs;
  for (const auto& p : panels) {
    if (!p.contains("targets")) continue;
    for (const auto& t : p["targets"])
      exprs.push_back(t.at("expr").get<std::string>());
  }
  return exprs;
}

// metric name -> label names, from an exposition with every family present.
std::map<std::string, std::set<std::string>> emitted() {
  ExporterLabels labels{"r", "s.yaml", {"f/a", "f/b"}, {"f/a: status in [200]"}, {"f"}};
  metrics::Snapshot total;
  total.steps.resize(2);
  total.checks.resize(1);
  total.flows.resize(1);
  total.status_counts[200] = 1;
  total.sockets.emplace();
  total.sockets->close_codes[1001] = 1;
  std::string text = render_exposition(labels, total, 1, 1, 1);
  std::map<std::string, std::set<std::string>> out;
  std::istringstream in(text);
  std::string line;
  const std::regex label(R"(([a-zA-Z_][a-zA-Z0-9_]*)=")");
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string name = line.substr(0, line.find('{'));
    std::string labels_text = line.substr(name.size(), line.rfind(' ') - name.size());
    auto& set = out[name];
    for (std::sregex_iterator it(labels_text.begin(), labels_text.end(), label), end; it != end;
         ++it)
      set.insert((*it)[1]);
  }
  return out;
}

TEST(GrafanaDashboard, HasTheDatasourceAndRunIdVariables) {
  nlohmann::json d = load_dashboard();
  EXPECT_GE(d["schemaVersion"].get<int>(), 36);
  EXPECT_LE(d["schemaVersion"].get<int>(), 41);
  EXPECT_FALSE(d["uid"].get<std::string>().empty());
  bool datasource = false, run_id = false;
  for (const auto& v : d["templating"]["list"]) {
    if (v["name"] == "datasource") {
      datasource = v["type"] == "datasource" && v["query"] == "prometheus";
    }
    if (v["name"] == "run_id") {
      run_id = v["type"] == "query" &&
               v["query"]["query"] == "label_values(millstone_run_info, run_id)" &&
               v["datasource"]["uid"] == "${datasource}";
    }
  }
  EXPECT_TRUE(datasource);
  EXPECT_TRUE(run_id);
  // Every query goes to the chosen data source and is narrowed to the chosen runs.
  std::vector<nlohmann::json> panels;
  collect_panels(d["panels"], &panels);
  std::set<int> ids;
  for (const auto& p : panels) {
    EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << "duplicate panel id " << p["id"];
    if (!p.contains("targets")) continue;
    EXPECT_EQ(p["datasource"]["uid"], "${datasource}") << p["title"];
    for (const auto& t : p["targets"]) {
      EXPECT_EQ(t["datasource"]["uid"], "${datasource}") << p["title"];
      std::string expr = t["expr"];
      EXPECT_NE(expr.find("run_id=~\"$run_id\""), std::string::npos) << expr;
    }
  }
}

TEST(GrafanaDashboard, HasThePanelsTheDocsPromise) {
  std::string all;
  for (const std::string& e : panel_exprs(load_dashboard()))
    all += e + "\n";
  for (const char* needed :
       {"rate(millstone_requests_total", "sum by (cause) (rate(millstone_request_errors_total",
        "histogram_quantile(0.5, sum by (le) (rate(millstone_request_duration_seconds_bucket",
        "histogram_quantile(0.9, sum by (le)", "histogram_quantile(0.99, sum by (le)",
        "histogram_quantile(0.99, sum by (step, le)", "millstone_vus", "millstone_checks_total",
        "millstone_bytes_sent_total", "millstone_bytes_received_total"}) {
    EXPECT_NE(all.find(needed), std::string::npos) << needed;
  }
}

TEST(GrafanaDashboard, EveryMetricAndLabelInAnExpressionIsExported) {
  auto exported = emitted();
  ASSERT_TRUE(exported.count("millstone_request_duration_seconds_bucket"));
  // A selector: the metric name and what is inside its braces, if anything.
  const std::regex selector(R"((millstone_[a-zA-Z0-9_]+)(\{([^}]*)\})?)");
  const std::regex matcher(R"(([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=))");
  const std::regex grouping(R"(by \(([^)]*)\))");
  size_t names = 0;
  for (const std::string& expr : panel_exprs(load_dashboard())) {
    std::set<std::string> labels_in_expr;
    for (std::sregex_iterator it(expr.begin(), expr.end(), selector), end; it != end; ++it) {
      std::string name = (*it)[1];
      ++names;
      ASSERT_TRUE(exported.count(name)) << name << " in " << expr << " is not exported";
      std::string inside = (*it)[3];
      for (std::sregex_iterator m(inside.begin(), inside.end(), matcher); m != end; ++m) {
        EXPECT_TRUE(exported[name].count((*m)[1])) << name << " has no label " << (*m)[1];
      }
      labels_in_expr.insert(exported[name].begin(), exported[name].end());
    }
    // `by (...)` groups on labels that the selected series carry (le comes with _bucket).
    for (std::sregex_iterator g(expr.begin(), expr.end(), grouping), end; g != end; ++g) {
      std::stringstream list((*g)[1].str());
      std::string label;
      while (std::getline(list, label, ',')) {
        label.erase(0, label.find_first_not_of(' '));
        label.erase(label.find_last_not_of(' ') + 1);
        EXPECT_TRUE(labels_in_expr.count(label)) << "by (" << label << ") in " << expr;
      }
    }
  }
  EXPECT_GT(names, 20u);
}

// Grafana's variables replaced by values PromQL accepts.
std::string as_promql(std::string expr) {
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"$__rate_interval", "1m"}, {"$run_id", ".+"}}) {
    for (size_t at; (at = expr.find(from)) != std::string::npos;)
      expr.replace(at, from.size(), to);
  }
  return expr;
}

TEST(GrafanaDashboard, ExpressionsAreBalanced) {
  for (const std::string& expr : panel_exprs(load_dashboard())) {
    std::string stack;
    bool in_string = false;
    for (char c : expr) {
      if (c == '"') in_string = !in_string;
      if (in_string) continue;
      if (c == '(' || c == '[' || c == '{') stack += c;
      if (c == ')' || c == ']' || c == '}') {
        ASSERT_FALSE(stack.empty()) << expr;
        char open = stack.back();
        stack.pop_back();
        EXPECT_EQ(open, c == ')' ? '(' : c == ']' ? '[' : '{') << expr;
      }
    }
    EXPECT_TRUE(stack.empty() && !in_string) << expr;
  }
}

struct ToolResult {
  int exit_code = -1;
  std::string output;
};

// Writes the expressions as recording rules and has `promtool check rules`
// parse them: Prometheus's own PromQL parser, offline.
ToolResult promtool_check_rules(const std::vector<std::string>& exprs) {
  nlohmann::json rules = nlohmann::json::array();
  for (size_t i = 0; i < exprs.size(); ++i)
    rules.push_back({{"record", "dashboard:expr_" + std::to_string(i)}, {"expr", exprs[i]}});
  nlohmann::json file = {{"groups", {{{"name", "dashboard"}, {"rules", rules}}}}};
  char path[] = "/tmp/millstone-rules-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << file.dump(2);  // JSON is YAML
  ToolResult r;
  std::string command = std::string(kPromtool) + " check rules " + path + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  if (p) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
      r.output.append(buf, n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  unlink(path);
  return r;
}

TEST(GrafanaDashboard, PromtoolParsesEveryExpression) {
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << "promtool is not installed";
  std::vector<std::string> exprs;
  for (const std::string& e : panel_exprs(load_dashboard()))
    exprs.push_back(as_promql(e));
  ASSERT_FALSE(exprs.empty());
  ToolResult r = promtool_check_rules(exprs);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("SUCCESS: " + std::to_string(exprs.size()) + " rules found"),
            std::string::npos)
      << r.output;
  // And the same check does reject a broken expression.
  ToolResult broken = promtool_check_rules({"histogram_quantile(0.99, rate(x[1m])"});
  EXPECT_NE(broken.exit_code, 0) << broken.output;
}

}  // namespace dashboard_test
}  // namespace millstone::results
