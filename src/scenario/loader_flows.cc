// flows: -> Plan::flows. Each flow's steps become a flat program (groups are
// name prefixes, loops are jumps); requests get their templates, checks and
// extractions compiled, and every request and check gets a result index.
#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <re2/re2.h>

#include "http/request_builder.h"
#include "http/syntax.h"
#include "http/url.h"
#include "metrics/snapshot_limits.h"
#include "scenario/loader.h"
#include "scenario/loader_context.h"
#include "text/json_string.h"

namespace millstone::scenario::detail {
namespace {

using yaml::Field;
using yaml::Keys;
using yaml::MapFields;
using yaml::shown;

// A worker reports every step, check and flow each second; the wire codec
// refuses snapshots beyond these, so files are held to them here.
constexpr size_t kMaxFlows = metrics::kMaxSnapshotFlows;
constexpr size_t kMaxSteps = metrics::kMaxSnapshotSteps;
constexpr size_t kMaxChecks = metrics::kMaxSnapshotChecks;
constexpr double kMaxLoopCount = 1e6;
constexpr int kMaxNesting = 16;

constexpr std::string_view kFlowKeys[] = {"weight", "on_check_failure", "steps"};
constexpr std::string_view kMethodKeys[] = {"get",    "post", "put",    "patch",
                                            "delete", "head", "options"};
constexpr std::string_view kStepKeys[] = {
    "name",      "get",         "post",        "put",        "patch",        "delete",
    "head",      "options",     "request",     "headers",    "query",        "json",
    "body",      "form",        "timeout",     "check",      "extract",      "think",
    "group",     "loop",        "steps",       "ws.connect", "ws.send",      "ws.expect",
    "ws.hold",   "ws.close",    "tcp.connect", "tcp.send",   "tcp.expect",   "tcp.hold",
    "tcp.close", "subprotocol", "tls",         "http",       "amqp.publish", "amqp.expect",
    "grpc",      "until"};
constexpr std::string_view kSocketActions[] = {
    "ws.connect",  "ws.send",  "ws.expect",  "ws.hold",  "ws.close",
    "tcp.connect", "tcp.send", "tcp.expect", "tcp.hold", "tcp.close"};
constexpr std::string_view kWsSendKeys[] = {"text", "json", "binary_hex"};
constexpr std::string_view kTcpSendKeys[] = {"text", "hex"};
constexpr std::string_view kWsExpectKeys[] = {"text",         "equals",  "contains",  "regex",
                                              "json",         "timeout", "unmatched", "extract",
                                              "latency_from", "from"};
constexpr std::string_view kTcpExpectKeys[] = {
    "equals",    "text",    "contains",  "regex",         "timeout",
    "unmatched", "extract", "delimiter", "length_prefix", "from"};
// until: of a request step: the check: forms, and how the step polls.
constexpr std::string_view kUntilPollKeys[] = {"interval", "timeout", "from"};
constexpr int64_t kMinPollIntervalUs = 1'000;
constexpr int64_t kMaxPollsPerStep = 100'000;
constexpr std::string_view kWsHoldKeys[] = {"duration", "latency_from"};
constexpr std::string_view kTcpHoldKeys[] = {"duration", "delimiter", "length_prefix"};
constexpr std::string_view kWsCloseKeys[] = {"code", "reason"};
constexpr std::string_view kRequestStepKeys[] = {"name",    "headers", "query",   "json",
                                                 "body",    "form",    "timeout", "check",
                                                 "extract", "http",    "until"};
constexpr std::string_view kRequestKeys[] = {"method", "path"};

constexpr std::string_view kActionsHint =
    "one of get, post, put, patch, delete, head, options, request, think, group, loop, "
    "ws.connect, ws.send, ws.expect, ws.hold, ws.close, tcp.connect, tcp.send, tcp.expect, "
    "tcp.hold, tcp.close, amqp.publish, amqp.expect or grpc";

using http::syntax::iequals;

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

// A template split the way Template::compile splits it: literal text (with
// "\{{" already unescaped) and the inside of each {{ ... }}.
struct TemplatePart {
  bool expression = false;
  std::string text;
};

std::vector<TemplatePart> split_template(std::string_view text) {
  std::vector<TemplatePart> parts;
  std::string literal;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t brace = text.find("{{", pos);
    if (brace == std::string_view::npos) {
      literal.append(text.substr(pos));
      break;
    }
    if (brace > pos && text[brace - 1] == '\\') {
      literal.append(text.substr(pos, brace - 1 - pos));
      literal.append("{{");
      pos = brace + 2;
      continue;
    }
    literal.append(text.substr(pos, brace - pos));
    const size_t close = text.find("}}", brace + 2);  // compiled already: it exists
    if (!literal.empty()) {
      parts.push_back({false, std::move(literal)});
      literal.clear();
    }
    parts.push_back({true, std::string(text.substr(brace + 2, close - brace - 2))});
    pos = close + 2;
  }
  if (!literal.empty()) {
    parts.push_back({false, std::move(literal)});
  }
  return parts;
}

void append_urlencoded(std::string_view in, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      *out += c;
    } else {
      *out += '%';
      *out += kHex[u >> 4];
      *out += kHex[u & 15];
    }
  }
}

// "name | urlencode", "env.Q | default(\"x\") | json": a default is not a filter.
bool names_filter(std::string_view expression) {
  for (size_t bar = expression.find('|'); bar != std::string_view::npos;
       bar = expression.find('|', bar + 1)) {
    const size_t name = expression.find_first_not_of(" \t", bar + 1);
    if (name == std::string_view::npos) return false;
    const std::string_view rest = expression.substr(name);
    if (rest.starts_with("urlencode") || rest.starts_with("json")) return true;
  }
  return false;
}

// Template text that renders `parts` with every literal encoded at load time
// and every expression through `filter`, unless it names a filter itself.
std::string compose(const std::vector<TemplatePart>& parts, std::string_view filter) {
  std::string out;
  for (const TemplatePart& part : parts) {
    if (part.expression) {
      out += "{{";
      out += part.text;
      if (!names_filter(part.text)) {
        out += " | ";
        out += filter;
        out += ' ';
      }
      out += "}}";
    } else if (filter == "json") {
      out += Template::escape(text::json_escaped(part.text));
    } else {
      append_urlencoded(part.text, &out);  // no braces survive encoding
    }
  }
  return out;
}

// What a plain YAML scalar means as a JSON value: a number, a literal, or a string.
enum class PlainKind { kString, kNumber, kTrue, kFalse, kNull };

PlainKind plain_kind(const YAML::Node& node) {
  if (node.Tag() != "?") {
    return PlainKind::kString;  // quoted, a block scalar or tagged !!str
  }
  const std::string& text = node.Scalar();
  if (text == "true" || text == "True" || text == "TRUE") return PlainKind::kTrue;
  if (text == "false" || text == "False" || text == "FALSE") return PlainKind::kFalse;
  if (text == "null" || text == "Null" || text == "NULL" || text == "~") return PlainKind::kNull;
  if (is_json_number(text)) return PlainKind::kNumber;
  return PlainKind::kString;
}

