"""Memory per idle virtual user: RSS growth of millstone's workers per VU.

Invoked by bench/vu_memory.sh; see bench/README.md ("Scenarios").

One `millstone mock` (bench/scenarios/cpu-mock.yaml, 2 workers by default).
For N = baseline (100) and N = VUS (10,000), in that order, run

  millstone run idle-vus.yaml --target http://127.0.0.1:PORT -w W -q -o out.json

where idle-vus.yaml (generated from bench/scenarios/idle-vus.yaml with vus: N
and duration: DURATION) is constant-vus N for ~12 s, each VU sending one
GET /hello and then thinking 60 s: after the ramp every VU is idle, holding
its keep-alive connection. While it runs, every 0.25 s, the script

  * sums VmRSS (and RssAnon) from /proc/PID/status over the coordinator's
    children (the worker processes), and separately reads the coordinator's;
  * polls the mock's /__millstone/stats (not counted as a request) for the
    number of GET /hello answered, to time the ramp.

RSS(N) = max of the worker sums sampled in [--sample-from, --sample-to] s after
the start (and after all N first requests were answered). The result is
(RSS(N) - RSS(baseline)) / (N - baseline) in KiB per VU.
"""

import argparse
import datetime
import http.client
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

AIM_KIB = 16.0


def status_kib(pid, keys=("VmRSS", "RssAnon", "RssFile", "VmHWM")):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    return out


