"""Shared helpers for the bench/*.sh scripts (Python 3 standard library only).

Everything here talks to 127.0.0.1 only, every load is bounded in time, and
every process we start is tracked by pid and stopped on exit (normal exit,
error, Ctrl-C or SIGTERM).
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client
import ssl

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

EXIT_MISSING_TOOL = 2
EXIT_RUN_FAILED = 1


class BenchError(Exception):
    """A run failed; the script prints the message and exits non-zero."""


# --------------------------------------------------------------------------
# process bookkeeping and cleanup

_live = {}  # pid -> (description, Popen)
_tmpdirs = []


def _stop(pid, proc, desc, grace=5.0):
    """SIGTERM the process group we created for pid, then SIGKILL if needed."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(pid, signal.SIGTERM)  # group id == pid (start_new_session)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    # Kill leftovers of the group even if the leader exited (e.g. workers).
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except Exception:
        pass


def cleanup():
    for pid, (desc, proc) in list(_live.items()):
        _stop(pid, proc, desc)
        _live.pop(pid, None)
    for d in _tmpdirs:
        if os.environ.get("BENCH_KEEP_TMP"):
            print(f"(kept temp dir {d})", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)
    _tmpdirs.clear()


def _on_signal(signum, _frame):
    print(f"\ninterrupted by signal {signum}; stopping everything we started",
          file=sys.stderr)
    raise SystemExit(128 + signum)


def install_signal_handlers():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)


def spawn(cmd, desc, stdout=None, stderr=None):
    """Start cmd in its own session (own process group) and track it."""
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    _live[proc.pid] = (desc, proc)
    return proc


def forget(proc):
    _live.pop(proc.pid, None)


def make_tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


# --------------------------------------------------------------------------
# tools, ports, durations


def require_tool(path_or_name, what):
    p = path_or_name if os.sep in path_or_name else shutil.which(path_or_name)
    if not p or not os.path.isfile(p) or not os.access(p, os.X_OK):
        print(f"error: {what} not found ({path_or_name})", file=sys.stderr)
        sys.exit(EXIT_MISSING_TOOL)
    return p


def find_tools(repo_root, need_nginx=True, need_taskset=False):
    tools = {}
    tools["millstone"] = require_tool(
        os.environ.get("MILLSTONE", os.path.join(repo_root, "build", "millstone")),
        "millstone binary (build it with scripts/build.sh, or set MILLSTONE=)")
    tools["wrk"] = require_tool(os.environ.get("WRK", "wrk"), "wrk")
    if need_nginx:
        nginx = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
        tools["nginx"] = require_tool(nginx, "nginx (set NGINX=)")
    if need_taskset:
        tools["taskset"] = require_tool("taskset", "taskset (needed for --pin)")
    return tools


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def parse_duration(text):
    """'10s', '3s', '1m', '10' -> integer seconds (wrk and millstone both accept 'Ns')."""
    m = re.fullmatch(r"\s*(\d+)\s*(s|m)?\s*", str(text))
    if not m:
        raise SystemExit(f"error: duration must be an integer number of seconds or minutes "
                         f"like 10s or 1m, got {text!r}")
    n = int(m.group(1)) * (60 if m.group(2) == "m" else 1)
    if n <= 0:
        raise SystemExit("error: duration must be > 0")
    return n


def env_default(name, default):
    v = os.environ.get(name)
    return v if v not in (None, "") else default


# --------------------------------------------------------------------------
# servers


def pin_prefix(tools, cpus):
    return [tools["taskset"], "-c", cpus] if cpus is not None else []


def http_connection(port, timeout, tls=False):
    """A connection to the local server; with tls, https without verification
    (the benchmark's own self-signed server: only the clients under test verify)."""
    if tls:
        return http.client.HTTPSConnection(HOST, port, timeout=timeout,
                                           context=ssl._create_unverified_context())
    return http.client.HTTPConnection(HOST, port, timeout=timeout)


