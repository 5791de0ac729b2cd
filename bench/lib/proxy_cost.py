"""The fault proxy's cost: nginx directly vs through `millstone proxy` with no toxic.

Invoked by bench/proxy_cost.sh; see bench/README.md. The same open-model load
(`millstone run --rate`, so latency is not queueing behind a saturated
server) goes alternately to nginx and to a proxy in front of the same nginx.
Pinned: nginx and the proxy on CPU 0 (the server side), the load on CPU 1.
Reported: the proxy's CPU per proxied request (user+sys of its process from
/proc over the run, divided by the requests nginx counted), and the latency
the proxy adds at p50 and p99 (through minus direct, from millstone's
histograms).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402


def start_proxy(tools, upstream_port, pin_cpus):
    tmp = bl.make_tmpdir("bench-proxy-")
    api_port = bl.free_port()
    listen_port = bl.free_port()
    log = open(os.path.join(tmp, "proxy.log"), "w")
    cmd = bl.pin_prefix(tools, pin_cpus) + [tools["millstone"], "proxy", "--api",
                                            f"{bl.HOST}:{api_port}"]
    proc = bl.spawn(cmd, "millstone proxy", stdout=log, stderr=log)
    srv = bl.Server("proxy", proc, listen_port, tmp, 1)
    body = json.dumps({"name": "nginx", "listen": f"{bl.HOST}:{listen_port}",
                       "upstream": f"{bl.HOST}:{upstream_port}"}).encode()
    deadline = time.monotonic() + 15
    while True:
        try:
            req = urllib.request.Request(f"http://{bl.HOST}:{api_port}/proxies", data=body,
                                         method="POST")
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status != 201:
                    raise bl.BenchError(f"creating the proxy answered {r.status}")
            break
        except OSError as e:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise bl.BenchError(f"millstone proxy did not start: {e}")
            time.sleep(0.1)
    srv.body, srv.header_bytes, _ = bl.wait_http_ready(listen_port, "/hello", proc)
    return srv


def main():
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(
        prog="bench/proxy_cost.sh",
        description="CPU per proxied request and added latency (p50/p99) of `millstone proxy` "
                    "with no toxic: nginx directly vs through the proxy, same open-model load.")
    ap.add_argument("--rate", "-r", type=int, default=int(bl.env_default("RATE", 5000)),
                    help="requests per second of each run (env RATE, default 5000)")
    ap.add_argument("--conns", "-c", type=int, default=int(bl.env_default("CONNS", 50)),
                    help="connections (env CONNS, default 50)")
    ap.add_argument("--duration", "-d", default=bl.env_default("DURATION", "10s"),
                    help="duration of each run (env DURATION, default 10s)")
    ap.add_argument("--runs", "-n", type=int, default=int(bl.env_default("RUNS", 3)),
                    help="runs per path, alternating direct/proxied (env RUNS, default 3)")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin (default: nginx and proxy on CPU 0, load on CPU 1)")
    a = ap.parse_args()
    if min(a.rate, a.conns, a.runs) < 1:
        ap.error("--rate, --conns and --runs must be >= 1")
    dur = bl.parse_duration(a.duration)
    pin = not a.no_pin
    bl.install_signal_handlers()
    tools = bl.find_tools(repo, need_nginx=True, need_taskset=pin)
    srv_cpus, cli_cpus = ("0", "1") if pin else (None, None)

    la, note = bl.busy_note()
    print(f"proxy_cost: {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"cores={os.cpu_count()}  loadavg={la}")
    print(f"  millstone run --rate {a.rate} -c {a.conns} -d {dur}s -w 1, runs/path={a.runs}, "
          f"pin={'nginx+proxy:0 load:1' if pin else 'no'}")
    if note:
        print("  " + note)

    rows, results = [], {"direct": [], "proxied": []}
    try:
        nginx = bl.start_server("nginx", tools, 1, srv_cpus)
        proxy = start_proxy(tools, nginx.port, srv_cpus)
        if proxy.body != nginx.body:
            raise bl.BenchError(f"through the proxy /hello returned {proxy.body!r}")
        tmp = bl.make_tmpdir("bench-proxy-cost-")
        for i in range(1, a.runs + 1):
            for path in ("direct", "proxied"):
                url = nginx.url("/hello") if path == "direct" else proxy.url("/hello")
                out_json = os.path.join(tmp, f"{path}-{i}.json")
                cmd = bl.pin_prefix(tools, cli_cpus) + [
                    tools["millstone"], "run", url, "--rate", str(a.rate), "-c", str(a.conns),
                    "-d", f"{dur}s", "-w", "1", "-q", "--no-history", "-o", out_json]
                print(f"  run {i}/{a.runs}: {path} ...", flush=True)
                req0, ng0, px0 = nginx.requests_served(), nginx.cpu_seconds(), proxy.cpu_seconds()
                code, wall, ut, st = bl.run_measured(cmd, out_json + ".out", out_json + ".err",
                                                     dur + 30)
                req1, ng1, px1 = nginx.requests_served(), nginx.cpu_seconds(), proxy.cpu_seconds()
                if code != 0:
                    with open(out_json + ".err") as f:
                        raise bl.BenchError(f"millstone run exited {code}: {f.read()[-1500:]}")
                r = bl.parse_millstone(out_json)
                served = req1 - req0 if req0 is not None and req1 is not None else r["requests"]
                res = {"run": i, "path": path, "requests": r["requests"], "served": served,
                       "errors": sum(r["errors"].values()),
                       "p50": r["latency_ms"].get("p50"), "p99": r["latency_ms"].get("p99"),
                       "nginx_us": (ng1 - ng0) / max(served, 1) * 1e6,
                       "proxy_us": (px1 - px0) / max(served, 1) * 1e6,
                       "load_us": (ut + st) / max(r["requests"], 1) * 1e6}
                results[path].append(res)
                rows.append([i, path, f"{res['requests']:,}", f"{served:,}", res["errors"],
                             f"{res['p50']:.3f}", f"{res['p99']:.3f}",
                             f"{res['nginx_us']:.2f}",
                             f"{res['proxy_us']:.2f}" if path == "proxied" else "-",
                             f"{res['load_us']:.2f}"])
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()

    print()
    print("Per run (latency from millstone's histogram, ms; CPU from /proc, us per request "
          "nginx served):")
    print(bl.fmt_table(["run", "path", "requests", "nginx-counted", "errors", "p50 ms", "p99 ms",
                        "nginx us/req", "proxy us/req", "load us/req"], rows))
    med = {k: {m: bl.median([r[m] for r in v]) for m in ("p50", "p99", "nginx_us", "proxy_us")}
           for k, v in results.items()}
    print()
    print(f"Summary (median of {a.runs}):")
    print(f"  latency p50: direct {med['direct']['p50']:.3f} ms, proxied "
          f"{med['proxied']['p50']:.3f} ms -> added {med['proxied']['p50'] - med['direct']['p50']:.3f} ms")
    print(f"  latency p99: direct {med['direct']['p99']:.3f} ms, proxied "
          f"{med['proxied']['p99']:.3f} ms -> added {med['proxied']['p99'] - med['direct']['p99']:.3f} ms")
    print(f"  CPU per proxied request: proxy {med['proxied']['proxy_us']:.2f} us "
          f"(nginx itself {med['direct']['nginx_us']:.2f} us per request; ratio proxy/nginx "
          f"{med['proxied']['proxy_us'] / med['direct']['nginx_us']:.2f})")
    print(f"loadavg after: {bl.load_average()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bl.cleanup()
