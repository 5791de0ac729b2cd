#!/usr/bin/env bash
# AMQP publish/consume rates and CPU per message: millstone amqp against a
# private RabbitMQ (rabbitmq-server, Debian's), the broker pinned to one core
# and millstone to the other. Prints the rates millstone measured, the CPU
# each side used over the run (the broker's from /proc, all its processes),
# and millstone's CPU per message as a share of the broker's: under 100%, the
# broker is the limit.
# Usage: bench/amqp.sh [-p PUBLISHERS] [-c CONSUMERS] [-s SIZE] [-d SECONDS] [-r RATE]
# Needs: build/millstone (or MILLSTONE=), rabbitmq-server, taskset, python3.
# Traffic stays on 127.0.0.1; the broker's data lives in a temporary directory.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
publishers=1
consumers=1
size=128
seconds=5
rate=0
while getopts "p:c:s:d:r:" opt; do
  case $opt in
    p) publishers=$OPTARG ;;
    c) consumers=$OPTARG ;;
    s) size=$OPTARG ;;
    d) seconds=$OPTARG ;;
    r) rate=$OPTARG ;;
    *) echo "usage: $0 [-p N] [-c N] [-s BYTES] [-d SECONDS] [-r RATE]" >&2; exit 2 ;;
  esac
done
millstone=${MILLSTONE:-$here/../build/millstone}
for tool in "$millstone" /usr/lib/rabbitmq/bin/rabbitmq-server /usr/bin/epmd taskset python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found" >&2; exit 2; }
done
exec python3 - "$millstone" "$publishers" "$consumers" "$size" "$seconds" "$rate" <<'PY'
import json, os, signal, socket, subprocess, sys, tempfile, time

millstone, publishers, consumers, size, seconds, rate = sys.argv[1:7]
cores = sorted(os.sched_getaffinity(0))
broker_core, client_core = (cores[0], cores[-1]) if len(cores) > 1 else (0, 0)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return True
    except OSError:
        return False

tmp = tempfile.mkdtemp(prefix="amqpbench.")
port, epmd_port, dist_port = free_port(), free_port(), free_port()
open(os.path.join(tmp, "enabled_plugins"), "w").write("[].\n")
env = dict(os.environ, HOME=tmp, ERL_EPMD_PORT=str(epmd_port),
           RABBITMQ_NODENAME=f"bench{os.getpid()}@localhost", RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
           RABBITMQ_NODE_PORT=str(port), RABBITMQ_DIST_PORT=str(dist_port),
           RABBITMQ_MNESIA_BASE=tmp + "/mnesia", RABBITMQ_LOG_BASE=tmp + "/log",
           RABBITMQ_ENABLED_PLUGINS_FILE=tmp + "/enabled_plugins",
           RABBITMQ_CONFIG_FILE=tmp + "/rabbitmq", RABBITMQ_CONF_ENV_FILE=tmp + "/env")
pin = ["taskset", "-c", str(broker_core)]
log = open(os.path.join(tmp, "broker.log"), "w")
epmd = subprocess.Popen(pin + ["/usr/bin/epmd", "-port", str(epmd_port)], env=env, stdout=log,
                        stderr=log, start_new_session=True)
broker = None
try:
    while not listening(epmd_port):
        time.sleep(0.05)
    started = time.time()
    broker = subprocess.Popen(pin + ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env, stdout=log,
                              stderr=log, start_new_session=True)
    while not listening(port):
        if time.time() - started > 60:
            sys.exit("the broker did not listen within 60 s; see " + tmp + "/broker.log")
        time.sleep(0.1)
    print(f"broker started in {time.time() - started:.1f} s (core {broker_core}); "
          f"millstone on core {client_core}")

    def group_cpu(pgid):
        ticks = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    out = os.path.join(tmp, "amqp.json")
    args = ["taskset", "-c", str(client_core), millstone, "amqp",
            f"amqp://guest:guest@127.0.0.1:{port}/", "--publishers", publishers, "--consumers",
            consumers, "--size", size, "-d", f"{seconds}s", "-o", out]
    if rate != "0":
        args += ["--rate", rate]
    before = group_cpu(broker.pid)
    subprocess.run(args, stdout=subprocess.DEVNULL, check=False)
    broker_cpu = group_cpu(broker.pid) - before
    j = json.load(open(out))
    messages = j["published"] + j["consumed"]
    elapsed = j["elapsed_s"]
    print(f"published {j['published']} ({j['publish_rate']:.0f}/s), consumed {j['consumed']} "
          f"({j['consume_rate']:.0f}/s), {size}-byte messages, errors {j['error_total']}")
    print(f"confirm p50 {j['confirm_latency_ms']['p50']:.2f} ms, end-to-end p50 "
          f"{j['latency_ms']['p50']:.2f} ms")
    if messages:
        print(f"millstone: {j['cpu_s']:.2f} s CPU = {100 * j['cpu_s'] / elapsed:.0f}% of a core, "
              f"{1e6 * j['cpu_s'] / messages:.1f} us per message published or consumed")
        print(f"broker:    {broker_cpu:.2f} s CPU = {100 * broker_cpu / elapsed:.0f}% of a core, "
              f"{1e6 * broker_cpu / messages:.1f} us per message")
        if broker_cpu > 0:
            print(f"per message, millstone used {100 * j['cpu_s'] / broker_cpu:.0f}% of the "
                  f"broker's CPU: the {'broker' if broker_cpu > j['cpu_s'] else 'client'} is "
                  f"the limit")
finally:
    for p in (broker, epmd):
        if p is not None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
PY
