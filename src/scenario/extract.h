#pragma once
// Pull a value out of a response into a virtual user's variable:
//   {json: $.token}  {json: $.items[0].id}  {regex: 'order-(\d+)', group: 1}
//   {header: Location}  {cookie: session}  {status: true}  {body: true}
// Compiled once (JSON path segments, RE2 program); applied per response.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scenario/response_view.h"

namespace re2 {
class RE2;
}

namespace millstone::scenario {

// A compiled JSON path: $ . key | [index] | ["quoted key"] , e.g.
// $.items[0].id, $["odd key"].x, $.items[-1] (last). No wildcards or filters:
// an extractor yields one value.
class JsonPath {
 public:
  static std::optional<JsonPath> compile(std::string_view text, std::string* error);
  struct Segment {
    bool is_index = false;
    std::string key;
    int64_t index = 0;
  };
  const std::vector<Segment>& segments() const { return segments_; }
  const std::string& source() const { return source_; }

 private:
  std::vector<Segment> segments_;
  std::string source_;
};

// Parses JSON documents with simdjson (DOM), reusing one parser (and its
// buffers) per worker: construct one per worker, not per response. The whole
// body is validated: anything that is not JSON (an HTML error page, a body cut
// short by the capture limit) is kNotJson for every path. simdjson 3.0 also
// rejects integers beyond 64 bits, which makes such a body kNotJson.
class JsonEvaluator {
 public:
  JsonEvaluator();
  ~JsonEvaluator();
  JsonEvaluator(const JsonEvaluator&) = delete;
  JsonEvaluator& operator=(const JsonEvaluator&) = delete;

  enum class Outcome { kFound, kMissing, kNotJson };
  struct Value {
    enum class Type { kString, kNumber, kBool, kNull, kObject, kArray } type = Type::kNull;
    // Strings unescaped; numbers, bools, null as JSON text (numbers in their
    // shortest round-trip form: 10.50 -> "10.5", 1e3 -> "1000"); objects and
    // arrays as minified JSON.
    std::string text;
    double number = 0;
    // Elements of an array, members of an object, code points of a string; 0
    // otherwise. Lets `length` checks work without parsing `text` again.
    size_t length = 0;
  };
  // Evaluates several paths against one body, parsing it once.
  // results[i] gets the value of paths[i] when outcome[i] == kFound.
  void evaluate(std::string_view body, const std::vector<const JsonPath*>& paths,
                std::vector<Outcome>* outcomes, std::vector<Value>* results);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Extractor {
 public:
  enum class Kind { kJson, kRegex, kHeader, kCookie, kStatus, kBody };
  // YAML-level description, already split by the loader.
  static std::optional<Extractor> json(std::string_view path, std::string* error);
  static std::optional<Extractor> regex(std::string_view pattern, int group, std::string* error);
  static Extractor header(std::string_view name);
  static Extractor cookie(std::string_view name);
  static Extractor status();
  static Extractor body();
  Extractor(Extractor&&) noexcept;
  Extractor& operator=(Extractor&&) noexcept;
  ~Extractor();

  Kind kind() const { return kind_; }
  const JsonPath* json_path() const { return json_path_ ? &*json_path_ : nullptr; }
  // For every kind but kJson (JSON values come from JsonEvaluator, so that
  // several JSON extractions and checks share one parse). False if absent.
  bool apply(const ResponseView& response, std::string* out) const;
  std::string describe() const;  // "json $.token", "header Location", ...

 private:
  Extractor() = default;
  Kind kind_ = Kind::kBody;
  std::optional<JsonPath> json_path_;
  std::unique_ptr<re2::RE2> regex_;
  int group_ = 0;
  std::string name_;
};

}  // namespace millstone::scenario
