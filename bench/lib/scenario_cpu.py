"""Scenario CPU overhead: a 3-step flow with checks and a JSON extraction vs quick mode.

Invoked by bench/scenario_cpu.sh; see bench/README.md ("Scenarios").

One `millstone mock` (bench/scenarios/cpu-mock.yaml, 1 worker by default) serves
both clients. Runs alternate quick, scenario, quick, scenario, ...:

  quick:    millstone run http://127.0.0.1:PORT/api/items -c VUS -d DURATION -w W -q -o q.json
  scenario: millstone run three-steps.yaml --target http://127.0.0.1:PORT -w W -q -o s.json

CPU is user+sys of the whole millstone process tree (wait4 on the coordinator,
which waits for its forked workers; benchlib.run_measured), divided by the
completed requests in the JSON summary.
"""

import argparse
import datetime
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

TARGET = 1.5  # scenario / quick CPU per request


def scenario_copy(src, dst, vus, duration_s):
    """Copy the scenario with the executor's vus/duration replaced (only if they differ)."""
    with open(src) as f:
        text = f.read()
    text, n1 = re.subn(r"(?m)^(\s+vus:\s*)\d+\s*$", rf"\g<1>{vus}", text)
    text, n2 = re.subn(r"(?m)^(\s+duration:\s*)\S+\s*$", rf"\g<1>{duration_s}s", text)
    if n1 != 1 or n2 != 1:
        raise SystemExit(f"error: {src}: expected exactly one 'vus:' and one 'duration:' line")
    with open(dst, "w") as f:
        f.write(text)
    return dst


def route_counts(srv):
    """Per-route request counts from the mock's /__millstone/stats, or None."""
    import http.client
    try:
        c = http.client.HTTPConnection(bl.HOST, srv.port, timeout=5)
        c.request("GET", "/__millstone/stats")
        r = c.getresponse()
        body = r.read()
        c.close()
        j = json.loads(body)
        return {x["name"]: int(x["requests"]) for x in j["routes"]}, int(j["requests"])
    except (OSError, ValueError, KeyError):
        return None


def validate_scenario(res, conns):
    """Raise BenchError unless every check passed, thresholds passed, no errors, no aborts."""
    j = res["raw"]
    problems = []
    if not j.get("thresholds_passed", False):
        problems.append("thresholds failed: " + "; ".join(
            f"{t['threshold']} observed {t['observed']}" for t in j.get("thresholds", [])
            if not t.get("passed")))
    failed_checks = [c for c in j.get("checks", []) if c.get("failed")]
    if failed_checks:
        problems.append("checks failed: " + "; ".join(
            f"{c['name']}: {c['failed']} (e.g. {c.get('samples')[:1]})" for c in failed_checks))
    if not j.get("checks"):
        problems.append("no checks in the summary")
    for s in j.get("steps", []):
        if s.get("failed") or s.get("errors") or s.get("extract_failed"):
            problems.append(f"step {s['name']}: failed {s.get('failed')} errors {s.get('errors')} "
                            f"extract_failed {s.get('extract_failed')}")
    for fl in j.get("flows", []):
        if fl.get("aborted"):
            problems.append(f"flow {fl['name']}: {fl['aborted']} aborted iterations")
    steps = [s["requests"] for s in j.get("steps", [])]
    if len(steps) != 3:
        problems.append(f"expected 3 steps, got {len(steps)}")
    elif max(steps) - min(steps) > conns:
        problems.append(f"steps have uneven request counts {steps}")
    if problems:
        raise bl.BenchError("scenario run not clean:\n  " + "\n  ".join(problems))
    return steps