// Step, group and flow names are joined with "/" into result names and
// written inside {step=...} in thresholds.
void check_label(yaml::Reader& reader, std::string_view name, const YAML::Mark& mark,
                 std::string_view what) {
  if (name.empty() || yaml::trim(name) != name) {
    reader.fail(mark, fmt::format("{} name {} is empty or has spaces at an end; expected a short "
                                  "label such as login",
                                  what, shown(name)));
  }
  const size_t bad = name.find_first_of("/{}");
  if (bad != std::string_view::npos) {
    reader.fail(mark, fmt::format("{} name {} contains '{}'; expected a label without / {{ }} "
                                  "(/ joins flow, group and step names)",
                                  what, shown(name), name[bad]));
  }
  if (std::any_of(name.begin(), name.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    reader.fail(mark, fmt::format("{} name {} contains control characters; expected a short "
                                  "label",
                                  what, shown(name)));
  }
}

void collect_from_steps(LoadContext& ctx, const YAML::Node& steps, int depth) {
  if (!steps.IsSequence() || depth > kMaxNesting) {
    return;  // pass two reports the shape
  }
  for (const YAML::Node& step : steps) {
    if (!step.IsMap()) {
      continue;
    }
    for (const auto& entry : step) {
      if (!entry.first.IsScalar()) {
        continue;
      }
      const std::string& key = entry.first.Scalar();
      if (key == "steps") {
        collect_from_steps(ctx, entry.second, depth + 1);
      }
      YAML::Node extract;
      if (key == "extract") {
        extract = entry.second;
      } else if ((key == "ws.expect" || key == "tcp.expect") && entry.second.IsMap()) {
        for (const auto& inner : entry.second) {
          if (inner.first.IsScalar() && inner.first.Scalar() == "extract") extract = inner.second;
        }
      }
      if (!extract.IsDefined() || !extract.IsMap()) {
        continue;
      }
      for (const auto& extraction : extract) {
        if (!extraction.first.IsScalar()) {
          continue;
        }
        const std::string& name = extraction.first.Scalar();
        const YAML::Mark mark = extraction.first.Mark();
        if (!yaml::is_identifier(name)) {
          ctx.reader.fail(mark, fmt::format("extracted name {} is not usable in templates; "
                                            "expected letters, digits and _, not starting with a "
                                            "digit",
                                            shown(name)));
        }
        if (is_reserved_name(name)) {
          ctx.reader.fail(mark, fmt::format("extracted name {} is a built-in of templates; "
                                            "expected another name",
                                            shown(name)));
        }
        if (std::find(ctx.constant_names.begin(), ctx.constant_names.end(), name) !=
            ctx.constant_names.end()) {
          ctx.reader.fail(mark, fmt::format("extracted name {} is a constant in vars:; expected "
                                            "another name (constants never change)",
                                            shown(name)));
        }
        for (const DataSource& source : ctx.plan.data) {
          if (source.name == name) {
            ctx.reader.fail(mark, fmt::format("extracted name {} is the name of a data source; "
                                              "expected another name",
                                              shown(name)));
          }
        }
        ctx.extracted.emplace(name, mark);
        ctx.plan.variables.intern(name);
      }
    }
  }
}

class FlowCompiler {
 public:
  FlowCompiler(LoadContext& ctx, Flow& flow) : ctx_(ctx), reader_(ctx.reader), flow_(flow) {}

  void compile(const Field& field);

 private:
  void compile_steps(const Field& field, int depth);
  void compile_step(const YAML::Node& node, const YAML::Mark& mark, int depth);
  void compile_request(const MapFields& map, const Field& action);
  void compile_grpc_request(const MapFields& map, const Field& action);
  // A request's timeout:, name, extract: and check:, and its instruction.
  void finish_request(HttpRequest request, const MapFields& map, std::string name,
                      YAML::Mark name_mark);
  void compile_socket(const MapFields& map, const Field& action);
  void compile_amqp(const MapFields& map, const Field& action);
  void socket_connect(SocketStep& step, const MapFields& map, const Field& action);
  void socket_send(SocketStep& step, const Field& action);
  void socket_expect(SocketStep& step, const Field& action);
  void socket_hold(SocketStep& step, const Field& action);
  void socket_close(SocketStep& step, const Field& action);
  void socket_framing(SocketStep& step, const MapFields& map);
  std::vector<std::string> register_step(std::string name, const YAML::Mark& name_mark,
                                         std::string* full_name);
  void compile_path(HttpRequest& request, const MapFields& map, const Field& action,
                    std::string* path_text);
  void compile_query(const Field& field, std::string* target_text);
  void compile_body(HttpRequest& request, const MapFields& map, bool step_content_type);
  std::string json_text(const YAML::Node& node, const YAML::Mark& mark, int depth);
  void add_checks(HttpRequest& request, std::vector<Check> checks,
                  const std::vector<std::string>& step_components);
  Template tracked(Template t);
  // from: of the step about to be compiled (its instruction is the next);
  // resolved once the flow is read, for a step's name may be a later one's.
  void note_from(const Field& from);
  void resolve_froms();
  std::shared_ptr<Poll> compile_until(const Field& until);

  LoadContext& ctx_;
  yaml::Reader& reader_;
  Flow& flow_;
  std::vector<std::string> groups_;               // enclosing group names
  std::map<std::string, YAML::Mark> step_names_;  // full names used in this flow
  std::map<std::string, uint32_t> step_pc_;       // full name -> its instruction
  struct FromRef {
    uint32_t pc = 0;  // the instruction of the step that has the from:
    std::string name;
    YAML::Mark mark;
    std::string prefix;  // "flow/group/" where the step is
  };
  std::vector<FromRef> from_refs_;
  std::set<uint32_t> data_sources_;
  uint32_t loop_depth_ = 0;
  std::string socket_kind_;  // "ws" or "tcp": the last connect step so far, in file order
};

void FlowCompiler::compile(const Field& field) {
  const MapFields map =
      reader_.read_map(field.value, field.mark, fmt::format("flow {}", field.key), kFlowKeys);
  if (const Field* weight = map.find("weight")) {
    flow_.weight = reader_.number(*weight, 0, 1e6, /*whole=*/false);
    if (flow_.weight <= 0) {
      reader_.fail(weight->mark,
                   "weight is 0; expected a number above 0 (to leave a flow out, "
                   "list the others in the scenario's flows:)");
    }
  }
  if (const Field* policy = map.find("on_check_failure")) {
    const std::string text = reader_.scalar(*policy, "abort_iteration or continue");
    if (text != "abort_iteration" && text != "continue") {
      reader_.fail(policy->mark, fmt::format("on_check_failure {} is not a policy; expected "
                                             "abort_iteration or continue",
                                             shown(text)));
    }
    flow_.abort_on_check_failure = text == "abort_iteration";
  }
  const Field* steps = map.find("steps");
  if (steps == nullptr) {
    reader_.fail(map.mark, fmt::format("flow {} has no steps; expected steps: with a list such as "
                                       "[{{get: /}}]",
                                       shown(field.key)));
  }
  compile_steps(*steps, 0);
  flow_.data_sources.assign(data_sources_.begin(), data_sources_.end());
  resolve_froms();
}

void FlowCompiler::note_from(const Field& from) {
  FromRef ref;
  ref.pc = static_cast<uint32_t>(flow_.program.size());
  ref.name = reader_.scalar(from, "request or the name of an earlier step");
  ref.mark = from.mark;
  ref.prefix = flow_.name + "/";
  for (const std::string& group : groups_)
    ref.prefix += group + "/";
  if (ref.name.empty()) {
    reader_.fail(from.mark,
                 "from is empty; expected request (the flow's last request) or the "
                 "name of an earlier step");
  }
  from_refs_.push_back(std::move(ref));
}

void FlowCompiler::resolve_froms() {
  for (const FromRef& ref : from_refs_) {
    Instruction& in = flow_.program[ref.pc];
    if (ref.name == "request") {
      in.from = Instruction::From::kRequest;
      continue;
    }
    // The name as in the same group, then from the flow's top, then whole.
    auto it = step_pc_.find(ref.prefix + ref.name);
    if (it == step_pc_.end()) it = step_pc_.find(flow_.name + "/" + ref.name);
    if (it == step_pc_.end()) it = step_pc_.find(ref.name);
    if (it == step_pc_.end()) {
      std::string earlier;
      size_t listed = 0;
      for (const auto& [name, pc] : step_pc_) {
        if (pc >= ref.pc || listed == 5) continue;
        earlier += fmt::format("{}{}", listed++ == 0 ? "" : ", ",
                               shown(name.substr(flow_.name.size() + 1)));
      }
      reader_.fail(ref.mark,
                   fmt::format("from {} names no step of flow {}; expected request (the flow's "
                               "last request) or the name of an earlier step{}{}",
                               shown(ref.name), shown(flow_.name),
                               earlier.empty() ? "" : ", such as ", earlier));
    }
    if (it->second >= ref.pc) {
      reader_.fail(
          ref.mark,
          fmt::format("from {} names {} (line {}); expected an earlier step: the "
                      "latency counts from when that step was due",
                      shown(ref.name), it->second == ref.pc ? "this step itself" : "a later step",
                      step_names_[it->first].line + 1));
    }
    Instruction& origin = flow_.program[it->second];
    if (origin.mark_slot == Instruction::kNoSlot) origin.mark_slot = flow_.origin_slots++;
    in.from = Instruction::From::kStep;
    in.from_slot = origin.mark_slot;
  }
}

std::shared_ptr<Poll> FlowCompiler::compile_until(const Field& until) {
  auto poll = std::make_shared<Poll>();
  if (!until.value.IsMap()) {
    reader_.fail(until.mark, fmt::format("until is {}; expected a map of checks such as "
                                         "{{json: {{$.status: done}}, interval: 100ms}}",
                                         yaml::kind_of(until.value)));
  }
  // The poll's own keys are taken out; the rest are check: forms.
  YAML::Node checks(YAML::NodeType::Map);
  for (const auto& entry : until.value) {
    const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
    if (!contains(kUntilPollKeys, key)) {
      checks[entry.first] = entry.second;
      continue;
    }
    const YAML::Mark mark =
        entry.second.Mark().is_null() ? entry.first.Mark() : entry.second.Mark();
    const Field field{key, entry.first.Mark(), entry.second, mark};
    if (key == "from") {
      note_from(field);
    } else if (key == "interval") {
      poll->interval_us = reader_.duration_us(field);
      if (poll->interval_us < kMinPollIntervalUs) {
        reader_.fail(mark,
                     "interval is under 1ms; expected a duration of at least 1ms, such as "
                     "100ms (every poll is a request the server sees)");
      }
    } else {
      poll->timeout_us = reader_.duration_us(field);
      if (poll->timeout_us <= 0) {
        reader_.fail(mark, "timeout is 0; expected a duration above 0, such as 10s");
      }
    }
  }
  if (checks.size() == 0) {
    reader_.fail(until.mark,
                 "until has no check; expected what must hold to stop polling, such "
                 "as {json: {$.status: done}} or {status: 200}");
  }
  const int64_t timeout_us = poll->timeout_us > 0 ? poll->timeout_us : ctx_.plan.timeout_us;
  if (timeout_us / poll->interval_us > kMaxPollsPerStep) {
    reader_.fail(until.mark, fmt::format("until polls every {}us for {}us: more than {} polls; "
                                         "expected a longer interval or a shorter timeout",
                                         poll->interval_us, timeout_us, kMaxPollsPerStep));
  }
  Field field = until;
  field.key = "until";
  field.value = checks;
  poll->until = compile_checks(ctx_, field);
  return poll;
}

void FlowCompiler::compile_steps(const Field& field, int depth) {
  if (depth > kMaxNesting) {
    reader_.fail(field.mark, fmt::format("groups and loops nest more than {} deep; expected a "
                                         "flatter flow",
                                         kMaxNesting));
  }
  if (!field.value.IsSequence() || field.value.size() == 0) {
    reader_.fail(field.mark, fmt::format("steps is {}; expected a list of steps, each starting "
                                         "with \"- \"",
                                         field.value.IsSequence() ? "an empty list"
                                                                  : yaml::kind_of(field.value)));
  }
  for (const YAML::Node& item : field.value) {
    compile_step(item, item.Mark().is_null() ? field.mark : item.Mark(), depth);
  }
}

void FlowCompiler::compile_step(const YAML::Node& node, const YAML::Mark& mark, int depth) {
  if (!node.IsMap()) {
    reader_.fail(mark, fmt::format("step is {}; expected a map such as {{get: /path}}, {{think: "
                                   "1s}}, {{group: NAME, steps: [...]}} or {{loop: 3, steps: "
                                   "[...]}}",
                                   yaml::kind_of(node)));
  }
  const MapFields map = reader_.read_map(node, mark, "step", kStepKeys);
  const Field* action = nullptr;
  for (const Field& field : map.fields) {
    const bool is_action = contains(kMethodKeys, field.key) || field.key == "request" ||
                           field.key == "think" || field.key == "group" || field.key == "loop" ||
                           contains(kSocketActions, field.key) || field.key == "amqp.publish" ||
                           field.key == "amqp.expect" || field.key == "grpc";
    if (!is_action) {
      continue;
    }
    if (action != nullptr) {
      reader_.fail(field.key_mark, fmt::format("step has both {} and {}; expected one action per "
                                               "step (make two steps)",
                                               action->key, field.key));
    }
    action = &field;
  }
  if (action == nullptr) {
    reader_.fail(map.mark, fmt::format("step has no action; expected {}", kActionsHint));
  }
  if (action->key == "amqp.publish" || action->key == "amqp.expect") {
    for (const Field& field : map.fields) {
      if (&field != action && field.key != "name") {
        reader_.fail(field.key_mark,
                     fmt::format("{} does not apply to an {} step; expected name (the step's "
                                 "settings go in its value)",
                                 field.key, action->key));
      }
    }
    if (ctx_.plan.step_names.size() >= kMaxSteps) {
      reader_.fail(mark, fmt::format("more than {} steps; expected at most {} (the limit of step "
                                     "metrics a worker reports each second)",
                                     kMaxSteps, kMaxSteps));
    }
    compile_amqp(map, *action);
    return;
  }
  if (action->key == "grpc") {
    for (const Field& field : map.fields) {
      const bool applies = &field == action || field.key == "name" || field.key == "check" ||
                           field.key == "extract" || field.key == "timeout";
      if (!applies) {
        reader_.fail(field.key_mark,
                     fmt::format("{} does not apply to a grpc step; expected name, check, "
                                 "extract, timeout (the call's settings go in grpc:)",
                                 field.key));
      }
    }
    if (ctx_.plan.step_names.size() >= kMaxSteps) {
      reader_.fail(mark, fmt::format("more than {} steps; expected at most {} (the limit of step "
                                     "metrics a worker reports each second)",
                                     kMaxSteps, kMaxSteps));
    }
    compile_grpc_request(map, *action);
    return;
  }
  const bool is_socket = contains(kSocketActions, action->key);
  const bool is_request =
      !is_socket && action->key != "think" && action->key != "group" && action->key != "loop";
  if (is_socket) {
    const bool ws_connect = action->key == "ws.connect";
    const bool tcp_connect = action->key == "tcp.connect";
    for (const Field& field : map.fields) {
      const bool applies = &field == action || field.key == "name" ||
                           (ws_connect && (field.key == "headers" || field.key == "subprotocol" ||
                                           field.key == "timeout")) ||
                           (tcp_connect && (field.key == "timeout" || field.key == "tls"));
      if (!applies) {
        reader_.fail(
            field.key_mark,
            fmt::format("{} does not apply to a {} step; expected {}", field.key, action->key,
                        ws_connect    ? "name, headers, subprotocol, timeout"
                        : tcp_connect ? "name, timeout, tls"
                                      : "name (the step's settings go in its value)"));
      }
    }
    if (ctx_.plan.step_names.size() >= kMaxSteps) {
      reader_.fail(mark, fmt::format("more than {} steps; expected at most {} (the limit of step "
                                     "metrics a worker reports each second)",
                                     kMaxSteps, kMaxSteps));
    }
    compile_socket(map, *action);
    return;
  }
  for (const Field& field : map.fields) {
    const bool applies =
        &field == action || (is_request ? contains(kRequestStepKeys, field.key)
                                        : action->key != "think" && field.key == "steps");
    if (!applies) {
      const std::string_view allowed =
          is_request
              ? "name, headers, query, json, body, form, timeout, check, extract, http, until"
          : action->key == "think" ? "think alone"
                                   : "steps";
      reader_.fail(field.key_mark,
                   fmt::format("{} does not apply to a {} step; expected {}", field.key,
                               is_request ? "request" : action->key, allowed));
    }
  }
  if (ctx_.plan.step_names.size() >= kMaxSteps) {
    reader_.fail(mark, fmt::format("more than {} steps; expected at most {} (the limit of step "
                                   "metrics a worker reports each second)",
                                   kMaxSteps, kMaxSteps));
  }

  if (is_request) {
    compile_request(map, *action);
    return;
  }
  if (action->key == "think") {
    flow_.think_times.push_back(reader_.latency(*action));
    Instruction think;
    think.op = Instruction::Op::kThink;
    think.arg = static_cast<uint32_t>(flow_.think_times.size() - 1);
    flow_.program.push_back(think);
    return;
  }
  const Field* steps = map.find("steps");
  if (steps == nullptr) {
    reader_.fail(map.mark, fmt::format("{} step has no steps; expected steps: with a list of "
                                       "steps",
                                       action->key));
  }
  if (action->key == "group") {
    const std::string name = reader_.scalar(*action, "a group name");
    check_label(reader_, name, action->mark, "group");
    groups_.push_back(name);
    compile_steps(*steps, depth + 1);
    groups_.pop_back();
    return;
  }
  // A loop: begin, body, end. Begin jumps past the end when done; end jumps
  // back to the first body instruction while iterations remain.
  const auto count =
      static_cast<uint32_t>(reader_.number(*action, 1, kMaxLoopCount, /*whole=*/true));
  const size_t begin = flow_.program.size();
  Instruction loop_begin;
  loop_begin.op = Instruction::Op::kLoopBegin;
  loop_begin.count = count;
  flow_.program.push_back(loop_begin);
  ++loop_depth_;
  flow_.max_loop_depth = std::max(flow_.max_loop_depth, loop_depth_);
  compile_steps(*steps, depth + 1);
  --loop_depth_;
  Instruction loop_end;
  loop_end.op = Instruction::Op::kLoopEnd;
  loop_end.arg = static_cast<uint32_t>(begin);
  loop_end.jump = static_cast<uint32_t>(begin + 1);
  flow_.program.push_back(loop_end);
  flow_.program[begin].jump = static_cast<uint32_t>(flow_.program.size());
}

// Every check gets a result index and a name after its step:
// "shopper/login: status in [200]".
void FlowCompiler::add_checks(HttpRequest& request, std::vector<Check> checks,
                              const std::vector<std::string>& step_components) {
  for (Check& check : checks) {
    std::vector<std::string> components = step_components;
    components.back() += ": " + check.name();
    std::string full_name;
    for (const std::string& component : components) {
      full_name += full_name.empty() ? component : "/" + component;
    }
    const auto index = static_cast<uint32_t>(ctx_.plan.check_names.size());
    ctx_.plan.check_names.push_back(std::move(full_name));
    ctx_.check_components.push_back(std::move(components));
    request.checks.push_back(NamedCheck{index, std::move(check)});
  }
}

Template FlowCompiler::tracked(Template t) {
  for (uint32_t slot : t.variables_used()) {
    const int source = ctx_.data_source_of_slot(slot);
    if (source >= 0) {
      data_sources_.insert(static_cast<uint32_t>(source));
    }
  }
  return t;
}

void FlowCompiler::compile_request(const MapFields& map, const Field& action) {
  HttpRequest request;
  std::string path_text;
  compile_path(request, map, action, &path_text);

  // Step headers override defaults of the same name; literal defaults are sent
  // by the engine unless overridden, templated ones are copied in here.
  std::vector<std::pair<std::string, Template>> step_headers;
  if (const Field* headers = map.find("headers")) {
    step_headers = compile_headers(ctx_, *headers);
  }
  bool step_content_type = false;
  for (const auto& [name, value] : step_headers) {
    step_content_type = step_content_type || iequals(name, "Content-Type");
  }
  for (const auto& [name, value] : ctx_.templated_default_headers) {
    const bool overridden =
        std::any_of(step_headers.begin(), step_headers.end(),
                    [&, &name = name](const auto& header) { return iequals(header.first, name); });
    if (!overridden) {
      request.headers.emplace_back(name, tracked(value));
    }
  }
  for (auto& [name, value] : step_headers) {
    request.headers.emplace_back(std::move(name), tracked(std::move(value)));
  }
  compile_body(request, map, step_content_type);

  request.http_version = ctx_.plan.http_version;
  if (const Field* http = map.find("http")) {
    request.http_version = compile_http_version(reader_, *http);
  }
  std::string name = request.method + " " + path_text;
  finish_request(std::move(request), map, std::move(name), action.key_mark);
}

void FlowCompiler::compile_grpc_request(const MapFields& map, const Field& action) {
  HttpRequest request;
  std::string method;
  request.grpc = compile_grpc_call(
      ctx_, action,
      [this](const YAML::Node& node, const YAML::Mark& mark) { return json_text(node, mark, 0); },
      &method);
  for (const Template& message : request.grpc->messages)
    tracked(message);
  for (const auto& [name, value] : request.grpc->metadata)
    tracked(value);
  request.method = "POST";
  request.target = Template::literal("/" + method);
  request.http_version = 2;  // gRPC is HTTP/2 only
  finish_request(std::move(request), map, "grpc " + method, action.key_mark);
}

void FlowCompiler::finish_request(HttpRequest request, const MapFields& map, std::string name,
                                  YAML::Mark name_mark) {
  if (const Field* timeout = map.find("timeout")) {
    request.timeout_us = reader_.duration_us(*timeout);
    if (request.timeout_us <= 0) {
      reader_.fail(timeout->mark, "timeout is 0; expected a duration above 0, such as 2s");
    }
  }

  // The step's result name: "flow/group/name".
  if (const Field* given = map.find("name")) {
    name = reader_.scalar(*given, "a step name");
    check_label(reader_, name, given->mark, "step");
    name_mark = given->mark;
  }
  std::string full_name;
  std::vector<std::string> components = register_step(name, name_mark, &full_name);

  if (const Field* extract = map.find("extract")) {
    request.extractions = compile_extractions(ctx_, *extract);
  }
  if (const Field* check = map.find("check")) {
    add_checks(request, compile_checks(ctx_, *check, request.grpc != nullptr), components);
    if (ctx_.plan.check_names.size() > kMaxChecks) {
      reader_.fail(check->mark, fmt::format("more than {} checks; expected at most {} (the limit "
                                            "of checks a worker reports each second)",
                                            kMaxChecks, kMaxChecks));
    }
  }

  std::shared_ptr<Poll> poll;
  if (const Field* until = map.find("until")) poll = compile_until(*until);

  Instruction instruction;
  instruction.op = Instruction::Op::kRequest;
  instruction.arg = static_cast<uint32_t>(flow_.requests.size());
  instruction.metric = static_cast<uint32_t>(ctx_.plan.step_names.size());
  ctx_.plan.step_names.push_back(full_name);
  ctx_.step_components.push_back(components);
  if (poll) {
    // The polls that did not satisfy until: are requests of their own step,
    // "<step> poll"; the step itself records the one that did.
    if (ctx_.plan.step_names.size() >= kMaxSteps) {
      reader_.fail(map.find("until")->mark,
                   fmt::format("more than {} steps (with this step's polls); expected at most {}",
                               kMaxSteps, kMaxSteps));
    }
    poll->metric = static_cast<uint32_t>(ctx_.plan.step_names.size());
    ctx_.plan.step_names.push_back(full_name + " poll");
    components.back() += " poll";
    ctx_.step_components.push_back(std::move(components));
    request.poll = std::move(poll);
  }
  flow_.requests.push_back(std::move(request));
  flow_.program.push_back(instruction);
}

std::vector<std::string> FlowCompiler::register_step(std::string name, const YAML::Mark& name_mark,
                                                     std::string* full_name) {
  std::vector<std::string> components{flow_.name};
  components.insert(components.end(), groups_.begin(), groups_.end());
  components.push_back(std::move(name));
  full_name->clear();
  for (const std::string& component : components) {
    *full_name += full_name->empty() ? component : "/" + component;
  }
  step_pc_[*full_name] = static_cast<uint32_t>(flow_.program.size());
  if (auto [it, added] = step_names_.emplace(*full_name, name_mark); !added) {
    reader_.fail(name_mark, fmt::format("step name {} is already used at line {}; expected "
                                        "unique step names within a flow (give one of them a "
                                        "name:)",
                                        shown(*full_name), it->second.line + 1));
  }
  return components;
}

namespace {

SocketStep::Kind socket_kind(std::string_view key) {
  static constexpr std::pair<std::string_view, SocketStep::Kind> kKinds[] = {
      {"ws.connect", SocketStep::Kind::kWsConnect}, {"ws.send", SocketStep::Kind::kWsSend},
      {"ws.expect", SocketStep::Kind::kWsExpect},   {"ws.hold", SocketStep::Kind::kWsHold},
      {"ws.close", SocketStep::Kind::kWsClose},     {"tcp.connect", SocketStep::Kind::kTcpConnect},
      {"tcp.send", SocketStep::Kind::kTcpSend},     {"tcp.expect", SocketStep::Kind::kTcpExpect},
      {"tcp.hold", SocketStep::Kind::kTcpHold},     {"tcp.close", SocketStep::Kind::kTcpClose}};
  for (const auto& [name, kind] : kKinds) {
    if (name == key) return kind;
  }
  return SocketStep::Kind::kWsConnect;
}

// "0a0B" -> bytes; nullopt with *bad = offset of the first bad character.
std::optional<std::string> decode_hex(std::string_view text, size_t* bad) {
  std::string out;
  int high = -1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == ':') continue;  // "0a 0b", "0a:0b" read better
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      *bad = i;
      return std::nullopt;
    }
    if (high < 0) {
      high = v;
    } else {
      out += static_cast<char>(high << 4 | v);
      high = -1;
    }
  }
  if (high >= 0) {
    *bad = text.size();
    return std::nullopt;
  }
  return out;
}

}  // namespace

