"""Held WebSocket connections at scale: memory per connection and push latency.

Invoked by bench/ws_hold.sh (--mode hold) and bench/push_latency.sh (--mode
push); see bench/README.md ("Connections at scale").

One `millstone mock` (bench/scenarios/ws-hold-mock.yaml) with enough worker
processes for N connections under the open-file limit, and one

  millstone run ws-hold.yaml -q -o out.json

where the generated scenario ramps N VUs (ramping-vus, 0 -> N over --ramp),
each opening one WebSocket and holding it (`ws.hold`), then keeps all N for
--hold seconds. In push mode the route pushes one message per second to every
connection and `ws.hold` records each message's delivery latency from its
`sent_us` field (rendered by the mock at the tick, so the fan-out to all
connections counts).

While it runs, every --interval s, the script polls the mock's open
connection count (GET /__millstone/stats) and sums VmRSS over millstone's
worker processes. It reports:
  * ramp-up: seconds from the start until the mock counted N open connections;
  * alive at the end: the mock's open count in the last sample before the
    hold ends (must be N), and the run's socket disconnects (must be 0);
  * client memory per connection: (RSS of all worker processes) / N at the end
    of the hold, and the same minus an idle baseline of the same workers;
  * push mode: delivery latency percentiles from the run's JSON summary.
"""

import argparse
import datetime
import http.client
import json
import math
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import vu_memory as vm  # noqa: E402

AIM_KIB = 4.0
FD_SLACK = 64


def mock_open(port, path, tls_context=None):
    try:
        if tls_context is None:
            c = http.client.HTTPConnection(bl.HOST, port, timeout=2)
        else:
            c = http.client.HTTPSConnection(bl.HOST, port, timeout=2, context=tls_context)
        c.request("GET", "/__millstone/stats")
        body = c.getresponse().read()
        c.close()
        for s in json.loads(body).get("sockets", []):
            if s.get("path") == path:
                return int(s["open"])
    except (OSError, ValueError, KeyError):
        pass
    return None


def meminfo_kib():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = int(v.split()[0])
    return out


def scenario_text(port, path, n, ramp_s, hold_s, push, ca=None):
    hold = "{duration: 24h, latency_from: $.sent_us}" if push else "24h"
    # --tls: an https target makes the path-form ws.connect a wss connection.
    scheme, tls = ("https", f", tls: {{ca: {ca}}}") if ca else ("http", "")
    return f"""name: ws-{'push' if push else 'hold'}-{n}{'-tls' if ca else ''}
target: {scheme}://127.0.0.1:{port}
defaults: {{timeout: 30s{tls}}}
flows:
  holder:
    steps:
      - name: connect
        ws.connect: {path}
      - name: hold
        ws.hold: {hold}
scenarios:
  hold:
    executor: ramping-vus
    start_vus: 0
    graceful_stop: 0s
    stages: [{{duration: {ramp_s}s, target: {n}}}, {{duration: {hold_s}s, target: {n}}}]
"""


def start_tls_mock(tools, config_path, workers):
    """`millstone mock --tls` on a free port; waits until its stats answer over https."""
    import ssl
    tmp = bl.make_tmpdir("bench-mock-tls-")
    port = bl.free_port()
    ca = os.path.join(tmp, "mock.pem")
    log = open(os.path.join(tmp, "mock.log"), "w")
    cmd = [tools["millstone"], "mock", "--config", config_path, "--listen", f"{bl.HOST}:{port}",
           "-w", str(workers), "--quiet", "--tls", "--tls-cert-out", ca]
    proc = bl.spawn(cmd, "millstone mock --tls", stdout=log, stderr=log)
    srv = bl.Server("mock", proc, port, tmp, workers)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise bl.BenchError(f"millstone mock --tls exited with code {proc.returncode}")
        if os.path.exists(ca) and os.path.getsize(ca) > 0:
            srv.ca = ca
            srv.tls_context = ssl.create_default_context(cafile=ca)
            if mock_open(port, "/ws/hold", srv.tls_context) is not None:
                break
        if time.monotonic() > deadline:
            raise bl.BenchError("millstone mock --tls did not start within 15 s")
        time.sleep(0.1)
    return srv


