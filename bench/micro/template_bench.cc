// Template rendering runs for every request's target, headers and body, so
// its cost adds directly to the per-request overhead of a scenario run.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "random/randomness.h"
#include "scenario/template.h"
#include "scenario/values.h"

namespace {

using millstone::random::Prng;
using millstone::scenario::RenderContext;
using millstone::scenario::Template;
using millstone::scenario::VariableTable;

void render_loop(benchmark::State& state, const char* text) {
  VariableTable variables;
  variables.intern("id");
  variables.intern("token");
  variables.intern("name");
  std::vector<std::string> values = {"12345", "eyJhbGciOiJIUzI1NiJ9.e30.sig",
                                     "J\xC3\xB6rg \"the\" user"};
  auto t = Template::compile(text, variables, false, nullptr, nullptr);
  if (!t) {
    state.SkipWithError("template does not compile");
    return;
  }
  Prng prng(1);
  RenderContext context{&values, 7, 3, 0, &prng, 1795395723456};
  std::string out;
  out.reserve(1024);
  for (auto _ : state) {
    out.clear();
    t->render(context, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}

// The common case: a path with one variable between literals.
void BM_RenderPath(benchmark::State& state) {
  render_loop(state, "/items/{{ id }}/reviews");
}

// Five segments: literal, variable, literal, built-in, literal.
void BM_RenderFiveSegments(benchmark::State& state) {
  render_loop(state, "/users/{{ id }}/orders?vu={{ vu }}&x=1");
}

void BM_RenderBearer(benchmark::State& state) {
  render_loop(state, "Bearer {{ token }}");
}

void BM_RenderRandom(benchmark::State& state) {
  render_loop(state, "/items/{{ random(1, 100000) }}");
}

void BM_RenderUuid(benchmark::State& state) {
  render_loop(state, "{{ uuid }}");
}

void BM_RenderNowIso(benchmark::State& state) {
  render_loop(state, "{{ now_iso }}");
}

void BM_RenderJsonBody(benchmark::State& state) {
  render_loop(state,
              "{\"id\":\"{{ uuid }}\",\"user\":\"{{ name | json }}\",\"at\":\"{{ now_iso }}\","
              "\"n\":{{ random(1, 10) }}}");
}

void BM_RenderUrlEncode(benchmark::State& state) {
  render_loop(state, "/search?q={{ name | urlencode }}");
}

void BM_Compile(benchmark::State& state) {
  for (auto _ : state) {
    VariableTable variables;
    auto t = Template::compile("/users/{{ id }}/orders?vu={{ vu }}&x={{ name | urlencode }}",
                               variables, true, nullptr, nullptr);
    benchmark::DoNotOptimize(t);
  }
}

BENCHMARK(BM_RenderPath);
BENCHMARK(BM_RenderFiveSegments);
BENCHMARK(BM_RenderBearer);
BENCHMARK(BM_RenderRandom);
BENCHMARK(BM_RenderUuid);
BENCHMARK(BM_RenderNowIso);
BENCHMARK(BM_RenderJsonBody);
BENCHMARK(BM_RenderUrlEncode);
BENCHMARK(BM_Compile);

}  // namespace

BENCHMARK_MAIN();