void FlowCompiler::compile_socket(const MapFields& map, const Field& action) {
  SocketStep step;
  step.kind = socket_kind(action.key);
  const std::string family = step.websocket() ? "ws" : "tcp";
  std::string default_name = action.key;
  const bool connect =
      step.kind == SocketStep::Kind::kWsConnect || step.kind == SocketStep::Kind::kTcpConnect;
  if (connect) {
    socket_connect(step, map, action);
    default_name += " " + reader_.scalar(action, "an address");
    socket_kind_ = family;
  } else if (socket_kind_ != family) {
    reader_.fail(action.key_mark,
                 socket_kind_.empty()
                     ? fmt::format("{} comes before any {}.connect in flow {}; expected a "
                                   "{}.connect step first",
                                   action.key, family, shown(flow_.name), family)
                     : fmt::format("{} follows a {}.connect; expected {}.connect first (a VU "
                                   "holds one socket at a time)",
                                   action.key, socket_kind_, family));
  } else {
    switch (step.kind) {
      case SocketStep::Kind::kWsSend:
      case SocketStep::Kind::kTcpSend:
        socket_send(step, action);
        break;
      case SocketStep::Kind::kWsExpect:
      case SocketStep::Kind::kTcpExpect:
        socket_expect(step, action);
        break;
      case SocketStep::Kind::kWsHold:
      case SocketStep::Kind::kTcpHold:
        socket_hold(step, action);
        break;
      default:
        socket_close(step, action);
        break;
    }
  }

  std::string name = default_name;
  YAML::Mark name_mark = action.key_mark;
  if (const Field* given = map.find("name")) {
    name = reader_.scalar(*given, "a step name");
    check_label(reader_, name, given->mark, "step");
    name_mark = given->mark;
  } else {
    // Unnamed socket steps repeat often (two ws.send in a row): number them.
    std::string prefix = flow_.name + "/";
    for (const std::string& group : groups_)
      prefix += group + "/";
    for (int n = 2; step_names_.count(prefix + name) > 0; ++n) {
      name = fmt::format("{} #{}", default_name, n);
    }
  }
  std::string full_name;
  std::vector<std::string> components = register_step(name, name_mark, &full_name);

  Instruction instruction;
  instruction.op = Instruction::Op::kSocket;
  instruction.arg = static_cast<uint32_t>(flow_.socket_steps.size());
  instruction.metric = static_cast<uint32_t>(ctx_.plan.step_names.size());
  ctx_.plan.step_names.push_back(full_name);
  ctx_.step_components.push_back(std::move(components));
  flow_.socket_steps.push_back(std::move(step));
  flow_.program.push_back(instruction);
}

