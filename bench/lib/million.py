"""A million held connections from `millstone run` to `millstone mock` on one machine.

Invoked by bench/million.sh MODE (ws | http | tcp); see bench/README.md ("A
million connections") and docs/scale.md ("A million connections").

One `millstone mock --connections N` (it plans its own worker processes from
the open-file limit) and one `millstone run` of a generated scenario that
ramps N VUs (ramping-vus 0 -> N at --rate connections per second), then holds
all N for --hold seconds. Each VU owns one connection and uses it once a
minute, spread over the minute by the ramp:

  ws:   ws.connect, then (ws.hold 60s, ws.send "p", ws.expect "p") repeated:
        the mock's route echoes;
  http: GET /hello, think 60s, again (one HTTP/1.1 keep-alive connection per VU);
  tcp:  tcp.connect to the mock's line-framed echo listener, then
        (tcp.hold 60s, tcp.send "p\\n", tcp.expect "p") repeated.

Every --interval s the script reads the MOCK's own count of open connections
(GET /__millstone/stats), the RSS of millstone's worker processes and of the
mock's, /proc/meminfo (Slab, MemAvailable), /proc/net/sockstat and the CPU
time of both process trees. It reports the ramp time (until the mock counts
N open), whether all N are open at the end of the hold (mock's count) with no
reconnect (the mock's total accepted == N) and no disconnect or error in the
run's summary, memory per connection (client, mock, kernel), CPU over the
hold, and the settings used.

Kernel settings it changes for the run (somaxconn, tcp_max_syn_backlog,
nf_conntrack_max when the conntrack table is smaller than the run) are
printed, and restored on every exit path (normal, error, Ctrl-C, SIGTERM).
"""

import argparse
import datetime
import http.client
import json
import math
import os
import resource
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

PERIOD_S = 60  # each connection is used once a minute


# --------------------------------------------------------------------------
# sysctls: set for the run, restored on every exit path


class Sysctls:
    def __init__(self):
        self.saved = {}

    @staticmethod
    def path(key):
        return "/proc/sys/" + key.replace(".", "/")

    @classmethod
    def read(cls, key):
        try:
            with open(cls.path(key)) as f:
                return " ".join(f.read().split())
        except OSError:
            return None

    def set(self, key, value):
        old = self.read(key)
        if old is None or old == str(value):
            return
        try:
            with open(self.path(key), "w") as f:
                f.write(str(value))
        except OSError as e:
            print(f"  ! cannot set {key}={value}: {e} (left at {old})", file=sys.stderr)
            return
        self.saved.setdefault(key, old)
        print(f"  set {key} = {value} (was {old}; restored at exit)")

    def restore(self):
        for key, old in self.saved.items():
            try:
                with open(self.path(key), "w") as f:
                    f.write(old)
                print(f"  restored {key} = {old}")
            except OSError as e:
                print(f"  ! cannot restore {key} = {old}: {e}", file=sys.stderr)
        self.saved.clear()


SHOWN_SYSCTLS = ("net.ipv4.ip_local_port_range", "net.core.somaxconn",
                 "net.ipv4.tcp_max_syn_backlog", "fs.file-max", "fs.nr_open",
                 "net.ipv4.tcp_mem", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
                 "net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_count",
                 "kernel.pid_max")


# --------------------------------------------------------------------------
# /proc readers


def meminfo_kib():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = int(v.split()[0])
    return out


def sockstat():
    """{'TCP': {'inuse': .., 'orphan': .., 'tw': .., 'alloc': .., 'mem': ..}, 'sockets': {...}}"""
    out = {}
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                name, _, rest = line.partition(":")
                v = rest.split()
                out[name] = {v[i]: int(v[i + 1]) for i in range(0, len(v) - 1, 2)}
    except (OSError, ValueError):
        pass
    return out