def make_cert(tmp):
    """A self-signed ECDSA P-256 certificate for 127.0.0.1; returns (cert, key) paths."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
           "-addext", "subjectAltName=IP:127.0.0.1"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"openssl req failed: {r.stderr[-800:]}")
    return cert, key


def wait_http_ready(port, path, proc, timeout=15.0, tls=False):
    """Poll GET path until it answers 200; returns (body, raw header bytes)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited early with code {proc.returncode}")
        try:
            c = http_connection(port, 2, tls)
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            headers = r.getheaders()
            c.close()
            if r.status == 200:
                hdr_bytes = len("HTTP/1.1 200 OK\r\n") + sum(
                    len(k) + 2 + len(v) + 2 for k, v in headers) + 2
                return body, hdr_bytes, headers
            last = f"status {r.status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise BenchError(f"server on port {port} not ready after {timeout}s ({last})")


class Server:
    def __init__(self, kind, proc, port, tmpdir, workers, ca=None):
        self.kind, self.proc, self.port, self.tmpdir, self.workers = kind, proc, port, tmpdir, workers
        self.ca = ca  # the certificate clients trust when the server speaks TLS
        self.body = None
        self.header_bytes = None

    def url(self, path):
        return f"{'https' if self.ca else 'http'}://{HOST}:{self.port}{path}"

    def cpu_seconds(self):
        """user+sys seconds so far of the server process and all its descendants."""
        return tree_cpu_seconds(self.proc.pid)

    def nginx_counts(self):
        """nginx stub_status (accepted connections, requests), this poll excluded, or None."""
        try:
            c = http_connection(self.port, 5, self.ca is not None)
            c.request("GET", "/__nginx_status")
            r = c.getresponse()
            body = r.read().decode("utf-8", "replace")
            c.close()
            nums = body.splitlines()[2].split()
            return int(nums[0]) - 1, int(nums[2]) - 1
        except (OSError, IndexError, ValueError):
            return None

    def requests_served(self):
        """Server-side request counter (nginx stub_status / mock stats), or None."""
        path = "/__nginx_status" if self.kind == "nginx" else "/__millstone/stats"
        try:
            c = http_connection(self.port, 5, self.ca is not None)
            c.request("GET", path)
            r = c.getresponse()
            body = r.read().decode("utf-8", "replace")
            c.close()
        except OSError:
            return None
        if r.status != 200:
            return None
        try:
            if self.kind == "nginx":
                # "server accepts handled requests\n A H R"; this poll is counted too
                nums = body.splitlines()[2].split()
                return int(nums[2]) - 1
            return int(json.loads(body)["requests"])
        except (IndexError, ValueError, KeyError):
            return None

    def pids(self):
        return sorted(tree_pids(self.proc.pid))

    def stop(self):
        _stop(self.proc.pid, self.proc, self.kind)
        forget(self.proc)