void FlowCompiler::compile_amqp(const MapFields& map, const Field& action) {
  AmqpStep step = compile_amqp_step(ctx_, action);
  if (step.kind == AmqpStep::Kind::kExpect && action.value.IsMap()) {
    for (const auto& entry : action.value) {
      if (!entry.first.IsScalar() || entry.first.Scalar() != "from") continue;
      const YAML::Mark mark =
          entry.second.Mark().is_null() ? entry.first.Mark() : entry.second.Mark();
      note_from(Field{"from", entry.first.Mark(), entry.second, mark});
    }
  }
  for (const auto& header : step.headers)
    tracked(header.second);
  for (const Template* t : {&step.routing_key, &step.body, &step.key})
    tracked(*t);
  for (const auto* t : {&step.correlation_id, &step.message_id, &step.reply_to, &step.contains}) {
    if (*t) tracked(**t);
  }
  std::string name = action.key;
  if (step.kind == AmqpStep::Kind::kPublish) {
    name += " " + (step.exchange.empty() ? std::string("(default)") : step.exchange);
  } else {
    name += " " + ctx_.plan.amqp.consumed[step.queue].queue;
    const int64_t timeout = step.timeout_us > 0 ? step.timeout_us : ctx_.plan.timeout_us;
    ctx_.plan.amqp.hold_us = std::max(ctx_.plan.amqp.hold_us, timeout);
  }
  YAML::Mark name_mark = action.key_mark;
  if (const Field* given = map.find("name")) {
    name = reader_.scalar(*given, "a step name");
    check_label(reader_, name, given->mark, "step");
    name_mark = given->mark;
  } else {
    std::string prefix = flow_.name + "/";
    for (const std::string& group : groups_)
      prefix += group + "/";
    const std::string base = name;
    for (int n = 2; step_names_.count(prefix + name) > 0; ++n) {
      name = fmt::format("{} #{}", base, n);
    }
  }
  std::string full_name;
  std::vector<std::string> components = register_step(name, name_mark, &full_name);
  Instruction instruction;
  instruction.op = Instruction::Op::kAmqp;
  instruction.arg = static_cast<uint32_t>(flow_.amqp_steps.size());
  instruction.metric = static_cast<uint32_t>(ctx_.plan.step_names.size());
  ctx_.plan.step_names.push_back(full_name);
  ctx_.step_components.push_back(std::move(components));
  flow_.amqp_steps.push_back(std::move(step));
  flow_.program.push_back(instruction);
}

