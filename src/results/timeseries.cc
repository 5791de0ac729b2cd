#include "results/timeseries.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "metrics/snapshot.h"

namespace millstone::results {

namespace {

bool ends_with(const std::string& text, std::string_view suffix) {
  if (text.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    char c = text[text.size() - suffix.size() + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

// RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// Numbers as JSON writes them (shortest form that reads back the same);
// absent values as an empty field.
std::string cell(const nlohmann::json& entry, const char* key) {
  if (!entry.is_object() || !entry.contains(key)) return "";
  const nlohmann::json& v = entry[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

// The fixed columns, in order; every CSV has them whatever the run was.
constexpr const char* kColumns[] = {"second",
                                    "requests",
                                    "rps",
                                    "errors",
                                    "p50_ms",
                                    "p90_ms",
                                    "p95_ms",
                                    "p99_ms",
                                    "max_ms",
                                    "bytes_sent",
                                    "bytes_received",
                                    "connections_opened",
                                    "vus",
                                    "dropped_iterations",
                                    "checks_passed",
                                    "checks_failed"};
// Per step, after the fixed and error columns: step:<name>:<field>.
constexpr const char* kStepColumns[] = {"requests", "failed", "p50_ms", "p99_ms"};

std::string csv(const RunRecord& record) {
  const nlohmann::json& s = record.summary;
  std::vector<std::string> steps;
  if (s.contains("steps") && s["steps"].is_array()) {
    for (const nlohmann::json& step : s["steps"]) {
      if (step.contains("name") && step["name"].is_string())
        steps.push_back(step["name"].get<std::string>());
    }
  }
  std::vector<std::string> header(std::begin(kColumns), std::end(kColumns));
  for (size_t i = 0; i < metrics::kErrorCauseCount; ++i) {
    header.push_back(
        fmt::format("error:{}", metrics::error_cause_name(static_cast<metrics::ErrorCause>(i))));
  }
  for (const std::string& step : steps) {
    for (const char* field : kStepColumns)
      header.push_back(fmt::format("step:{}:{}", step, field));
  }
  std::string out;
  auto row = [&](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i) out += ',';
      out += csv_field(fields[i]);
    }
    out += "\r\n";
  };
  row(header);
  if (!s.contains("timeline") || !s["timeline"].is_array()) return out;
  for (const nlohmann::json& entry : s["timeline"]) {
    std::vector<std::string> fields;
    for (const char* column : kColumns)
      fields.push_back(cell(entry, column));
    const nlohmann::json causes = entry.is_object() && entry.contains("error_causes")
                                      ? entry["error_causes"]
                                      : nlohmann::json::object();
    for (size_t i = 0; i < metrics::kErrorCauseCount; ++i) {
      const char* name = metrics::error_cause_name(static_cast<metrics::ErrorCause>(i));
      fields.push_back(causes.is_object() && causes.contains(name) ? causes[name].dump() : "0");
    }
    for (const std::string& step : steps) {
      const nlohmann::json* data = nullptr;
      if (entry.is_object() && entry.contains("steps") && entry["steps"].is_object() &&
          entry["steps"].contains(step)) {
        data = &entry["steps"][step];
      }
      // A step idle in this second: no requests, no latency.
      fields.push_back(data ? cell(*data, "requests") : "0");
      fields.push_back(data ? cell(*data, "failed") : "0");
      fields.push_back(data ? cell(*data, "p50_ms") : "");
      fields.push_back(data ? cell(*data, "p99_ms") : "");
    }
    row(fields);
  }
  return out;
}

std::string ndjson(const RunRecord& record) {
  std::string out;
  const nlohmann::json& s = record.summary;
  if (!s.contains("timeline") || !s["timeline"].is_array()) return out;
  for (const nlohmann::json& entry : s["timeline"]) {
    out += entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

}  // namespace

bool series_format_for(const std::string& path, SeriesFormat* format) {
  if (ends_with(path, ".csv")) {
    *format = SeriesFormat::kCsv;
    return true;
  }
  if (ends_with(path, ".ndjson") || ends_with(path, ".jsonl")) {
    *format = SeriesFormat::kNdjson;
    return true;
  }
  return false;
}

std::string timeseries_text(const RunRecord& record, SeriesFormat format) {
  return format == SeriesFormat::kCsv ? csv(record) : ndjson(record);
}

void write_timeseries(const RunRecord& record, const std::string& path) {
  SeriesFormat format;
  if (!series_format_for(path, &format)) {
    throw ResultsError(fmt::format("{}: expected a file name ending in .csv or .ndjson", path));
  }
  std::string text = timeseries_text(record, format);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ResultsError(fmt::format("cannot open {}: {}", path, strerror(errno)));
  out << text;
  out.flush();
  if (!out) throw ResultsError(fmt::format("cannot write {}: {}", path, strerror(errno)));
}

}  // namespace millstone::results