def proc_table():
    """pid -> (ppid, utime+stime ticks) for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = bl._read_stat(name)
            if st:
                table[int(name)] = (st[0], st[1] + st[2])
    return table


def descendants(table, root):
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], list(kids.get(root, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def tcp_ext(keys=("ListenOverflows", "ListenDrops", "TCPSynRetrans")):
    """Kernel TCP counters since boot from /proc/net/netstat (system-wide)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = [line.split() for line in f if line.startswith("TcpExt:")]
        return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:]) if k in keys}
    except (OSError, IndexError, ValueError):
        return {}


def machine_cpu_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


# --------------------------------------------------------------------------
# the mock and the scenario


def mock_config(mode, tcp_port):
    if mode == "ws":
        return ("# bench/million.sh ws: held WebSockets, each client message echoed.\n"
                "routes:\n  - path: /hello\n    body: \"hello\\n\"\n"
                "websockets:\n  - path: /ws/hold\n    echo: true\n")
    if mode == "http":
        return ("# bench/million.sh http: one small answer per request.\n"
                "routes:\n  - path: /hello\n    body: \"hello\\n\"\n")
    return ("# bench/million.sh tcp: a line-framed echo listener.\n"
            "routes:\n  - path: /hello\n    body: \"hello\\n\"\n"
            f"tcp:\n  - name: echo\n    listen: {bl.HOST}:{tcp_port}\n"
            "    framing: line\n    echo: true\n")


def scenario_text(mode, port, tcp_port, n, ramp_s, hold_s):
    rounds = max(1, math.ceil((ramp_s + hold_s) / PERIOD_S) + 1)
    if mode == "ws":
        steps = f"""      - ws.connect: /ws/hold
      - loop: {rounds}
        steps:
          - ws.hold: {PERIOD_S}s
          - ws.send: p
          - ws.expect: {{text: p, timeout: 30s}}
"""
    elif mode == "http":
        steps = f"""      - get: /hello
      - think: {PERIOD_S}s
"""
    else:
        steps = f"""      - tcp.connect: ":{tcp_port}"
      - loop: {rounds}
        steps:
          - tcp.hold: {{duration: {PERIOD_S}s, delimiter: "\\n"}}
          - tcp.send: "p\\n"
          - tcp.expect: {{delimiter: "\\n", equals: p, timeout: 30s}}
"""
    return f"""name: million-{mode}-{n}
target: http://{bl.HOST}:{port}
defaults: {{timeout: 30s}}
flows:
  holder:
    steps:
{steps}scenarios:
  hold:
    executor: ramping-vus
    start_vus: 0
    graceful_stop: 0s
    stages: [{{duration: {ramp_s}s, target: {n}}}, {{duration: {hold_s}s, target: {n}}}]
"""


def mock_stats(port):
    try:
        c = http.client.HTTPConnection(bl.HOST, port, timeout=5)
        c.request("GET", "/__millstone/stats")
        body = c.getresponse().read()
        c.close()
        return json.loads(body)
    except (OSError, ValueError, http.client.HTTPException):
        return None


def mock_counts(mode, stats):
    """(open, total accepted, refused at the fd limit) of the connections under test."""
    if stats is None:
        return None, None, None
    if mode == "http":
        # The stats request's own connection is open (and counted) too.
        return (stats.get("open_connections", 0) - 1, stats.get("connections", 0),
                stats.get("refused_at_fd_limit", 0))
    kind = "websocket" if mode == "ws" else "tcp"
    for s in stats.get("sockets", []):
        if s.get("kind") == kind:
            return s.get("open"), s.get("total"), s.get("refused_at_fd_limit")
    return None, None, None


def start_mock(tools, mode, n, tmp):
    port, tcp_port = bl.free_port(), bl.free_port()
    cfg = os.path.join(tmp, f"million-{mode}-mock.yaml")
    with open(cfg, "w") as f:
        f.write(mock_config(mode, tcp_port))
    log_p = os.path.join(tmp, "mock.log")
    log = open(log_p, "w")
    cmd = [tools["millstone"], "mock", "--config", cfg, "--listen", f"{bl.HOST}:{port}",
           "--connections", str(n), "--quiet"]
    proc = bl.spawn(cmd, "millstone mock", stdout=log, stderr=log)
    srv = bl.Server("mock", proc, port, tmp, 0)
    try:
        bl.wait_http_ready(port, "/hello", proc, timeout=60)
    except bl.BenchError as e:
        with open(log_p) as f:
            raise bl.BenchError(f"millstone mock failed to start: {e}\n{f.read()[-2000:]}")
    return srv, port, tcp_port, cmd, log_p


