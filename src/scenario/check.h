#pragma once
// Assertions on a response. A failed check is a result (counted per step and
// per check, with sampled "why" texts), never an exception.
//   status: 200 | [200, 201] | "2xx"
//   header: {Content-Type: {contains: json}}   (equals, contains, matches, exists)
//   body: {contains: "ok"} | {matches: 'id":\d+'} | {not_contains: error}
//   json: {"$.status": "paid", "$.total": {gt: 10}, "$.items": {length: 3}, "$.id": {exists: true}}
//   duration: {lt: 200ms}
//   grpc_status: OK | [OK, NOT_FOUND]      grpc_message: {contains: busy}   (grpc steps)
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scenario/extract.h"
#include "scenario/response_view.h"

namespace re2 {
class RE2;
}

namespace millstone::scenario {

// One comparison of a value against an expectation.
struct Expectation {
  enum class Op {
    kEquals,
    kNotEquals,
    kContains,
    kNotContains,
    kMatches,
    kExists,
    kNotExists,
    kLt,
    kLe,
    kGt,
    kGe,
    kLengthEquals,
    kOneOf
  };
  Op op = Op::kEquals;
  std::string text;                 // kEquals on strings, kContains, ...
  double number = 0;                // numeric ops and kLengthEquals
  bool numeric = false;             // kEquals/kNotEquals compare as numbers
  std::vector<std::string> one_of;  // kOneOf
  std::shared_ptr<re2::RE2> regex;  // kMatches
  std::string describe() const;     // "> 10", "contains \"ok\"", ...
};

// Builds an expectation from a YAML-level operator and value, for the
// loader: op_name is one of equals, not_equals, contains, not_contains,
// matches, exists, not_exists, lt, le, gt, ge, length, one_of.
// value_is_number: the YAML scalar was a number, so equals/not_equals compare
// numerically. exists/not_exists take "true" or "false" ({exists: false} is
// not_exists). Numeric operators parse value_text as a number whatever
// value_is_number says; durations must already be in microseconds. On error
// returns nullopt and *error says what was expected.
std::optional<Expectation> make_expectation(std::string_view op_name, std::string_view value_text,
                                            bool value_is_number, std::string* error);
// one_of (the only operator that takes a list).
std::optional<Expectation> make_expectation(std::string_view op_name,
                                            std::vector<std::string> values, std::string* error);

class Check {
 public:
  enum class Subject { kStatus, kHeader, kBody, kJson, kDuration, kGrpcStatus, kGrpcMessage };
  static Check status_in(std::vector<int> codes);  // exact codes
  static Check status_class(int hundreds);         // "2xx" -> 2
  static Check header(std::string name, Expectation e);
  static Check body(Expectation e);
  static std::optional<Check> json(std::string_view path, Expectation e, std::string* error);
  static Check duration(Expectation e);  // e.number in microseconds
  // grpc steps: the call's grpc-status (codes 0..16) and grpc-message.
  static Check grpc_status_in(std::vector<int> codes);
  static Check grpc_message(Expectation e);

  Subject subject() const { return subject_; }
  const JsonPath* json_path() const { return json_path_ ? &*json_path_ : nullptr; }
  // Name used in results: "status in [200]", "json $.total > 10", ...
  const std::string& name() const { return name_; }

  // For kJson, pass the evaluated value (outcome from JsonEvaluator); for the
  // others, json_outcome is ignored. On failure fills *why with what was seen:
  // "status 503", "$.total is 3", "body does not contain \"ok\"", "not JSON".
  bool evaluate(const ResponseView& response, JsonEvaluator::Outcome json_outcome,
                const JsonEvaluator::Value* json_value, std::string* why) const;

 private:
  Subject subject_ = Subject::kStatus;
  std::vector<int> codes_;
  int status_class_ = 0;
  std::string header_name_;
  Expectation expectation_;
  std::optional<JsonPath> json_path_;
  std::string name_;
  std::string expected_;  // the expectation as shown in why texts, in the subject's units
};

}  // namespace millstone::scenario
