#!/usr/bin/env bash
# The coordinator's cost per agent (docs/agents.md#what-a-coordinator-carries):
# `millstone run --agents N` with N real `millstone agent` processes on
# loopback, one local worker each, sending to the mock. While the run is in
# its steady state the script samples, from outside, the coordinator's CPU
# (/proc/PID/task/*/schedstat) and the bytes on its agent links (ss: what the kernel
# counted on the coordinator's sockets, TLS records included), and prints
# them per second and per agent. The mock is pinned to one core, the
# coordinator and the agents to the other.
# A snapshot holds the histogram's non-empty buckets, so its size follows the
# spread of latencies: -l gives the mock's answers a latency (a mock latency
# as in docs/mock.md, e.g. "{distribution: lognormal, median: 20ms, p99: 400ms}").
# Usage: bench/agents.sh [-n "1 8 64"] [-r RATE_PER_AGENT] [-w WINDOW_SECONDS] [-l LATENCY]
# Needs: build/millstone (or MILLSTONE=), taskset, ss (iproute2), python3.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
counts="1 8 64"
rate=20
window=8
latency=""
while getopts "n:r:w:l:" opt; do
  case $opt in
    n) counts=$OPTARG ;;
    r) rate=$OPTARG ;;
    w) window=$OPTARG ;;
    l) latency=$OPTARG ;;
    *) echo "usage: $0 [-n \"1 8 64\"] [-r RATE_PER_AGENT] [-w SECONDS]" >&2; exit 2 ;;
  esac
done
millstone=${MILLSTONE:-$here/../build/millstone}
for tool in "$millstone" taskset ss python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found" >&2; exit 2; }
done
exec python3 - "$millstone" "$counts" "$rate" "$window" "$latency" <<'PY'
import json, os, re, socket, subprocess, sys, tempfile, time, urllib.request

millstone, counts, rate, window = sys.argv[1], [int(c) for c in sys.argv[2].split()], float(sys.argv[3]), float(sys.argv[4])
latency = sys.argv[5]
cores = sorted(os.sched_getaffinity(0))
mock_core, client_core = (cores[0], cores[-1]) if len(cores) > 1 else (0, 0)
tmp = tempfile.mkdtemp(prefix="millstone-bench-agents-")
token = os.path.join(tmp, "token")
with open(token, "w") as f:
    subprocess.run([millstone, "token"], stdout=f, check=True)
routes = os.path.join(tmp, "routes.yaml")
open(routes, "w").write("routes:\n  - path: /hello\n    body: \"hello\\n\"\n" +
                        (f"    latency: {latency}\n" if latency else ""))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cpu_seconds(pid):
    """CPU time of every thread of pid, in ns resolution (schedstat's time on a CPU)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{task}/schedstat").read().split()[0])
        except FileNotFoundError:
            pass  # a thread that just ended
    return total / 1e9

def link_bytes(port):
    """Bytes received and sent (acked) on the coordinator's agent sockets."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    received = sum(int(x) for x in re.findall(r"bytes_received:(\d+)", out))
    sent = sum(int(x) for x in re.findall(r"bytes_acked:(\d+)", out))
    return received, sent

def wait_for(path, pattern, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, open(path).read())
        if m: return m
        time.sleep(0.05)
    raise SystemExit(f"error: no /{pattern}/ in {path} within {timeout} s:\n" + open(path).read())

mock_port = free_port()
mock = subprocess.Popen(["taskset", "-c", str(mock_core), millstone, "mock", "--config", routes,
                         "--listen", f"127.0.0.1:{mock_port}", "-w", "1", "-q"])
rows = []
try:
    time.sleep(0.5)
    for n in counts:
        settle = 2.0
        duration = settle + window + 2
        out = os.path.join(tmp, f"coordinator-{n}.out")
        summary = os.path.join(tmp, f"summary-{n}.json")
        coordinator = subprocess.Popen(
            ["taskset", "-c", str(client_core), millstone, "run", f"http://127.0.0.1:{mock_port}/hello",
             "--agents", str(n), "--agent-listen", "127.0.0.1:0", "--token-file", token,
             "--agent-wait", "120s", "-c", str(max(2 * n, int(rate * n / 10) + n)), "--rate", str(rate * n),
             "-d", f"{duration:g}s", "-q", "--no-history", "-o", summary],
            stdout=open(out, "w"), stderr=subprocess.STDOUT)
        address = wait_for(out, r"agents? on (127\.0\.0\.1:(\d+))", 10)
        port = int(address.group(2))
        agents = [subprocess.Popen(["taskset", "-c", str(client_core), millstone, "agent", "--join",
                                    address.group(1), "--token-file", token, "--workers", "1",
                                    "--join-timeout", "120s"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for _ in range(n)]
        wait_for(out, rf"agent {n}: \d+ workers?, shares", 120)
        time.sleep(0.5 + settle)  # the start lead, then past the first second
        cpu0, (in0, out0), t0 = cpu_seconds(coordinator.pid), link_bytes(port), time.time()
        time.sleep(window)
        cpu1, (in1, out1), t1 = cpu_seconds(coordinator.pid), link_bytes(port), time.time()
        code = coordinator.wait(timeout=duration + 60)
        for a in agents: a.wait(timeout=30)
        j = json.load(open(summary))
        elapsed = t1 - t0
        rows.append((n, 100 * (cpu1 - cpu0) / elapsed, (in1 - in0) / elapsed, (out1 - out0) / elapsed,
                     j["requests"] / j["duration_s"], code))
finally:
    mock.terminate(); mock.wait()

print(f"coordinator cost per agent: {rate:g} requests/s per agent, one worker each, "
      f"mock latency {latency or 'none'}, "
      f"sampled over {window:g} s of steady state; mock on core {mock_core}, coordinator and agents on core {client_core}")
print(f"{'agents':>6} {'coord CPU %':>11} {'per agent':>9} {'link in B/s':>12} {'per agent':>9} "
      f"{'link out B/s':>12} {'per agent':>9} {'req/s':>8} {'exit':>4}")
for n, cpu, rx, tx, rps, code in rows:
    print(f"{n:>6} {cpu:>11.2f} {cpu / n:>9.3f} {rx:>12.0f} {rx / n:>9.0f} {tx:>12.0f} {tx / n:>9.0f} "
          f"{rps:>8.0f} {code:>4}")
PY