# --------------------------------------------------------------------------
# the run


def run(a, tools, tmp):
    srv, port, tcp_port, mock_cmd, mock_log = start_mock(tools, a.mode, a.connections, tmp)
    table = proc_table()
    mock_pids = [srv.proc.pid] + descendants(table, srv.proc.pid)
    print(f"  mock: {' '.join(mock_cmd[1:])}\n        {len(mock_pids) - 1} worker processes, "
          f"RSS {rss_kib(mock_pids) // 1024} MiB before any connection")
    scen = os.path.join(tmp, f"million-{a.mode}.yaml")
    with open(scen, "w") as f:
        f.write(scenario_text(a.mode, port, tcp_port, a.connections, a.ramp,
                              a.hold + a.slack))
    json_p = os.path.join(tmp, "out.json")
    out_p, err_p = os.path.join(tmp, "run.stdout"), os.path.join(tmp, "run.stderr")
    cmd = [tools["millstone"], "run", scen, "-q", "--no-history", "-o", json_p]
    if a.io:
        cmd += ["--io", a.io]
    if a.pin:
        cmd = [bl.require_tool("taskset", "taskset (for --pin)"), "-c", a.pin] + cmd
    print(f"  run:  millstone {' '.join(cmd[1:])}")
    total_s = a.ramp + a.hold + a.slack
    samples = []
    before_mem, before_sock, before_ext = meminfo_kib(), sockstat(), tcp_ext()
    all_t = None
    hold_cpu = None  # (t, client ticks, mock ticks, machine busy, machine all) at the hold's start
    end_cpu = None
    polls = 0
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
            if now > t0 + total_s + 120 and not killed:
                print("  ! millstone did not stop 120 s after its planned end, killing it",
                      file=sys.stderr)
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
            if now >= next_sample and now - t0 < total_s - 1:
                next_sample += a.interval
                t = now - t0
                stats = mock_stats(port)
                polls += 1
                opened, accepted, refused = mock_counts(a.mode, stats)
                if all_t is None and opened is not None and opened >= a.connections:
                    all_t = t
                table = proc_table()
                client = descendants(table, proc.pid)
                mock = [srv.proc.pid] + descendants(table, srv.proc.pid)
                busy, everything = machine_cpu_ticks()
                cpu = (t, sum(table.get(p, (0, 0))[1] for p in [proc.pid] + client),
                       sum(table.get(p, (0, 0))[1] for p in mock), busy, everything)
                sample = {"t": t, "open": opened, "accepted": accepted, "refused": refused,
                          "client_workers": len(client), "client_rss": rss_kib(client),
                          "coordinator_rss": rss_kib([proc.pid]), "mock_rss": rss_kib(mock),
                          "mem": meminfo_kib(), "sock": sockstat(), "cpu": cpu}
                samples.append(sample)
                if hold_cpu is None and (all_t is not None or t >= a.ramp + 5):
                    hold_cpu = cpu
                if t <= total_s - 1.5:
                    end_cpu = cpu
                if a.verbose or int(t) % 30 == 0 and t - int(t) < a.interval:
                    print(f"    t={t:6.1f}s  mock open {opened}  client workers {len(client)}  "
                          f"client RSS {sample['client_rss'] // 1024} MiB  mock RSS "
                          f"{sample['mock_rss'] // 1024} MiB  Slab "
                          f"{sample['mem']['Slab'] // 1024} MiB", flush=True)
            time.sleep(0.05)
        wall = time.monotonic() - t0
        _, status, ru = os.wait4(proc.pid, 0)
    bl.forget(proc)
    code = -9 if killed else os.waitstatus_to_exitcode(status)
    final_stats = mock_stats(port)
    with open(err_p) as f:
        err_text = f.read()
    with open(out_p) as f:
        out_text = f.read()
    summary = None
    if os.path.exists(json_p):
        with open(json_p) as f:
            try:
                summary = json.load(f)
            except ValueError:
                summary = None
    if summary is None:
        raise bl.BenchError(f"millstone run exited with {code}\ncommand: {' '.join(cmd)}\n"
                            f"stdout: {out_text[-2500:]}\nstderr: {err_text[-2500:]}")
    if code != 0:
        # Measurements stand; the verdict fails and says why.
        print(f"  ! millstone run exited with {code}: {out_text[-600:]}", file=sys.stderr)
    # The last sample of the hold: at least 1.5 s before the run's planned end,
    # and one the mock answered (a stats request can time out on a busy machine).
    end = [s for s in samples if s["t"] <= total_s - 1.5 and s["open"] is not None]
    if not end:
        raise bl.BenchError("no sample before the end of the hold")
    with open(mock_log) as f:
        mock_text = f.read()
    return {"summary": summary, "all_t": all_t, "end": end[-1], "wall": wall,
            "before_mem": before_mem, "before_sock": before_sock, "hold_cpu": hold_cpu,
            "end_cpu": end_cpu, "cpu_s": ru.ru_utime + ru.ru_stime, "stderr": err_text,
            "final_stats": final_stats, "polls": polls, "mock_log": mock_text,
            "peak_client_workers": max(s["client_workers"] for s in samples), "code": code,
            "failures": summary.get("worker_failures", []),
            "tcp_ext": {k: v - before_ext.get(k, 0) for k, v in tcp_ext().items()}}