void FlowCompiler::socket_connect(SocketStep& step, const MapFields& map, const Field& action) {
  const std::string text = reader_.scalar(action, "an address");
  if (const Field* timeout = map.find("timeout")) {
    step.timeout_us = reader_.duration_us(*timeout);
    if (step.timeout_us <= 0) {
      reader_.fail(timeout->mark, "timeout is 0; expected a duration above 0, such as 5s");
    }
  }
  auto host_port = [&](std::string_view hostport, size_t offset) {
    // Reuses the URL parser for HOST[:PORT], [V6]:PORT and the port range.
    std::string error;
    std::optional<http::Url> url = http::parse_url(fmt::format("http://{}/", hostport), &error);
    if (!url || hostport.empty()) {
      reader_.fail(reader_.mark_at(action.value, action.mark, offset),
                   fmt::format("{} address {} is not HOST:PORT ({}); expected e.g. "
                               "127.0.0.1:9100",
                               action.key, shown(hostport), url ? "empty" : error));
    }
    return *url;
  };
  if (step.kind == SocketStep::Kind::kTcpConnect) {
    // "HOST:PORT", or ":PORT" for the target's host.
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size() || text.find("://") != text.npos) {
      reader_.fail(action.mark, fmt::format("tcp.connect {} has no port; expected HOST:PORT or "
                                            ":PORT (the target's host), e.g. 127.0.0.1:9100",
                                            shown(text)));
    }
    if (colon == 0) {
      http::Url url = host_port("127.0.0.1" + text, 0);
      step.port = url.port;
    } else {
      http::Url url = host_port(text, 0);
      step.host = url.host;
      step.port = url.port;
    }
    if (const Field* tls = map.find("tls")) {
      step.tls = reader_.boolean(*tls);
    }
    return;
  }
  // ws.connect: a path (the target's host and port, and TLS when the target
  // is https://) or ws[s]://HOST[:PORT]/PATH.
  std::string path = text;
  step.follows_target = true;
  const bool wss = text.starts_with("wss://");
  if (wss || text.starts_with("ws://")) {
    const size_t start = wss ? 6 : 5;
    const size_t slash = text.find('/', start);
    const std::string hostport =
        text.substr(start, slash == std::string::npos ? slash : slash - start);
    // Parsed as http(s) so that the default port (80, 443) and the Host
    // header (which leaves the default port out) follow the scheme.
    std::string error;
    std::optional<http::Url> url =
        http::parse_url(fmt::format("{}://{}/", wss ? "https" : "http", hostport), &error);
    if (!url || hostport.empty()) {
      reader_.fail(reader_.mark_at(action.value, action.mark, start),
                   fmt::format("ws.connect address {} is not HOST[:PORT] ({}); expected e.g. "
                               "{}://127.0.0.1:9100/chat",
                               shown(hostport), url ? "empty" : error, wss ? "wss" : "ws"));
    }
    step.host = url->host;
    step.port = url->port;
    step.host_header = url->host_header();
    step.tls = wss;
    step.follows_target = false;
    path = slash == std::string::npos ? "/" : text.substr(slash);
  } else if (text.find("://") != std::string::npos) {
    reader_.fail(action.mark, fmt::format("ws.connect {} is not a ws:// or wss:// URL; expected a "
                                          "path such as /ws/chat or ws://HOST:PORT/PATH",
                                          shown(text)));
  } else if (text.empty() || text.front() != '/') {
    reader_.fail(action.mark, fmt::format("ws.connect {} does not start with /; expected a path "
                                          "such as /ws/chat or ws://HOST:PORT/PATH",
                                          shown(text)));
  }
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f || c == '#') {
      reader_.fail(action.mark, fmt::format("ws.connect path {} contains {}; expected no fragment "
                                            "(#) or control characters",
                                            shown(path), c == '#' ? "'#'" : "a control byte"));
    }
  }
  step.path = tracked(compile_template(ctx_, action.value, action.mark, path, "ws.connect path"));
  if (const Field* headers = map.find("headers")) {
    for (auto& [name, value] : compile_headers(ctx_, *headers)) {
      if (iequals(name, "Upgrade") || iequals(name, "Sec-WebSocket-Key") ||
          iequals(name, "Sec-WebSocket-Version") || iequals(name, "Sec-WebSocket-Protocol")) {
        reader_.fail(headers->mark, fmt::format("header {} is part of the WebSocket handshake, "
                                                "which millstone writes; expected other headers "
                                                "(subprotocol: sets Sec-WebSocket-Protocol)",
                                                name));
      }
      step.headers.emplace_back(std::move(name), tracked(std::move(value)));
    }
  }
  if (const Field* sub = map.find("subprotocol")) {
    step.subprotocol = reader_.scalar(*sub, "a subprotocol name such as chat.v1");
    const bool token =
        !step.subprotocol.empty() &&
        std::all_of(step.subprotocol.begin(), step.subprotocol.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) ||
                 std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        });
    if (!token) {
      reader_.fail(sub->mark, fmt::format("subprotocol {} is not a token; expected letters, "
                                          "digits and !#$%&'*+-.^_`|~, e.g. chat.v1",
                                          shown(step.subprotocol)));
    }
  }
}

