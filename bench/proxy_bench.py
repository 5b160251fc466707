#!/usr/bin/env python3
"""Proxy benchmark: direct upstream vs nginx vs preview-router, one worker each, one machine.

What it compares, in one run (`.venv/bin/python bench/proxy_bench.py`):

- targets: (a) the upstream itself, (b) Debian's nginx as a path proxy (one worker,
  upstream keep-alive), (c) preview-router (`--workers 1`);
- HTTP: a 1 KiB and a 100 KiB static file at c=1 and c=32, driven by `h2load --h1`
  (req/s, mean, p50/p99 from h2load's per-request `--log-file`), plus the CPU each
  proxy process spent per request (/proc/PID/stat utime+stime over the measured run);
- WebSocket: median/p99 round trip of sequential 64-byte messages through each target.

The upstream is fast on purpose: a second nginx serves the files, a small trio-websocket
process echoes. Servers under test are pinned to core 0, upstreams and load generators
to core 1 (`taskset`), so the proxy never competes with its own load.

`--profile` instead runs the router under pyinstrument at c=32 on the 1 KiB file and
writes a text profile plus a summary of where the time goes (h11, send_all, logging,
metrics, routing, ...).

All traffic stays on 127.0.0.1; every load run is bounded in request count and in time;
every process started here is stopped on exit, error or Ctrl-C. Results are printed as
tables and written as JSON to bench/results/ (gitignored). Nothing here gates CI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
HOST = "127.0.0.1"
FILES = {"1k": 1024, "100k": 100 * 1024}
CONCURRENCY = (1, 32)
TARGETS = ("direct", "nginx", "router")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_REQUESTS = 400_000  # per measured run, whatever the rate
WS_PAYLOAD = b"x" * 64
NOISE_PCT = 15.0  # server-core busy % not explained by the process under test (+ softirq)


# --------------------------------------------------------------------------- processes


@dataclass
class Started:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


class Processes:
    """Every child this script starts, each in its own process group; stopped in reverse."""

    def __init__(self) -> None:
        self.started: list[Started] = []

    def start(self, name: str, argv: Sequence[str], core: int | None, log: Path) -> Started:
        cmd = [*taskset(core), *argv]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=REPO,
            )  # fmt: skip
        s = Started(name, proc, log)
        self.started.append(s)
        return s

    def stop(self, s: Started, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if s.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, sig)
            try:
                s.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(s.proc.pid, signal.SIGKILL)
                s.proc.wait(5)
        else:
            # The leader is gone; its group (nginx workers) may not be.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(s.proc.pid, signal.SIGKILL)
        if s in self.started:
            self.started.remove(s)
        return s.proc.returncode

    def stop_all(self) -> None:
        for s in reversed(list(self.started)):
            self.stop(s)


def taskset(core: int | None) -> list[str]:
    return ["taskset", "-c", str(core)] if core is not None else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_listening(s: Started, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.proc.poll() is not None:
            raise RuntimeError(f"{s.name} exited ({s.proc.returncode}):\n{tail(s.log)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{s.name} not listening on {port} after {timeout}s:\n{tail(s.log)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime, stime) of one process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def core_times() -> dict[str, tuple[int, int]]:
    """Per core: (busy, total) jiffies from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if re.match(r"cpu\d+ ", line):
            name, *vals = line.split()
            nums = [int(v) for v in vals[:8]]
            idle = nums[3] + nums[4]
            out[name] = (sum(nums) - idle, sum(nums))
    return out


def core_busy(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, float]:
    busy = {}
    for name, (b1, t1) in after.items():
        b0, t0 = before.get(name, (0, 0))
        busy[name] = round(100.0 * (b1 - b0) / max(t1 - t0, 1), 1)
    return busy


# --------------------------------------------------------------------------- set-up


@dataclass
class Layout:
    tmp: Path
    secret: Path
    ring: Path
    http_sid: str
    ws_sid: str
    ports: dict[str, int] = field(default_factory=dict)

    def http_path(self, name: str) -> str:
        return f"/preview/{self.http_sid}/{name}.bin"

    @property
    def ws_path(self) -> str:
        return f"/preview/{self.ws_sid}/ws"