def report(a, r, settings):
    n = a.connections
    s = r["summary"]
    e = r["end"]
    print()
    print(f"== {a.mode}: {n:,} connections, --io {a.io or 'default'}"
          f"{', client pinned to CPU ' + a.pin if a.pin else ''} ==")
    ramp = "never (!)" if r["all_t"] is None else f"{r['all_t']:.1f} s"
    print(f"ramp: all {n:,} open at the mock after {ramp} (planned {a.ramp} s at "
          f"{a.rate:,}/s)")
    held = None if r["all_t"] is None else e["t"] - r["all_t"]
    print(f"held: all {n:,} open for {held or 0:.0f} s (asked {a.hold} s; the run planned "
          f"{a.ramp} + {a.hold} + {a.slack} s of slack for a slow ramp)")
    print(f"alive at the end of the hold (t={e['t']:.1f} s, mock's count): {e['open']:,} of {n:,}"
          f"; accepted in all {e['accepted']:,}; refused at the fd limit {e['refused']}")
    sockets = s.get("sockets", {})
    errors = s.get("errors", {})
    disc = sockets.get("disconnects", {}) if sockets else {}
    print(f"run: exit {r['code']}, duration {s.get('duration_s')} s, workers {s.get('workers')}, "
          f"requests {s.get('requests'):,}, errors {json.dumps(errors)}"
          + (f", sockets connected {sockets.get('connected')}, disconnects {json.dumps(disc)}, "
             f"messages in {sockets.get('messages_in')}" if sockets else ""))
    plan = s.get("plan")
    if plan:
        print(f"run plan: {json.dumps(plan)}")
    print(f"client: {e['client_workers']} worker processes, RSS sum {e['client_rss'] // 1024:,} "
          f"MiB = {e['client_rss'] / n:.2f} KiB per connection (coordinator "
          f"{e['coordinator_rss'] // 1024} MiB on top)")
    print(f"mock:   RSS sum {e['mock_rss'] // 1024:,} MiB = {e['mock_rss'] / n:.2f} KiB per "
          "connection")
    b, m = r["before_mem"], e["mem"]
    slab = (m["Slab"] - b["Slab"]) / n
    used = (b["MemAvailable"] - m["MemAvailable"]) / n
    tcp = e["sock"].get("TCP", {})
    tcp0 = r["before_sock"].get("TCP", {})
    print(f"kernel: Slab +{(m['Slab'] - b['Slab']) // 1024:,} MiB = {slab:.2f} KiB per connection "
          f"(both ends' sockets); sockstat TCP inuse {tcp.get('inuse', 0) - tcp0.get('inuse', 0):+,}"
          f" alloc {tcp.get('alloc', 0) - tcp0.get('alloc', 0):+,} mem "
          f"{(tcp.get('mem', 0) - tcp0.get('mem', 0)) * 4 // 1024:+,} MiB, sockets used "
          f"{e['sock'].get('sockets', {}).get('used')}")
    print(f"kernel TCP counters during the run (system-wide): {json.dumps(r['tcp_ext'])}")
    print(f"machine: MemAvailable -{(b['MemAvailable'] - m['MemAvailable']) // 1024:,} MiB = "
          f"{used:.2f} KiB per connection (client + mock + kernel)")
    h, c = r["hold_cpu"], r["end_cpu"]
    if h and c and c[0] > h[0]:
        span = c[0] - h[0]
        cl = (c[1] - h[1]) / bl.CLK_TCK
        mk = (c[2] - h[2]) / bl.CLK_TCK
        mach = (c[3] - h[3]) / max(1, c[4] - h[4]) * 100
        print(f"CPU over the hold ({span:.0f} s from t={h[0]:.0f} s): client {cl:.1f} s "
              f"({cl / span * 100:.1f}% of one core), mock {mk:.1f} s ({mk / span * 100:.1f}%), "
              f"whole machine {mach:.0f}% busy (other processes included: noisy)")
    print(f"client CPU over the whole run: {r['cpu_s']:.1f} s in {r['wall']:.1f} s wall")
    print("settings: " + "; ".join(settings))
    notes = [line for line in r["stderr"].splitlines() if line.strip()]
    if notes:
        print("millstone run said:")
        for line in notes[-12:]:
            print("  " + line)
    mock_notes = [line for line in r["mock_log"].splitlines() if "listening" not in line]
    if mock_notes:
        print("millstone mock said:")
        for line in mock_notes[-6:]:
            print("  " + line)
    problems = []
    if r["code"] != 0:
        problems.append(f"millstone run exited with {r['code']} ({len(r['failures'])} worker "
                        f"failures, first: {r['failures'][:1]})")
    if r["all_t"] is None:
        problems.append("the mock never counted all N open")
    if held is not None and held < a.hold:
        problems.append(f"all N were held {held:.0f} s, less than {a.hold} s")
    if e["open"] != n:
        problems.append(f"open at the end {e['open']} != {n}")
    # HTTP mode: the mock's HTTP connections count the bench's own too: one
    # per stats poll during the run, the readiness probe's GET /hello before
    # it, and the final stats poll (whose own connection is in its count).
    own = r["polls"] + 2
    expected_accepted = n + (own if a.mode == "http" else 0)
    if a.mode != "http" and e["accepted"] != n:
        problems.append(f"the mock accepted {e['accepted']} connections, not {n}: reconnects")
    if a.mode == "http" and e["accepted"] is not None and e["accepted"] > expected_accepted:
        problems.append(f"the mock accepted {e['accepted']} connections, more than {n} + "
                        f"{own} of the bench's own (stats polls, readiness probe): reconnects")
    if errors:
        problems.append(f"errors {json.dumps(errors)}")
    # local_close: the run closing its connections at its end, as planned.
    unexpected = {k: v for k, v in disc.items() if k != "local_close" and v}
    if unexpected:
        problems.append(f"unexpected disconnects {json.dumps(unexpected)}")
    print("RESULT:", "ok" if not problems else "FAILED: " + "; ".join(problems))
    return not problems


