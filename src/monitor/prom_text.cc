#include "monitor/prom_text.h"

#include <charconv>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

namespace millstone::monitor {

namespace {

bool name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9');
}
bool label_start(char c) {
  return c != ':' && name_start(c);
}
bool label_char(char c) {
  return c != ':' && name_char(c);
}
bool blank(char c) {
  return c == ' ' || c == '\t';
}

// What a line quotes in an error: short and free of the line's own controls
// (the caller prints it through text::printable).
std::string quoted(std::string_view text) {
  constexpr size_t kMax = 40;
  return text.size() > kMax ? fmt::format("'{}...'", text.substr(0, kMax))
                            : fmt::format("'{}'", text);
}

// Go's strconv.ParseFloat, which the format names, for the forms exporters
// write: decimal and exponent notation, NaN and [+-]Inf (any case).
bool parse_value(std::string_view text, double* out) {
  if (text.empty()) return false;
  std::string_view digits = text;
  bool negative = false;
  if (digits.front() == '+' || digits.front() == '-') {
    negative = digits.front() == '-';
    digits.remove_prefix(1);
  }
  auto iequals = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char c = a[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != b[i]) return false;
    }
    return true;
  };
  if (iequals(digits, "inf") || iequals(digits, "infinity")) {
    *out = negative ? -HUGE_VAL : HUGE_VAL;
    return true;
  }
  if (iequals(digits, "nan")) {
    if (digits.size() != text.size()) return false;  // no sign on NaN
    *out = std::nan("");
    return true;
  }
  if (digits.empty() || digits.front() == '+' || digits.front() == '-') return false;
  // from_chars also reads "inf"/"nan" and hex floats would need a prefix it
  // does not take: what is left is plain decimal.
  for (char c : digits) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return false;
    }
  }
  double v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || end != digits.data() + digits.size()) return false;
  *out = negative ? -v : v;
  return true;
}

bool parse_timestamp(std::string_view text, int64_t* out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

class LineParser {
 public:
  LineParser(std::string_view line, size_t number, ParseError* error)
      : line_(line), number_(number), error_(error) {}

  bool fail(std::string message) {
    error_->line = number_;
    error_->message = std::move(message);
    return false;
  }
  bool at_end() const { return at_ == line_.size(); }
  char peek() const { return at_ < line_.size() ? line_[at_] : '\0'; }
  // Skips blanks; true if there were any.
  bool skip_blanks() {
    const size_t from = at_;
    while (at_ < line_.size() && blank(line_[at_]))
      ++at_;
    return at_ > from;
  }
  std::string_view rest() const { return line_.substr(at_); }
  std::string_view token() {
    const size_t from = at_;
    while (at_ < line_.size() && !blank(line_[at_]))
      ++at_;
    return line_.substr(from, at_ - from);
  }
  bool metric_name(std::string* out) {
    if (!name_start(peek())) {
      return fail(fmt::format("expected a metric name, got {}",
                              at_end() ? std::string("the end of the line") : quoted(rest())));
    }
    const size_t from = at_;
    while (at_ < line_.size() && name_char(line_[at_]))
      ++at_;
    out->assign(line_.substr(from, at_ - from));
    return true;
  }
  // `{a="x",b="y",}` (a trailing comma is allowed, as in the format's grammar).
  bool labels(Sample* sample, size_t max_labels) {
    ++at_;  // '{'
    skip_blanks();
    while (peek() != '}') {
      if (!label_start(peek())) {
        return fail(fmt::format("expected a label name or '}}', got {}",
                                at_end() ? std::string("the end of the line") : quoted(rest())));
      }
      const size_t from = at_;
      while (at_ < line_.size() && label_char(line_[at_]))
        ++at_;
      std::string name(line_.substr(from, at_ - from));
      skip_blanks();
      if (peek() != '=') return fail(fmt::format("expected '=' after label {}", name));
      ++at_;
      skip_blanks();
      if (peek() != '"') return fail(fmt::format("expected '\"' to open label {}'s value", name));
      ++at_;
      std::string value;
      for (;;) {
        if (at_end()) return fail(fmt::format("label {}'s value is not closed with '\"'", name));
        const char c = line_[at_++];
        if (c == '"') break;
        if (c != '\\') {
          value += c;
          continue;
        }
        const char e = peek();
        ++at_;
        if (e == '\\' || e == '"') {
          value += e;
        } else if (e == 'n') {
          value += '\n';
        } else {
          return fail(
              fmt::format("label {}'s value has an escape other than \\\\, \\\" or \\n", name));
        }
      }
      for (const auto& [have, unused] : sample->labels) {
        if (have == name) return fail(fmt::format("label {} appears twice", name));
      }
      if (sample->labels.size() >= max_labels) {
        return fail(fmt::format("more than {} labels on one sample", max_labels));
      }
      sample->labels.emplace_back(std::move(name), std::move(value));
      skip_blanks();
      if (peek() == ',') {
        ++at_;
        skip_blanks();
      } else if (peek() != '}') {
        return fail(fmt::format("expected ',' or '}}' after label {}'s value, got {}",
                                sample->labels.back().first,
                                at_end() ? std::string("the end of the line") : quoted(rest())));
      }
    }
    ++at_;  // '}'
    return true;
  }

 private:
  std::string_view line_;
  size_t at_ = 0;
  size_t number_;
  ParseError* error_;
};

bool unescape_help(std::string_view text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      *out += text[i];
      continue;
    }
    if (++i == text.size()) return false;
    if (text[i] == '\\') {
      *out += '\\';
    } else if (text[i] == 'n') {
      *out += '\n';
    } else {
      return false;
    }
  }
  return true;
}