def run_one(kind, tools, srv, a, dur, tmp, tag, scenario_path):
    out_p = os.path.join(tmp, f"{tag}.stdout")
    err_p = os.path.join(tmp, f"{tag}.stderr")
    json_p = os.path.join(tmp, f"{tag}.json")
    if kind == "quick":
        cmd = bl.millstone_cmd(tools, srv.url(a.quick_path), a.workers, a.vus, dur, json_p)
    else:
        cmd = [tools["millstone"], "run", scenario_path, "--target", srv.url(""),
               "-w", str(a.workers), "-q", "-o", json_p]
    c0 = route_counts(srv)
    srv0 = srv.cpu_seconds()
    code, wall, ut, st = bl.run_measured(cmd, out_p, err_p, timeout_s=dur + 30)
    srv1 = srv.cpu_seconds()
    c1 = route_counts(srv)
    with open(out_p) as f:
        out = f.read()
    with open(err_p) as f:
        err = f.read()
    if code != 0:
        raise bl.BenchError(f"{kind} exited with code {code}\ncommand: {' '.join(cmd)}\n"
                            f"stdout: {out[-2500:]}\nstderr: {err[-1500:]}")
    res = bl.parse_millstone(json_p)
    if res["requests"] <= 0:
        raise bl.BenchError(f"{kind} completed 0 requests\nstdout: {out[-1500:]}")
    res.update({"client": kind, "cmd": cmd, "wall_s": wall, "user_s": ut, "sys_s": st,
                "cpu_s": ut + st})
    res["us_per_req"] = res["cpu_s"] / res["requests"] * 1e6
    d = res["client_duration_s"] or wall
    res["rps"] = res["requests"] / d
    res["client_cpu_pct"] = 100.0 * res["cpu_s"] / d
    res["server_cpu_pct"] = 100.0 * (srv1 - srv0) / wall
    res["server_us_per_req"] = (srv1 - srv0) / res["requests"] * 1e6
    res["error_total"] = sum(res["errors"].values())
    res["server_requests"] = (c1[1] - c0[1]) if (c0 and c1) else None
    res["server_routes"] = ({k: c1[0][k] - c0[0].get(k, 0) for k in c1[0]}
                            if (c0 and c1) else None)
    if kind == "scenario":
        res["steps"] = validate_scenario(res, a.vus)
        res["iterations"] = sum(fl["iterations"] for fl in res["raw"].get("flows", []))
    return res