def prepare(tmp: Path) -> Layout:
    from previewcore.session_id import mint, parse_secrets

    tmp.chmod(0o755)  # nginx workers drop to an unprivileged user when started as root
    secret = tmp / "secret"
    secret.write_text(os.urandom(24).hex() + "\n")
    keys = parse_secrets(secret.read_text())
    ports = {k: free_port() for k in ("upstream", "ws", "nginx", "router")}
    layout = Layout(tmp, secret, tmp / "ring.toml", mint("node-0", keys), mint("node-1", keys))
    layout.ports = ports
    layout.ring.write_text(
        f'[[nodes]]\nname = "node-0"\nurl = "http://{HOST}:{ports["upstream"]}"\n\n'
        f'[[nodes]]\nname = "node-1"\nurl = "http://{HOST}:{ports["ws"]}"\n'
    )
    www = tmp / "www" / "preview" / layout.http_sid
    www.mkdir(parents=True)
    for name, size in FILES.items():
        (www / f"{name}.bin").write_bytes(os.urandom(size))
    for p in (tmp / "www", tmp / "www" / "preview", www):
        p.chmod(0o755)
    return layout


def _nginx_common(tmp: Path, tag: str) -> str:
    temp = "".join(
        f"  {kind}_temp_path {tmp}/{tag}-{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
daemon off;
pid {tmp}/{tag}.pid;
error_log {tmp}/{tag}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
{temp}"""


def nginx_upstream_conf(layout: Layout) -> str:
    return (
        _nginx_common(layout.tmp, "upstream")
        + f"""  open_file_cache max=64;
  server {{
    listen {HOST}:{layout.ports["upstream"]} backlog=1024;
    root {layout.tmp}/www;
  }}
}}
"""
    )


def nginx_proxy_conf(layout: Layout) -> str:
    p = layout.ports
    return (
        _nginx_common(layout.tmp, "proxy")
        + f"""  upstream files {{
    server {HOST}:{p["upstream"]};
    keepalive 64;
    keepalive_requests 1000000;
  }}
  upstream ws {{
    server {HOST}:{p["ws"]};
  }}
  server {{
    listen {HOST}:{p["nginx"]} backlog=1024;
    # Roughly what the router adds, so both proxies do comparable header work.
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Request-ID $request_id;
    proxy_http_version 1.1;
    location /preview/{layout.ws_sid}/ {{
      proxy_pass http://ws;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 60s;
    }}
    location / {{
      proxy_pass http://files;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
    )


@dataclass
class Servers:
    upstream: Started
    ws: Started
    nginx: Started | None = None
    router: Started | None = None


def start_nginx(procs: Processes, layout: Layout, tag: str, conf: str, core: int | None) -> Started:
    path = layout.tmp / f"{tag}.conf"
    path.write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = [
        nginx,
        "-p",
        str(layout.tmp),
        "-e",
        str(layout.tmp / f"{tag}-early.log"),
        "-c",
        str(path),
    ]
    return procs.start(f"nginx-{tag}", argv, core, layout.tmp / f"{tag}.out")


def router_argv(layout: Layout, log_level: str) -> list[str]:
    return [
        "-m", "router",
        "--listen", f"{HOST}:{layout.ports['router']}",
        "--ring", str(layout.ring),
        "--secret-file", str(layout.secret),
        "--log-level", log_level,
        "--workers", "1",
    ]  # fmt: skip


def start_upstreams(procs: Processes, layout: Layout, load_core: int | None) -> Servers:
    up = start_nginx(procs, layout, "upstream", nginx_upstream_conf(layout), load_core)
    ws = procs.start(
        "ws-echo",
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--ws-echo-server",
            str(layout.ports["ws"]),
        ],
        load_core,
        layout.tmp / "ws-echo.out",
    )
    wait_listening(up, layout.ports["upstream"])
    wait_listening(ws, layout.ports["ws"])
    return Servers(up, ws)


def worker_pid(s: Started) -> int:
    """The nginx worker (the process doing the work) under a master."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        kids = children_of(s.proc.pid)
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise RuntimeError(f"no worker under {s.name}")


# --------------------------------------------------------------------------- HTTP load


_UNIT = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def _us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_h2load(out: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    m = re.search(r"finished in ([\d.]+(?:us|ms|s)), ([\d.]+) req/s", out)
    if not m:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    res["seconds"] = _us(m.group(1)) / 1e6
    res["req_per_s"] = float(m.group(2))
    m = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    )
    if m:
        keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
        res["requests"] = dict(zip(keys, map(int, m.groups()), strict=True))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        res["status"] = dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups()), strict=True))
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        res["h2load_time_for_request_us"] = dict(
            zip(("min", "max", "mean", "sd"), map(_us, m.groups()), strict=True)
        )
    return res


def percentile(sorted_vals: Sequence[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    idx = min(len(sorted_vals) - 1, max(0, round(q / 100.0 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[idx]


def latency_from_log(path: Path) -> dict[str, float]:
    """mean/p50/p90/p99/max in microseconds of the successful requests in an h2load log."""
    durations = []
    with path.open() as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "200":
                durations.append(float(parts[2]))
    durations.sort()
    if not durations:
        return {}
    return {
        "count": len(durations),
        "mean": round(statistics.fmean(durations), 1),
        "p50": percentile(durations, 50),
        "p90": percentile(durations, 90),
        "p99": percentile(durations, 99),
        "max": durations[-1],
    }


def h2load(url: str, n: int, c: int, core: int | None, log: Path | None, timeout: float) -> str:
    argv = [*taskset(core), "h2load", "--h1", "-n", str(n), "-c", str(c), "-t", "1"]
    if log is not None:
        argv += ["--log-file", str(log)]
    proc = subprocess.run([*argv, url], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"h2load failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def sized(rate: float, seconds: float, c: int) -> int:
    n = int(rate * seconds)
    n = max(20 * c, min(MAX_REQUESTS, n))
    return max(c, n - n % c)


def measure_http(
    url: str, c: int, args: argparse.Namespace, tmp: Path, watch: dict[str, int]
) -> dict[str, Any]:
    """Probe, warm up, then one measured run sized to `args.seconds` (bounded in count too)."""
    core = args.load_core
    probe = parse_h2load(h2load(url, max(20 * c, 300), c, core, None, 30))
    warm_n = sized(probe["req_per_s"], args.warmup, c)
    warm = parse_h2load(h2load(url, warm_n, c, core, None, args.warmup * 5 + 20))
    n = sized(warm["req_per_s"], args.seconds, c)
    log = tmp / "h2load.log"
    cpu0 = {k: cpu_ticks(pid) for k, pid in watch.items()}
    cores0 = core_times()
    out = h2load(url, n, c, core, log, args.seconds * 5 + 30)
    cores1 = core_times()
    cpu1 = {k: cpu_ticks(pid) for k, pid in watch.items()}
    res = parse_h2load(out)
    res["latency_us"] = latency_from_log(log)
    log.unlink()
    ok = res.get("requests", {}).get("succeeded", 0) or 1
    res["n"] = n
    user = {k: (cpu1[k][0] - cpu0[k][0]) / CLK_TCK for k in watch}
    system = {k: (cpu1[k][1] - cpu0[k][1]) / CLK_TCK for k in watch}
    res["cpu_us_per_req"] = {k: round((user[k] + system[k]) * 1e6 / ok, 2) for k in watch}
    res["cpu_user_us_per_req"] = {k: round(user[k] * 1e6 / ok, 2) for k in watch}
    res["cpu_sys_us_per_req"] = {k: round(system[k] * 1e6 / ok, 2) for k in watch}
    res["cpu_cores_used"] = {
        k: round((user[k] + system[k]) / max(res["seconds"], 1e-9), 3) for k in watch
    }
    res["core_busy_pct"] = core_busy(cores0, cores1)
    if args.server_core is not None:
        # Server-core time none of our processes account for: other people's load.
        ours = 100.0 * res["cpu_cores_used"].get("proxy", 0.0)
        res["foreign_server_core_pct"] = round(
            max(0.0, res["core_busy_pct"].get(f"cpu{args.server_core}", 0.0) - ours), 1
        )
    return res


# --------------------------------------------------------------------------- WebSocket


def ws_roundtrips(port: int, path: str, n: int, warm: int, deadline_s: float) -> dict[str, Any]:
    """Sequential echo round trips over one connection; microseconds."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Message,
        Ping,
        RejectConnection,
        Request,
    )

    sock = socket.create_connection((HOST, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ws = WSConnection(ConnectionType.CLIENT)

    def events() -> Iterator[object]:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("websocket closed by peer")
        ws.receive_data(data)
        yield from ws.events()

    try:
        sock.sendall(ws.send(Request(host=f"{HOST}:{port}", target=path)))
        accepted = False
        while not accepted:
            for ev in events():
                if isinstance(ev, RejectConnection):
                    raise RuntimeError(f"websocket upgrade refused: {ev.status_code}")
                accepted = accepted or isinstance(ev, AcceptConnection)
        samples: list[float] = []
        end = time.monotonic() + deadline_s
        for i in range(warm + n):
            t0 = time.perf_counter_ns()
            sock.sendall(ws.send(Message(data=WS_PAYLOAD)))
            got = False
            while not got:
                for ev in events():
                    if isinstance(ev, BytesMessage) and ev.message_finished:
                        got = True
                    elif isinstance(ev, Ping):
                        sock.sendall(ws.send(ev.response()))
                    elif isinstance(ev, CloseConnection):
                        raise RuntimeError("websocket closed by peer")
            if i >= warm:
                samples.append((time.perf_counter_ns() - t0) / 1000.0)
            if time.monotonic() > end:
                break
        with contextlib.suppress(Exception):
            sock.sendall(ws.send(CloseConnection(code=1000)))
    finally:
        sock.close()
    samples.sort()
    return {
        "messages": len(samples),
        "payload_bytes": len(WS_PAYLOAD),
        "p50_us": round(percentile(samples, 50), 1),
        "p99_us": round(percentile(samples, 99), 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "max_us": round(samples[-1], 1),
    }


def ws_echo_server(port: int) -> None:
    """Run as a child process: a trio-websocket echo server on 127.0.0.1:port."""
    import trio
    from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        while True:
            try:
                await ws.send_message(await ws.get_message())
            except ConnectionClosed:
                return

    async def main() -> None:
        await serve_websocket(handler, HOST, port, ssl_context=None)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)


# --------------------------------------------------------------------------- comparison


def fmt_us(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    return f"{v / 1000:.2f}ms" if v >= 1000 else f"{v:.0f}us"


def run_compare(args: argparse.Namespace, procs: Processes, layout: Layout) -> dict[str, Any]:
    server_core, load_core = args.server_core, args.load_core
    servers = start_upstreams(procs, layout, load_core)
    servers.nginx = start_nginx(procs, layout, "proxy", nginx_proxy_conf(layout), server_core)
    wait_listening(servers.nginx, layout.ports["nginx"])
    servers.router = procs.start(
        "router",
        [sys.executable, *router_argv(layout, args.router_log_level)],
        server_core,
        layout.tmp / "router.out",
    )
    wait_listening(servers.router, layout.ports["router"])
    pids = {
        "upstream": worker_pid(servers.upstream),
        "nginx": worker_pid(servers.nginx),
        "router": servers.router.proc.pid,
    }
    ports = {"direct": layout.ports["upstream"], "nginx": layout.ports["nginx"],
             "router": layout.ports["router"]}  # fmt: skip
    http: list[dict[str, Any]] = []
    for fname in FILES:
        for c in CONCURRENCY:
            for target in TARGETS:
                url = f"http://{HOST}:{ports[target]}{layout.http_path(fname)}"
                watch = {"upstream": pids["upstream"]}
                if target != "direct":
                    watch["proxy"] = pids[target]
                print(f"  http {fname:>4} c={c:<2} {target:<6} ...", end="", flush=True)
                res = measure_http(url, c, args, layout.tmp, watch)
                for _ in range(args.retry_noisy):
                    if res.get("foreign_server_core_pct", 0.0) <= NOISE_PCT:
                        break
                    print(" noisy, again ...", end="", flush=True)
                    again = measure_http(url, c, args, layout.tmp, watch)
                    if again["foreign_server_core_pct"] < res["foreign_server_core_pct"]:
                        res = again
                res.update(target=target, file=fname, file_bytes=FILES[fname], c=c)
                http.append(res)
                lat = res["latency_us"]
                print(f" {res['req_per_s']:>9.0f} req/s  p99 {fmt_us(lat.get('p99'))}")
    ws_ports = {"direct": layout.ports["ws"], "nginx": layout.ports["nginx"],
                "router": layout.ports["router"]}  # fmt: skip
    ws: list[dict[str, Any]] = []
    for target in TARGETS:
        print(f"  ws {target:<6} ...", end="", flush=True)
        res = ws_roundtrips(
            ws_ports[target], layout.ws_path, args.ws_messages, 200, args.seconds * 3
        )
        res["target"] = target
        ws.append(res)
        print(f" p50 {fmt_us(res['p50_us'])}  p99 {fmt_us(res['p99_us'])}")
    for s in (servers.router, servers.nginx):
        if s.proc.poll() is not None:
            raise RuntimeError(f"{s.name} died during the run:\n{tail(s.log)}")
    return {"http": http, "websocket": ws, "ratios": ratios(http, ws)}


def ratios(http: list[dict[str, Any]], ws: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["target"], r["file"], r["c"]): r for r in http}
    out: dict[str, Any] = {}
    for fname in FILES:
        for c in CONCURRENCY:
            n, r = by[("nginx", fname, c)], by[("router", fname, c)]
            thr = r["req_per_s"] / n["req_per_s"] if n["req_per_s"] else float("nan")
            p99 = r["latency_us"].get("p99", 0) / max(n["latency_us"].get("p99", 0), 1e-9)
            out[f"{fname}_c{c}"] = {"throughput": round(thr, 3), "p99": round(p99, 2)}
    wsby = {r["target"]: r for r in ws}
    out["ws"] = {
        "p50": round(wsby["router"]["p50_us"] / wsby["nginx"]["p50_us"], 2),
        "p99": round(wsby["router"]["p99_us"] / wsby["nginx"]["p99_us"], 2),
    }
    key = out["1k_c32"]
    out["target_1k_c32"] = {
        "throughput_at_least_0.2x": key["throughput"] >= 0.2,
        "p99_at_most_4x": key["p99"] <= 4.0,
    }
    return out


def print_tables(result: dict[str, Any]) -> None:
    print()
    print(f"Pinning: {result['meta']['pinning']}")
    print("srv%/load%: busy share of the server core / the load core during the measured run;")
    print(f"NOISY: over {NOISE_PCT:.0f}% of the server core went to processes not under test")
    hdr = (
        f"{'file':>5} {'c':>3} {'target':<7} {'req/s':>9} {'mean':>8} {'p50':>8} {'p99':>8} "
        f"{'max':>8} {'proxy cpu/req (usr+sys)':>24} {'upstr cpu/req':>13} "
        f"{'srv%':>5} {'load%':>5} {'fail':>5}"
    )
    meta = result["meta"]
    srv = f"cpu{meta['server_core'] if meta['server_core'] is not None else 0}"
    load = f"cpu{meta['load_core'] if meta['load_core'] is not None else 1}"
    print(hdr)
    print("-" * len(hdr))
    for r in result["http"]:
        lat = r["latency_us"]
        cpu = r["cpu_us_per_req"]
        busy = r["core_busy_pct"]
        req = r.get("requests", {})
        fail = req.get("failed", 0) + req.get("errored", 0) + req.get("timeout", 0)
        fail += sum(v for k, v in r.get("status", {}).items() if k != "2xx")
        proxy_cpu = "-"
        if "proxy" in cpu:
            u, sy = r["cpu_user_us_per_req"]["proxy"], r["cpu_sys_us_per_req"]["proxy"]
            proxy_cpu = f"{cpu['proxy']:.1f}us ({u:.0f}+{sy:.0f})"
        noisy = "  NOISY" if r.get("foreign_server_core_pct", 0.0) > NOISE_PCT else ""
        print(
            f"{r['file']:>5} {r['c']:>3} {r['target']:<7} {r['req_per_s']:>9.0f} "
            f"{fmt_us(lat.get('mean')):>8} {fmt_us(lat.get('p50')):>8} {fmt_us(lat.get('p99')):>8} "
            f"{fmt_us(lat.get('max')):>8} {proxy_cpu:>24} {cpu['upstream']:>11.1f}us "
            f"{busy.get(srv, 0):>5.0f} {busy.get(load, 0):>5.0f} {fail:>5}{noisy}"
        )
    print()
    print(f"WebSocket echo, {len(WS_PAYLOAD)}-byte messages, sequential round trips")
    print(f"{'target':<7} {'msgs':>6} {'p50':>8} {'p99':>8} {'mean':>8} {'max':>8}")
    for r in result["websocket"]:
        print(
            f"{r['target']:<7} {r['messages']:>6} {fmt_us(r['p50_us']):>8} "
            f"{fmt_us(r['p99_us']):>8} {fmt_us(r['mean_us']):>8} {fmt_us(r['max_us']):>8}"
        )
    print()
    print("router / nginx (throughput: higher is better; p99: lower is better)")
    for key, v in result["ratios"].items():
        if key.startswith(("1k", "100k")):
            print(f"  {key:<9} throughput {v['throughput']:.3f}x   p99 {v['p99']:.2f}x")
    ws = result["ratios"]["ws"]
    print(f"  {'ws':<9} p50 {ws['p50']:.2f}x   p99 {ws['p99']:.2f}x")
    t = result["ratios"]["target_1k_c32"]
    print(
        "  target (1k, c=32): throughput >= 0.2x nginx: "
        f"{'yes' if t['throughput_at_least_0.2x'] else 'NO'}; "
        f"p99 <= 4x nginx: {'yes' if t['p99_at_most_4x'] else 'NO'}"
    )


# --------------------------------------------------------------------------- profile

# (label, function names or None for any, path fragment): a sample counts toward a category
# when any frame on its stack matches, so nested calls are never double counted. Paths are
# "/" + the short path (`/h11/_connection.py`); the first entry is the idle wait.
CATEGORIES: list[tuple[str, frozenset[str] | None, str]] = [
    ("idle: epoll wait (trio get_events)", frozenset({"get_events"}), "_io_epoll.py"),
    ("h11 total", None, "/h11/"),
    ("h11 next_event (parse)", frozenset({"next_event"}), "/h11/_connection.py"),
    ("h11 send (serialize)", frozenset({"send", "send_with_data_passthrough"}),
     "/h11/_connection.py"),
    ("h11 event construction (Request/Response/Data)", None, "/h11/_events.py"),
    ("h11 header validation (normalize_and_validate)", frozenset({"normalize_and_validate"}),
     "/h11/_headers.py"),
    ("h11.Connection() per request", frozenset({"__init__"}), "/h11/_connection.py"),
    ("h11 start_next_cycle", frozenset({"start_next_cycle"}), "/h11/_connection.py"),
    ("trio SocketStream.send_all", frozenset({"send_all"}), "/trio/_highlevel_socket.py"),
    ("trio SocketStream.receive_some", frozenset({"receive_some"}), "/trio/_highlevel_socket.py"),
    ("trio timeouts (move_on_after/fail_after)", None, "/trio/_timeouts.py"),
    ("trio CancelScope enter/exit", frozenset({"__enter__", "__exit__", "_close"}),
     "/trio/_core/_run.py"),
    ("trio nursery (client watch task)", frozenset({"_watching_client"}), "/router/forward.py"),
    ("logging", None, "/logging/"),
    ("router/logs.py (access log)", None, "/router/logs.py"),
    ("metrics (prometheus_client)", None, "/prometheus_client/"),
    ("RouterApp._record (metrics+log)", frozenset({"_record"}), "/router/app.py"),
    ("routing.route (incl. ID verify)", frozenset({"route"}), "/router/routing.py"),
    ("session_id.verify (HMAC)", frozenset({"verify"}), "/router/session_id.py"),
    ("headers.py (rewrite, request id)", None, "/router/headers.py"),
    ("headscan.scan_head/find_head_end", None, "/router/headscan.py"),
    ("Exchange/ClientConnection __init__", frozenset({"__init__"}), "/router/server.py"),
    ("forward.build_request", frozenset({"build_request"}), "/router/forward.py"),
    ("upstream pool acquire/release", frozenset({"acquire", "release", "connect"}),
     "/router/upstream.py"),
    ("Node.host/.port (urlsplit per request)", frozenset({"host", "port"}), "/router/ring.py"),
    ("forward.exchange_head", frozenset({"exchange_head"}), "/router/forward.py"),
    ("forward.relay_response", frozenset({"relay_response"}), "/router/forward.py"),
]  # fmt: skip


def _matches(funcs: frozenset[str] | None, frag: str, f: str, p: str) -> bool:
    return frag in p and (funcs is None or f in funcs)


Sample = tuple[list[tuple[str, str]], float]  # ([(function, short path), ...] root first, weight)


def _short(path: str) -> str:
    """`h11/_connection.py`, `router/app.py`, `logging/__init__.py`: comparable across tools."""
    for marker in ("/site-packages/", str(REPO) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    m = re.search(r"/lib/python3[.\d]*/(.*)", path)
    return m.group(1) if m else path


def pyinstrument_samples(session: Any) -> list[Sample]:
    out = []
    for stack, t in session.frame_records:
        frames = []
        for info in stack:
            parts = info.split("\x01", 1)[0].split("\x00")
            frames.append((parts[0], _short(parts[1]) if len(parts) > 1 else ""))
        out.append((frames, t))
    return out


def pyspy_samples(raw: str) -> list[Sample]:
    """py-spy's `--format raw` (collapsed stacks: `f (file:line);f (file:line) count`)."""
    out = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for fr in stack.split(";"):
            m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", fr)
            if m:
                frames.append((m.group(1).rsplit(".", 1)[-1], _short(m.group(2))))
        out.append((frames, float(count)))
    return out


def summarize(samples: list[Sample], requests: int) -> dict[str, Any]:
    """Inclusive shares per category and self time per module/function, of busy time."""
    total = sum(t for _, t in samples) or 1e-9
    cats = dict.fromkeys((label for label, _, _ in CATEGORIES), 0.0)
    _, idle_funcs, idle_frag = CATEGORIES[0]
    self_time: dict[str, float] = {}
    module_self: dict[str, float] = {}
    idle = 0.0
    for frames, t in samples:
        paths = [(f, "/" + p) for f, p in frames]
        for label, funcs, frag in CATEGORIES:
            if any(_matches(funcs, frag, f, p) for f, p in paths):
                cats[label] += t
        if any(_matches(idle_funcs, idle_frag, f, p) for f, p in paths):
            idle += t
            continue
        f, p = frames[-1] if frames else ("?", "?")
        key = f"{f} ({p})"
        self_time[key] = self_time.get(key, 0.0) + t
        mod = _module(p)
        module_self[mod] = module_self.get(mod, 0.0) + t
    busy = max(total - idle, 1e-9)

    def ranked(d: dict[str, float], k: int) -> list[dict[str, Any]]:
        top = sorted(d.items(), key=lambda kv: -kv[1])[:k]
        return [{"name": n, "pct_busy": round(100 * v / busy, 1)} for n, v in top]

    return {
        "samples": len(samples),
        "requests": requests,
        "idle_pct": round(100 * idle / total, 1),
        "categories_pct_busy": {
            k: round(100 * v / busy, 1) for k, v in cats.items() if not k.startswith("idle")
        },
        "self_time_by_module": ranked(module_self, 20),
        "self_time_top_functions": ranked(self_time, 30),
    }


def _module(path: str) -> str:
    if "/" not in path:
        return path or "<builtin>"
    head = path.split("/")[0]
    if head in ("trio", "router"):
        return path.rsplit(".", 1)[0].replace("/", ".")
    return head


def _load_router(
    args: argparse.Namespace, layout: Layout, url: str, seconds: float
) -> dict[str, Any]:
    """Probe, then a c=32 run of about `seconds` (bounded in count and time)."""
    c = 32
    probe = parse_h2load(h2load(url, 2000, c, args.load_core, None, 60))
    n = sized(probe["req_per_s"], seconds, c)
    out = parse_h2load(h2load(url, n, c, args.load_core, None, seconds * 5 + 30))
    out["served"] = 2000 + out["requests"]["succeeded"]
    return out


def run_profile(
    args: argparse.Namespace, procs: Processes, layout: Layout, stamp: str
) -> dict[str, Any]:
    """pyinstrument (deterministic hook: exact stacks, inflates call-heavy code), then, if
    available, py-spy (external sampler: pauses the process per sample, unbiased shares)."""
    start_upstreams(procs, layout, args.load_core)
    url = f"http://{HOST}:{layout.ports['router']}{layout.http_path('1k')}"
    RESULTS.mkdir(exist_ok=True)
    result: dict[str, Any] = {"load": "h2load --h1 -c 32 -t 1, 1 KiB file"}

    session_path = layout.tmp / "router.pyisession"
    argv = [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(session_path),
            *router_argv(layout, args.router_log_level)]  # fmt: skip
    router = procs.start("router-pyinstrument", argv, args.server_core, layout.tmp / "router.out")
    wait_listening(router, layout.ports["router"])
    print(f"  pyinstrument: c=32 on the 1 KiB file for ~{args.profile_seconds}s")
    load = _load_router(args, layout, url, args.profile_seconds)
    code = procs.stop(router, signal.SIGINT, timeout=60)
    if not session_path.exists():
        raise RuntimeError(f"pyinstrument wrote no session (exit {code}):\n{tail(router.log)}")
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session = Session.load(session_path)
    pyi = summarize(pyinstrument_samples(session), load["served"])
    pyi["req_per_s_under_profiler"] = load["req_per_s"]
    text_path = RESULTS / f"profile-{stamp}.txt"
    show = r".*/(h11|router|logging|prometheus_client)/.*"
    options = {"filter_threshold": 0.003, "show_regex": show}
    tree = ConsoleRenderer(processor_options=options, time="percent_of_total").render(session)
    flat = ConsoleRenderer(flat=True, show_all=True, time="percent_of_total").render(session)
    text_path.write_text(tree + "\n\nFlat (self time, all frames):\n" + flat)
    shutil.copy(session_path, RESULTS / f"profile-{stamp}.pyisession")
    pyi["text_profile"] = str(text_path)
    pyi["session"] = str(RESULTS / f"profile-{stamp}.pyisession")
    result["pyinstrument"] = pyi

    if not args.py_spy:
        print("  py-spy not found (pip install py-spy, or --py-spy PATH): skipping the sampler")
        return result
    router = procs.start(
        "router",
        [sys.executable, *router_argv(layout, args.router_log_level)],
        args.server_core,
        layout.tmp / "r2.out",
    )
    wait_listening(router, layout.ports["router"])
    _load_router(args, layout, url, 1.0)  # warm-up
    raw_path = RESULTS / f"profile-{stamp}.pyspy.txt"
    print(f"  py-spy: c=32 on the 1 KiB file for ~{args.profile_seconds}s")
    spy = procs.start(
        "py-spy",
        [args.py_spy, "record", "--pid", str(router.proc.pid), "--format", "raw", "--idle",
         "--rate", "200", "--duration", str(int(args.profile_seconds)), "-o", str(raw_path)],
        args.load_core, layout.tmp / "py-spy.out",
    )  # fmt: skip
    load = _load_router(args, layout, url, args.profile_seconds)
    with contextlib.suppress(subprocess.TimeoutExpired):
        spy.proc.wait(args.profile_seconds + 30)
    procs.stop(spy, signal.SIGINT)
    procs.stop(router)
    if not raw_path.exists():
        print(f"  py-spy wrote nothing:\n{tail(spy.log)}")
        return result
    ps = summarize(pyspy_samples(raw_path.read_text()), load["served"])
    ps["req_per_s_under_profiler"] = load["req_per_s"]
    ps["raw"] = str(raw_path)
    result["py_spy"] = ps
    return result


def print_profile(s: dict[str, Any]) -> None:
    tools = [t for t in ("pyinstrument", "py_spy") if t in s]
    print()
    for t in tools:
        r = s[t]
        print(
            f"{t}: {r['samples']} samples, {r['req_per_s_under_profiler']:.0f} req/s under the "
            f"profiler, idle {r['idle_pct']}%"
        )
    print("\nInclusive share of busy (non-idle) time:")
    print(f"  {'category':<48}" + "".join(f"{t:>14}" for t in tools))
    first = s[tools[0]]["categories_pct_busy"]
    for k in sorted(first, key=lambda k: -s[tools[-1]]["categories_pct_busy"][k]):
        print(f"  {k:<48}" + "".join(f"{s[t]['categories_pct_busy'][k]:>13.1f}%" for t in tools))
    for t in tools:
        print(f"\n{t}: self time by module (% of busy)")
        for row in s[t]["self_time_by_module"][:10]:
            print(f"  {row['pct_busy']:>5.1f}%  {row['name']}")
        print(f"{t}: top functions by self time (% of busy)")
        for row in s[t]["self_time_top_functions"][:15]:
            print(f"  {row['pct_busy']:>5.1f}%  {row['name']}")
    print(f"\nText profile: {s['pyinstrument']['text_profile']}")


# --------------------------------------------------------------------------- main


def versions() -> dict[str, str]:
    def out(argv: list[str]) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr) else "?"

    return {
        "nginx": out(["nginx", "-v"]),
        "h2load": out(["h2load", "--version"]),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git_commit": out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "git_dirty_router": str(
            bool(out(["git", "-C", str(REPO), "status", "--porcelain", "router/"]).strip("?"))
        ),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=4.0, help="measured seconds per HTTP run")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per HTTP run")
    p.add_argument("--ws-messages", type=int, default=3000, help="WebSocket round trips per target")
    p.add_argument(
        "--retry-noisy", type=int, default=1, help="re-measure a NOISY HTTP run up to N times"
    )
    p.add_argument("--server-core", type=int, default=0, help="core for nginx proxy and router")
    p.add_argument("--load-core", type=int, default=1, help="core for upstreams and h2load")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--profile", action="store_true", help="profile the router instead")
    p.add_argument("--profile-seconds", type=float, default=10.0)
    p.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy binary (profile)")
    p.add_argument(
        "--router-log-level",
        default="warning",
        help="router --log-level (info: one JSON access line per request, to a file)",
    )
    p.add_argument("--keep-temp", action="store_true", help="keep configs and logs")
    p.add_argument("--ws-echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.no_pin or (os.cpu_count() or 1) < 2:
        args.server_core = args.load_core = None
    return args


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ws_echo_server:
        ws_echo_server(args.ws_echo_server)
        return 0
    missing = [t for t in ("nginx", "h2load", "taskset") if not shutil.which(t)]
    missing = [t for t in missing if not (t == "nginx" and Path("/usr/sbin/nginx").exists())]
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install nginx nghttp2-client util-linux)")
        return 2
    # Explicit, so Ctrl-C works even when started with SIGINT ignored (a `cmd &` in a script).
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if args.load_core is not None:
        os.sched_setaffinity(0, {args.load_core})  # the WebSocket client runs here
    pinning = (
        f"nginx proxy and router on core {args.server_core}; upstream nginx, ws echo, "
        f"h2load and the WebSocket client on core {args.load_core}"
        if args.server_core is not None
        else "no pinning"
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    procs = Processes()
    started = time.monotonic()
    try:
        layout = prepare(tmp)
        print(f"proxy bench: {pinning}; temp {tmp}")
        meta = {
            "timestamp": stamp,
            "pinning": pinning,
            "server_core": args.server_core,
            "load_core": args.load_core,
            "cpus": os.cpu_count(),
            "seconds_per_run": args.seconds,
            "warmup_seconds": args.warmup,
            "versions": versions(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        }
        if args.profile:
            result: dict[str, Any] = {"meta": meta, **run_profile(args, procs, layout, stamp)}
            print_profile(result)
            name = f"profile-{stamp}.json"
        else:
            result = {"meta": meta, **run_compare(args, procs, layout)}
            print_tables(result)
            name = f"proxy-{stamp}.json"
        result["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nJSON: {RESULTS / name}  ({result['meta']['elapsed_s']}s)")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        if args.keep_temp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