NGINX_CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {host}:{port}{ssl} reuseport;
{ssl_lines}
        location = /__nginx_status {{
            stub_status;
        }}
        location = /hello {{
            default_type text/plain;
            return 200 "hello\\n";
        }}
    }}
}}
"""


NGINX_TLS = """\
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;
"""


def start_nginx(tools, workers, pin_cpus=None, path="/hello", tls=False):
    """nginx serving /hello; with tls, HTTPS with a self-signed P-256 certificate,
    a session cache and tickets (resumption possible)."""
    tmp = make_tmpdir("bench-nginx-")
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    ca, ssl_lines = None, ""
    if tls:
        ca, key = make_cert(tmp)
        ssl_lines = NGINX_TLS.format(cert=ca, key=key)
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(workers=workers, tmp=tmp, host=HOST, port=port,
                                  ssl=" ssl" if tls else "", ssl_lines=ssl_lines))
    log = open(os.path.join(tmp, "stderr.log"), "w")
    cmd = pin_prefix(tools, pin_cpus) + [tools["nginx"], "-c", conf, "-p", tmp]
    proc = spawn(cmd, "nginx", stdout=log, stderr=log)
    srv = Server("nginx", proc, port, tmp, workers, ca)
    try:
        srv.body, srv.header_bytes, _ = wait_http_ready(port, path, proc, tls=tls)
    except BenchError as e:
        with open(os.path.join(tmp, "stderr.log")) as f:
            err = f.read()[-2000:]
        raise BenchError(f"nginx failed to start: {e}\n{err}")
    return srv


def start_mock(tools, workers, pin_cpus=None, path="/hello"):
    tmp = make_tmpdir("bench-mock-")
    port = free_port()
    log = open(os.path.join(tmp, "mock.log"), "w")
    cmd = pin_prefix(tools, pin_cpus) + [tools["millstone"], "mock", "--listen",
                                         f"{HOST}:{port}", "-w", str(workers), "--quiet"]
    proc = spawn(cmd, "millstone mock", stdout=log, stderr=log)
    srv = Server("mock", proc, port, tmp, workers)
    try:
        srv.body, srv.header_bytes, _ = wait_http_ready(port, path, proc)
    except BenchError as e:
        with open(os.path.join(tmp, "mock.log")) as f:
            err = f.read()[-2000:]
        raise BenchError(f"millstone mock failed to start: {e}\n{err}")
    return srv


def start_server(kind, tools, workers, pin_cpus=None, tls=False):
    if kind == "nginx":
        return start_nginx(tools, workers, pin_cpus, tls=tls)
    if tls:
        raise BenchError("--tls is measured against nginx (--server nginx)")
    if kind == "mock":
        return start_mock(tools, workers, pin_cpus)
    raise SystemExit(f"error: unknown server {kind!r} (nginx or mock)")


# --------------------------------------------------------------------------
# /proc accounting


def _read_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces/parens: split after the last ')'
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); ppid = field 4, utime = 14, stime = 15
    return int(rest[1]), int(rest[11]), int(rest[12])


def tree_pids(root):
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _read_stat(name)
            if st:
                children.setdefault(st[0], []).append(int(name))
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.add(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_seconds(root):
    total = 0
    for p in tree_pids(root):
        st = _read_stat(p)
        if st:
            total += st[1] + st[2]
    return total / CLK_TCK


# --------------------------------------------------------------------------
# clients


def run_measured(cmd, out_path, err_path, timeout_s):
    """Run cmd to completion; return (exit code, wall s, user s, sys s).

    CPU comes from wait4() on the client process: on Linux that is the
    rusage of the process plus all of its descendants that it waited for
    (millstone's coordinator waits for its forked workers), i.e. the same
    number `time` would print for the command.
    """
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.monotonic()
        proc = spawn(cmd, cmd[0], stdout=out, stderr=err)
        deadline = t0 + timeout_s
        killed = False
        while True:
            # WNOWAIT: notice the exit but keep the zombie, so the process
            # group id stays ours while we sweep leftovers below.
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid == proc.pid:
                break
            if time.monotonic() > deadline and not killed:
                print(f"  ! {os.path.basename(cmd[0])} exceeded {timeout_s:.0f}s, killing it",
                      file=sys.stderr)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                killed = True
            time.sleep(0.02)
        wall = time.monotonic() - t0
        # Anything still in the client's group (e.g. orphaned workers) is a leftover.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    forget(proc)
    code = proc.returncode if not killed else -9
    return code, wall, ru.ru_utime, ru.ru_stime


_WRK_REQ = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.M)
_WRK_SOCK = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_PCT = re.compile(r"^\s*(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_AVG = re.compile(r"^\s*Latency\s+([\d.]+)(us|ms|s)", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text):
    m = _WRK_REQ.search(text)
    if not m:
        raise BenchError("could not find 'N requests in Xs' in wrk output:\n" + text[-1500:])
    res = {"requests": int(m.group(1)),
           "client_duration_s": float(m.group(2)) * _UNIT_MS[m.group(3)] / 1000.0}
    errs = {}
    s = _WRK_SOCK.search(text)
    if s:
        for k, v in zip(("connect", "read", "write", "timeout"), s.groups()):
            if int(v):
                errs[k] = int(v)
    n = _WRK_NON2XX.search(text)
    if n and int(n.group(1)):
        errs["non_2xx_3xx"] = int(n.group(1))
    res["errors"] = errs
    lat = {}
    for pct, v, u in _WRK_PCT.findall(text):
        lat["p" + pct] = float(v) * _UNIT_MS[u]
    a = _WRK_AVG.search(text)
    if a:
        lat["mean"] = float(a.group(1)) * _UNIT_MS[a.group(2)]
    res["latency_ms"] = lat
    return res


def parse_millstone(json_path):
    try:
        with open(json_path) as f:
            j = json.load(f)
    except (OSError, ValueError) as e:
        raise BenchError(f"could not read millstone summary {json_path}: {e}")
    errs = dict(j.get("errors") or {})
    non200 = {k: v for k, v in (j.get("status") or {}).items() if k != "200"}
    for k, v in non200.items():
        errs["status_" + k] = v
    wf = j.get("worker_failures") or []
    if wf:
        errs["worker_failures"] = len(wf)
    return {"requests": int(j.get("requests", 0)),
            "client_duration_s": float(j.get("duration_s", 0) or 0),
            "errors": errs, "latency_ms": j.get("latency_ms") or {},
            "complete": j.get("complete"), "interrupted": j.get("interrupted"),
            "raw": j}


def wrk_cmd(tools, url, threads, conns, duration_s, pin_cpus=None):
    return pin_prefix(tools, pin_cpus) + [tools["wrk"], f"-t{threads}", f"-c{conns}",
                                          f"-d{duration_s}s", "--latency", url]


def millstone_cmd(tools, url, workers, conns, duration_s, out_json, pin_cpus=None, extra=()):
    return pin_prefix(tools, pin_cpus) + [tools["millstone"], "run", url, "-c", str(conns),
                                          "-d", f"{duration_s}s", "-w", str(workers), "-q",
                                          "-o", out_json] + list(extra)


_FLOOR_OUT = re.compile(r"^requests (\d+) errors (\d+) seconds ([\d.]+)$", re.M)


def build_floor(repo_root, tmp):
    """Compiles bench/floor/floor_client.cc with g++ into tmp; returns its path.

    The floor client: epoll, one fixed GET per connection, recv until
    Content-Length, send the next (bench/README.md#the-floor)."""
    cxx = os.environ.get("CXX") or shutil.which("g++")
    if not cxx:
        print("error: g++ not found (needed to build the floor client; set CXX= or --no-floor)",
              file=sys.stderr)
        sys.exit(EXIT_MISSING_TOOL)
    src = os.path.join(repo_root, "bench", "floor", "floor_client.cc")
    out = os.path.join(tmp, "floor_client")
    r = subprocess.run([cxx, "-std=c++20", "-O2", "-Wall", "-Wextra", "-pthread", "-o", out, src],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"building {src} failed:\n{r.stderr[-2000:]}")
    return out


def parse_floor(text):
    m = _FLOOR_OUT.search(text)
    if not m:
        raise BenchError("could not find 'requests N errors E seconds S' in the floor client's "
                         "output:\n" + text[-1500:])
    errs = {"floor": int(m.group(2))} if int(m.group(2)) else {}
    return {"requests": int(m.group(1)), "client_duration_s": float(m.group(3)),
            "errors": errs, "latency_ms": {}}


def floor_cmd(tools, url, threads, conns, duration_s, extra=()):
    m = re.fullmatch(r"http://([\d.]+):(\d+)(/.*)", url)
    if not m:
        raise BenchError(f"the floor client speaks plain HTTP to an IPv4 address, not {url}")
    return [tools["floor"], m.group(1), m.group(2), m.group(3), str(conns), str(duration_s),
            str(min(threads, conns))] + list(extra)


def run_client(kind, tools, url, threads, conns, duration_s, tmp, tag, pin_cpus=None,
               server=None, wrk_extra=(), millstone_extra=(), floor_extra=(), wrap=(),
               timeout_s=None):
    """Run one bounded client load; returns a result dict (raises BenchError on failure).

    wrap: a command prefix put between the pinning and the client (perf stat,
    valgrind); the CPU figures then include the wrapper's own."""
    out_p = os.path.join(tmp, f"{tag}.stdout")
    err_p = os.path.join(tmp, f"{tag}.stderr")
    json_p = os.path.join(tmp, f"{tag}.json")
    if kind == "wrk":
        cmd = wrk_cmd(tools, url, threads, conns, duration_s) + list(wrk_extra)
    elif kind == "floor":
        cmd = floor_cmd(tools, url, threads, conns, duration_s, floor_extra)
    else:
        cmd = millstone_cmd(tools, url, threads, conns, duration_s, json_p, None,
                            millstone_extra)
        if server is not None and server.ca:
            cmd += ["--cacert", server.ca]
    cmd = pin_prefix(tools, pin_cpus) + list(wrap) + cmd
    req0 = server.requests_served() if server else None
    srv0 = server.cpu_seconds() if server else None
    code, wall, ut, st = run_measured(cmd, out_p, err_p,
                                      timeout_s=timeout_s or duration_s + 30)
    srv1 = server.cpu_seconds() if server else None
    req1 = server.requests_served() if server else None
    with open(out_p) as f:
        out = f.read()
    with open(err_p) as f:
        err = f.read()
    if code != 0:
        raise BenchError(f"{kind} exited with code {code}\ncommand: {' '.join(cmd)}\n"
                         f"stdout: {out[-1500:]}\nstderr: {err[-1500:]}")
    res = (parse_wrk(out) if kind == "wrk" else parse_floor(out) if kind == "floor"
           else parse_millstone(json_p))
    if res["requests"] <= 0:
        raise BenchError(f"{kind} completed 0 requests\nstdout: {out[-1500:]}\nstderr: {err[-1500:]}")
    res.update({"client": kind, "cmd": cmd, "wall_s": wall, "user_s": ut, "sys_s": st,
                "cpu_s": ut + st})
    res["us_per_req"] = res["cpu_s"] / res["requests"] * 1e6
    dur = res["client_duration_s"] or wall
    res["rps"] = res["requests"] / dur
    res["client_cpu_pct"] = 100.0 * res["cpu_s"] / dur
    if server:
        res["server_cpu_s"] = srv1 - srv0
        res["server_cpu_pct"] = 100.0 * (srv1 - srv0) / wall
        res["server_us_per_req"] = (srv1 - srv0) / res["requests"] * 1e6
    res["server_requests"] = (req1 - req0) if (req0 is not None and req1 is not None) else None
    res["error_total"] = sum(res["errors"].values())
    return res


def count_mismatch(res, conns):
    """Client-reported vs server-counted requests. The server may legitimately
    have answered up to ~one request per connection more (in flight at the end)."""
    sreq = res.get("server_requests")
    if sreq is None:
        return None
    diff = sreq - res["requests"]
    if diff < 0 or diff > max(2 * conns, 0.005 * res["requests"]):
        return (f"{res['client']}: reported {res['requests']:,} requests but the server counted "
                f"{sreq:,} (diff {diff:+,})")
    return None


def check_errors(res, max_error_pct):
    """Returns a warning string, or raises BenchError if errors exceed max_error_pct."""
    if not res["error_total"]:
        return None
    pct = 100.0 * res["error_total"] / max(1, res["requests"])
    msg = f"{res['client']}: {res['error_total']} errors ({pct:.3f}%): {res['errors']}"
    if pct > max_error_pct:
        raise BenchError(msg + f" -- above --max-error-pct {max_error_pct}")
    return msg


# --------------------------------------------------------------------------
# reporting


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_table(headers, rows, align=None):
    cols = [[str(h)] + [str(r[i]) for r in rows] for i, h in enumerate(headers)]
    widths = [max(len(c) for c in col) for col in cols]
    align = align or ["<"] + [">"] * (len(headers) - 1)
    def line(vals):
        return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(vals, align, widths))
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line([str(v) for v in r]) for r in rows]
    return "\n".join(out)