def workers_for(n, fd_limit):
    return max(2, math.ceil(n / (fd_limit - FD_SLACK)))


def run(a, tools, srv, tmp):
    path = "/ws/push" if a.mode == "push" else "/ws/hold"
    scen = os.path.join(tmp, "ws.yaml")
    with open(scen, "w") as f:
        f.write(scenario_text(srv.port, path, a.connections, a.ramp, a.hold, a.mode == "push",
                              getattr(srv, "ca", None)))
    json_p = os.path.join(tmp, "out.json")
    out_p, err_p = os.path.join(tmp, "run.stdout"), os.path.join(tmp, "run.stderr")
    cmd = [tools["millstone"], "run", scen, "-q", "--no-history", "-o", json_p]
    if a.workers:
        cmd += ["-w", str(a.workers)]
    total_s = a.ramp + a.hold
    samples = []  # (t, open at mock, workers RSS KiB, nworkers, tcp inuse, tcp mem pages, meminfo)
    before = meminfo_kib()
    all_t = None
    with open(out_p, "w") as out, open(err_p, "w") as err:
        t0 = time.monotonic()
        proc = bl.spawn(cmd, "millstone run", stdout=out, stderr=err)
        killed = False
        next_sample = t0
        while True:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid == proc.pid:
                break
            now = time.monotonic()
            if now > t0 + total_s + 60 and not killed:
                print("  ! millstone did not stop, killing it", file=sys.stderr)
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
            if now >= next_sample:
                next_sample += a.interval
                t = now - t0
                opened = mock_open(srv.port, path, getattr(srv, "tls_context", None))
                if all_t is None and opened is not None and opened >= a.connections:
                    all_t = t
                kids = vm.children(proc.pid)
                rss = sum((vm.status_kib(k) or {}).get("VmRSS", 0) for k in kids)
                inuse, mem = vm.tcp_sockstat()
                samples.append((t, opened, rss, len(kids), inuse, mem, meminfo_kib()))
            time.sleep(0.05)
        wall = time.monotonic() - t0
        _, status, ru = os.wait4(proc.pid, 0)
    bl.forget(proc)
    code = -9 if killed else os.waitstatus_to_exitcode(status)
    with open(err_p) as f:
        err_text = f.read()
    if code != 0:
        with open(out_p) as f:
            out_text = f.read()
        raise bl.BenchError(f"millstone run exited with {code}\ncommand: {' '.join(cmd)}\n"
                            f"stdout: {out_text[-2500:]}\nstderr: {err_text[-2500:]}")
    with open(json_p) as f:
        summary = json.load(f)
    # The last samples of the hold (ending 1.5 s before the run's planned end).
    end = [s for s in samples if total_s - 6 <= s[0] <= total_s - 1.5]
    if not end:
        raise bl.BenchError(f"no sample near the end of the hold ({total_s - 6}-{total_s - 1.5}s)")
    last = end[-1]
    return {"summary": summary, "all_t": all_t, "end": last, "wall": wall, "before": before,
            "cpu_s": ru.ru_utime + ru.ru_stime, "samples": samples, "stderr": err_text}


