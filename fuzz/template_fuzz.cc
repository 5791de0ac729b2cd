// Fuzzes Template::compile and render. Whatever compiles must render without
// crashing in any context, deterministically for a seed; whatever fails must
// say why and point inside the text. Separately, any text escaped with
// Template::escape must compile to a literal that renders back to the text.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "random/randomness.h"
#include "scenario/template.h"
#include "scenario/values.h"

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "template_fuzz: %s\n", what);
  std::abort();
}

using millstone::random::Prng;
using millstone::scenario::RenderContext;
using millstone::scenario::Template;
using millstone::scenario::VariableTable;

VariableTable known_variables() {
  VariableTable variables;
  variables.intern("token");
  variables.intern("users.email");
  return variables;
}

std::string render_with_seed(const Template& t, const std::vector<std::string>& values,
                             int64_t now_ms) {
  Prng prng(12345);
  RenderContext context{&values, 7, 3, 1, &prng, now_ms};
  return t.render(context);
}

// Compiles `text`, checks what it can, and returns the rendering in a fixed
// context ("" when it did not compile; *compiled says which).
std::string check_compile(std::string_view text, bool allow_new, bool* compiled) {
  VariableTable variables = known_variables();
  std::string error;
  size_t offset = std::numeric_limits<size_t>::max();
  auto t = Template::compile(text, variables, allow_new, &error, &offset);
  *compiled = t.has_value();
  if (!t) {
    if (error.empty()) die("rejected without a message");
    if (offset >= text.size()) die("error offset outside the text");
    if (!allow_new && variables.size() != 2) die("a failed compile interned a variable");
    return {};
  }
  if (t->source() != text) die("source() differs from the text");
  if (!allow_new && variables.size() != 2) die("interned a variable without allow_new");
  for (uint32_t slot : t->variables_used()) {
    if (slot >= variables.size()) die("variables_used() names a slot that does not exist");
  }

  // Values that exercise both filters; unset slots stay "".
  std::vector<std::string> values(variables.size());
  values[0] = "a b/\"c\"\\\n\x01\xC3\xA9";
  values[1] = "user@example.com";

  const std::string first = render_with_seed(*t, values, 1795395723456);
  if (render_with_seed(*t, values, 1795395723456) != first) die("render is not deterministic");

  // Appends rather than overwrites.
  Prng prng(1);
  RenderContext context{&values, 1, 0, 0, &prng, 0};
  std::string out = "prefix:";
  t->render(context, &out);
  if (out.compare(0, 7, "prefix:") != 0) die("render overwrote the buffer");

  // A context with nothing in it, and clock extremes, must not crash.
  RenderContext empty;
  std::string bare = t->render(empty);
  for (int64_t now :
       {std::numeric_limits<int64_t>::min(), int64_t{-1}, std::numeric_limits<int64_t>::max()}) {
    RenderContext extreme{&values, UINT64_MAX, UINT64_MAX, UINT32_MAX, &prng, now};
    t->render(extreme, &bare);
  }
  if (t->is_literal() && t->render(empty) != first) die("a literal depends on the context");
  return first;
}

void check_escape_round_trip(std::string_view text) {
  VariableTable variables = known_variables();
  const std::string source = Template::escape(text);
  std::string error;
  size_t offset = 0;
  auto t = Template::compile(source, variables, false, &error, &offset);
  if (!t) die("escaped text does not compile");
  if (!t->is_literal()) die("escaped text compiled to expressions");
  RenderContext empty;
  if (t->render(empty) != text) die("escaped text does not render back to the original");
  if (Template::literal(std::string(text)).render(empty) != text) die("literal() changed text");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  bool strict_ok = false, lenient_ok = false;
  const std::string strict = check_compile(text, false, &strict_ok);
  const std::string lenient = check_compile(text, true, &lenient_ok);
  // allow_new only adds names; it never changes what a known-names template means.
  if (strict_ok && (!lenient_ok || strict != lenient)) die("allow_new changed a valid template");
  check_escape_round_trip(text);
  return 0;
}
