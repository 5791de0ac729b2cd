"""TLS handshakes per second: millstone --no-keepalive (full and resumed) and
wrk with `Connection: close` against one nginx, next to `openssl speed` for the
certificate's key type (the physical limit of this core).

Invoked by bench/tls_handshakes.sh; see bench/README.md.
"""

import argparse
import datetime
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402


def openssl_speed(cpus, tools, seconds):
    """ECDSA P-256 signs/s and verifies/s and X25519 ops/s on one core."""
    out = ""
    for alg in ("ecdsap256", "ecdhx25519"):
        cmd = bl.pin_prefix(tools, cpus) + ["openssl", "speed", "-seconds", str(seconds), alg]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise bl.BenchError(f"openssl speed {alg} failed: {r.stderr[-500:]}")
        out += r.stdout
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    x = re.search(r"253 bits ecdh \(X25519\)\s+\S+s\s+([\d.]+)", out)
    if not m or not x:
        raise bl.BenchError("could not read `openssl speed` output:\n" + out[-1500:])
    return float(m.group(1)), float(m.group(2)), float(x.group(1))


def run_s_time(tools, srv, extra, dur, tmp, tag, cpus):
    """`openssl s_time` fetching /hello over new (or reused) sessions for dur seconds."""
    out_p, err_p = os.path.join(tmp, tag + ".out"), os.path.join(tmp, tag + ".err")
    cmd = bl.pin_prefix(tools, cpus) + ["openssl", "s_time", "-connect",
                                        f"{bl.HOST}:{srv.port}", "-www", "/hello", "-time",
                                        str(dur), "-CAfile", srv.ca] + list(extra)
    code, wall, ut, st = bl.run_measured(cmd, out_p, err_p, dur + 30)
    with open(out_p) as f:
        out = f.read()
    m = re.search(r"(\d+) connections in ([\d.]+)s", out)
    if code != 0 or not m:
        raise bl.BenchError(f"openssl s_time failed (exit {code}):\n{out[-1000:]}")
    return {"requests": int(m.group(1)), "client_duration_s": wall, "wall_s": wall,
            "cpu_s": ut + st, "error_total": 0, "raw": {}}