def main():
    ap = argparse.ArgumentParser(
        prog="bench/million.sh",
        description="Hold N connections (default 1,000,000) from millstone run to millstone mock "
                    "on this machine, each used once a minute; report ramp, alive at the end "
                    "(the mock's count), memory per connection and CPU.")
    ap.add_argument("mode", choices=["ws", "http", "tcp"])
    ap.add_argument("-n", "--connections", type=int,
                    default=int(bl.env_default("N", 1_000_000)),
                    help="connections (env N, default 1000000)")
    ap.add_argument("--rate", type=int, default=int(bl.env_default("RATE", 10000)),
                    help="connections opened per second during the ramp (env RATE, default 10000)")
    ap.add_argument("--hold", type=int, default=None,
                    help="seconds all N are held (env HOLD; default 300, --long 1800)")
    ap.add_argument("--long", action="store_true", help="hold 30 minutes")
    ap.add_argument("--interval", type=float, default=None,
                    help="sampling interval, s (default 1, 2 above 500,000 connections)")
    ap.add_argument("--verbose", action="store_true", help="print every sample")
    ap.add_argument("--io", choices=["epoll", "uring"], default=bl.env_default("IO", None),
                    help="millstone run --io (env IO; default: millstone's own default). "
                         "uring moves plain HTTP/1.1 connections (mode http) to io_uring; ws and "
                         "tcp connections keep readiness on the uring loop")
    ap.add_argument("--pin", default=bl.env_default("PIN", None), metavar="CPUS",
                    help="taskset -c CPUS for millstone run (env PIN; default: not pinned)")
    a = ap.parse_args()
    if a.hold is None:
        a.hold = int(bl.env_default("HOLD", 1800 if a.long else 300))
    if a.connections < 1 or a.rate < 1 or a.hold < 5:
        ap.error("need N >= 1, --rate >= 1, --hold >= 5")
    if a.interval is None:
        a.interval = 2.0 if a.connections > 500_000 else 1.0
    a.ramp = max(1, math.ceil(a.connections / a.rate))
    # The run's length is fixed when it starts, and a ramp on a busy machine
    # can take longer than planned: the hold stage gets this much more, so
    # that all N are still held --hold seconds after the last one opened.
    a.slack = max(30, a.ramp)
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    bl.install_signal_handlers()
    tools = {"millstone": bl.require_tool(
        os.environ.get("MILLSTONE", os.path.join(repo, "build", "millstone")),
        "millstone binary (scripts/build.sh, or set MILLSTONE=)")}
    la, note = bl.busy_note()
    print(f"million {a.mode}: {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"cores={os.cpu_count()}  loadavg={la}  kernel={os.uname().release}")
    print(f"  N={a.connections:,}  rate={a.rate:,}/s (ramp {a.ramp} s)  hold={a.hold} s "
          f"(+{a.slack} s slack)  "
          f"one message per connection per {PERIOD_S} s  open-file limit soft {soft} hard {hard}")
    if note:
        print("  " + note)
    sysctls = Sysctls()
    ok = False
    try:
        # Raised for the run (restored in `finally`): the accept backlog and
        # half-open queue during the ramp, and the conntrack table if the
        # kernel tracks loopback connections (every connection is one entry).
        sysctls.set("net.core.somaxconn", 65535)
        sysctls.set("net.ipv4.tcp_max_syn_backlog", 65535)
        ct = Sysctls.read("net.netfilter.nf_conntrack_max")
        if ct is not None and int(ct) < a.connections + 65536:
            sysctls.set("net.netfilter.nf_conntrack_max", a.connections + 65536)
        settings = [f"ulimit -Hn {hard}"] + [f"{k}={Sysctls.read(k)}" for k in SHOWN_SYSCTLS
                                             if Sysctls.read(k) is not None]
        for line in settings:
            print("  " + line)
        tmp = bl.make_tmpdir("bench-million-")
        r = run(a, tools, tmp)
        settings.append(f"conntrack entries at the end {Sysctls.read('net.netfilter.nf_conntrack_count')}")
        ok = report(a, r, settings)
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()
        sysctls.restore()
    return 0 if ok else bl.EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
