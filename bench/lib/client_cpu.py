"""Client CPU efficiency: millstone run vs wrk against the same local server.

Invoked by bench/client_cpu.sh; see bench/README.md.
"""

import argparse
import datetime
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

TARGET, AIM = 1.0, 0.8


def main():
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(
        prog="bench/client_cpu.sh",
        description="CPU cost per request of `millstone run` vs wrk (same server, connections, "
                    "duration, 2 threads/workers each). Runs alternate wrk, millstone, wrk, "
                    "millstone, ...")
    ap.add_argument("--conns", "-c", type=int, default=int(bl.env_default("CONNS", 50)),
                    help="connections for both clients (env CONNS, default 50)")
    ap.add_argument("--duration", "-d", default=bl.env_default("DURATION", "10s"),
                    help="duration of each run, e.g. 10s (env DURATION, default 10s)")
    ap.add_argument("--runs", "-n", type=int, default=int(bl.env_default("RUNS", 2)),
                    help="runs per client, alternating (env RUNS, default 2)")
    ap.add_argument("--threads", "-t", type=int, default=int(bl.env_default("THREADS", 2)),
                    help="wrk -t and millstone -w (env THREADS, default 2)")
    ap.add_argument("--server", choices=("nginx", "mock"), default=bl.env_default("SERVER", "nginx"),
                    help="server to load (env SERVER, default nginx)")
    ap.add_argument("--server-workers", type=int,
                    default=int(bl.env_default("SERVER_WORKERS", 1)),
                    help="server worker processes (env SERVER_WORKERS, default 1)")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction,
                    default=bl.env_default("PIN", "1") != "0",
                    help="taskset: server on CPU 0, client on CPU 1, the figure to compare "
                         "(default; --no-pin or PIN=0 leaves both free: on 2 cores an unpinned "
                         "run flatters the ratio)")
    ap.add_argument("--max-error-pct", type=float, default=0.1,
                    help="fail the run if a client reports more errors than this %% of requests")
    ap.add_argument("--path", default="/hello", help="request path (default /hello)")
    ap.add_argument("--tls", action="store_true",
                    help="HTTPS keep-alive: nginx with TLS (self-signed P-256 certificate, "
                         "trusted by millstone through --cacert; wrk does not verify)")
    ap.add_argument("--io", default=bl.env_default("IO", "epoll"),
                    help="millstone's --io backend(s), alternated in one invocation: epoll, uring, "
                         "both (= epoll,uring), or a comma list of epoll|uring|uring-each; "
                         "uring-each is --io uring with MILLSTONE_URING_SUBMIT=each (one "
                         "io_uring_enter per send instead of one per loop turn) (env IO, default "
                         "epoll)")
    ap.add_argument("--floor", action=argparse.BooleanOptionalAction,
                    default=bl.env_default("FLOOR", "1") != "0",
                    help="also run the floor client (bench/floor/floor_client.cc, built with g++: "
                         "epoll, send/recv only) and print ratios against it (default; --no-floor "
                         "or FLOOR=0 skips it)")
    ap.add_argument("--floor-opts", action="append", default=None,
                    help="floor client options, e.g. '--nodelay 0' or '--busy-poll 50'; given "
                         "more than once, one floor column per value, alternated (the first is the "
                         "one ratios use; '' is the default floor) (env FLOOR_OPTS, one value)")
    ap.add_argument("--syscalls", action="store_true",
                    help="count each client's system calls with `perf stat -e raw_syscalls:sys_enter"
                         ",syscalls:sys_enter_<name>...` (tracepoints, no PMU needed) and print them "
                         "per server-counted request; the CPU columns then include perf's overhead")
    ap.add_argument("--perf-record", metavar="DIR", default=None,
                    help="record every client with `perf record -e cpu-clock -F 4999 -g` into "
                         "DIR/perf-<run>-<client>.data (software clock sampling: works without a "
                         "PMU) and print each client's kernel share and top kernel call paths; "
                         "the CPU columns then include perf's overhead")
    ap.add_argument("--instructions", action="store_true",
                    help="instead of CPU: user-space instructions per request under valgrind "
                         "(cachegrind, --cache-sim=no, children traced), each client run twice "
                         "(DURATION and 2 x DURATION) and the difference divided by the difference "
                         "of the server-counted requests, so start-up cancels out")
    a = ap.parse_args()
    if a.runs < 1 or a.conns < 1 or a.threads < 1 or a.server_workers < 1:
        ap.error("--runs, --conns, --threads and --server-workers must be >= 1")
    if a.floor_opts is None:
        a.floor_opts = [bl.env_default("FLOOR_OPTS", "")]
    a.ios = []
    for io in a.io.split(","):
        a.ios += ["epoll", "uring"] if io == "both" else [io]
    for io in a.ios:
        if io not in IO_CHOICES:
            ap.error(f"--io {a.io}: expected epoll, uring, both or a comma list of "
                     f"{'|'.join(IO_CHOICES)}")
    dur = bl.parse_duration(a.duration)

    bl.install_signal_handlers()
    tools = bl.find_tools(repo, need_nginx=(a.server == "nginx"), need_taskset=a.pin)
    if a.syscalls or a.perf_record:
        tools["perf"] = bl.require_tool(os.environ.get("PERF", "perf"),
                                        "perf (for --syscalls/--perf-record)")
    if a.syscalls and a.perf_record:
        ap.error("--syscalls and --perf-record: one at a time")
    if a.perf_record:
        os.makedirs(a.perf_record, exist_ok=True)
    if a.instructions:
        tools["valgrind"] = bl.require_tool(os.environ.get("VALGRIND", "valgrind"),
                                            "valgrind (for --instructions)")
    if a.tls and a.floor:
        print("  (no floor column with --tls: the floor client speaks plain HTTP)")
        a.floor = False
    if a.instructions:
        return instructions(a, tools, dur)
    srv_cpus, cli_cpus = ("0", "1") if a.pin else (None, None)

    la, note = bl.busy_note()
    print(f"client_cpu: {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"cores={os.cpu_count()}  loadavg={la}")
    print(f"  server={a.server} workers={a.server_workers}  conns={a.conns}  duration={dur}s  "
          f"runs/client={a.runs}  client threads/workers={a.threads}  tls={'yes' if a.tls else 'no'}  "
          f"pin={'server:0 client:1' if a.pin else 'no'}")
    if note:
        print("  " + note)

    try:
        srv = bl.start_server(a.server, tools, a.server_workers, srv_cpus, tls=a.tls)
        if srv.body != b"hello\n" and a.path == "/hello":
            raise bl.BenchError(f"unexpected body from {a.server}: {srv.body!r}")
        url = srv.url(a.path)
        print(f"  {a.server} up at {url} (pids {srv.pids()}; response {srv.header_bytes}+"
              f"{len(srv.body)} bytes)")
        tmp = bl.make_tmpdir("bench-client-cpu-")
        if a.floor:
            tools["floor"] = bl.build_floor(repo, tmp)
        ios = a.ios
        floors = [(floor_label(o), o) for o in a.floor_opts] if a.floor else []
        order = []
        for i in range(a.runs):
            order += [("wrk", i + 1, None)] + [("millstone", i + 1, io) for io in ios]
            order += [("floor", i + 1, o) for _, o in floors]
        results, warnings = [], []
        for n, (kind, i, io) in enumerate(order):
            label = (floor_label(io) if kind == "floor" else kind if io is None
                     else f"millstone/{io}")
            print(f"  run {i}/{a.runs}: {label} ...", flush=True)
            perf_out = os.path.join(tmp, f"perf-{n}.csv")
            wrap = list(syscall_wrap(tools, perf_out)) if a.syscalls else []
            if a.perf_record:
                r_out = os.path.join(a.perf_record,
                                     f"perf-{i}-{label.replace('/', '-').replace(' ', '')}.data")
                wrap = [tools["perf"], "record", "-q", "-e", "cpu-clock", "-F", "4999", "-g",
                        "-o", r_out, "--"]
            r = bl.run_client(kind, tools, url, a.threads, a.conns, dur, tmp, f"run-{n}",
                              cli_cpus, server=srv,
                              millstone_extra=millstone_io_args(io) if kind == "millstone" else (),
                              floor_extra=io.split() if kind == "floor" else (),
                              wrap=wrap + millstone_env(io) if kind == "millstone" else wrap)
            if a.syscalls:
                r["syscalls"] = read_perf_counts(perf_out)
            if a.perf_record:
                r["perf_data"] = r_out
            r["run"] = i
            r["client"] = label
            w = bl.check_errors(r, a.max_error_pct)
            mm = bl.count_mismatch(r, a.conns)
            if mm:
                warnings.append(f"run {i} {mm}")
            if w:
                warnings.append(f"run {i} {w}")
            results.append(r)
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()

    print()
    print("Per run (cpu = user+sys of the whole client process tree, from wait4):")
    hdr = ["run", "client", "requests", "srv-counted", "req/s", "wall s", "user s", "sys s", "cpu s", "cpu us/req",
           "client cpu%", "server cpu%", "p50 ms", "p99 ms", "mean ms", "conns/rps ms", "errors"]
    rows = []
    for r in results:
        sreq = r.get("server_requests")
        rows.append([r["run"], r["client"], f"{r['requests']:,}",
                     "-" if sreq is None else f"{sreq:,}", f"{r['rps']:,.0f}", f"{r['wall_s']:.2f}",
                     f"{r['user_s']:.2f}", f"{r['sys_s']:.2f}", f"{r['cpu_s']:.2f}",
                     f"{r['us_per_req']:.2f}", f"{r['client_cpu_pct']:.0f}",
                     f"{r['server_cpu_pct']:.0f}", bl.fmt_lat(r["latency_ms"], "p50"),
                     bl.fmt_lat(r["latency_ms"], "p99"),
                     bl.fmt_lat(r["latency_ms"], "mean"), f"{1000.0 * a.conns / r['rps']:.2f}",
                     r["error_total"]])
    print(bl.fmt_table(hdr, rows))
    if a.syscalls:
        print()
        print("System calls per request (perf stat tracepoints over the whole client process "
              "tree; denominator: the requests the server counted):")
        hdr = ["run", "client", "srv-counted", "syscalls/req"] + [n for n in SYSCALL_NAMES]
        rows = []
        for r in results:
            den = r.get("server_requests") or r["requests"]
            sc = r["syscalls"]
            rows.append([r["run"], r["client"], f"{den:,}", f"{sc.get('total', 0) / den:.3f}"] +
                        [f"{sc.get(n, 0) / den:.3f}" for n in SYSCALL_NAMES])
        print(bl.fmt_table(hdr, rows))

    if a.perf_record:
        print()
        print(f"Where the client's CPU went (perf record -e cpu-clock; files in {a.perf_record}; "
              "% of the client's samples, children included):")
        for r in results:
            print(f"  run {r['run']} {r['client']}: " + perf_summary(tools, r["perf_data"]))

    summ = {}
    kinds = ["wrk"] + [f"millstone/{io}" for io in ios] + [lbl for lbl, _ in floors]
    for kind in kinds:
        rs = [r for r in results if r["client"] == kind]
        summ[kind] = {
            "med_us": bl.median([r["us_per_req"] for r in rs]),
            "best_us": min(r["us_per_req"] for r in rs),
            "med_rps": bl.median([r["rps"] for r in rs]),
            "best_rps": max(r["rps"] for r in rs),
            "med_req": bl.median([r["requests"] for r in rs]),
            "med_cpu": bl.median([r["cpu_s"] for r in rs]),
        }
    print()
    print(f"Summary over {a.runs} run(s) per client:")
    hdr = ["client", "requests (med)", "req/s (med)", "req/s (best)", "cpu s (med)",
           "cpu us/req (med)", "cpu us/req (best)"]
    rows = [[k, f"{s['med_req']:,.0f}", f"{s['med_rps']:,.0f}", f"{s['best_rps']:,.0f}",
             f"{s['med_cpu']:.2f}", f"{s['med_us']:.2f}", f"{s['best_us']:.2f}"]
            for k, s in summ.items()]
    print(bl.fmt_table(hdr, rows))

    w = summ["wrk"]
    print()
    for kind in kinds[1:]:
        if kind.startswith("floor"):
            continue
        m = summ[kind]
        ratio_med = m["med_us"] / w["med_us"]
        ratio_best = m["best_us"] / w["best_us"]
        rps_ratio = m["med_rps"] / w["med_rps"]
        verdict = ("meets aim (<= %.1f)" % AIM if ratio_med <= AIM else
                   "meets target (<= %.1f), not yet the aim %.1f" % (TARGET, AIM)
                   if ratio_med <= TARGET else "MISSES target (<= %.1f)" % TARGET)
        print(f"RATIO cpu/request {kind}/wrk: median {ratio_med:.3f}  best {ratio_best:.3f}  "
              f"-> {verdict}")
        print(f"RATIO throughput {kind}/wrk (median req/s): {rps_ratio:.3f}")
    if a.floor:
        f = summ[floors[0][0]]
        for kind in kinds:
            if kind == floors[0][0]:
                continue
            m = summ[kind]
            print(f"RATIO cpu/request {kind}/floor: median {m['med_us'] / f['med_us']:.3f}  "
                  f"best {m['best_us'] / f['best_us']:.3f}")
    if "millstone/uring" in summ and "millstone/epoll" in summ:
        u, e = summ["millstone/uring"], summ["millstone/epoll"]
        print(f"RATIO cpu/request uring/epoll: median {u['med_us'] / e['med_us']:.3f}  "
              f"best {u['best_us'] / e['best_us']:.3f}")
    if "millstone/uring-each" in summ and "millstone/uring" in summ:
        u, e = summ["millstone/uring"], summ["millstone/uring-each"]
        print(f"RATIO cpu/request uring (one submit per turn)/uring-each (one per send): median "
              f"{u['med_us'] / e['med_us']:.3f}  best {u['best_us'] / e['best_us']:.3f}")
    for wmsg in warnings:
        print("warning: " + wmsg)
    la2 = bl.load_average()
    print(f"loadavg after: {la2}")
    return 0


IO_CHOICES = ("epoll", "uring", "uring-each")


def millstone_io_args(io):
    return ("--io", "uring" if io == "uring-each" else io)


def millstone_env(io):
    return ["env", "MILLSTONE_URING_SUBMIT=each"] if io == "uring-each" else []


def floor_label(opts):
    return "floor" if not opts.strip() else f"floor[{opts.strip()}]"


SYSCALL_NAMES = ("sendto", "recvfrom", "read", "write", "writev", "sendmsg", "recvmsg",
                 "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "io_uring_enter")


def syscall_wrap(tools, out_path):
    events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{n}" for n in SYSCALL_NAMES]
    return [tools["perf"], "stat", "-x", ",", "-o", out_path, "-e", ",".join(events), "--"]


def read_perf_counts(path):
    """perf stat -x , output -> {"total": n, "sendto": n, ...}."""
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) < 3 or not parts[0].strip().isdigit():
                    continue
                ev = parts[2]
                name = "total" if ev == "raw_syscalls:sys_enter" else ev.split("sys_enter_")[-1]
                counts[name] = int(parts[0])
    except OSError as e:
        raise bl.BenchError(f"could not read perf stat output {path}: {e}")
    if "total" not in counts:
        raise bl.BenchError(f"no raw_syscalls:sys_enter count in {path} (perf stat failed? "
                            "tracepoints need root or kernel.perf_event_paranoid <= -1)")
    return counts


# tcp_sendmsg includes the loopback delivery to the server's socket (do_softirq
# under it): on loopback the sender pays for the receiver's TCP input.
PERF_SYMBOLS = ("tcp_sendmsg", "do_softirq.part.0", "tcp_recvmsg", "do_epoll_wait",
                "__x64_sys_epoll_ctl", "__x64_sys_io_uring_enter", "__schedule")


def perf_summary(tools, data):
    """'kernel 89.8%; __x64_sys_sendto 60.9% ...' from one perf.data file."""
    def report(*args):
        r = subprocess.run([tools["perf"], "report", "-i", data, "-q", "-g", "none"] + list(args),
                           capture_output=True, text=True)
        return r.stdout.splitlines()
    kernel = "?"
    for line in report("--no-children", "--sort", "dso"):
        parts = line.split()
        if len(parts) >= 2 and parts[1] == "[kernel.kallsyms]":
            kernel = parts[0]
    shares = {}
    for line in report("--children", "--sort", "sym"):
        parts = line.split()
        if len(parts) >= 4 and parts[-1] in PERF_SYMBOLS:
            shares.setdefault(parts[-1], parts[0])
    return f"kernel {kernel}; " + ", ".join(f"{k} {v}" for k, v in shares.items())


def sum_cachegrind(directory):
    """Sum of the Ir totals ('summary: N') of every cachegrind output file in directory."""
    total, files = 0, 0
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as f:
            for line in f:
                if line.startswith("summary:"):
                    total += int(line.split()[1])
                    files += 1
    if files == 0:
        raise bl.BenchError(f"no cachegrind output in {directory}")
    return total, files


def instructions(a, tools, dur):
    """User-space instructions per request under valgrind (see --instructions)."""
    srv_cpus, cli_cpus = ("0", "1") if a.pin else (None, None)
    ios = a.ios
    try:
        srv = bl.start_server(a.server, tools, a.server_workers, srv_cpus, tls=a.tls)
        url = srv.url(a.path)
        print(f"  {a.server} up at {url}; instructions mode (valgrind cachegrind, user space only)")
        tmp = bl.make_tmpdir("bench-client-ir-")
        if a.floor:
            tools["floor"] = bl.build_floor(repo_root(), tmp)
        clients = [("wrk", None)] + [("millstone", io) for io in ios] + \
            ([("floor", a.floor_opts[0])] if a.floor else [])
        rows, per_req = [], {}
        for kind, io in clients:
            label = (floor_label(io) if kind == "floor" else kind if io is None
                     else f"millstone/{io}")
            pts = []
            for d in (dur, 2 * dur):
                cg_dir = os.path.join(tmp, f"cg-{len(rows)}-{d}")
                os.mkdir(cg_dir)
                wrap = [tools["valgrind"], "--tool=cachegrind", "--cache-sim=no",
                        "--trace-children=yes", f"--cachegrind-out-file={cg_dir}/cg.%p", "-q"]
                print(f"  {label} under valgrind for {d}s ...", flush=True)
                if kind == "millstone":
                    wrap = millstone_env(io) + wrap
                r = bl.run_client(kind, tools, url, a.threads, a.conns, d, tmp,
                                  f"ir-{len(rows)}-{d}", cli_cpus, server=srv,
                                  millstone_extra=millstone_io_args(io) if kind == "millstone"
                                  else (),
                                  floor_extra=io.split() if kind == "floor" else (), wrap=wrap,
                                  timeout_s=d + 120)
                w = bl.check_errors(r, a.max_error_pct)
                if w:
                    print("  warning: " + w)
                ir, nfiles = sum_cachegrind(cg_dir)
                den = r.get("server_requests") or r["requests"]
                pts.append((ir, den, r["requests"], nfiles))
            (ir1, n1, c1, f1), (ir2, n2, c2, f2) = pts
            if n2 <= n1:
                raise bl.BenchError(f"{label}: the longer run did not serve more requests "
                                    f"({n1} then {n2}); use a longer --duration")
            marginal = (ir2 - ir1) / (n2 - n1)
            per_req[label] = marginal
            rows.append([label, f"{n1:,}", f"{ir1:,}", f"{n2:,}", f"{ir2:,}", f"{f2}",
                         f"{ir2 / n2:,.0f}", f"{marginal:,.0f}"])
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()
    print()
    print("User-space instructions (valgrind Ir, every process of the client; kernel work is not "
          "counted). Requests = what the server counted during each run:")
    print(bl.fmt_table(["client", f"req {dur}s", f"Ir {dur}s", f"req {2 * dur}s",
                        f"Ir {2 * dur}s", "processes", "Ir/req (long run)",
                        "Ir/req (difference)"], rows))
    print()
    base = per_req["wrk"]
    for label, v in per_req.items():
        if label != "wrk":
            print(f"RATIO user instructions/request {label}/wrk: {v / base:.3f}")
    fl = [lbl for lbl in per_req if lbl.startswith("floor")]
    if fl:
        for label, v in per_req.items():
            if label != fl[0]:
                print(f"RATIO user instructions/request {label}/{fl[0]}: "
                      f"{v / per_req[fl[0]]:.3f}")
    print(f"loadavg after: {bl.load_average()}")
    return 0


def repo_root():
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bl.cleanup()