def main():
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    here = os.path.join(repo, "bench", "scenarios")
    ap = argparse.ArgumentParser(
        prog="bench/scenario_cpu.sh",
        description="Client CPU per request of a 3-step scenario (JSON checks + extraction) vs "
                    "quick mode against the same millstone mock. Runs alternate quick, "
                    "scenario, quick, scenario, ...")
    ap.add_argument("--vus", "-c", type=int, default=int(bl.env_default("VUS", 50)),
                    help="scenario VUs and quick-mode connections (env VUS, default 50)")
    ap.add_argument("--duration", "-d", default=bl.env_default("DURATION", "10s"),
                    help="duration of each run (env DURATION, default 10s)")
    ap.add_argument("--runs", "-n", type=int, default=int(bl.env_default("RUNS", 2)),
                    help="runs per mode, alternating (env RUNS, default 2)")
    ap.add_argument("--workers", "-w", type=int, default=int(bl.env_default("WORKERS", 2)),
                    help="millstone run -w for both modes (env WORKERS, default 2)")
    ap.add_argument("--server-workers", type=int,
                    default=int(bl.env_default("SERVER_WORKERS", 1)),
                    help="mock worker processes (env SERVER_WORKERS, default 1)")
    ap.add_argument("--scenario", default=os.path.join(here, "three-steps.yaml"),
                    help="scenario file (default bench/scenarios/three-steps.yaml)")
    ap.add_argument("--mock-config", default=os.path.join(here, "cpu-mock.yaml"),
                    help="mock config (default bench/scenarios/cpu-mock.yaml)")
    ap.add_argument("--quick-path", default="/api/items",
                    help="quick-mode request path (default /api/items)")
    ap.add_argument("--max-error-pct", type=float, default=0.0,
                    help="quick mode: fail above this %% of errors (default 0: any error fails)")
    a = ap.parse_args()
    if a.runs < 1 or a.vus < 1 or a.workers < 1 or a.server_workers < 1:
        ap.error("--runs, --vus, --workers and --server-workers must be >= 1")
    dur = bl.parse_duration(a.duration)

    bl.install_signal_handlers()
    tools = {"millstone": bl.require_tool(
        os.environ.get("MILLSTONE", os.path.join(repo, "build", "millstone")),
        "millstone binary (build it with scripts/build.sh, or set MILLSTONE=)")}

    la, note = bl.busy_note()
    print(f"scenario_cpu: {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"cores={os.cpu_count()}  loadavg={la}")
    print(f"  mock workers={a.server_workers}  vus/conns={a.vus}  duration={dur}s  "
          f"runs/mode={a.runs}  millstone -w {a.workers}")
    if note:
        print("  " + note)

    try:
        srv = bl.start_mock_config(tools, os.path.abspath(a.mock_config), a.server_workers)
        print(f"  mock up at {srv.url('')} (pids {srv.pids()})")
        tmp = bl.make_tmpdir("bench-scenario-cpu-")
        scen = scenario_copy(a.scenario, os.path.join(tmp, "scenario.yaml"), a.vus, dur)
        results, warnings = [], []
        for i in range(1, a.runs + 1):
            for kind in ("quick", "scenario"):
                print(f"  run {i}/{a.runs}: {kind} ...", flush=True)
                r = run_one(kind, tools, srv, a, dur, tmp, f"{kind}-{i}", scen)
                r["run"] = i
                r["client"] = kind
                w = bl.check_errors(r, a.max_error_pct)
                if w:
                    warnings.append(f"run {i} {w}")
                sreq = r.get("server_requests")
                if sreq is not None:
                    diff = sreq - r["requests"]
                    if diff < 0 or diff > 2 * a.vus:
                        warnings.append(f"run {i} {kind}: reported {r['requests']:,} requests, "
                                        f"mock counted {sreq:,} (diff {diff:+,})")
                results.append(r)
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()

    print()
    print("Per run (cpu = user+sys of the whole millstone process tree, from wait4):")
    hdr = ["run", "mode", "requests", "mock-counted", "req/s", "wall s", "user s", "sys s",
           "cpu s", "cpu us/req", "client cpu%", "mock cpu%", "mock us/req", "p50 ms", "p99 ms",
           "max ms", "errors"]
    rows = []
    for r in results:
        sreq = r.get("server_requests")
        rows.append([r["run"], r["client"], f"{r['requests']:,}",
                     "-" if sreq is None else f"{sreq:,}", f"{r['rps']:,.0f}",
                     f"{r['wall_s']:.2f}", f"{r['user_s']:.2f}", f"{r['sys_s']:.2f}",
                     f"{r['cpu_s']:.2f}", f"{r['us_per_req']:.2f}", f"{r['client_cpu_pct']:.0f}",
                     f"{r['server_cpu_pct']:.0f}", f"{r['server_us_per_req']:.2f}",
                     bl.fmt_lat(r["latency_ms"], "p50"), bl.fmt_lat(r["latency_ms"], "p99"),
                     bl.fmt_lat(r["latency_ms"], "max"), r["error_total"]])
    print(bl.fmt_table(hdr, rows))
    for r in results:
        if r["client"] == "scenario":
            j = r["raw"]
            print(f"  scenario run {r['run']}: iterations {r['iterations']:,}, steps "
                  f"{r['steps']}, checks {sum(c['passed'] for c in j['checks']):,} passed / "
                  f"{sum(c['failed'] for c in j['checks'])} failed, thresholds_passed "
                  f"{j.get('thresholds_passed')}, mock routes {r.get('server_routes')}")

    summ = {}
    for kind in ("quick", "scenario"):
        rs = [r for r in results if r["client"] == kind]
        summ[kind] = {
            "med_us": bl.median([r["us_per_req"] for r in rs]),
            "best_us": min(r["us_per_req"] for r in rs),
            "med_rps": bl.median([r["rps"] for r in rs]),
            "med_req": bl.median([r["requests"] for r in rs]),
            "med_cpu": bl.median([r["cpu_s"] for r in rs]),
            "med_user": bl.median([r["user_s"] for r in rs]),
            "med_sys": bl.median([r["sys_s"] for r in rs]),
        }
    print()
    print(f"Summary over {a.runs} run(s) per mode:")
    hdr = ["mode", "requests (med)", "req/s (med)", "cpu s (med)", "user/sys (med)",
           "cpu us/req (med)", "cpu us/req (best)"]
    rows = [[k, f"{s['med_req']:,.0f}", f"{s['med_rps']:,.0f}", f"{s['med_cpu']:.2f}",
             f"{s['med_user']:.2f}/{s['med_sys']:.2f}", f"{s['med_us']:.2f}",
             f"{s['best_us']:.2f}"] for k, s in summ.items()]
    print(bl.fmt_table(hdr, rows))
    s, q = summ["scenario"], summ["quick"]
    ratio = s["med_us"] / q["med_us"]
    ratio_best = s["best_us"] / q["best_us"]
    verdict = (f"meets target (<= {TARGET})" if ratio <= TARGET
               else f"MISSES target (<= {TARGET})")
    print()
    print(f"RATIO cpu/request scenario/quick: median {ratio:.3f}  best {ratio_best:.3f}  "
          f"-> {verdict}")
    print(f"RATIO throughput scenario/quick (median req/s): {s['med_rps'] / q['med_rps']:.3f}")
    for wmsg in warnings:
        print("warning: " + wmsg)
    print(f"loadavg after: {bl.load_average()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bl.cleanup()
