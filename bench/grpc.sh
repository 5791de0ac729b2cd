#!/usr/bin/env bash
# gRPC unary client CPU per call: `millstone grpc` vs h2load sending the same
# gRPC-shaped POSTs (the framed request message from a file, content-type
# application/grpc, te: trailers) at the same -c (connections) and -m
# (streams per connection), against the same server: the millstone mock's
# gRPC route (one worker) by default, or with -s node the @grpc/grpc-js
# server of tests/interop. Server pinned to one core, the clients to the
# other. Prints each client's calls, CPU seconds (user+sys, workers
# included) and the ratio of CPU per call, millstone / h2load.
# Usage: bench/grpc.sh [-c CONNECTIONS] [-m STREAMS] [-d SECONDS] [-s mock|node]
# Needs: build/millstone (or MILLSTONE=), h2load (nghttp2-client), taskset,
# python3; node and tests/interop/node_modules for -s node. Loopback only.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
connections=1
streams=50
seconds=5
server=mock
while getopts "c:m:d:s:" opt; do
  case $opt in
    c) connections=$OPTARG ;;
    m) streams=$OPTARG ;;
    d) seconds=$OPTARG ;;
    s) server=$OPTARG ;;
    *) echo "usage: $0 [-c N] [-m N] [-d SECONDS] [-s mock|node]" >&2; exit 2 ;;
  esac
done
millstone=${MILLSTONE:-$here/../build/millstone}
for tool in "$millstone" h2load taskset python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found" >&2; exit 2; }
done
case $server in mock|node) ;; *) echo "error: -s mock or -s node" >&2; exit 2 ;; esac
exec python3 - "$millstone" "$connections" "$streams" "$seconds" "$server" "$here/.." <<'PY'
import json, os, re, resource, signal, socket, subprocess, sys, tempfile, time

millstone, connections, streams, seconds, kind, root = sys.argv[1:7]
seconds = int(seconds)
proto = os.path.join(root, "tests/interop/protos/greeter.proto")
call = "millstone.test.Greeter/SayHello"
cores = os.sched_getaffinity(0)
server_core, client_core = (sorted(cores)[0], sorted(cores)[-1]) if len(cores) > 1 else (0, 0)
tmp = tempfile.mkdtemp(prefix="grpcbench.")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
pin = ["taskset", "-c", str(server_core)]
if kind == "mock":
    with open(os.path.join(tmp, "mock.yaml"), "w") as f:
        f.write(f"grpc:\n  - proto: {proto}\n    method: {call}\n"
                "    response: {message: \"hello ada\", count: 1}\n")
    argv = pin + [millstone, "mock", "--config", os.path.join(tmp, "mock.yaml"), "--listen",
                  f"127.0.0.1:{port}", "-w", "1", "-q"]
else:
    argv = pin + ["node", os.path.join(root, "tests/interop/grpc_server.js"), str(port)]
server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)

def stop_server(*_):
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGTERM, lambda *a: (stop_server(), sys.exit(130)))
try:
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close(); break
        except OSError:
            time.sleep(0.02)
    # HelloRequest {name: "ada"}: field 1, length 3; framed: flag 0, length 5.
    body = os.path.join(tmp, "request.bin")
    with open(body, "wb") as f:
        f.write(b"\x00\x00\x00\x00\x05\x0a\x03ada")

    def measure(args):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(["taskset", "-c", str(client_core)] + args, capture_output=True,
                             text=True, timeout=seconds + 30)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return out, cpu

    out, h2_cpu = measure(["h2load", "-c", connections, "-m", streams, "-t", "1",
                           "-D", str(seconds), "-d", body,
                           "-H", "content-type: application/grpc", "-H", "te: trailers",
                           f"http://127.0.0.1:{port}/{call}"])
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    if not m or int(m.group(2)) == 0:
        print("h2load failed:\n" + out.stdout + out.stderr, file=sys.stderr); sys.exit(1)
    h2_calls = int(m.group(2))

    summary = os.path.join(tmp, "millstone.json")
    out, ms_cpu = measure([millstone, "grpc", f"127.0.0.1:{port}", "--proto", proto, "--call",
                           call, "-d", '{"name":"ada"}', "-c", connections, "--streams", streams,
                           "--duration", f"{seconds}s", "-w", "1", "-q", "--no-history",
                           "-o", summary])
    if out.returncode != 0:
        print("millstone failed:\n" + out.stdout + out.stderr, file=sys.stderr); sys.exit(1)
    result = json.load(open(summary))
    ms_calls = result["grpc"]["ok"]
    if ms_calls == 0 or result["failed"] != 0:
        print("millstone calls failed:\n" + json.dumps(result["errors"]) +
              json.dumps(result["grpc"]), file=sys.stderr); sys.exit(1)

    print(f"grpc: -c {connections} -m {streams}, {seconds}s, {kind} server on core "
          f"{server_core}, client on core {client_core}")
    print(f"{'client':<10}{'calls':>12}{'calls/s':>12}{'cpu s':>10}{'us cpu/call':>13}")
    for name, calls, cpu in (("h2load", h2_calls, h2_cpu), ("millstone", ms_calls, ms_cpu)):
        print(f"{name:<10}{calls:>12}{calls / seconds:>12.0f}{cpu:>10.2f}"
              f"{cpu / calls * 1e6:>13.2f}")
    ratio = (ms_cpu / ms_calls) / (h2_cpu / h2_calls)
    print(f"ratio millstone/h2load CPU per call: {ratio:.2f}x")
finally:
    stop_server()
    server.wait()
    subprocess.run(["rm", "-rf", tmp])
PY
