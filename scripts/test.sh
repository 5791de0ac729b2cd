#!/usr/bin/env bash
# Builds and runs the whole test suite (unit, integration, fuzz-corpus replay).
#   scripts/test.sh            normal build in build/
#   scripts/test.sh --asan     AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--asan" ]; then
  export BUILD_DIR=build-asan
  scripts/build.sh -DMILLSTONE_SANITIZE=ON -DCMAKE_CXX_COMPILER=clang++
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  export BUILD_DIR=build
  scripts/build.sh
fi
cd "$BUILD_DIR"
if [ "${1:-}" = "--asan" ]; then
  # The sanitized pass leaves out the suites whose extra work is a third
  # party's (Chromium rendering the report, Prometheus scraping, the docs'
  # shell blocks, a RabbitMQ broker's 10-25 s start, Python reading the
  # Kubernetes manifests, agents in network namespaces, which run the same
  # code as AgentIntegration): the code of ours they reach is sanitized through
  # the unit, garbage-server and integration tests that remain. MockFdLimit
  # holds the mock at its descriptor limit on purpose, and there UBSan's vptr
  # check cannot open the pipe it probes memory with, so it reports a false
  # "invalid vptr" on the next virtual call.
  ctest --output-on-failure --timeout 300 -j2 -E '^(ReportIntegration|ReportIntegrationUrl|LiveMetricsIntegration|RunnableDocs|AmqpBroker|AgentManifests|AgentNetns|MockFdLimit)\.'
else
  ctest --output-on-failure --timeout 300 -j2
fi