void FlowCompiler::socket_send(SocketStep& step, const Field& action) {
  const bool ws = step.websocket();
  if (action.value.IsScalar()) {
    const std::string text = reader_.scalar(action, "a message");
    step.payload = tracked(compile_template(ctx_, action.value, action.mark, text, action.key));
    return;
  }
  const MapFields map = reader_.read_map(action.value, action.mark, action.key,
                                         ws ? Keys(kWsSendKeys) : Keys(kTcpSendKeys));
  if (map.fields.size() != 1) {
    reader_.fail(map.mark, fmt::format("{} has {}; expected one of {}", action.key,
                                       map.fields.empty() ? "nothing to send" : "several messages",
                                       ws ? "text, json or binary_hex" : "text or hex"));
  }
  const Field& field = map.fields.front();
  if (field.key == "text") {
    const std::string text = reader_.scalar(field, "a message");
    step.payload = tracked(compile_template(ctx_, field.value, field.mark, text, action.key));
    return;
  }
  if (field.key == "json") {
    if (!field.value.IsMap() && !field.value.IsSequence()) {
      reader_.fail(field.mark,
                   fmt::format("json is {}; expected a map or a list", yaml::kind_of(field.value)));
    }
    const std::string text = json_text(field.value, field.mark, 0);
    std::string error;
    std::optional<Template> compiled =
        Template::compile(text, ctx_.plan.variables, false, &error, nullptr);
    if (!compiled) {
      reader_.fail(field.mark, fmt::format("json does not form a template ({}); expected plain "
                                           "values and {{{{ name }}}} expressions",
                                           error));
    }
    step.payload = tracked(std::move(*compiled));
    return;
  }
  const std::string hex = reader_.scalar(field, "hexadecimal bytes such as 0a0b");
  size_t bad = 0;
  std::optional<std::string> bytes = decode_hex(hex, &bad);
  if (!bytes) {
    reader_.fail(reader_.mark_at(field.value, field.mark, bad),
                 bad >= hex.size()
                     ? fmt::format("{} {} has an odd number of digits; expected two per byte",
                                   field.key, shown(hex))
                     : fmt::format("{} {} contains {}; expected hexadecimal digits, two per "
                                   "byte, e.g. 0a0b",
                                   field.key, shown(hex), shown(hex.substr(bad, 1))));
  }
  step.payload = Template::literal(std::move(*bytes));
  step.binary = ws;
}

void FlowCompiler::socket_framing(SocketStep& step, const MapFields& map) {
  const Field* delimiter = map.find("delimiter");
  const Field* prefix = map.find("length_prefix");
  if (delimiter != nullptr && prefix != nullptr) {
    reader_.fail(prefix->key_mark,
                 "step has both delimiter and length_prefix; expected one "
                 "framing");
  }
  if (delimiter != nullptr) {
    step.framing = SocketStep::Framing::kDelimiter;
    step.delimiter = reader_.scalar(*delimiter, "a delimiter such as \"\\n\"");
    if (step.delimiter.empty()) {
      reader_.fail(delimiter->mark, "delimiter is empty; expected e.g. \"\\n\" (double quotes)");
    }
  }
  if (prefix != nullptr) {
    const auto bytes = static_cast<uint8_t>(reader_.number(*prefix, 1, 8, /*whole=*/true));
    if (bytes != 1 && bytes != 2 && bytes != 4) {
      reader_.fail(prefix->mark, fmt::format("length_prefix {} is not a size; expected 1, 2 or 4 "
                                             "(bytes of a big-endian length)",
                                             bytes));
    }
    step.framing = SocketStep::Framing::kLengthPrefix;
    step.length_prefix = bytes;
  }
}