def main():
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(
        prog="bench/tls_handshakes.sh",
        description="Handshakes per second and CPU per handshake: a new TLS connection per "
                    "request, millstone (full, resumed) and wrk, against one nginx worker.")
    ap.add_argument("--conns", "-c", type=int, default=int(bl.env_default("CONNS", 20)))
    ap.add_argument("--duration", "-d", default=bl.env_default("DURATION", "5s"))
    ap.add_argument("--runs", "-n", type=int, default=int(bl.env_default("RUNS", 2)))
    ap.add_argument("--pin", action="store_true",
                    help="taskset: nginx on CPU 0, the client on CPU 1")
    a = ap.parse_args()
    if a.runs < 1 or a.conns < 1:
        ap.error("--runs and --conns must be >= 1")
    dur = bl.parse_duration(a.duration)
    bl.install_signal_handlers()
    tools = bl.find_tools(repo, need_nginx=True, need_taskset=a.pin)
    srv_cpus, cli_cpus = ("0", "1") if a.pin else (None, None)
    la, note = bl.busy_note()
    print(f"tls_handshakes: {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"cores={os.cpu_count()}  loadavg={la}")
    print(f"  nginx 1 worker, TLS 1.3, ECDSA P-256 certificate, X25519  conns={a.conns}  "
          f"duration={dur}s  runs={a.runs}  pin={'server:0 client:1' if a.pin else 'no'}")
    if note:
        print("  " + note)
    # openssl s_time is the same library's own handshake loop, one connection
    # at a time: -new is full handshakes, -reuse resumed ones. wrk reconnects
    # after each `Connection: close` and resumes its sessions.
    clients = [("s_time new", "s_time", ["-new"]),
               ("s_time reuse", "s_time", ["-reuse"]),
               ("wrk close", "wrk", ["-H", "Connection: close"]),
               ("millstone full", "millstone", ["--no-keepalive", "--no-tls-resumption"]),
               ("millstone resumed", "millstone", ["--no-keepalive"])]
    rows, per = [], {}
    try:
        sign, verify, x25519 = openssl_speed(cli_cpus, tools, 2)
        srv = bl.start_nginx(tools, 1, srv_cpus, tls=True)
        tmp = bl.make_tmpdir("bench-tls-hs-")
        for i in range(a.runs):
            for label, kind, extra in clients:
                print(f"  run {i + 1}/{a.runs}: {label} ...", flush=True)
                c0, s0 = srv.nginx_counts(), srv.cpu_seconds()
                if kind == "s_time":
                    r = run_s_time(tools, srv, extra, dur, tmp, f"{label.replace(' ', '-')}-{i}",
                                   cli_cpus)
                else:
                    r = bl.run_client(kind, tools, srv.url("/hello"), 1, a.conns, dur, tmp,
                                      f"{label.replace(' ', '-')}-{i}", cli_cpus, server=srv,
                                        wrk_extra=extra if kind == "wrk" else (),
                                      millstone_extra=extra if kind == "millstone" else ())
                c1, s1 = srv.nginx_counts(), srv.cpu_seconds()
                accepts = (c1[0] - c0[0]) if c0 and c1 else None
                dur_s = r["client_duration_s"] or r["wall_s"]
                hs = accepts if accepts is not None else r["requests"]
                tls = (r["raw"].get("tls") or {}) if kind == "millstone" else {}
                resumed = tls.get("resumed")
                row = {"label": label, "accepts": accepts, "requests": r["requests"],
                       "hs_per_s": hs / dur_s, "client_us": r["cpu_s"] / hs * 1e6,
                       "server_us": (s1 - s0) / hs * 1e6,
                       "resumed_pct": (100.0 * resumed / tls["handshakes"])
                       if resumed is not None and tls.get("handshakes") else None,
                       "errors": r["error_total"]}
                rows.append(row)
                per.setdefault(label, []).append(row)
    except bl.BenchError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return bl.EXIT_RUN_FAILED
    finally:
        bl.cleanup()

    print()
    print("Per run (handshakes = connections nginx accepted, from its stub_status):")
    hdr = ["client", "handshakes", "requests", "handshakes/s", "client us/hs", "server us/hs",
           "resumed %", "errors"]
    print(bl.fmt_table(hdr, [[r["label"], f"{r['accepts']:,}" if r["accepts"] is not None
                              else "-", f"{r['requests']:,}", f"{r['hs_per_s']:,.0f}",
                              f"{r['client_us']:.1f}", f"{r['server_us']:.1f}",
                              "-" if r["resumed_pct"] is None else f"{r['resumed_pct']:.0f}",
                              r["errors"]] for r in rows]))
    print()
    print(f"openssl speed on one core: ECDSA P-256 {sign:,.0f} sign/s, {verify:,.0f} verify/s; "
          f"X25519 {x25519:,.0f} ops/s")
    # A full TLS 1.3 handshake costs the server one signature and one X25519
    # key share plus derivation; the client one verification and one X25519.
    srv_limit = 1.0 / (1.0 / sign + 2.0 / x25519)
    cli_limit = 1.0 / (1.0 / verify + 2.0 / x25519)
    print(f"  limit of one core from the public-key work alone: server {srv_limit:,.0f} "
          f"full handshakes/s, client {cli_limit:,.0f}")
    med = {k: bl.median([r["client_us"] for r in v]) for k, v in per.items()}
    hs = {k: bl.median([r["hs_per_s"] for r in v]) for k, v in per.items()}
    print()
    for k in per:
        print(f"  {k:18s} median {hs[k]:,.0f} handshakes/s, {med[k]:.1f} client us/handshake")
    print(f"RATIO client cpu/handshake millstone full / openssl s_time -new: "
          f"{med['millstone full'] / med['s_time new']:.3f}")
    print(f"RATIO client cpu/handshake millstone resumed / openssl s_time -reuse: "
          f"{med['millstone resumed'] / med['s_time reuse']:.3f}")
    print(f"RATIO client cpu/handshake millstone resumed / wrk (close, resumed): "
          f"{med['millstone resumed'] / med['wrk close']:.3f}")
    print(f"RATIO millstone full handshakes/s / client one-core limit: "
          f"{hs['millstone full'] / cli_limit:.3f}")
    print(f"loadavg after: {bl.load_average()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bl.cleanup()
