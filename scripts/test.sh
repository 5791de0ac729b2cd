#!/usr/bin/env bash
# Builds and runs the whole test suite (unit, integration, fuzz-corpus replay).
#   scripts/test.sh            normal build in build/
#   scripts/test.sh --asan     AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#   scripts/test.sh --both     both, as CI runs them (.ci/run): the sanitized build
#                              compiles at idle priority while the normal suite runs
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in
  "" | --asan | --both) ;;
  *)
    echo "usage: scripts/test.sh [--asan|--both]" >&2
    exit 2
    ;;
esac

asan_flags=(-DMILLSTONE_SANITIZE=ON -DCMAKE_CXX_COMPILER=clang++)
# The sanitized pass leaves out the suites whose extra work is a third
# party's (Chromium rendering the report, Prometheus scraping, the docs'
# shell blocks, a RabbitMQ broker's 10-25 s start, Python reading the
# Kubernetes manifests, agents in network namespaces, which run the same
# code as AgentIntegration): the code of ours they reach is sanitized through
# the unit, garbage-server and integration tests that remain. MockFdLimit
# holds the mock at its descriptor limit on purpose, and there UBSan's vptr
# check cannot open the pipe it probes memory with, so it reports a false
# "invalid vptr" on the next virtual call.
asan_excluded='^(ReportIntegration|ReportIntegrationUrl|LiveMetricsIntegration|RunnableDocs|AmqpBroker|AgentManifests|AgentNetns|MockFdLimit)\.'

run_normal_suite() {
  (cd build && ctest --output-on-failure --timeout 300 -j2)
}

run_asan_suite() {
  (
    cd build-asan
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ctest --output-on-failure --timeout 300 -j2 -E "$asan_excluded"
  )
}

if [ "$mode" = "--asan" ]; then
  BUILD_DIR=build-asan scripts/build.sh "${asan_flags[@]}"
  run_asan_suite
  exit 0
fi

if [ "$mode" = "" ]; then
  BUILD_DIR=build scripts/build.sh
  run_normal_suite
  exit 0
fi

# --both. Much of the normal suite waits (timers, child processes, the suites
# that run alone on purpose), and the sanitized build is minutes of
# compiling: it runs meanwhile under SCHED_IDLE, which the kernel schedules
# only on a core that nothing else wants, so the tests keep the CPU they have
# alone (a waking test preempts it at once; nice 19 would still take a share).
# Its output goes to build-asan/build.log, shown if it fails.
mkdir -p build-asan
idle=()
if command -v chrt >/dev/null 2>&1 && chrt --idle 0 true 2>/dev/null; then
  idle=(chrt --idle 0)
else
  echo "test.sh: chrt --idle is not available; the sanitized build runs after the normal suite"
fi
if [ ${#idle[@]} -gt 0 ]; then
  # Started first: it also takes the moments the normal build leaves a core
  # idle (its links). In its own process group (job control on for this one
  # job), so that a failing normal build or suite (or ^C) stops it,
  # compilers included; not in its own session (setsid), which would be its
  # own scheduler autogroup, given an equal share of the CPU whatever its
  # policy (measured: the normal build took 17 minutes instead of 9).
  set -m
  BUILD_DIR=build-asan "${idle[@]}" scripts/build.sh "${asan_flags[@]}" >build-asan/build.log 2>&1 &
  asan_pid=$!
  set +m
  trap 'kill -- "-$asan_pid" 2>/dev/null || true' EXIT
  BUILD_DIR=build scripts/build.sh
  run_normal_suite  # on failure, set -e exits and the trap stops the build
  asan_status=0
  echo "test.sh: waiting for the sanitized build (build-asan/build.log)"
  wait "$asan_pid" || asan_status=$?
  trap - EXIT
else
  BUILD_DIR=build scripts/build.sh
  run_normal_suite
  asan_status=0
  BUILD_DIR=build-asan scripts/build.sh "${asan_flags[@]}" >build-asan/build.log 2>&1 || asan_status=$?
fi
if [ "$asan_status" -ne 0 ]; then
  tail -n 60 build-asan/build.log >&2
  echo "test.sh: the sanitized build failed (build-asan/build.log)" >&2
  exit "$asan_status"
fi
run_asan_suite