void FlowCompiler::socket_expect(SocketStep& step, const Field& action) {
  const bool ws = step.websocket();
  if (action.value.IsNull()) return;  // any message
  const MapFields map = reader_.read_map(action.value, action.mark, action.key,
                                         ws ? Keys(kWsExpectKeys) : Keys(kTcpExpectKeys));
  const Field* equals = map.find("text");
  if (const Field* alias = map.find("equals")) {
    if (equals != nullptr) {
      reader_.fail(alias->key_mark,
                   "expect has both text and equals; expected one (they are "
                   "the same)");
    }
    equals = alias;
  }
  if (equals != nullptr) {
    const std::string text = reader_.scalar(*equals, "the whole message");
    step.match.equals =
        tracked(compile_template(ctx_, equals->value, equals->mark, text, equals->key));
  }
  if (const Field* contains = map.find("contains")) {
    const std::string text = reader_.scalar(*contains, "a text the message contains");
    step.match.contains =
        tracked(compile_template(ctx_, contains->value, contains->mark, text, "contains"));
  }
  if (const Field* regex = map.find("regex")) {
    std::vector<std::pair<std::string, YAML::Mark>> patterns;
    if (regex->value.IsSequence()) {
      for (const YAML::Node& item : regex->value) {
        const YAML::Mark mark = item.Mark().is_null() ? regex->mark : item.Mark();
        patterns.emplace_back(reader_.scalar(item, mark, "regex", "a regular expression"), mark);
      }
    } else {
      patterns.emplace_back(reader_.scalar(*regex, "a regular expression"), regex->mark);
    }
    for (auto& [pattern, mark] : patterns) {
      RE2::Options options;
      options.set_log_errors(false);
      auto compiled = std::make_shared<RE2>(pattern, options);
      if (!compiled->ok()) {
        reader_.fail(mark, fmt::format("regex {} does not compile ({}); expected an RE2 pattern",
                                       shown(pattern), compiled->error()));
      }
      step.match.regexes.push_back(NamedRegex{pattern, std::move(compiled)});
    }
  }
  if (const Field* json = map.find("json")) {
    // The same forms as check: json:, compiled by the check loader.
    YAML::Node wrapped(YAML::NodeType::Map);
    wrapped["json"] = json->value;
    Field field = *json;
    field.key = "check";
    field.value = wrapped;
    step.match.json = compile_checks(ctx_, field);
  }
  if (const Field* timeout = map.find("timeout")) {
    step.timeout_us = reader_.duration_us(*timeout);
    if (step.timeout_us <= 0) {
      reader_.fail(timeout->mark, "timeout is 0; expected a duration above 0, such as 5s");
    }
  }
  if (const Field* unmatched = map.find("unmatched")) {
    const std::string text = reader_.scalar(*unmatched, "skip, count or fail");
    if (text == "skip") {
      step.unmatched = SocketStep::Unmatched::kSkip;
    } else if (text == "count") {
      step.unmatched = SocketStep::Unmatched::kCount;
    } else if (text == "fail") {
      step.unmatched = SocketStep::Unmatched::kFail;
    } else {
      reader_.fail(unmatched->mark, fmt::format("unmatched {} is not a policy; expected skip "
                                                "(wait for the next message), count or fail",
                                                shown(text)));
    }
  }
  if (const Field* extract = map.find("extract")) {
    step.extractions = compile_extractions(ctx_, *extract);
    for (const Extraction& e : step.extractions) {
      const Extractor::Kind kind = e.extractor.kind();
      if (kind == Extractor::Kind::kHeader || kind == Extractor::Kind::kCookie ||
          kind == Extractor::Kind::kStatus) {
        reader_.fail(extract->mark,
                     fmt::format("extract {} reads a {}, which messages do not "
                                 "have; expected json, regex or body",
                                 ctx_.plan.variables.name(e.slot), e.extractor.describe()));
      }
    }
  }
  if (const Field* from = map.find("latency_from")) {
    std::string error;
    const std::string text = reader_.scalar(*from, "a JSON path such as $.sent_us");
    step.latency_from = JsonPath::compile(text, &error);
    if (!step.latency_from) {
      reader_.fail(from->mark, fmt::format("latency_from {}: {}; expected a JSON path such as "
                                           "$.sent_us",
                                           shown(text), error));
    }
  }
  if (const Field* from = map.find("from")) note_from(*from);
  if (!ws) socket_framing(step, map);
}

void FlowCompiler::socket_hold(SocketStep& step, const Field& action) {
  const Field* duration = &action;
  std::optional<MapFields> map;
  if (action.value.IsMap()) {
    map = reader_.read_map(action.value, action.mark, action.key,
                           step.websocket() ? Keys(kWsHoldKeys) : Keys(kTcpHoldKeys));
    duration = map->find("duration");
    if (duration == nullptr) {
      reader_.fail(map->mark,
                   fmt::format("{} has no duration; expected e.g. {{duration: 30s}}", action.key));
    }
  }
  step.duration_us = reader_.duration_us(*duration);
  if (step.duration_us <= 0) {
    reader_.fail(duration->mark, "duration is 0; expected a duration above 0, such as 30s");
  }
  if (!map) return;
  if (const Field* from = map->find("latency_from")) {
    std::string error;
    const std::string text = reader_.scalar(*from, "a JSON path such as $.sent_us");
    step.latency_from = JsonPath::compile(text, &error);
    if (!step.latency_from) {
      reader_.fail(from->mark, fmt::format("latency_from {}: {}; expected a JSON path such as "
                                           "$.sent_us",
                                           shown(text), error));
    }
  }
  if (!step.websocket()) socket_framing(step, *map);
}

void FlowCompiler::socket_close(SocketStep& step, const Field& action) {
  if (action.value.IsNull()) return;
  if (!step.websocket()) {
    const MapFields map = reader_.read_map(action.value, action.mark, action.key, {});
    if (!map.fields.empty()) {
      reader_.fail(map.fields.front().key_mark,
                   fmt::format("tcp.close takes no settings; expected tcp.close: {{}}"));
    }
    return;
  }
  const MapFields map = reader_.read_map(action.value, action.mark, action.key, kWsCloseKeys);
  if (const Field* code = map.find("code")) {
    const auto value = static_cast<int>(reader_.number(*code, 1000, 4999, /*whole=*/true));
    if ((value >= 1004 && value <= 1006) || value == 1015 || (value > 1015 && value < 3000)) {
      reader_.fail(code->mark, fmt::format("close code {} may not be sent; expected 1000-1003, "
                                           "1007-1014 or 3000-4999",
                                           value));
    }
    step.close_code = static_cast<uint16_t>(value);
  }
  if (const Field* reason = map.find("reason")) {
    step.close_reason = reader_.scalar(*reason, "a short text");
    if (step.close_reason.size() > 123) {
      reader_.fail(reason->mark,
                   "reason is longer than 123 bytes; expected a shorter text (a "
                   "close frame holds 125 bytes)");
    }
  }
}

void FlowCompiler::compile_path(HttpRequest& request, const MapFields& map, const Field& action,
                                std::string* path_text) {
  const Field* path = &action;
  std::optional<MapFields> explicit_request;
  if (action.key == "request") {
    explicit_request = reader_.read_map(action.value, action.mark, "request", kRequestKeys);
    const Field* method = explicit_request->find("method");
    path = explicit_request->find("path");
    if (method == nullptr || path == nullptr) {
      reader_.fail(explicit_request->mark, fmt::format("request has no {}; expected e.g. "
                                                       "{{method: PURGE, path: /cache}}",
                                                       method == nullptr ? "method" : "path"));
    }
    request.method = reader_.scalar(*method, "an HTTP method such as GET");
    if (const std::optional<std::string> problem = http::method_problem(request.method)) {
      reader_.fail(method->mark, fmt::format("method {} {}", shown(request.method), *problem));
    }
  } else {
    request.method = upper(action.key);
  }

  *path_text = reader_.scalar(*path, "a path such as /login");
  const std::string& text = *path_text;
  const size_t scheme = text.find("://");
  if (scheme != std::string::npos && text.find('/') > scheme) {
    reader_.fail(path->mark, fmt::format("path {} is a URL; use a path; the host comes from "
                                         "target: (one target per file), e.g. /login",
                                         shown(text)));
  }
  tracked(compile_template(ctx_, path->value, path->mark, text, "path"));
  // A run parameter may supply the start ("{{ env.BASE_PATH }}/items"): it is
  // known now, so the path is checked with its value.
  std::string start = text;
  const size_t open = text.find_first_not_of(" \t", 2);
  if (text.starts_with("{{") && open != std::string::npos && text.compare(open, 4, "env.") == 0 &&
      text.find("}}") != std::string::npos) {
    const size_t close = text.find("}}") + 2;
    start = compile_template(ctx_, path->value, path->mark, text.substr(0, close), "path")
                .render(RenderContext{}) +
            text.substr(close);
  }
  if (start.empty() || start.front() != '/') {
    reader_.fail(path->mark, fmt::format("path {} does not start with /; expected e.g. /login or "
                                         "/items/{{{{ id }}}}",
                                         shown(start)));
  }
  // Literal text goes on the request line as written, so it must be clean;
  // expressions are the user's to encode (| urlencode).
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "{{") == 0 && (i == 0 || text[i - 1] != '\\')) {
      i = text.find("}}", i) + 1;
      continue;
    }
    const auto u = static_cast<unsigned char>(text[i]);
    if (u <= 0x20 || u == 0x7f || text[i] == '#') {
      reader_.fail(reader_.mark_at(path->value, path->mark, i),
                   fmt::format("path {} contains {}; expected %20 for a space, and no fragment "
                               "(#) or control characters",
                               shown(text), text[i] == '#' ? "'#'" : "a space or control byte"));
    }
  }
  std::string target_text = text;
  if (const Field* query = map.find("query")) {
    compile_query(*query, &target_text);
  }
  std::string error;
  size_t offset = 0;
  std::optional<Template> target =
      Template::compile(target_text, ctx_.plan.variables, false, &error, &offset);
  if (!target && error.starts_with("parameter env.")) {
    reader_.fail(path->mark, fmt::format("path uses {}", error));
  }
  if (!target) {
    reader_.fail(path->mark, fmt::format("path and query do not form a template ({}); expected "
                                         "a path such as /items/{{{{ id }}}}",
                                         error));
  }
  request.target = tracked(std::move(*target));
}

