#!/usr/bin/env bash
# HTTP/2 client CPU per request: millstone --http2 vs h2load at the same
# -c (connections) and -m (streams per connection) against the same nghttpd,
# server pinned to one core and the client to the other. Prints each client's
# requests, CPU seconds (user+sys, workers included) and the ratio of CPU per
# request, millstone / h2load (the issue's aim: <= 0.8).
# Usage: bench/h2_cpu.sh [-c CONNECTIONS] [-m STREAMS] [-d SECONDS]
# Needs: build/millstone (or MILLSTONE=), h2load (nghttp2-client), nghttpd
# (nghttp2-server), taskset, python3. Traffic stays on 127.0.0.1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
connections=4
streams=10
seconds=5
while getopts "c:m:d:" opt; do
  case $opt in
    c) connections=$OPTARG ;;
    m) streams=$OPTARG ;;
    d) seconds=$OPTARG ;;
    *) echo "usage: $0 [-c N] [-m N] [-d SECONDS]" >&2; exit 2 ;;
  esac
done
millstone=${MILLSTONE:-$here/../build/millstone}
for tool in "$millstone" h2load nghttpd taskset python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found" >&2; exit 2; }
done
exec python3 - "$millstone" "$connections" "$streams" "$seconds" <<'PY'
import json, os, re, resource, signal, socket, subprocess, sys, tempfile, time

millstone, connections, streams, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cores = os.sched_getaffinity(0)
server_core, client_core = (sorted(cores)[0], sorted(cores)[-1]) if len(cores) > 1 else (0, 0)
tmp = tempfile.mkdtemp(prefix="h2cpu.")
with open(os.path.join(tmp, "hello"), "w") as f:
    f.write("hello\n")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
server = subprocess.Popen(["taskset", "-c", str(server_core), "nghttpd", "--no-tls", "-d", tmp,
                           str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)

def stop_server(*_):
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGTERM, lambda *a: (stop_server(), sys.exit(130)))
try:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close(); break
        except OSError:
            time.sleep(0.01)
    url = f"http://127.0.0.1:{port}/hello"

    def measure(args):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(["taskset", "-c", str(client_core)] + args, capture_output=True,
                             text=True, timeout=seconds + 30)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return out, cpu

    out, h2_cpu = measure(["h2load", "-c", connections, "-m", streams, "-t", "1",
                           "-D", str(seconds), url])
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    if not m or int(m.group(2)) == 0:
        print("h2load failed:\n" + out.stdout + out.stderr, file=sys.stderr); sys.exit(1)
    h2_requests = int(m.group(2))

    summary = os.path.join(tmp, "millstone.json")
    out, ms_cpu = measure([millstone, "run", url, "--http2", "-c", connections, "--streams",
                           streams, "-d", f"{seconds}s", "-w", "1", "-q", "--no-history",
                           "-o", summary])
    if out.returncode != 0:
        print("millstone failed:\n" + out.stdout + out.stderr, file=sys.stderr); sys.exit(1)
    ms_requests = json.load(open(summary))["requests"]

    print(f"h2_cpu: -c {connections} -m {streams}, {seconds}s, nghttpd on core {server_core}, "
          f"client on core {client_core}")
    print(f"{'client':<10}{'requests':>12}{'req/s':>12}{'cpu s':>10}{'us cpu/req':>12}")
    for name, requests, cpu in (("h2load", h2_requests, h2_cpu), ("millstone", ms_requests, ms_cpu)):
        print(f"{name:<10}{requests:>12}{requests / seconds:>12.0f}{cpu:>10.2f}"
              f"{cpu / requests * 1e6:>12.2f}")
    ratio = (ms_cpu / ms_requests) / (h2_cpu / h2_requests)
    print(f"ratio millstone/h2load CPU per request: {ratio:.2f}x")
finally:
    stop_server()
    server.wait()
    subprocess.run(["rm", "-rf", tmp])
PY
