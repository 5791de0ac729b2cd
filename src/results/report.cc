#include "results/report.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "results/report_assets.h"

namespace millstone::results {

namespace {

// Inside <script type="application/json"> the only way out is a closing tag;
// escaping <, > and & (legal JSON escapes inside strings, and they never
// occur outside strings) makes sure no payload can end the element or open a
// comment.
std::string script_safe_json(const nlohmann::json& j) {
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (char c : text) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A script embedded in <script> must not contain "</script": the HTML parser
// would end the element there. "<\/" means the same to JavaScript.
std::string inline_script(std::string_view js) {
  std::string out(js);
  for (size_t at = 0; (at = out.find("</", at)) != std::string::npos; at += 3) {
    out.replace(at, 2, "<\\/");
  }
  return out;
}

nlohmann::json run_data(const RunRecord& record) {
  RunVerdict v = run_verdict(record);
  return {{"id", record.id},
          {"name", record.name},
          {"key", record.key},
          {"exit_code", record.exit_code},
          {"passed", record.passed()},
          {"verdict", {{"word", v.word}, {"judged", v.judged}, {"good", v.good}}},
          {"environment", to_json(record.env)},
          {"config", record.config},
          {"summary", record.summary}};
}

// Fills the page template in one pass: values are never searched for
// markers, so a run that contains "@@RUN_DATA@@" stays text.
std::string fill_template(const std::string& title, const nlohmann::json& data,
                          std::string_view view_js) {
  std::string scripts = inline_script(view_js);
  if (!scripts.empty()) scripts += "\n";
  scripts += inline_script(assets::report_js());
  struct Slot {
    std::string_view marker;
    std::string value;
  };
  const Slot slots[] = {
      {"@@TITLE@@", html_escape(title)},
      {"@@UPLOT_CSS@@", std::string(assets::uplot_css())},
      {"@@REPORT_CSS@@", std::string(assets::report_css())},
      {"@@RUN_DATA@@", script_safe_json(data)},
      {"@@UPLOT_JS@@", inline_script(assets::uplot_js())},
      {"@@REPORT_JS@@", std::move(scripts)},
  };
  std::string_view tpl = assets::report_template();
  std::string out;
  out.reserve(tpl.size() + 128 * 1024);
  size_t at = 0;
  while (true) {
    size_t next = tpl.find("@@", at);
    if (next == std::string_view::npos) break;
    const Slot* hit = nullptr;
    for (const Slot& slot : slots) {
      if (tpl.compare(next, slot.marker.size(), slot.marker) == 0) hit = &slot;
    }
    if (!hit) {
      out.append(tpl.substr(at, next + 2 - at));
      at = next + 2;
      continue;
    }
    out.append(tpl.substr(at, next - at));
    out += hit->value;
    at = next + hit->marker.size();
  }
  out.append(tpl.substr(at));
  return out;
}

void write_file(const std::string& html, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ResultsError(fmt::format("cannot open {}: {}", path, strerror(errno)));
  out << html;
  out.flush();
  if (!out) throw ResultsError(fmt::format("cannot write {}: {}", path, strerror(errno)));
}

}  // namespace

std::string html_report(const RunRecord& record) {
  std::string title = fmt::format("{} {} - millstone", run_verdict(record).word, record.name);
  return fill_template(title, run_data(record), "");
}

void write_html_report(const RunRecord& record, const std::string& path) {
  write_file(html_report(record), path);
}

std::string html_comparison(const Comparison& comparison, const RunRecord& run,
                            const RunRecord& baseline) {
  std::string title =
      fmt::format("{} {} vs {} - millstone",
                  comparison.regression() ? "REGRESSION" : "no regression", run.id, baseline.id);
  nlohmann::json data = {{"kind", "comparison"},
                         {"comparison", to_json(comparison)},
                         {"run", run_data(run)},
                         {"baseline", run_data(baseline)}};
  return fill_template(title, data, assets::compare_js());
}

void write_html_comparison(const Comparison& comparison, const RunRecord& run,
                           const RunRecord& baseline, const std::string& path) {
  write_file(html_comparison(comparison, run, baseline), path);
}

}  // namespace millstone::results