def main():
    ap = argparse.ArgumentParser(
        description="Hold N WebSocket connections against millstone's mock: client memory per "
                    "connection, ramp-up time, all alive at the end; --mode push also reports "
                    "delivery latency of a push per second to every connection.")
    ap.add_argument("--mode", choices=["hold", "push"], default="hold")
    ap.add_argument("-n", "--connections", type=int, default=None,
                    help="connections (env CONNECTIONS; default 100000, push mode 50000)")
    ap.add_argument("--ramp", type=int, default=int(bl.env_default("RAMP", 30)),
                    help="seconds to open all N (default 30)")
    ap.add_argument("--hold", type=int, default=int(bl.env_default("HOLD", 60)),
                    help="seconds all N are held (default 60)")
    ap.add_argument("-w", "--workers", type=int, default=0,
                    help="millstone run -w (default: millstone's own choice from the fd limit)")
    ap.add_argument("--mock-workers", type=int, default=0,
                    help="mock processes (default: enough for N under the fd limit)")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--tls", action="store_true",
                    help="wss: the mock runs with --tls (self-signed certificate, trusted by the "
                         "scenario's defaults: tls: ca:); memory then includes each side's TLS "
                         "state")
    a = ap.parse_args()
    if a.connections is None:
        a.connections = int(bl.env_default("CONNECTIONS", 100000 if a.mode == "hold" else 50000))
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mock_workers = a.mock_workers or workers_for(a.connections, hard) + 1

    bl.install_signal_handlers()
    tools = {"millstone": bl.require_tool(
        os.environ.get("MILLSTONE", os.path.join(repo, "build", "millstone")),
        "millstone binary (scripts/build.sh, or set MILLSTONE=)")}
    la, note = bl.busy_note()
    print(f"{a.mode}: {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"cores={os.cpu_count()}  loadavg={la}  fd limit={hard}")
    print(f"  N={a.connections:,}  ramp={a.ramp}s  hold={a.hold}s  mock workers={mock_workers}  "
          f"millstone -w {a.workers or 'auto'}")
    for k in ("net.ipv4.ip_local_port_range", "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog",
              "fs.file-max", "net.ipv4.tcp_mem", "net.netfilter.nf_conntrack_max"):
        try:
            with open("/proc/sys/" + k.replace(".", "/")) as f:
                print(f"  {k} = {' '.join(f.read().split())}")
        except OSError:
            pass
    if note:
        print("  " + note)
    try:
        cfg = os.path.join(repo, "bench", "scenarios", "ws-hold-mock.yaml")
        srv = start_tls_mock(tools, cfg, mock_workers) if a.tls else \
            bl.start_mock_config(tools, cfg, mock_workers)
        tmp = bl.make_tmpdir("bench-sockets-")
        r = run(a, tools, srv, tmp)
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()

    s = r["summary"]
    sockets = s.get("sockets", {})
    t, opened, rss, nworkers, inuse, mem, mi = r["end"]
    b = r["before"]
    print()
    ramp = "never (!)" if r["all_t"] is None else f"{r['all_t']:.1f} s"
    print(f"ramp-up: all {a.connections:,} open at the mock after {ramp} (ramp planned {a.ramp} s)")
    print(f"alive at t={t:.1f}s (end of hold): mock open = {opened:,} of {a.connections:,}")
    disc = sockets.get("disconnects", {})
    print(f"run: connected {sockets.get('connected')}, messages in {sockets.get('messages_in')}"
          f"  disconnects {json.dumps(disc)}  errors {json.dumps(s.get('errors', {}))}")
    print(f"client workers: {nworkers}, RSS sum {rss:,} KiB -> {rss / a.connections * 1024:,.0f} "
          f"bytes = {rss / a.connections:.2f} KiB per connection (aim <= {AIM_KIB} KiB)")
    if inuse is not None:
        print(f"kernel: {inuse:,} TCP sockets in use, {mem * 4 // 1024:,} MiB TCP buffer memory "
              f"(both ends, not in any RSS)")
    used = (b["MemAvailable"] - mi["MemAvailable"]) / a.connections
    slab = (mi["Slab"] - b["Slab"]) / a.connections
    print(f"whole machine (client + mock + kernel): {used:.2f} KiB per connection less "
          f"MemAvailable, of which kernel slab {slab:.2f} KiB")
    print(f"millstone CPU {r['cpu_s']:.1f} s over {r['wall']:.1f} s")
    if a.mode == "push":
        d = sockets.get("delivery_ms")
        print(f"delivery latency (mock tick -> client receive, {a.connections:,} connections, "
              f"1 push/s each): {json.dumps(d)}")
    ok = opened == a.connections and r["all_t"] is not None
    print("RESULT:", "ok" if ok else "NOT all connections alive")
    return 0 if ok else bl.EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
