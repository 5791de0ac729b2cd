"""Server throughput: `millstone mock` vs nginx on a trivial /hello route, driven by wrk.

Invoked by bench/mock_vs_nginx.sh; see bench/README.md.
"""

import argparse
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

TARGET = 0.8


def main():
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(
        prog="bench/mock_vs_nginx.sh",
        description="Requests/s of `millstone mock` vs nginx (same worker count, same wrk load, "
                    "GET /hello -> 6-byte body). Runs alternate nginx, mock, nginx, mock, ...")
    ap.add_argument("--workers", "-w", type=int, default=int(bl.env_default("WORKERS", 1)),
                    help="worker processes for BOTH servers (env WORKERS, default 1)")
    ap.add_argument("--wrk-threads", "-t", type=int, default=None,
                    help="wrk -t (env WRK_THREADS; default 1 with 1 server worker, else 2)")
    ap.add_argument("--conns", "-c", type=int, default=int(bl.env_default("CONNS", 50)),
                    help="wrk -c (env CONNS, default 50)")
    ap.add_argument("--duration", "-d", default=bl.env_default("DURATION", "10s"),
                    help="duration of each run (env DURATION, default 10s)")
    ap.add_argument("--runs", "-n", type=int, default=int(bl.env_default("RUNS", 3)),
                    help="runs per server, alternating; best of N is reported (env RUNS, default 3)")
    ap.add_argument("--pin", action="store_true",
                    help="taskset: servers on CPU 0, wrk on CPU 1 (default: no pinning)")
    ap.add_argument("--max-error-pct", type=float, default=0.1,
                    help="fail if wrk reports more errors than this %% of requests")
    a = ap.parse_args()
    if a.wrk_threads is None:
        env = bl.env_default("WRK_THREADS", None)
        a.wrk_threads = int(env) if env else (1 if a.workers == 1 else 2)
    if min(a.workers, a.wrk_threads, a.conns, a.runs) < 1:
        ap.error("--workers, --wrk-threads, --conns and --runs must be >= 1")
    dur = bl.parse_duration(a.duration)

    bl.install_signal_handlers()
    tools = bl.find_tools(repo, need_nginx=True, need_taskset=a.pin)
    srv_cpus, cli_cpus = ("0", "1") if a.pin else (None, None)

    la, note = bl.busy_note()
    print(f"mock_vs_nginx: {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"cores={os.cpu_count()}  loadavg={la}")
    print(f"  server workers={a.workers}  wrk -t{a.wrk_threads} -c{a.conns} -d{dur}s  "
          f"runs/server={a.runs}  pin={'servers:0 wrk:1' if a.pin else 'no'}")
    if note:
        print("  " + note)
    if a.pin and a.workers > 1:
        print(f"  note: --pin puts all {a.workers} server workers on CPU 0")

    results, warnings = [], []
    try:
        servers = {"nginx": bl.start_server("nginx", tools, a.workers, srv_cpus),
                   "mock": bl.start_server("mock", tools, a.workers, srv_cpus)}
        for name, s in servers.items():
            if s.body != b"hello\n":
                raise bl.BenchError(f"{name} /hello returned {s.body!r}, expected b'hello\\n'")
            print(f"  {name:5s} up at {s.url('/hello')} (pids {s.pids()}; response "
                  f"{s.header_bytes} header + {len(s.body)} body bytes)")
        tmp = bl.make_tmpdir("bench-mock-vs-nginx-")
        for i in range(1, a.runs + 1):
            for name in ("nginx", "mock"):
                s = servers[name]
                print(f"  run {i}/{a.runs}: wrk -> {name} ...", flush=True)
                r = bl.run_client("wrk", tools, s.url("/hello"), a.wrk_threads, a.conns, dur,
                                  tmp, f"{name}-{i}", cli_cpus, server=s)
                r["server"], r["run"] = name, i
                w = bl.check_errors(r, a.max_error_pct)
                mm = bl.count_mismatch(r, a.conns)
                if mm:
                    warnings.append(f"run {i} {name}: {mm}")
                if w:
                    warnings.append(f"run {i} {name}: {w}")
                results.append(r)
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()

    print()
    print("Per run (server cpu = user+sys of the server process tree from /proc, during the run):")
    hdr = ["run", "server", "requests", "srv-counted", "req/s", "server cpu%", "server us/req", "wrk cpu%",
           "p50 ms", "p90 ms", "p99 ms", "mean ms", "conns/rps ms", "errors"]
    rows = [[r["run"], r["server"], f"{r['requests']:,}",
             "-" if r.get("server_requests") is None else f"{r['server_requests']:,}",
             f"{r['rps']:,.0f}",
             f"{r['server_cpu_pct']:.0f}", f"{r['server_us_per_req']:.2f}",
             f"{r['client_cpu_pct']:.0f}", bl.fmt_lat(r["latency_ms"], "p50"),
             bl.fmt_lat(r["latency_ms"], "p90"), bl.fmt_lat(r["latency_ms"], "p99"),
             bl.fmt_lat(r["latency_ms"], "mean"), f"{1000.0 * a.conns / r['rps']:.2f}",
             r["error_total"]] for r in results]
    print(bl.fmt_table(hdr, rows))

    summ = {}
    for name in ("nginx", "mock"):
        rs = [r for r in results if r["server"] == name]
        summ[name] = {"best_rps": max(r["rps"] for r in rs),
                      "med_rps": bl.median([r["rps"] for r in rs]),
                      "best_us": min(r["server_us_per_req"] for r in rs),
                      "med_us": bl.median([r["server_us_per_req"] for r in rs])}
    print()
    print(f"Summary (best of {a.runs} and median):")
    hdr = ["server", "req/s (best)", "req/s (median)", "server us/req (best)",
           "server us/req (median)"]
    print(bl.fmt_table(hdr, [[k, f"{s['best_rps']:,.0f}", f"{s['med_rps']:,.0f}",
                              f"{s['best_us']:.2f}", f"{s['med_us']:.2f}"]
                             for k, s in summ.items()]))
    ratio_best = summ["mock"]["best_rps"] / summ["nginx"]["best_rps"]
    ratio_med = summ["mock"]["med_rps"] / summ["nginx"]["med_rps"]
    cpu_ratio = summ["mock"]["best_us"] / summ["nginx"]["best_us"]
    verdict = f"meets target (>= {TARGET})" if ratio_best >= TARGET else \
        f"MISSES target (>= {TARGET})"
    print()
    print(f"RATIO req/s mock/nginx: best {ratio_best:.3f}  median {ratio_med:.3f}  -> {verdict}")
    print(f"RATIO server cpu/request mock/nginx (best): {cpu_ratio:.3f}  (lower is better)")
    for wmsg in warnings:
        print("warning: " + wmsg)
    print(f"loadavg after: {bl.load_average()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bl.cleanup()
