#pragma once
// Templated strings of scenarios: "Bearer {{ token }}", "/items/{{ random(1, 100) }}".
// Compiled once into literal and expression segments; rendering appends to
// a caller's buffer and does not allocate beyond that buffer's growth.
//
// Syntax (docs/scenarios.md#templates):
//   {{ name }}               a variable: extracted, from a data file ("users.email"), or from vars:
//   {{ vu }}                 virtual user id, unique across workers, from 1
//   {{ iteration }}          this virtual user's iteration, from 0
//   {{ worker }}             worker index
//   {{ random(A, B) }}       uniform integer in [A, B]
//   {{ uuid }}               random UUID v4
//   {{ corr }}               a correlation id for this VU's iteration, unique across the run's
//                            workers and runs: "<run tag>-<vu>-<iteration>" (amqp.expect)
//   {{ now_ms }}             Unix time in milliseconds; {{ now }} in seconds
//   {{ now_iso }}            UTC, ISO 8601 with milliseconds
//   {{ name | urlencode }}   filters: urlencode, json (escaped for inside a JSON string)
//   {{ env.NAME }}           a run parameter (VariableTable::parameter), compiled in as text
//   {{ env.NAME | default("x") }}   the parameter, or x when it is not set; a filter may follow
//   \{{                      a literal "{{"
//
// Details the grammar leaves open, decided here:
//   - Whitespace inside {{ }} is optional: {{vu}}, {{ random(1,2) }}.
//   - Names are [A-Za-z_][A-Za-z0-9_.-]*. The built-in names above (and
//     `random`) are reserved: a variable cannot shadow them.
//   - At most one filter per expression; filters apply to built-ins too
//     ({{ now_iso | urlencode }}).
//   - A "}}" outside an expression is literal text, as is a "\" not directly
//     followed by "{{". Only "\{{" is an escape, so a literal backslash cannot
//     directly precede an expression.
//   - A variable not set yet renders as "" (extract may not have run). A
//     parameter not set and without a default is a compile error: unlike
//     variables, parameters are known before the run.
//   - default("...") takes double-quoted text with \" and \\ as its only
//     escapes; it cannot contain "}}" (the expression ends there).
//   - random(A, B) takes 64-bit signed integer literals with A <= B and is
//     exactly uniform (Lemire's multiply-and-reject; the rejection step runs
//     with probability (B - A + 1) / 2^64).
//   - urlencode keeps RFC 3986 unreserved bytes (A-Z a-z 0-9 - . _ ~) and
//     writes every other byte as %XX, uppercase. json escapes " \ and control
//     bytes (\n \r \t \b \f, else \u00XX); other bytes, UTF-8 included, pass.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scenario/values.h"

namespace millstone::scenario {

class Template {
 public:
  // On failure returns nullopt and sets *error ("unknown variable 'tokn'",
  // "unclosed '{{'", ...) and *error_offset (byte offset in text, for a
  // file:line:column message): the "{{" for unclosed and empty expressions,
  // otherwise the offending name, argument or character. Either pointer may
  // be null. Unknown variable names are errors only when `variables` does not
  // contain them and `allow_new` is false; with allow_new they are interned
  // (variables set by a later extract).
  static std::optional<Template> compile(std::string_view text, VariableTable& variables,
                                         bool allow_new, std::string* error, size_t* error_offset);
  static Template literal(std::string text);
  // Template source that compiles to exactly `text` (each "{{" becomes "\{{"),
  // for tools writing scenarios and for round-trip tests.
  static std::string escape(std::string_view text);

  // Appends to *out; the only allocation is *out growing.
  void render(const RenderContext& context, std::string* out) const;
  std::string render(const RenderContext& context) const;
  bool is_literal() const;
  // Variable slots this template reads (for validation: used before set?).
  std::vector<uint32_t> variables_used() const;
  const std::string& source() const { return source_; }

  struct Segment {
    enum class Kind : uint8_t {
      kLiteral,
      kVariable,
      kVu,
      kIteration,
      kWorker,
      kRandom,
      kUuid,
      kNowMs,
      kNowS,
      kNowIso,
      kCorr
    };
    enum class Filter : uint8_t { kNone, kUrlEncode, kJson };
    Kind kind = Kind::kLiteral;
    Filter filter = Filter::kNone;
    std::string literal;
    uint32_t slot = 0;
    int64_t low = 0, high = 0;
  };

 private:
  std::vector<Segment> segments_;
  std::string source_;
};

}  // namespace millstone::scenario
