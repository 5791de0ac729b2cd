#include "config/yaml_fields.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include "config/quantity.h"

namespace millstone::config {
namespace {

constexpr size_t kExpansionBudget = size_t{256} << 20;
constexpr size_t kEntryCost = 64;
constexpr std::string_view kLatencyKeys[] = {"distribution", "value",  "min", "max",  "mean",
                                             "stddev",       "median", "p99", "sigma"};

// Names people bring from k6, Artillery, Gatling and Locust, mapped to ours
// when plain edit distance would not find them.
constexpr std::pair<std::string_view, std::string_view> kForeignNames[] = {
    {"capture", "extract"},
    {"expect", "check"},
    {"assert", "check"},
    {"sleep", "think"},
    {"pause", "think"},
    {"wait", "think"},
    {"repeat", "loop"},
    {"count", "loop"},
    {"url", "path"},
    {"phases", "scenarios"},
    {"executors", "scenarios"},
    {"variables", "vars"},
    {"payload", "data"},
    {"feeders", "data"},
    {"feeder", "data"},
    {"base_url", "target"},
    {"baseurl", "target"},
    {"host", "target"},
    {"avg", "mean"},
    {"average", "mean"},
    {"startvus", "start_vus"},
    {"starttime", "start"},
    {"vu", "vus"},
};

// "preAllocatedVUs", "pre-allocated-vus" and "pre_allocated_vus" all become
// "preallocatedvus", so camelCase keys from k6 find their snake_case match.
std::string folded(std::string_view word) {
  std::string out;
  for (char c : word) {
    if (c != '_' && c != '-') {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

std::string ascii_lower(std::string_view word) {
  std::string out(word);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

template <typename Names>
std::optional<std::string_view> closest_in(std::string_view word, const Names& names) {
  const std::string key = folded(word);
  for (std::string_view name : names) {
    if (folded(name) == key) {
      return name;
    }
  }
  for (const auto& [foreign, ours] : kForeignNames) {
    if (foreign == key) {
      for (std::string_view name : names) {
        if (name == ours) {
          return name;
        }
      }
    }
  }
  // Case-insensitive: "Stauts" suggests "status".
  const std::string lowered = ascii_lower(word);
  std::optional<std::string_view> best;
  size_t best_distance = 3;
  for (std::string_view name : names) {
    const size_t distance = edit_distance(lowered, ascii_lower(name));
    if (distance < best_distance && distance < name.size()) {
      best_distance = distance;
      best = name;
    }
  }
  return best;
}

// `user: {{ users.name }}` is a YAML flow map inside a flow map: the most
// common YAML mistake with templates, so it gets its own message.
bool looks_like_unquoted_template(const YAML::Node& node) {
  if (!node.IsMap() || node.size() != 1) {
    return false;
  }
  return node.begin()->first.IsMap();
}

constexpr std::string_view kQuoteTemplateHint =
    "a template written without quotes, which YAML reads as a map; expected it in quotes, such "
    "as \"{{ users.name }}\"";

}  // namespace

const Field* MapFields::find(std::string_view key) const {
  for (const Field& field : fields) {
    if (field.key == key) {
      return &field;
    }
  }
  return nullptr;
}

std::string join(Keys keys, std::string_view separator) {
  std::string out;
  for (std::string_view key : keys) {
    if (!out.empty()) {
      out += separator;
    }
    out += key;
  }
  return out;
}

std::string join(const std::vector<std::string>& items, size_t max_items,
                 std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < max_items; ++i) {
    if (i > 0) {
      out += separator;
    }
    out += items[i];
  }
  if (items.size() > max_items) {
    out += fmt::format("{}... ({} more)", separator, items.size() - max_items);
  }
  return out;
}

std::optional<std::string_view> closest(std::string_view word, Keys candidates) {
  return closest_in(word, candidates);
}

std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& names) {
  if (auto best = closest_in(word, names)) {
    return std::string(*best);
  }
  return std::nullopt;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& names) {
  if (auto best = closest(word, names)) {
    return fmt::format(" (did you mean {}?)", shown(*best));
  }
  return "";
}

std::string_view kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "empty";
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "undefined";
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<double> parse_double(std::string_view text) {
  double value = 0;
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
  }
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

bool is_identifier(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

int read_whole_file(const std::string& path, size_t limit, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  // Only regular files: a FIFO or /dev/zero would block or never end.
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return S_ISDIR(info.st_mode) ? EISDIR : EINVAL;
  }
  int error = 0;
  char buffer[65536];
  while (out->size() < limit) {
    const ssize_t n = ::read(fd, buffer, std::min(sizeof buffer, limit - out->size()));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      error = errno;
    }
    if (n <= 0) {
      break;
    }
    out->append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return error;
}

Reader::Reader(std::string source_name, std::string_view text, const FileKind& kind)
    : source_(std::move(source_name)), text_(text), kind_(kind) {}

std::string Reader::location(const YAML::Mark& mark) const {
  if (mark.is_null()) {
    return source_;
  }
  return fmt::format("{}:{}:{}", source_, mark.line + 1, mark.column + 1);
}

void Reader::fail(const YAML::Mark& mark, std::string_view message) const {
  std::rethrow_exception(kind_.make_error(fmt::format("{}: {}", location(mark), message)));
}

YAML::Mark Reader::mark_at(const YAML::Node& scalar, const YAML::Mark& start, size_t offset) const {
  if (!scalar.IsScalar() || start.is_null() || start.pos < 0) {
    return start;
  }
  const std::string& value = scalar.Scalar();
  const auto pos = static_cast<size_t>(start.pos);
  if (value.find('\n') != std::string::npos || offset > value.size() || pos >= text_.size()) {
    return start;
  }
  size_t skip = 0;
  if (text_.compare(pos, value.size(), value) == 0) {
    skip = 0;
  } else if ((text_[pos] == '\'' || text_[pos] == '"') &&
             text_.compare(pos + 1, value.size(), value) == 0) {
    skip = 1;
  } else {
    return start;  // escapes, a tag, or a block scalar: the start is the best we know
  }
  YAML::Mark mark = start;
  mark.pos += static_cast<int>(skip + offset);
  mark.column += static_cast<int>(skip + offset);
  return mark;
}

void Reader::charge(size_t cost, const YAML::Mark& mark) {
  spent_ += cost;
  if (spent_ > kExpansionBudget) {
    fail(mark, kind_.expansion_message);
  }
}

size_t Reader::budget_left() const {
  return spent_ < kExpansionBudget ? kExpansionBudget - spent_ : 0;
}

MapFields Reader::read_map(const YAML::Node& node, const YAML::Mark& mark, std::string_view what,
                           Keys allowed) {
  if (looks_like_unquoted_template(node)) {
    fail(mark, fmt::format("{} is {}", what, kQuoteTemplateHint));
  }
  if (!node.IsMap()) {
    fail(mark, fmt::format("{} is {}; expected a map", what, kind_of(node)));
  }
  MapFields map;
  map.mark = mark;
  std::unordered_set<std::string> seen;
  for (const auto& entry : node) {
    YAML::Mark key_mark = entry.first.Mark();
    if (key_mark.is_null()) {
      key_mark = mark;
    }
    if (!entry.first.IsScalar()) {
      if (entry.first.IsMap()) {
        fail(key_mark, fmt::format("{} has {}", what, kQuoteTemplateHint));
      }
      fail(key_mark,
           fmt::format("{} has {} as a key; expected a key name", what, kind_of(entry.first)));
    }
    std::string key = entry.first.Scalar();
    charge(kEntryCost + key.size(), key_mark);
    if (key == "<<") {
      fail(key_mark, fmt::format("{} uses a YAML merge key (<<), which is not supported; expected "
                                 "the keys written out (aliases of whole values work)",
                                 what));
    }
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      const auto suggestion = closest(key, allowed);
      const std::string hint =
          suggestion ? fmt::format(" (did you mean \"{}\"?)", *suggestion) : std::string();
      fail(key_mark, fmt::format("unknown key {} in {}{}; expected one of: {}", shown(key), what,
                                 hint, join(allowed)));
    }
    if (!seen.insert(key).second) {
      fail(key_mark,
           fmt::format("duplicate key {} in {}; expected each key once", shown(key), what));
    }
    YAML::Mark value_mark = entry.second.Mark();
    if (entry.second.IsNull() || value_mark.is_null()) {
      value_mark = key_mark;
    }
    map.fields.push_back(Field{std::move(key), key_mark, entry.second, value_mark});
  }
  return map;
}

std::string Reader::scalar(const Field& field, std::string_view expected) {
  return scalar(field.value, field.mark, field.key, expected);
}

std::string Reader::scalar(const YAML::Node& node, const YAML::Mark& mark, std::string_view what,
                           std::string_view expected) {
  if (looks_like_unquoted_template(node)) {
    fail(mark, fmt::format("{} is {}", what, kQuoteTemplateHint));
  }
  if (!node.IsScalar()) {
    fail(mark, fmt::format("{} is {}; expected {}", what, kind_of(node), expected));
  }
  charge(node.Scalar().size(), mark);
  return node.Scalar();
}

int64_t Reader::duration_us(const Field& field) {
  return duration_us(scalar(field, "a duration such as 20ms"), field.mark, field.key);
}

int64_t Reader::duration_us(std::string_view raw, const YAML::Mark& mark, std::string_view what) {
  std::string problem;
  const std::optional<int64_t> us =
      parse_duration_us(raw, &problem, static_cast<int64_t>(kind_.max_duration_us));
  if (!us) fail(mark, fmt::format("{} {} {}", what, shown(raw), problem));
  return *us;
}

std::string format_number(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return fmt::format("{:.0f}", value);
  }
  return fmt::format("{:g}", value);
}

double Reader::number(const Field& field, double min, double max, bool whole) {
  const std::string raw = scalar(field, whole ? "a whole number" : "a number");
  const std::optional<double> value = parse_double(trim(raw));
  const std::string_view kind = whole ? "a whole number" : "a number";
  if (!value || (whole && *value != std::floor(*value))) {
    fail(field.mark, fmt::format("{} {} is not {}; expected {} from {} to {}", field.key,
                                 shown(raw), kind, kind, format_number(min), format_number(max)));
  }
  if (*value < min || *value > max) {
    fail(field.mark, fmt::format("{} {} is out of range; expected {} from {} to {}", field.key,
                                 shown(raw), kind, format_number(min), format_number(max)));
  }
  return *value;
}

bool Reader::boolean(const Field& field) {
  const std::string raw = scalar(field, "true or false");
  if (raw == "true" || raw == "True" || raw == "TRUE") {
    return true;
  }
  if (raw == "false" || raw == "False" || raw == "FALSE") {
    return false;
  }
  fail(field.mark,
       fmt::format("{} {} is not a boolean; expected true or false", field.key, shown(raw)));
}

random::LatencyModel Reader::latency(const Field& field) {
  if (field.value.IsScalar()) {
    const std::string raw = scalar(field, "a duration");
    const size_t dots = raw.find("..");
    if (dots == std::string::npos) {
      return random::LatencyModel::fixed(
          static_cast<double>(duration_us(raw, field.mark, field.key)));
    }
    // "1s..3s": the range form people reach for first; uniform is what it means.
    const int64_t min = duration_us(std::string_view(raw).substr(0, dots), field.mark, field.key);
    const int64_t max = duration_us(std::string_view(raw).substr(dots + 2), field.mark, field.key);
    if (max < min) {
      fail(field.mark, fmt::format("{} {} ends before it starts; expected MIN..MAX with MIN <= MAX",
                                   field.key, shown(raw)));
    }
    return random::LatencyModel::uniform(static_cast<double>(min), static_cast<double>(max));
  }
  if (!field.value.IsMap()) {
    fail(field.mark, fmt::format("{} is {}; expected a duration such as 1s, a range such as "
                                 "1s..3s or a map such as {{distribution: lognormal, median: 1s, "
                                 "p99: 5s}}",
                                 field.key, kind_of(field.value)));
  }
  const MapFields map = read_map(field.value, field.mark, field.key, kLatencyKeys);
  const Field* distribution = map.find("distribution");
  if (distribution == nullptr) {
    fail(map.mark, fmt::format("{} has no distribution; expected distribution: fixed, uniform, "
                               "normal, lognormal or exponential",
                               field.key));
  }
  const std::string name = scalar(*distribution, "a distribution name");

  // The parameters each distribution takes.
  struct Shape {
    std::string_view name;
    std::vector<std::string_view> keys;  // after "distribution"
    std::string_view usage;
  };
  static const Shape kShapes[] = {
      {"fixed", {"value"}, "value"},
      {"uniform", {"min", "max"}, "min and max"},
      {"normal", {"mean", "stddev"}, "mean and stddev"},
      {"lognormal", {"median", "p99", "sigma"}, "median and either p99 or sigma"},
      {"exponential", {"mean"}, "mean"},
  };
  const Shape* shape = nullptr;
  for (const Shape& candidate : kShapes) {
    if (candidate.name == name) {
      shape = &candidate;
    }
  }
  if (shape == nullptr) {
    fail(distribution->mark, fmt::format("unknown distribution {}; expected fixed, uniform, "
                                         "normal, lognormal or exponential",
                                         shown(name)));
  }
  for (const Field& param : map.fields) {
    if (param.key != "distribution" &&
        std::find(shape->keys.begin(), shape->keys.end(), param.key) == shape->keys.end()) {
      fail(param.key_mark, fmt::format("{} does not apply to a {} distribution; expected {}",
                                       param.key, name, shape->usage));
    }
  }
  auto duration = [&](std::string_view key) {
    const Field* param = map.find(key);
    if (param == nullptr) {
      fail(map.mark,
           fmt::format("a {} distribution needs {}; expected {}", name, key, shape->usage));
    }
    return static_cast<double>(duration_us(*param));
  };

  if (name == "fixed") {
    return random::LatencyModel::fixed(duration("value"));
  }
  if (name == "uniform") {
    const double min = duration("min");
    const double max = duration("max");
    if (max < min) {
      fail(map.find("max")->mark, "uniform max is below min; expected min <= max");
    }
    return random::LatencyModel::uniform(min, max);
  }
  if (name == "normal") {
    const double mean = duration("mean");
    return random::LatencyModel::normal(mean, duration("stddev"));
  }
  if (name == "exponential") {
    const double mean = duration("mean");
    if (mean <= 0) {
      fail(map.find("mean")->mark, "exponential mean is 0; expected a mean above 0");
    }
    return random::LatencyModel::exponential(mean);
  }
  const double median = duration("median");
  if (median <= 0) {
    fail(map.find("median")->mark, "lognormal median is 0; expected a median above 0");
  }
  const Field* p99 = map.find("p99");
  const Field* sigma = map.find("sigma");
  if ((p99 == nullptr) == (sigma == nullptr)) {
    fail(p99 != nullptr ? sigma->key_mark : map.mark,
         "a lognormal distribution needs exactly one of p99 or sigma; expected median and either "
         "p99 or sigma");
  }
  if (p99 != nullptr) {
    const double p99_us = static_cast<double>(duration_us(*p99));
    if (p99_us < median) {
      fail(p99->mark, "lognormal p99 is below the median; expected p99 >= median");
    }
    return random::LatencyModel::lognormal_from_p99(median, p99_us);
  }
  const std::string raw = scalar(*sigma, "a number such as 0.5");
  const std::optional<double> value = parse_double(trim(raw));
  if (!value || *value < 0 || *value > 10) {
    fail(sigma->mark, fmt::format("sigma {} is out of range; expected a plain number from 0 to "
                                  "10 (the spread of ln(duration), e.g. 0.5)",
                                  shown(raw)));
  }
  return random::LatencyModel::lognormal(median, *value);
}

namespace {

void check_single_document(const std::string& text, const std::string& source,
                           const FileKind& kind) {
  if (auto problem = find_document_problem(text)) {
    std::rethrow_exception(
        kind.make_error(fmt::format("{}:{}:{}: {}", source, problem->mark.line + 1,
                                    problem->mark.column + 1, problem->message)));
  }
}

// yaml-cpp keeps an alias as a second reference to its anchor's node, so a
// "billion laughs" file loads small and explodes only when the reader walks
// it (seconds and hundreds of MiB before the reader's budget trips). Counting
// the nodes each alias stands for on the event stream refuses it first, in
// time proportional to the file. A 4 MiB file holds at most ~2M nodes
// written out, so only alias expansion reaches the limit.
constexpr uint64_t kMaxExpandedNodes = 4'000'000;

class ExpansionCounter final : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> over_at;  // the alias that crossed the limit

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { leaf(anchor); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    leaf(anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    const uint64_t size = anchor < sizes_.size() ? sizes_[anchor] : 1;
    add(size);
    total_ += size;
    if (total_ > kMaxExpandedNodes && !over_at) over_at = mark;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open_.push_back({anchor, 1});
    ++total_;
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open_.push_back({anchor, 1});
    ++total_;
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    YAML::anchor_t anchor;
    uint64_t nodes;
  };
  void leaf(YAML::anchor_t anchor) {
    add(1);
    ++total_;
    remember(anchor, 1);
  }
  // Counts `nodes` in the innermost open collection (total_ is kept apart).
  void add(uint64_t nodes) {
    if (!open_.empty()) open_.back().nodes += nodes;
  }
  void close() {
    if (open_.empty()) return;
    const Open done = open_.back();
    open_.pop_back();
    add(done.nodes);
    remember(done.anchor, done.nodes);
  }
  void remember(YAML::anchor_t anchor, uint64_t nodes) {
    if (anchor == YAML::NullAnchor) return;
    if (sizes_.size() <= anchor) sizes_.resize(anchor + 1, 1);
    sizes_[anchor] = std::min(nodes, kMaxExpandedNodes + 1);
  }

  std::vector<Open> open_;
  std::vector<uint64_t> sizes_;  // by anchor id: nodes the anchored value stands for
  uint64_t total_ = 0;
};

void check_expansion(const std::string& text, const std::string& source, const FileKind& kind) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  ExpansionCounter counter;
  parser.HandleNextDocument(counter);
  if (counter.over_at) {
    std::rethrow_exception(kind.make_error(fmt::format(
        "{}:{}:{}: invalid YAML: aliases expand the document to more than {} nodes (a \"billion "
        "laughs\"); expected aliases of small values, or the values written out",
        source, counter.over_at->line + 1, counter.over_at->column + 1, kMaxExpandedNodes)));
  }
}

}  // namespace

YAML::Node load_document(const std::string& text, const std::string& source_name,
                         const FileKind& kind) {
  try {
    check_single_document(text, source_name, kind);
    check_expansion(text, source_name, kind);
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    std::rethrow_exception(
        kind.make_error(fmt::format("{}:{}:{}: invalid YAML: nested {} levels deep; expected a "
                                    "shallower document",
                                    source_name, e.mark.line + 1, e.mark.column + 1, e.depth())));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      std::rethrow_exception(kind.make_error(
          fmt::format("{}: invalid YAML: {}; expected well-formed YAML", source_name, e.msg)));
    }
    std::rethrow_exception(
        kind.make_error(fmt::format("{}:{}:{}: invalid YAML: {}; expected well-formed YAML",
                                    source_name, e.mark.line + 1, e.mark.column + 1, e.msg)));
  }
}

}  // namespace millstone::config
