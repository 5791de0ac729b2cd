#!/usr/bin/env bash
# HTTP/2 server cost: `millstone mock` (1 worker) vs nghttpd (1 thread), both
# serving GET /hello -> "hello\n" over h2c, each loaded in turn by the same
# h2load (-c/-m), server pinned to CPU 0 and h2load to CPU 1. Prints per run
# h2load's req/s and 2xx count, the server's own count (mock) and the server's
# CPU microseconds per request (from /proc/PID/stat), then the ratio of CPU
# per request mock/nghttpd (lower is better for the mock). nghttpd serves a
# file (an open and fstat per request, a date header), the mock prebuilt
# bytes: the ratio says whether the mock is a cheap enough HTTP/2 target, not
# which HTTP/2 stack is faster. h2load -D stops with up to c*m requests in
# flight, which the mock answered and counted: its count may exceed h2load's
# 2xx by that much.
#
# Usage: bench/mock_h2.sh [-c 4] [-m 10] [-D 5] [-r 3]
# Environment: MILLSTONE=build/millstone NGHTTPD=nghttpd H2LOAD=h2load
set -euo pipefail

conns=4 streams=10 duration=5 runs=3
while getopts "c:m:D:r:h" opt; do
  case $opt in
    c) conns=$OPTARG ;;
    m) streams=$OPTARG ;;
    D) duration=$OPTARG ;;
    r) runs=$OPTARG ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
millstone=${MILLSTONE:-$here/../build/millstone}
nghttpd=${NGHTTPD:-$(command -v nghttpd || echo /usr/sbin/nghttpd)}
h2load=${H2LOAD:-h2load}
for tool in "$millstone" "$nghttpd" "$(command -v "$h2load" || true)" "$(command -v taskset || true)"; do
  [ -x "$tool" ] || { echo "mock_h2: missing tool: ${tool:-h2load or taskset}" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/bench-mock-h2.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "mock_h2: nothing listens on 127.0.0.1:$1" >&2; exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf 'routes:\n  - path: /hello\n    body: "hello\\n"\n' >"$tmp/mock.yaml"
mkdir -p "$tmp/htdocs" && printf 'hello\n' >"$tmp/htdocs/hello"

mock_port=$(free_port)
taskset -c 0 "$millstone" mock --config "$tmp/mock.yaml" --listen "127.0.0.1:$mock_port" \
  --workers 1 --quiet >"$tmp/mock.out" 2>&1 &
pids+=($!)
wait_port "$mock_port"
mock_worker=$(cat "/proc/${pids[0]}/task/${pids[0]}/children" | awk '{print $1}')

ng_port=$(free_port)
taskset -c 0 "$nghttpd" --no-tls -n 1 -d "$tmp/htdocs" "$ng_port" >"$tmp/nghttpd.out" 2>&1 &
pids+=($!)
wait_port "$ng_port"
ng_pid=${pids[1]}

hz=$(getconf CLK_TCK)
echo "mock_h2: $(date -u +%FT%TZ) cores=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
echo "  h2load -c$conns -m$streams -D$duration, servers on CPU 0, h2load on CPU 1, $runs runs each"
declare -A best
for run in $(seq "$runs"); do
  for server in nghttpd mock; do
    if [ $server = mock ]; then port=$mock_port pid=$mock_worker; else port=$ng_port pid=$ng_pid; fi
    before_count=0
    [ $server = mock ] && before_count=$(curl -s "http://127.0.0.1:$port/__millstone/stats" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["routes"][0]["requests"])')
    t0=$(cpu_ticks "$pid")
    out=$(timeout $((duration + 30)) taskset -c 1 "$h2load" -c "$conns" -m "$streams" \
      -D "$duration" "http://127.0.0.1:$port/hello" 2>&1)
    t1=$(cpu_ticks "$pid")
    ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
    rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
    [ -n "$ok" ] && [ "$ok" -gt 0 ] || { echo "mock_h2: h2load -> $server failed:"; echo "$out"; exit 1; } >&2
    counted=""
    if [ $server = mock ]; then
      after=$(curl -s "http://127.0.0.1:$port/__millstone/stats" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["routes"][0]["requests"])')
      counted=" mock counted $((after - before_count))"
    fi
    us=$(python3 -c "print(f'{($t1 - $t0) * 1e6 / $hz / $ok:.2f}')")
    printf '  run %d %-7s %10s req/s  %8d 2xx%s  server CPU %s us/request\n' \
      "$run" "$server" "$rps" "$ok" "$counted" "$us"
    if [ -z "${best[$server]:-}" ] || python3 -c "import sys; sys.exit(0 if $us < ${best[$server]} else 1)"; then
      best[$server]=$us
    fi
  done
done
ratio=$(python3 -c "print(f'{${best[mock]} / ${best[nghttpd]}:.2f}')")
echo "RATIO server CPU per request mock/nghttpd (best of $runs): $ratio  (mock ${best[mock]} us, nghttpd ${best[nghttpd]} us)"
