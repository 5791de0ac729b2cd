#include "results/junit.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include <fmt/format.h>

namespace millstone::results {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one
// (overlong forms, surrogates and values above U+10FFFF are invalid).
size_t utf8_sequence(std::string_view s, size_t i, uint32_t* code_point) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) {
    *code_point = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *code_point = cp;
  return n;
}

// XML 1.0 text: markup characters become entities; characters XML 1.0 does
// not allow at all (most C0 controls, U+FFFE, U+FFFF), even as references,
// are written visibly as \xNN or \uFFFF; invalid UTF-8 bytes as \xNN too.
std::string xml_escape(std::string_view text, bool attribute = true) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    size_t n = utf8_sequence(text, i, &cp);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[i]));
      ++i;
      continue;
    }
    if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') {
      out += fmt::format("\\x{:02x}", cp);
    } else if (cp == 0xFFFE || cp == 0xFFFF) {
      out += fmt::format("\\u{:04X}", cp);
    } else if (cp == '<') {
      out += "&lt;";
    } else if (cp == '>') {
      out += "&gt;";
    } else if (cp == '&') {
      out += "&amp;";
    } else if (cp == '"') {
      out += "&quot;";
    } else if (cp == '\'') {
      out += "&apos;";
    } else if (attribute && (cp == '\r' || cp == '\n' || cp == '\t')) {
      // Kept as references so attribute values keep them (parsers normalize
      // literal ones in attributes to spaces).
      out += fmt::format("&#{};", cp);
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string str(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const nlohmann::json& v = j[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

uint64_t count(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return 0;
  return j[key].get<uint64_t>();
}

struct Case {
  std::string name;
  std::string failure_message;  // empty = passed
  std::string failure_text;
  std::string type;
  // Not judged (a target.* threshold without data, docs/monitoring.md): <skipped/>.
  std::string skipped_message;
};

std::string iso_time(int64_t unix_ms) {
  time_t seconds = static_cast<time_t>(unix_ms / 1000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  return stamp;
}

void write_suite(std::string* out, const std::string& name, const std::string& classname,
                 const std::vector<Case>& cases, double time_s, const RunRecord& record) {
  size_t failures = 0;
  size_t skipped = 0;
  for (const Case& c : cases) {
    failures += !c.failure_message.empty();
    skipped += !c.skipped_message.empty();
  }
  *out += fmt::format(
      "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" "
      "time=\"{:.3f}\" timestamp=\"{}\" hostname=\"{}\">\n",
      xml_escape(name), cases.size(), failures, skipped, time_s,
      iso_time(record.env.started_unix_ms), xml_escape(record.env.host));
  for (const Case& c : cases) {
    *out += fmt::format("    <testcase name=\"{}\" classname=\"{}\" time=\"0\"", xml_escape(c.name),
                        xml_escape(classname));
    if (!c.skipped_message.empty()) {
      *out += fmt::format(">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                          xml_escape(c.skipped_message));
      continue;
    }
    if (c.failure_message.empty()) {
      *out += "/>\n";
      continue;
    }
    *out +=
        fmt::format(">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                    xml_escape(c.failure_message), xml_escape(c.type), xml_escape(c.failure_text));
  }
  *out += "  </testsuite>\n";
}

}  // namespace

std::string junit_xml(const RunRecord& record) {
  const nlohmann::json& s = record.summary;
  double duration =
      s.contains("duration_s") && s["duration_s"].is_number() ? s["duration_s"].get<double>() : 0.0;
  bool scenario = str(s, "model") == "scenario";
  std::string prefix = scenario && !str(s, "scenario").empty() ? str(s, "scenario") : record.name;

  std::vector<Case> thresholds;
  if (s.contains("thresholds") && s["thresholds"].is_array()) {
    for (const nlohmann::json& t : s["thresholds"]) {
      Case c{str(t, "threshold"), "", "", "threshold", ""};
      bool passed = t.contains("passed") && t["passed"].is_boolean() && t["passed"].get<bool>();
      if (str(t, "status") == "no_data") {
        c.skipped_message = "not evaluated: no data from the monitored target";
      } else if (!passed) {
        c.failure_message =
            fmt::format("observed {}, limit: {}", str(t, "observed"), str(t, "threshold"));
        c.failure_text = fmt::format("threshold {} at {}\nobserved: {}\n", str(t, "threshold"),
                                     str(t, "location"), str(t, "observed"));
      }
      thresholds.push_back(std::move(c));
    }
  }
  std::vector<Case> checks;
  if (s.contains("checks") && s["checks"].is_array()) {
    for (const nlohmann::json& k : s["checks"]) {
      Case c{str(k, "name"), "", "", "check", ""};
      uint64_t passed = count(k, "passed");
      uint64_t failed = count(k, "failed");
      if (failed) {
        c.failure_message = fmt::format("failed {} of {} times ({:.2f}% passed)", failed,
                                        passed + failed, 100.0 * passed / (passed + failed));
        c.failure_text = c.failure_message + "\n";
        if (k.contains("samples") && k["samples"].is_array()) {
          for (const nlohmann::json& sample : k["samples"]) {
            c.failure_text +=
                "e.g. " + (sample.is_string() ? sample.get<std::string>() : sample.dump()) + "\n";
          }
        }
      }
      checks.push_back(std::move(c));
    }
  }
  // One case per SLO objective per phase, then its sliding windows and its
  // recovery after each fault that ended (docs/scenarios.md#slos-and-phases).
  std::vector<Case> slo;
  const nlohmann::json* slo_json = s.contains("slo") && s["slo"].is_object() ? &s["slo"] : nullptr;
  if (slo_json && (*slo_json).contains("objectives") && (*slo_json)["objectives"].is_array()) {
    for (const nlohmann::json& o : (*slo_json)["objectives"]) {
      const std::string objective = str(o, "objective");
      const std::string location = str(o, "location");
      auto passed = [](const nlohmann::json& j) {
        return j.contains("passed") && j["passed"].is_boolean() && j["passed"].get<bool>();
      };
      if (o.contains("phases") && o["phases"].is_array()) {
        for (const nlohmann::json& p : o["phases"]) {
          Case c{fmt::format("{} [{}]", objective, str(p, "phase")), "", "", "slo", ""};
          if (p.contains("no_data") && p["no_data"].is_boolean() && p["no_data"].get<bool>()) {
            c.skipped_message = "not evaluated: no data from the monitored target in this phase";
          } else if (!passed(p)) {
            c.failure_message =
                fmt::format("observed {} in phase {} ({}s-{}s), limit: {}", str(p, "observed"),
                            str(p, "phase"), count(p, "start_s"), count(p, "end_s"), objective);
            c.failure_text = fmt::format("SLO {} at {}\nphase {}: observed {}\n", objective,
                                         location, str(p, "phase"), str(p, "observed"));
          }
          slo.push_back(std::move(c));
        }
      }
      if (o.contains("windows") && o["windows"].is_object()) {
        const nlohmann::json& w = o["windows"];
        Case c{fmt::format("{} [{}s windows]", objective, count(o, "window_s")), "", "", "slo", ""};
        if (count(w, "failed") > 0 && w.contains("worst") && w["worst"].is_object()) {
          const nlohmann::json& worst = w["worst"];
          c.failure_message =
              fmt::format("{} of {} windows failed; worst observed {} in {}s-{}s, limit: {}",
                          count(w, "failed"), count(w, "count"), str(worst, "observed"),
                          count(worst, "start_s"), count(worst, "end_s"), objective);
          c.failure_text =
              fmt::format("SLO {} at {}\n{}\n", objective, location, c.failure_message);
        }
        slo.push_back(std::move(c));
      }
      if (o.contains("recovery") && o["recovery"].is_array()) {
        for (const nlohmann::json& r : o["recovery"]) {
          const std::string status = str(r, "status");
          if (status == "still_on") continue;  // nothing to judge
          Case c{fmt::format("{} [recovery after {}]", objective, str(r, "fault")), "", "", "slo",
                 ""};
          if (status != "recovered") {
            const double watched =
                r.contains("time_s") && r["time_s"].is_number() ? r["time_s"].get<double>() : 0;
            c.failure_message = fmt::format("did not recover within {:.1f}s after {} ended",
                                            watched, str(r, "fault"));
            c.failure_text =
                fmt::format("SLO {} at {}\n{}\n", objective, location, c.failure_message);
          }
          slo.push_back(std::move(c));
        }
      }
    }
  }
  // Whether the numbers cover the whole run: a worker that died or hung
  // makes every other verdict unreliable, so it is a failure of its own.
  std::vector<Case> run;
  {
    Case c{"complete", "", "", "incomplete", ""};
    std::vector<std::string> failures;
    if (s.contains("worker_failures") && s["worker_failures"].is_array()) {
      for (const nlohmann::json& f : s["worker_failures"])
        failures.push_back(f.is_string() ? f.get<std::string>() : f.dump());
    }
    if (!failures.empty()) {
      c.failure_message =
          fmt::format("{} worker(s) failed; the results are incomplete", failures.size());
      for (const std::string& f : failures)
        c.failure_text += f + "\n";
    }
    run.push_back(std::move(c));
  }
  if (slo_json && (*slo_json).contains("abort") && (*slo_json)["abort"].is_object()) {
    // The run stopped early: what was not run was not judged.
    Case c{"not stopped by an abort guard", "", "", "aborted", ""};
    c.failure_message = str((*slo_json)["abort"], "reason");
    c.failure_text = c.failure_message + "\n";
    run.push_back(std::move(c));
  }

  size_t tests = thresholds.size() + slo.size() + checks.size() + run.size();
  size_t failures = 0;
  for (const auto* suite : {&thresholds, &slo, &checks, &run}) {
    for (const Case& c : *suite)
      failures += !c.failure_message.empty();
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"millstone {}\" tests=\"{}\" failures=\"{}\" errors=\"0\" "
      "time=\"{:.3f}\" timestamp=\"{}\">\n",
      xml_escape(prefix), tests, failures, duration, iso_time(record.env.started_unix_ms));
  write_suite(&out, "thresholds", prefix + ".thresholds", thresholds, duration, record);
  if (slo_json) write_suite(&out, "slo", prefix + ".slo", slo, duration, record);
  write_suite(&out, "checks", prefix + ".checks", checks, duration, record);
  write_suite(&out, "run", prefix + ".run", run, duration, record);
  out += "</testsuites>\n";
  return out;
}

void write_junit(const RunRecord& record, const std::string& path) {
  std::string xml = junit_xml(record);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ResultsError(fmt::format("cannot open {}: {}", path, strerror(errno)));
  out << xml;
  out.flush();
  if (!out) throw ResultsError(fmt::format("cannot write {}: {}", path, strerror(errno)));
}

}  // namespace millstone::results
