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
  for (const Case& c : cases)
    failures += !c.failure_message.empty();
  *out += fmt::format(
      "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" "
      "time=\"{:.3f}\" timestamp=\"{}\" hostname=\"{}\">\n",
      xml_escape(name), cases.size(), failures, time_s, iso_time(record.env.started_unix_ms),
      xml_escape(record.env.host));
  for (const Case& c : cases) {
    *out += fmt::format("    <testcase name=\"{}\" classname=\"{}\" time=\"0\"", xml_escape(c.name),
                        xml_escape(classname));
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
      Case c{str(t, "threshold"), "", "", "threshold"};
      bool passed = t.contains("passed") && t["passed"].is_boolean() && t["passed"].get<bool>();
      if (!passed) {
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
      Case c{str(k, "name"), "", "", "check"};
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
  // Whether the numbers cover the whole run: a worker that died or hung
  // makes every other verdict unreliable, so it is a failure of its own.
  std::vector<Case> run;
  {
    Case c{"complete", "", "", "incomplete"};
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

  size_t tests = thresholds.size() + checks.size() + run.size();
  size_t failures = 0;
  for (const auto* suite : {&thresholds, &checks, &run}) {
    for (const Case& c : *suite)
      failures += !c.failure_message.empty();
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"millstone {}\" tests=\"{}\" failures=\"{}\" errors=\"0\" "
      "time=\"{:.3f}\" timestamp=\"{}\">\n",
      xml_escape(prefix), tests, failures, duration, iso_time(record.env.started_unix_ms));
  write_suite(&out, "thresholds", prefix + ".thresholds", thresholds, duration, record);
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