void FlowCompiler::compile_query(const Field& field, std::string* target_text) {
  const MapFields map = reader_.read_map(field.value, field.mark, "query", {});
  bool first = target_text->find('?') == std::string::npos;
  for (const Field& parameter : map.fields) {
    const std::string value = reader_.scalar(parameter, "a text or template");
    compile_template(ctx_, parameter.value, parameter.mark, value,
                     fmt::format("query {}", parameter.key));
    *target_text += first ? '?' : '&';
    first = false;
    append_urlencoded(parameter.key, target_text);
    *target_text += '=';
    *target_text += compose(split_template(value), "urlencode");
  }
}

void FlowCompiler::compile_body(HttpRequest& request, const MapFields& map,
                                bool step_content_type) {
  const Field* body = nullptr;
  for (std::string_view key : {"json", "body", "form"}) {
    if (const Field* field = map.find(key)) {
      if (body != nullptr) {
        reader_.fail(field->key_mark, fmt::format("step has both {} and {}; expected one body",
                                                  body->key, field->key));
      }
      body = field;
    }
  }
  if (body == nullptr) {
    return;
  }
  std::string_view content_type;
  std::string text;
  if (body->key == "body") {
    text = reader_.scalar(*body, "the body text");
    request.body = tracked(compile_template(ctx_, body->value, body->mark, text, "body"));
    return;
  }
  if (body->key == "json") {
    if (!body->value.IsMap() && !body->value.IsSequence()) {
      reader_.fail(body->mark, fmt::format("json is {}; expected a map or a list (for JSON "
                                           "written as text use body: with a Content-Type "
                                           "header)",
                                           yaml::kind_of(body->value)));
    }
    text = json_text(body->value, body->mark, 0);
    content_type = "application/json";
  } else {
    const MapFields form = reader_.read_map(body->value, body->mark, "form", {});
    for (const Field& field : form.fields) {
      const std::string value = reader_.scalar(field, "a text or template");
      compile_template(ctx_, field.value, field.mark, value, fmt::format("form {}", field.key));
      if (!text.empty()) {
        text += '&';
      }
      append_urlencoded(field.key, &text);
      text += '=';
      text += compose(split_template(value), "urlencode");
    }
    content_type = "application/x-www-form-urlencoded";
  }
  std::string error;
  size_t offset = 0;
  std::optional<Template> compiled =
      Template::compile(text, ctx_.plan.variables, false, &error, &offset);
  if (!compiled && error.starts_with("parameter env.")) {
    reader_.fail(body->mark, fmt::format("{} uses {}", body->key, error));
  }
  if (!compiled) {
    reader_.fail(body->mark, fmt::format("{} does not form a template ({}); expected plain "
                                         "values and {{{{ name }}}} expressions",
                                         body->key, error));
  }
  request.body = tracked(std::move(*compiled));
  // A json:/form: body says what it is, even over a default Content-Type;
  // only the step's own header beats it.
  if (!step_content_type) {
    if (ctx_.default_content_type) {
      // Replaces a templated default copied in above, or overrides a literal one.
      std::erase_if(request.headers,
                    [](const auto& header) { return iequals(header.first, "Content-Type"); });
      request.headers.emplace_back("Content-Type", Template::literal(std::string(content_type)));
    } else {
      request.content_type = content_type;
    }
  }
}

// YAML -> JSON text with templates inside strings (rendered through | json).
// Plain numbers, true/false and null stay JSON literals; quoted ones are
// strings; !raw "{{ n }}" inserts a template's output unquoted.
std::string FlowCompiler::json_text(const YAML::Node& node, const YAML::Mark& mark, int depth) {
  if (depth > 64) {
    reader_.fail(mark, "json nests more than 64 levels; expected a shallower body");
  }
  reader_.charge(16, mark);
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence: {
      std::string out = "[";
      for (const YAML::Node& item : node) {
        out += out.size() > 1 ? "," : "";
        out += json_text(item, item.Mark().is_null() ? mark : item.Mark(), depth + 1);
      }
      return out + "]";
    }
    case YAML::NodeType::Map: {
      const MapFields map = reader_.read_map(node, mark, "json object", {});
      std::string out = "{";
      for (const Field& field : map.fields) {
        out += out.size() > 1 ? "," : "";
        out += "\"" + Template::escape(text::json_escaped(field.key)) + "\":";
        out += json_text(field.value, field.mark, depth + 1);
      }
      return out + "}";
    }
    case YAML::NodeType::Scalar:
      break;
    default:
      reader_.fail(mark, "json has an undefined value; expected plain YAML values");
  }
  const std::string& text = reader_.scalar(node, mark, "json value", "a value");
  const std::string& tag = node.Tag();
  if (tag == "!raw") {
    compile_template(ctx_, node, mark, text, "json value");
    return text;
  }
  if (tag != "?" && tag != "!" && tag != "tag:yaml.org,2002:str") {
    reader_.fail(mark, fmt::format("json value has the tag {}; expected no tag, !!str, or !raw "
                                   "(a template inserted without quotes)",
                                   shown(tag)));
  }
  switch (plain_kind(node)) {
    case PlainKind::kNumber:
      return text;
    case PlainKind::kTrue:
      return "true";
    case PlainKind::kFalse:
      return "false";
    case PlainKind::kNull:
      return "null";
    case PlainKind::kString:
      break;
  }
  compile_template(ctx_, node, mark, text, "json value");
  return "\"" + compose(split_template(text), "json") + "\"";
}

}  // namespace

void collect_extracted_names(LoadContext& ctx, const Field& flows) {
  if (!flows.value.IsMap()) {
    return;  // compile_flows reports it
  }
  for (const auto& flow : flows.value) {
    if (flow.second.IsMap()) {
      for (const auto& entry : flow.second) {
        if (entry.first.IsScalar() && entry.first.Scalar() == "steps") {
          collect_from_steps(ctx, entry.second, 0);
        }
      }
    }
  }
}

void compile_flows(LoadContext& ctx, const Field& flows) {
  const MapFields map = ctx.reader.read_map(flows.value, flows.mark, "flows", {});
  if (map.fields.empty()) {
    ctx.reader.fail(flows.mark,
                    "flows is empty; expected at least one flow, e.g. flows: {browse: "
                    "{steps: [{get: /}]}}");
  }
  if (map.fields.size() > kMaxFlows) {
    ctx.reader.fail(flows.mark,
                    fmt::format("{} flows; expected at most {} (the limit of flows a worker "
                                "reports each second)",
                                map.fields.size(), kMaxFlows));
  }
  for (const Field& field : map.fields) {
    check_label(ctx.reader, field.key, field.key_mark, "flow");
    Flow flow;
    flow.name = field.key;
    FlowCompiler(ctx, flow).compile(field);
    ctx.plan.flows.push_back(std::move(flow));
  }
}

}  // namespace millstone::scenario::detail