def tcp_sockstat():
    """(sockets in use, kernel memory pages) of TCP from /proc/net/sockstat (system-wide)."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    v = line.split()
                    return int(v[v.index("inuse") + 1]), int(v[v.index("mem") + 1])
    except (OSError, ValueError):
        pass
    return None, None


def children(pid):
    """Direct children of pid (from /proc/*/stat ppid)."""
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = bl._read_stat(name)
            if st and st[0] == pid:
                kids.append(int(name))
    return sorted(kids)


def hello_count(port, route="GET /hello"):
    try:
        c = http.client.HTTPConnection(bl.HOST, port, timeout=2)
        c.request("GET", "/__millstone/stats")
        r = c.getresponse()
        body = r.read()
        c.close()
        j = json.loads(body)
        for x in j["routes"]:
            if x["name"] == route:
                return int(x["requests"])
    except (OSError, ValueError, KeyError):
        pass
    return None


def make_scenario(template, dst, vus, duration_s):
    with open(template) as f:
        text = f.read()
    text, n1 = re.subn(r"(?m)^(\s+vus:\s*)\d+\s*$", rf"\g<1>{vus}", text)
    text, n2 = re.subn(r"(?m)^(\s+duration:\s*)\S+\s*$", rf"\g<1>{duration_s}s", text)
    if n1 != 1 or n2 != 1:
        raise SystemExit(f"error: {template}: expected exactly one 'vus:' and one 'duration:' line")
    with open(dst, "w") as f:
        f.write(text)
    return dst


def run_idle(tools, srv, n, a, dur, tmp, tag):
    scen = make_scenario(a.scenario, os.path.join(tmp, f"idle-vus-{n}.yaml"), n, dur)
    out_p = os.path.join(tmp, f"{tag}.stdout")
    err_p = os.path.join(tmp, f"{tag}.stderr")
    json_p = os.path.join(tmp, f"{tag}.json")
    cmd = [tools["millstone"], "run", scen, "--target", srv.url(""), "-w", str(a.workers),
           "-q", "-o", json_p]
    base = hello_count(srv.port) or 0
    samples = []  # (t, workers VmRSS sum, RssAnon sum, coordinator VmRSS, nworkers, hello)
    timeout_s = dur + 30
    with open(out_p, "w") as out, open(err_p, "w") as err:
        t0 = time.monotonic()
        proc = bl.spawn(cmd, "millstone run", stdout=out, stderr=err)
        killed = False
        first_t = all_t = None
        next_sample = t0
        while True:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid == proc.pid:
                break
            now = time.monotonic()
            if now > t0 + timeout_s and not killed:
                print(f"  ! millstone exceeded {timeout_s:.0f}s, killing it", file=sys.stderr)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                killed = True
            if now >= next_sample:
                next_sample += a.interval
                t = now - t0
                hc = hello_count(srv.port)
                done = None if hc is None else hc - base
                if done is not None:
                    if first_t is None and done > 0:
                        first_t = t
                    if all_t is None and done >= n:
                        all_t = t
                kids = children(proc.pid)
                rss = anon = 0
                for k in kids:
                    s = status_kib(k)
                    if s:
                        rss += s.get("VmRSS", 0)
                        anon += s.get("RssAnon", 0)
                coord = (status_kib(proc.pid) or {}).get("VmRSS", 0)
                inuse, mem = tcp_sockstat()
                samples.append((t, rss, anon, coord, len(kids), done, inuse, mem))
            time.sleep(0.02)
        wall = time.monotonic() - t0
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _, status, ru = os.wait4(proc.pid, 0)
    bl.forget(proc)
    code = -9 if killed else os.waitstatus_to_exitcode(status)
    with open(out_p) as f:
        out_text = f.read()
    with open(err_p) as f:
        err_text = f.read()
    if code != 0:
        raise bl.BenchError(f"millstone run ({n} VUs) exited with code {code}\n"
                            f"command: {' '.join(cmd)}\nstdout: {out_text[-2500:]}\n"
                            f"stderr: {err_text[-1500:]}")
    res = bl.parse_millstone(json_p)
    j = res["raw"]
    errs = res["errors"]
    if sum(errs.values()):
        raise bl.BenchError(f"{n} VUs: errors {errs}")
    if res["requests"] != n:
        raise bl.BenchError(f"{n} VUs: expected exactly {n} requests (one per VU), got "
                            f"{res['requests']}: every VU should send one request and then idle")
    # Window: [sample_from, sample_to] and after every VU's first request was answered.
    lo = a.sample_from
    if all_t is None:
        raise bl.BenchError(f"{n} VUs: the mock never counted {n} requests during the run "
                            f"(last sample {samples[-1] if samples else None})")
    note = None
    if all_t > lo:
        note = f"ramp took {all_t:.2f}s > --sample-from {lo}s: sampled from {all_t:.2f}s"
        lo = all_t
    win = [s for s in samples if lo <= s[0] <= max(a.sample_to, lo + 1.0) and s[4] == a.workers]
    if not win:
        raise bl.BenchError(f"{n} VUs: no RSS sample in the window [{lo:.2f}, {a.sample_to}] s")
    best = max(win, key=lambda s: s[1])
    # Ramp in whole seconds from the JSON timeline (cumulative requests per second).
    cum, tl_sec = 0, None
    for e in j.get("timeline", []):
        cum += e["requests"]
        if tl_sec is None and cum >= n:
            tl_sec = e["second"] + 1
    return {"n": n, "rss_kib": best[1], "anon_kib": best[2], "coord_kib": best[3],
            "samples_in_window": len(win), "window": (lo, a.sample_to),
            "first_t": first_t, "all_t": all_t, "timeline_s": tl_sec, "wall_s": wall,
            "cpu_s": ru.ru_utime + ru.ru_stime, "requests": res["requests"],
            "latency_ms": res["latency_ms"], "connections_opened": j.get("connections_opened"),
            "peak_rss_kib": max(s[1] for s in samples),
            "tcp_inuse": best[6], "tcp_mem_pages": best[7], "samples": samples, "note": note,
            "mock_rss_kib": None}


def mock_rss(srv):
    total = 0
    for p in srv.pids():
        if p == srv.proc.pid:
            continue
        s = status_kib(p)
        if s:
            total += s.get("VmRSS", 0)
    return total


def main():
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    here = os.path.join(repo, "bench", "scenarios")
    ap = argparse.ArgumentParser(
        prog="bench/vu_memory.sh",
        description="RSS of millstone's worker processes per idle VU: constant-vus N, one request "
                    "each then a 60 s think, for N = --vus and N = --baseline.")
    ap.add_argument("--vus", "-n", type=int, default=int(bl.env_default("VUS", 10000)),
                    help="VUs of the measured run (env VUS, default 10000)")
    ap.add_argument("--baseline", type=int, default=int(bl.env_default("BASELINE", 100)),
                    help="VUs of the baseline run (env BASELINE, default 100)")
    ap.add_argument("--duration", "-d", default=bl.env_default("DURATION", "12s"),
                    help="scenario duration (env DURATION, default 12s)")
    ap.add_argument("--runs", type=int, default=int(bl.env_default("RUNS", 1)),
                    help="pairs of runs (baseline, N), alternating (env RUNS, default 1)")
    ap.add_argument("--workers", "-w", type=int, default=int(bl.env_default("WORKERS", 2)),
                    help="millstone run -w (env WORKERS, default 2)")
    ap.add_argument("--server-workers", type=int,
                    default=int(bl.env_default("SERVER_WORKERS", 2)),
                    help="mock worker processes (env SERVER_WORKERS, default 2)")
    ap.add_argument("--sample-from", type=float, default=6.0,
                    help="RSS window start, s after millstone starts (default 6)")
    ap.add_argument("--sample-to", type=float, default=8.0,
                    help="RSS window end, s after millstone starts (default 8)")
    ap.add_argument("--interval", type=float, default=0.25, help="sampling interval s (0.25)")
    ap.add_argument("--scenario", default=os.path.join(here, "idle-vus.yaml"),
                    help="scenario template (default bench/scenarios/idle-vus.yaml)")
    ap.add_argument("--mock-config", default=os.path.join(here, "cpu-mock.yaml"),
                    help="mock config (default bench/scenarios/cpu-mock.yaml)")
    a = ap.parse_args()
    if a.vus <= a.baseline or a.baseline < 1 or a.workers < 1 or a.runs < 1:
        ap.error("need --vus > --baseline >= 1, --workers >= 1, --runs >= 1")
    dur = bl.parse_duration(a.duration)
    if dur < a.sample_to + 1:
        ap.error(f"--duration {dur}s must end after --sample-to {a.sample_to}s (+1 s)")
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        per = (a.vus + a.workers - 1) // a.workers + 64
        if soft != resource.RLIM_INFINITY and soft < per:
            print(f"warning: open-file limit {soft} < {per} needed per worker", file=sys.stderr)
    except (ImportError, ValueError):
        pass

    bl.install_signal_handlers()
    tools = {"millstone": bl.require_tool(
        os.environ.get("MILLSTONE", os.path.join(repo, "build", "millstone")),
        "millstone binary (build it with scripts/build.sh, or set MILLSTONE=)")}

    la, note = bl.busy_note()
    print(f"vu_memory: {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"cores={os.cpu_count()}  loadavg={la}")
    print(f"  mock workers={a.server_workers}  millstone -w {a.workers}  VUs {a.baseline} and "
          f"{a.vus}  duration={dur}s  RSS window {a.sample_from}-{a.sample_to}s  runs={a.runs}")
    if note:
        print("  " + note)

    results = []
    try:
        srv = bl.start_mock_config(tools, os.path.abspath(a.mock_config), a.server_workers)
        print(f"  mock up at {srv.url('')} (pids {srv.pids()}, workers' RSS {mock_rss(srv)} KiB)")
        tmp = bl.make_tmpdir("bench-vu-memory-")
        for i in range(1, a.runs + 1):
            for n in (a.baseline, a.vus):
                print(f"  run {i}/{a.runs}: {n:,} VUs ...", flush=True)
                r = run_idle(tools, srv, n, a, dur, tmp, f"vus-{n}-{i}")
                r["mock_rss_kib"] = mock_rss(srv)
                r["run"] = i
                results.append(r)
                # Let the sockets of the last run close on the mock's side.
                time.sleep(1.0)
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()

    print()
    print("Per run (RSS = sum of VmRSS of the worker processes, max over the window):")
    hdr = ["run", "VUs", "requests", "workers RSS KiB", "RssAnon KiB", "peak RSS KiB",
           "coordinator KiB", "mock RSS KiB*", "first resp s", "all N resp s", "timeline s",
           "p50 ms", "p99 ms", "max ms", "cpu s", "samples", "TCP inuse**", "TCP mem KiB**"]
    rows = []
    for r in results:
        rows.append([r["run"], f"{r['n']:,}", f"{r['requests']:,}", f"{r['rss_kib']:,}",
                     f"{r['anon_kib']:,}", f"{r['peak_rss_kib']:,}", f"{r['coord_kib']:,}",
                     f"{r['mock_rss_kib']:,}",
                     "-" if r["first_t"] is None else f"{r['first_t']:.2f}",
                     "-" if r["all_t"] is None else f"{r['all_t']:.2f}",
                     "-" if r["timeline_s"] is None else f"<= {r['timeline_s']}",
                     bl.fmt_lat(r["latency_ms"], "p50"), bl.fmt_lat(r["latency_ms"], "p99"),
                     bl.fmt_lat(r["latency_ms"], "max"), f"{r['cpu_s']:.2f}",
                     r["samples_in_window"], r["tcp_inuse"] if r["tcp_inuse"] is not None else "-",
                     "-" if r["tcp_mem_pages"] is None else f"{r['tcp_mem_pages'] * 4:,}"])
    print(bl.fmt_table(hdr, rows))
    print("  * mock RSS after the run (workers' VmRSS sum), for reference only")
    print("  ** system-wide TCP sockets in use and kernel TCP buffer memory (/proc/net/sockstat, "
          "4 KiB pages) at the chosen sample: kernel memory, not in any RSS; both ends counted")
    print("  first/all N resp s: seconds after `millstone run` started until the mock had "
          "answered the first / all N GET /hello (polled every "
          f"{a.interval}s); timeline s: whole second of the JSON timeline by which all N "
          "requests completed")
    for r in results:
        if r["note"]:
            print(f"  note: run {r['run']} {r['n']:,} VUs: {r['note']}")

    print()
    per = []
    for i in range(1, a.runs + 1):
        b = next(r for r in results if r["run"] == i and r["n"] == a.baseline)
        m = next(r for r in results if r["run"] == i and r["n"] == a.vus)
        kib = (m["rss_kib"] - b["rss_kib"]) / (a.vus - a.baseline)
        anon = (m["anon_kib"] - b["anon_kib"]) / (a.vus - a.baseline)
        per.append(kib)
        print(f"run {i}: RSS {b['rss_kib']:,} KiB at {a.baseline:,} VUs, {m['rss_kib']:,} KiB at "
              f"{a.vus:,} VUs -> {kib:.2f} KiB per idle VU (RssAnon only: {anon:.2f} KiB)")
    med = bl.median(per)
    verdict = (f"meets aim (< {AIM_KIB:g} KiB)" if med < AIM_KIB
               else f"MISSES aim (< {AIM_KIB:g} KiB)")
    print(f"RESULT memory per idle VU: {med:.2f} KiB (median of {len(per)}) -> {verdict}")
    print(f"loadavg after: {bl.load_average()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bl.cleanup()
