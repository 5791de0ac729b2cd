#!/usr/bin/env bash
# bench/io_backend/run.sh — epoll vs io_uring for millstone's client I/O pattern.
#
# Builds io_backend_bench.cc, starts a private nginx on 127.0.0.1:<free port>
# (worker_processes 1), and runs the backends alternately
#   epoll, uring, uring-mshot, epoll, uring, uring-mshot, ...
# RUNS times each for DURATION seconds with CONNS connections, then the same
# once each with BIG_CONNS connections. Prints per-run lines, medians and the
# io_uring/epoll ratios of CPU µs per request.
#
#   bench/io_backend/run.sh
#   CONNS=50 DURATION=5 RUNS=3 BIG_CONNS=1000 BIG_RUNS=1 BACKENDS="epoll uring uring-mshot" \
#     bench/io_backend/run.sh
#   EXTRA="--rbuf 16384" bench/io_backend/run.sh   # extra flags for every run
#
# Build line (also in the .cc):
#   g++ -std=c++20 -O2 -Wall -Wextra -o io_backend_bench io_backend_bench.cc -luring
set -euo pipefail

CONNS=${CONNS:-50}
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
BIG_CONNS=${BIG_CONNS:-1000}   # 0 skips the big-connection-count pass
BIG_RUNS=${BIG_RUNS:-1}
BACKENDS=${BACKENDS:-"epoll uring uring-mshot"}
EXTRA=${EXTRA:-}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
CXX=${CXX:-g++}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ -x $NGINX ]] || { echo "nginx not found (NGINX=)" >&2; exit 2; }
[[ -f /usr/include/liburing.h ]] || { echo "liburing-dev missing (apt-get install -y liburing-dev)" >&2; exit 2; }
[[ $DURATION =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "DURATION must be seconds (e.g. 5)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/io_backend_bench.XXXXXX)
nginx_pid=""
client_pid=""
cleanup() {
  local rc=$?
  [[ -n $client_pid ]] && kill -TERM "$client_pid" 2>/dev/null || true
  if [[ -n $nginx_pid ]]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nginx_pid" 2>/dev/null || true
  fi
  [[ ${BENCH_KEEP_TMP:-0} == 1 ]] && echo "kept $tmp" >&2 || rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# ---- build
bin=$tmp/io_backend_bench
"$CXX" -std=c++20 -O2 -Wall -Wextra -o "$bin" "$here/io_backend_bench.cc" -luring

# ---- nginx
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$port;
    location /hello { return 200 "hello\n"; }
  }
}
EOF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/stderr" &
nginx_pid=$!
for _ in $(seq 50); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2).close()" 2>/dev/null; then break; fi
  kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/nginx/stderr" >&2; echo "nginx failed to start" >&2; exit 1; }
  sleep 0.1
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "# $(date '+%F %T')  kernel $(uname -r)  cpus $(nproc)  nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')  liburing $(dpkg-query -W -f='${Version}' liburing-dev 2>/dev/null || echo '?')"
echo "# loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"

results=$tmp/results.txt
: >"$results"
run_one() {  # backend conns
  local timeout=$(python3 -c "print(int($DURATION + 30))")
  "$bin" --backend "$1" --conns "$2" --duration "$DURATION" --port "$port" $EXTRA >"$tmp/out" 2>"$tmp/err" &
  client_pid=$!
  ( sleep "$timeout"; kill -TERM "$client_pid" 2>/dev/null ) &
  local guard=$!
  local rc=0
  wait "$client_pid" || rc=$?
  client_pid=""
  kill "$guard" 2>/dev/null || true
  wait "$guard" 2>/dev/null || true
  if [[ $rc -ne 0 ]]; then cat "$tmp/err" >&2; echo "run failed: $1 conns=$2 rc=$rc" >&2; exit 1; fi
  local line
  line="$(cat "$tmp/out") load1=$(cut -d' ' -f1 /proc/loadavg)"
  echo "$line" | tee -a "$results"
}

for ((r = 1; r <= RUNS; r++)); do
  for b in $BACKENDS; do run_one "$b" "$CONNS"; done
done
if [[ $BIG_CONNS -gt 0 ]]; then
  for ((r = 1; r <= BIG_RUNS; r++)); do
    for b in $BACKENDS; do run_one "$b" "$BIG_CONNS"; done
  done
fi
echo "# loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$results" <<'PY'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
    rows.append(kv)
groups = {}
for r in rows:
    groups.setdefault((int(r["conns"]), r["backend"]), []).append(r)
def med(rs, k): return statistics.median(float(r[k]) for r in rs)
print()
print(f"{'conns':>5} {'backend':<12} {'n':>2} {'req/s':>8} {'cpu us/req':>10} {'user us/req':>11} {'sys us/req':>10} {'waits/req':>9} {'cpu%':>6} {'rbuf B/conn':>11}  detail")
for (conns, b), rs in sorted(groups.items()):
    req = [float(r["requests"]) for r in rs]
    user = statistics.median(float(r["user_s"]) * 1e6 / float(r["requests"]) for r in rs)
    sys_ = statistics.median(float(r["sys_s"]) * 1e6 / float(r["requests"]) for r in rs)
    print(f"{conns:>5} {b:<12} {len(rs):>2} {med(rs,'rps'):>8.0f} {med(rs,'cpu_us_per_req'):>10.3f} {user:>11.3f} {sys_:>10.3f} "
          f"{med(rs,'waits_per_req'):>9.3f} {med(rs,'cpu_pct'):>6.1f} {med(rs,'rbuf_bytes_per_conn'):>11.0f}  {rs[0]['detail']}")
print()
for conns in sorted({c for c, _ in groups}):
    base = groups.get((conns, "epoll"))
    if not base: continue
    for (c2, b), rs in sorted(groups.items()):
        if c2 != conns or b == "epoll": continue
        print(f"RATIO conns={conns} {b}/epoll: cpu us/req {med(rs,'cpu_us_per_req')/med(base,'cpu_us_per_req'):.3f}  "
              f"req/s {med(rs,'rps')/med(base,'rps'):.3f}   (medians of {len(rs)} vs {len(base)} runs)")
PY
