"""Client CPU efficiency: millstone run vs wrk against the same local server.

Invoked by bench/client_cpu.sh; see bench/README.md.
"""

import argparse
import datetime
import os
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
    ap.add_argument("--io", choices=("epoll", "uring", "both"), default=bl.env_default("IO", "epoll"),
                    help="millstone's --io backend; 'both' alternates epoll and uring in one run and "
                         "prints them side by side (env IO, default epoll)")
    a = ap.parse_args()
    if a.runs < 1 or a.conns < 1 or a.threads < 1 or a.server_workers < 1:
        ap.error("--runs, --conns, --threads and --server-workers must be >= 1")
    dur = bl.parse_duration(a.duration)

    bl.install_signal_handlers()
    tools = bl.find_tools(repo, need_nginx=(a.server == "nginx"), need_taskset=a.pin)
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
        ios = ["epoll", "uring"] if a.io == "both" else [a.io]
        order = []
        for i in range(a.runs):
            order += [("wrk", i + 1, None)] + [("millstone", i + 1, io) for io in ios]
        results, warnings = [], []
        for kind, i, io in order:
            label = kind if io is None else f"millstone/{io}"
            print(f"  run {i}/{a.runs}: {label} ...", flush=True)
            r = bl.run_client(kind, tools, url, a.threads, a.conns, dur, tmp,
                              f"{kind}-{io or ''}-{i}", cli_cpus, server=srv,
                              millstone_extra=() if io is None else ("--io", io))
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

    summ = {}
    kinds = ["wrk"] + [f"millstone/{io}" for io in ios]
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
    if len(kinds) == 3:
        u, e = summ["millstone/uring"], summ["millstone/epoll"]
        print(f"RATIO cpu/request uring/epoll: median {u['med_us'] / e['med_us']:.3f}  "
              f"best {u['best_us'] / e['best_us']:.3f}")
    for wmsg in warnings:
        print("warning: " + wmsg)
    la2 = bl.load_average()
    print(f"loadavg after: {la2}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bl.cleanup()