std::optional<MetricType> type_named(std::string_view word) {
  if (word == "counter") return MetricType::kCounter;
  if (word == "gauge") return MetricType::kGauge;
  if (word == "histogram") return MetricType::kHistogram;
  if (word == "summary") return MetricType::kSummary;
  if (word == "untyped") return MetricType::kUntyped;
  return std::nullopt;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

struct FamilyState {
  size_t index = 0;      // into Exposition::families
  bool typed = false;    // a TYPE line was seen
  bool helped = false;   // a HELP line was seen
  bool sampled = false;  // a sample was seen (a TYPE must come before)
};

class Parser {
 public:
  Parser(Exposition* out, ParseError* error, const ParseLimits& limits)
      : out_(out), error_(error), limits_(limits) {}

  bool line(std::string_view text, size_t number) {
    LineParser p(text, number, error_);
    if (text.size() > limits_.max_line) {
      return p.fail(fmt::format("line of {} bytes; at most {}", text.size(), limits_.max_line));
    }
    if (text.find('\r') != std::string_view::npos) {
      return p.fail("carriage return in a line; the format ends lines with \\n alone");
    }
    p.skip_blanks();
    if (p.at_end()) return true;
    if (p.peek() == '#') return comment(p);
    return sample(p);
  }

 private:
  FamilyState& family(const std::string& name, LineParser& p, bool* ok) {
    auto it = states_.find(name);
    if (it != states_.end()) return it->second;
    if (out_->families.size() >= limits_.max_families) {
      *ok = p.fail(fmt::format("more than {} metric families", limits_.max_families));
      return overflow_;
    }
    FamilyState& state = states_[name];
    state.index = out_->families.size();
    out_->families.push_back(Family{name, MetricType::kUntyped, {}});
    return state;
  }

  bool comment(LineParser& p) {
    // "# HELP" and "# TYPE" are directives; any other "#" line is a comment.
    std::string_view hash = p.token();
    if (hash != "#") return true;
    p.skip_blanks();
    const std::string_view keyword = p.token();
    if (keyword != "HELP" && keyword != "TYPE") return true;
    if (!p.skip_blanks()) return p.fail(fmt::format("expected a metric name after {}", keyword));
    std::string name;
    if (!p.metric_name(&name)) return false;
    if (!p.at_end() && !p.skip_blanks()) {
      return p.fail(fmt::format("expected a blank after the metric name {} in {}", name, keyword));
    }
    bool ok = true;
    FamilyState& state = family(name, p, &ok);
    if (!ok) return false;
    Family& f = out_->families[state.index];
    if (keyword == "HELP") {
      if (state.helped) return p.fail(fmt::format("a second HELP line for {}", name));
      state.helped = true;
      if (!unescape_help(p.rest(), &f.help)) {
        return p.fail(fmt::format("HELP for {} has an escape other than \\\\ or \\n", name));
      }
      return true;
    }
    if (state.typed) return p.fail(fmt::format("a second TYPE line for {}", name));
    if (state.sampled) return p.fail(fmt::format("TYPE for {} after its samples", name));
    const std::string_view word = p.token();
    p.skip_blanks();
    const std::optional<MetricType> type = type_named(word);
    if (!type || !p.at_end()) {
      return p.fail(
          fmt::format("TYPE for {} is {}; expected counter, gauge, histogram, summary or untyped",
                      name, quoted(word.empty() ? p.rest() : word)));
    }
    state.typed = true;
    f.type = *type;
    return true;
  }

  // The family a sample belongs to: its own name, or a histogram's or
  // summary's name with the _bucket, _sum or _count suffix taken off.
  FamilyState* owner(const std::string& name, std::string_view* suffix) {
    if (auto it = states_.find(name); it != states_.end()) {
      *suffix = {};
      return &it->second;
    }
    for (std::string_view s : {"_bucket", "_sum", "_count"}) {
      if (!ends_with(name, s)) continue;
      auto it = states_.find(name.substr(0, name.size() - s.size()));
      if (it == states_.end()) continue;
      const MetricType type = out_->families[it->second.index].type;
      if (type == MetricType::kHistogram || (type == MetricType::kSummary && s != "_bucket")) {
        *suffix = s;
        return &it->second;
      }
    }
    return nullptr;
  }

  bool sample(LineParser& p) {
    if (out_->samples.size() >= limits_.max_samples) {
      return p.fail(fmt::format("more than {} samples", limits_.max_samples));
    }
    Sample s;
    if (!p.metric_name(&s.name)) return false;
    bool spaced = p.skip_blanks();
    if (p.peek() == '{') {
      if (!p.labels(&s, limits_.max_labels)) return false;
      spaced = p.skip_blanks();
    }
    if (!spaced) {
      return p.fail(p.at_end() ? fmt::format("sample {} has no value", s.name)
                               : fmt::format("expected a blank before {}'s value, got {}", s.name,
                                             quoted(p.rest())));
    }
    const std::string_view value = p.token();
    if (!parse_value(value, &s.value)) {
      return p.fail(fmt::format("sample {} has value {}; expected a number, NaN, +Inf or -Inf",
                                s.name, quoted(value)));
    }
    p.skip_blanks();
    if (!p.at_end()) {
      const std::string_view stamp = p.token();
      int64_t ms = 0;
      if (!parse_timestamp(stamp, &ms)) {
        return p.fail(fmt::format("sample {} has timestamp {}; expected milliseconds (an integer)",
                                  s.name, quoted(stamp)));
      }
      s.timestamp_ms = ms;
      p.skip_blanks();
      if (!p.at_end()) {
        return p.fail(
            fmt::format("unexpected {} after sample {}'s timestamp", quoted(p.rest()), s.name));
      }
    }
    std::string_view suffix;
    FamilyState* state = owner(s.name, &suffix);
    if (state == nullptr) {
      bool ok = true;
      state = &family(s.name, p, &ok);
      if (!ok) return false;
    }
    state->sampled = true;
    const MetricType type = out_->families[state->index].type;
    s.type = type;
    if (type == MetricType::kHistogram) {
      if (suffix.empty()) {
        return p.fail(
            fmt::format("histogram {} has a sample without _bucket, _sum or _count", s.name));
      }
      s.type = MetricType::kCounter;
      if (suffix == "_bucket") {
        double le = 0;
        const std::string_view bound = s.label("le");
        if (bound.empty() || !parse_value(bound, &le)) {
          return p.fail(
              fmt::format("histogram bucket {} needs an le label holding a number", s.name));
        }
      }
    } else if (type == MetricType::kSummary) {
      if (suffix.empty()) {
        double q = 0;
        const std::string_view quantile = s.label("quantile");
        if (quantile.empty() || !parse_value(quantile, &q)) {
          return p.fail(fmt::format("summary {} needs a quantile label holding a number", s.name));
        }
        s.type = MetricType::kGauge;
      } else {
        s.type = MetricType::kCounter;
      }
    }
    out_->samples.push_back(std::move(s));
    return true;
  }

  Exposition* out_;
  ParseError* error_;
  const ParseLimits& limits_;
  std::unordered_map<std::string, FamilyState> states_;
  FamilyState overflow_;  // what family() hands back past max_families (with an error)
};

}  // namespace

const char* metric_type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kUntyped:
      break;
  }
  return "untyped";
}

std::string_view Sample::label(std::string_view name) const {
  for (const auto& [key, value] : labels) {
    if (key == name) return value;
  }
  return {};
}

bool parse_text(std::string_view text, Exposition* out, ParseError* error,
                const ParseLimits& limits) {
  *out = Exposition{};
  Parser parser(out, error, limits);
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    if (!parser.line(line, number)) return false;
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return true;
}

std::string series_key(const Sample& sample) {
  std::string key = sample.name;
  if (sample.labels.empty()) return key;
  key += '{';
  for (size_t i = 0; i < sample.labels.size(); ++i) {
    if (i > 0) key += ',';
    key += sample.labels[i].first;
    key += "=\"";
    for (char c : sample.labels[i].second) {
      if (c == '\\' || c == '"') {
        key += '\\';
        key += c;
      } else if (c == '\n') {
        key += "\\n";
      } else {
        key += c;
      }
    }
    key += '"';
  }
  key += '}';
  return key;
}

}  // namespace millstone::monitor