def fmt_lat(lat, key):
    v = lat.get(key)
    return "-" if v is None else f"{v:.2f}"


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def busy_note():
    """Warn if something else is eating CPU (e.g. someone compiling)."""
    la = load_average()
    try:
        one = float(la.split()[0])
    except ValueError:
        return la, None
    n = os.cpu_count() or 1
    if one > 0.5:
        return la, (f"note: load average before the benchmark is {la} on {n} cores; "
                    "other processes (e.g. compilers) are competing for CPU, expect noise")
    return la, None


# --------------------------------------------------------------------------
# added for bench/scenario_cpu.sh and bench/vu_memory.sh


def start_mock_config(tools, config_path, workers, path="/hello", pin_cpus=None):
    """`millstone mock --config FILE` on a free 127.0.0.1 port; waits until GET path is 200."""
    tmp = make_tmpdir("bench-mock-")
    port = free_port()
    log = open(os.path.join(tmp, "mock.log"), "w")
    cmd = pin_prefix(tools, pin_cpus) + [tools["millstone"], "mock", "--config", config_path,
                                         "--listen", f"{HOST}:{port}", "-w", str(workers),
                                         "--quiet"]
    proc = spawn(cmd, "millstone mock", stdout=log, stderr=log)
    srv = Server("mock", proc, port, tmp, workers)
    try:
        srv.body, srv.header_bytes, _ = wait_http_ready(port, path, proc)
    except BenchError as e:
        with open(os.path.join(tmp, "mock.log")) as f:
            err = f.read()[-2000:]
        raise BenchError(f"millstone mock --config {config_path} failed to start: {e}\n{err}")
    return srv
