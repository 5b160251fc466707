#!/usr/bin/env python3
"""Node benchmark: one real `preview-node`, real Vite dev servers, the fixture React app.

What it measures (`.venv/bin/python bench/node_bench.py`, ~3-5 min):

1. create -> 201 latency (POST /kontext/preview, no wait): a burst of back-to-back
   creates (each also starts a Vite in the background, so they compete for the CPU),
   then paced creates (each on a quiet node: the previous session deleted after a pause);
   DELETE latency of both;
2. create -> ready (POST ?wait=ready, sequential), with a breakdown: the node's own
   spawn->serving histogram, a bare `node` start and the launcher's imports, and the
   first page load afterwards (index.html plus every module the page imports);
3. wake -> first byte: a node with `--idle-seconds 1`; a loaded session, once `idle`,
   gets GET /preview/{id}/ timed to its first response byte (and to the full page);
4. PSS/RSS of one Vite (at ready, after its page, after a 5 s settle) and of 10 running
   Vites that each served their page (/proc/PID/smaps_rollup over the Vite's process
   group);
5. many registered sessions: 300 creates on a node with `--max-running 2`: node RSS
   growth per session, disk per session, create p50 of the first 50 vs the last 50, and
   the node's restart time with them on disk.

Every phase runs its own node (own data dir, own port), one after the other. All traffic
stays on 127.0.0.1; every loop is bounded in count and time; every process started here
(the nodes, and any Vite of theirs still alive) is stopped on exit, error or Ctrl-C.
Results are printed as tables and written as JSON to bench/results/ (gitignored).
Targets are compared, never enforced: nothing here gates CI.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
FIXTURE = REPO / "tests" / "fixtures" / "app"
RUNTIME = REPO / "previewnode" / "runtime"
HOST = "127.0.0.1"
PACKAGE_JSON = {
    "name": "bench-app",
    "private": True,
    "type": "module",
    "dependencies": {"react": "^19.0.0", "react-dom": "^19.0.0"},
}
TARGETS = {
    "create_201_p50_ms": 20.0,
    "create_ready_p50_ms": 1000.0,
    "wake_first_byte_p50_ms": 1000.0,
    "idle_vite_pss_mib": 150.0,
}
REQUEST_TIMEOUT = 60.0
PAGE_MAX_REQUESTS = 300  # per page load
PAGE_DEADLINE = 60.0
PAGE_CONCURRENCY = 6  # what a browser opens per origin


# --------------------------------------------------------------------------- processes


@dataclass
class Node:
    name: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


class Nodes:
    """Every node this script starts, each in its own process group; stopped on the way out."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.secret = tmp / "secret"
        self.secret.write_text(secrets.token_urlsafe(48) + "\n")
        self.secret.chmod(0o600)
        self.started: list[Node] = []

    def start(self, tag: str, *flags: str, data_dir: Path | None = None) -> Node:
        port = free_port()
        data = data_dir or self.tmp / f"data-{tag}"
        data.mkdir(exist_ok=True)
        log = self.tmp / f"node-{tag}.log"
        argv = [
            sys.executable,
            "-m",
            "previewnode",
            "--name",
            "node-0",
            "--listen",
            f"{HOST}:{port}",
            "--data-dir",
            str(data),
            "--secret-file",
            str(self.secret),
            "--public-url",
            f"http://{HOST}:{port}",
            "--log-level",
            "warning",
            *flags,
        ]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO,
            )
        node = Node(tag, port, data, proc, log)
        self.started.append(node)
        return node

    def wait_healthy(self, node: Node, timeout: float = 30.0) -> float:
        """Seconds from now until /healthz answers 200."""
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"node {node.name} exited: {tail(node.log)}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                c = http.client.HTTPConnection(HOST, node.port, timeout=1)
                try:
                    c.request("GET", "/healthz")
                    if c.getresponse().status == 200:
                        return time.perf_counter() - t0
                finally:
                    c.close()
            time.sleep(0.02)
        raise RuntimeError(f"node {node.name} not healthy in {timeout}s: {tail(node.log)}")

    def stop(self, node: Node, timeout: float = 20.0) -> None:
        """SIGTERM (the node stops its Vites), SIGKILL the group if it hangs; then any Vite
        still alive under this node's data dir (killed by its own process group id)."""
        if node.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGTERM)
            try:
                node.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.pid, signal.SIGKILL)
                node.proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(node.pid, signal.SIGKILL)
        for pid in vite_pids(node.data_dir).values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if node in self.started:
            self.started.remove(node)

    def stop_all(self) -> None:
        for node in reversed(list(self.started)):
            self.stop(node)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- /proc


def read_cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def vite_pids(data_dir: Path) -> dict[str, int]:
    """session id -> launcher pid, for launchers whose config names this data dir.

    `pgrep -f launcher.mjs` finds every launcher on the machine (other test runs too);
    only those whose JSON config holds `{data_dir}/sessions/{id}/ws` are ours.
    """
    try:
        out = subprocess.run(
            ["pgrep", "-f", "launcher.mjs"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    prefix = f"{data_dir.resolve()}/sessions/"
    found: dict[str, int] = {}
    for word in out.split():
        pid = int(word)
        cmd = read_cmdline(pid)
        i = cmd.find(prefix)
        if i < 0:
            continue
        sid = cmd[i + len(prefix) :].split("/", 1)[0]
        found[sid] = pid
    return found


def group_members(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid:  # state ppid pgrp ...
            pids.append(int(entry.name))
    return pids


def smaps_rollup(pid: int) -> dict[str, int]:
    """Rss, Pss, Pss_Anon, Pss_File, ... in KiB (empty if the process is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


def group_memory(pgid: int) -> dict[str, int]:
    """smaps_rollup summed over a process group (the launcher and anything it started)."""
    total: dict[str, int] = {"processes": 0}
    for pid in group_members(pgid):
        m = smaps_rollup(pid)
        if not m:
            continue
        total["processes"] += 1
        for k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Private_Dirty"):
            total[k] = total.get(k, 0) + m.get(k, 0)
    return total


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_ticks(pid: int, children: bool = False) -> int:
    """utime+stime (plus cutime+cstime: reaped children) of one process, in clock ticks."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    f = stat[stat.rfind(")") + 2 :].split()
    ticks = int(f[11]) + int(f[12])  # utime stime (fields 14, 15)
    return ticks + (int(f[13]) + int(f[14]) if children else 0)


class CpuMeter:
    """Between creation and `report()`: how busy the machine was, and how much of that was
    this benchmark (itself, the node, the Vites it reaped and those still running).

    `foreign_pct` is what the rest of the machine used (other tests, builds...): when it
    is high, every latency here is inflated, so it is printed next to the numbers.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.t0 = time.monotonic()
        self.sys0 = self._system()
        self.ours0 = self._ours()

    @staticmethod
    def _system() -> tuple[int, int]:
        vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = vals[3] + vals[4]
        return sum(vals) - idle, sum(vals)

    def _ours(self) -> dict[int, int]:
        ticks = {0: proc_ticks(self.node.pid, children=True)}
        for pgid in vite_pids(self.node.data_dir).values():
            for pid in group_members(pgid):
                ticks[pid] = proc_ticks(pid)
        return ticks

    def report(self) -> dict[str, float]:
        busy, total = self._system()
        ours1 = self._ours()
        bench = os.times()
        ours = sum(v - self.ours0.get(k, 0) for k, v in ours1.items() if k != 0)
        ours += ours1[0] - self.ours0[0]
        all_ticks = max(1, total - self.sys0[1])
        busy_pct = 100.0 * (busy - self.sys0[0]) / all_ticks
        ours_pct = 100.0 * ours / all_ticks
        return {
            "seconds": round(time.monotonic() - self.t0, 1),
            "machine_busy_pct": round(busy_pct, 1),
            "ours_pct": round(ours_pct, 1),
            "foreign_pct": round(max(0.0, busy_pct - ours_pct), 1),
            "bench_client_cpu_s": round(bench.user + bench.system, 1),
        }


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def disk_usage(path: Path) -> tuple[int, int]:
    """(allocated bytes, apparent bytes) under path, symlinks not followed."""
    alloc = apparent = 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                alloc += st.st_blocks * 512
                apparent += st.st_size
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        alloc += st.st_blocks * 512
        apparent += st.st_size
    return alloc, apparent


# --------------------------------------------------------------------------- HTTP


class Api:
    """One keep-alive connection to a node for the API; reconnects once on a broken one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, dict[str, Any] | None, float]:
        """(status, JSON body or None, seconds from send to the whole response read)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
                self.conn.connect()
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - t0
            if resp.getheader("connection", "").lower() == "close":
                self.close()
            try:
                doc = json.loads(raw) if raw else None
            except ValueError:
                doc = None
            return resp.status, doc, elapsed
        raise AssertionError("unreachable")

    def create(self, files: dict[str, str], wait: bool = False) -> tuple[str, str, float]:
        path = "/kontext/preview" + ("?wait=ready" if wait else "")
        status, doc, elapsed = self.request(
            "POST", path, {"files": files, "packageJson": PACKAGE_JSON}
        )
        if status != 201 or not doc:
            raise RuntimeError(f"create: {status} {doc}")
        return doc["sessionId"], doc["status"], elapsed

    def delete(self, sid: str) -> float:
        status, doc, elapsed = self.request("DELETE", f"/kontext/preview/{sid}")
        if status != 200:
            raise RuntimeError(f"delete {sid}: {status} {doc}")
        return elapsed

    def status(self, sid: str) -> str:
        status, doc, _ = self.request("GET", f"/kontext/preview/{sid}")
        if status != 200 or not doc:
            raise RuntimeError(f"get {sid}: {status} {doc}")
        return str(doc["status"])

    def wait_status(self, sid: str, want: set[str], timeout: float) -> tuple[str, float]:
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        st = self.status(sid)
        while st not in want and time.monotonic() < deadline:
            time.sleep(0.05)
            st = self.status(sid)
        return st, time.perf_counter() - t0

    def load(self) -> str:
        """The node's X-Preview-Node-Load header (running=R/M; sessions=S/N)."""
        c = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            c.request("GET", "/healthz")
            resp = c.getresponse()
            resp.read()
            return resp.getheader("x-preview-node-load", "")
        finally:
            c.close()

    def metrics(self) -> dict[str, float]:
        """The node's Prometheus samples without labels (histogram _sum/_count, counters)."""
        c = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
        finally:
            c.close()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or "{" in line:
                continue
            parts = line.split()
            if len(parts) == 2:
                with contextlib.suppress(ValueError):
                    out[parts[0]] = float(parts[1])
        return out


def first_byte(port: int, path: str, timeout: float = 60.0) -> tuple[int, float, float, int]:
    """(status, seconds to the first response byte, seconds to the whole response, bytes)."""
    req = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/html\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        s.sendall(req)
        chunk = s.recv(65536)
        t_first = time.perf_counter() - t0
        buf = bytearray(chunk)
        deadline = time.monotonic() + timeout
        while chunk and time.monotonic() < deadline:
            chunk = s.recv(65536)
            buf += chunk
        t_all = time.perf_counter() - t0
    m = re.match(rb"HTTP/1\.1 (\d{3})", bytes(buf[:16]))
    return (int(m.group(1)) if m else 0), t_first, t_all, len(buf)


# Import specifiers in what Vite serves: `from "/x"`, `import "/x"`, `import("/x")`, and
# the prebundled deps' relative `./chunk-*.js`; in HTML, `src=` and `href=`.
JS_IMPORT = re.compile(rb"""(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"'\s]+)["']""")
MODULE_EXT = re.compile(r"\.(?:m?js|jsx|tsx?|css)(?:\?|$)")
HTML_REF = re.compile(rb"""\b(?:src|href)\s*=\s*["']([^"'\s]+)["']""")


class PageLoader:
    """Loads a preview like a browser would on first visit: index.html, then every module
    it imports, transitively, over up to PAGE_CONCURRENCY keep-alive connections."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def _timed_get(self, path: str) -> tuple[int, bytes, str, float]:
        t0 = time.perf_counter()
        status, body, ctype = self._get(path)
        return status, body, ctype, time.perf_counter() - t0

    def _get(self, path: str) -> tuple[int, bytes, str]:
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
                self.local.conn = conn
            try:
                conn.request("GET", path, headers={"Accept": "*/*"})
                resp = conn.getresponse()
                body = resp.read()
                return resp.status, body, resp.getheader("content-type", "")
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def load(self, sid: str) -> dict[str, Any]:
        base = f"/preview/{sid}/"
        t0 = time.perf_counter()
        status, html, _ = self._get(base)
        t_html = time.perf_counter() - t0
        seen = {base}
        statuses: dict[str, int] = {}
        slowest: dict[str, float] = {"index.html": round(t_html * 1000, 1)}
        nbytes = len(html)
        level = self._refs(base, html, HTML_REF, base, seen)
        requests = 1
        deadline = time.monotonic() + PAGE_DEADLINE
        with ThreadPoolExecutor(PAGE_CONCURRENCY) as pool:
            while level and requests < PAGE_MAX_REQUESTS and time.monotonic() < deadline:
                level = level[: PAGE_MAX_REQUESTS - requests]
                results = list(pool.map(self._timed_get, level))
                requests += len(level)
                nxt: list[str] = []
                for url, (st, body, ctype, dt) in zip(level, results, strict=True):
                    kind = request_kind(url)
                    slowest[kind] = max(slowest.get(kind, 0.0), round(dt * 1000, 1))
                    statuses[str(st)] = statuses.get(str(st), 0) + 1
                    nbytes += len(body)
                    if st == 200 and ("javascript" in ctype or url.endswith((".js", ".jsx"))):
                        nxt += self._refs(url, body, JS_IMPORT, base, seen)
                level = nxt
        self.close()
        return {
            "html_status": status,
            "html_s": t_html,
            "total_s": time.perf_counter() - t0,
            "requests": requests,
            "bytes": nbytes,
            "statuses": statuses,
            "slowest_ms": slowest,
        }

    @staticmethod
    def _refs(
        url: str, body: bytes, pattern: re.Pattern[bytes], base: str, seen: set[str]
    ) -> list[str]:
        out = []
        for m in pattern.finditer(body):
            ref = m.group(1).decode("utf-8", "replace")
            if not ref.startswith(("/", "./", "../")) or ref.startswith("//"):
                continue
            if ref.startswith(".") and not MODULE_EXT.search(ref):
                continue  # e.g. `from './MyComponent'` inside a comment of react-dom
            target = urljoin(url, ref)
            path = urlsplit(target).path
            full = path + (f"?{urlsplit(target).query}" if urlsplit(target).query else "")
            if path.startswith(base) and full not in seen:
                seen.add(full)
                out.append(full)
        return out

    def close(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
            self.local.conn = None


def request_kind(url: str) -> str:
    """What a page request is, for the "slowest request of each kind" breakdown."""
    path = urlsplit(url).path
    if "/deps/" in path:
        return "prebundled deps"
    if "/@vite/" in path or "/vite/dist/client/" in path or "@react-refresh" in path:
        return "vite client"
    if path.endswith(".css"):
        return "css (tailwind)"
    return "app modules"


def fixture_files() -> dict[str, str]:
    return {
        p.relative_to(FIXTURE).as_posix(): p.read_text()
        for p in sorted(FIXTURE.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- stats


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


def summary_ms(seconds: Iterable[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in seconds]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50": round(pct(ms, 50), 2),
        "p90": round(pct(ms, 90), 2),
        "p99": round(pct(ms, 99), 2),
        "mean": round(statistics.fmean(ms), 2),
        "min": round(min(ms), 2),
        "max": round(max(ms), 2),
    }


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


def bounded(n: int, seconds: float) -> Iterable[int]:
    """range(n), stopping early once `seconds` have passed."""
    deadline = time.monotonic() + seconds
    for i in range(n):
        if time.monotonic() > deadline:
            print(f"    (time bound hit after {i} of {n})", flush=True)
            return
        yield i


def progress(msg: str) -> None:
    print(f"  {msg}", flush=True)


# --------------------------------------------------------------------------- phases


def phase_create(nodes: Nodes, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """1. create -> 201: burst (Vites boot meanwhile), then paced on a quiet node."""
    node = nodes.start("create", "--max-running", "12", "--max-sessions", "1000")
    nodes.wait_healthy(node)
    api = Api(node.port)
    out: dict[str, Any] = {}
    try:
        for _ in range(3):  # warm the node's code paths (imports, first fsyncs)
            api.delete(api.create(files)[0])

        progress(f"burst: {args.creates} creates back to back, each starting a Vite")
        cpu = CpuMeter(node)
        times, sids = [], []
        t_start = time.perf_counter()
        for _ in bounded(args.creates, 60):
            sid, _, dt = api.create(files)
            times.append(dt)
            sids.append(sid)
        wall = time.perf_counter() - t_start
        busy = cpu.report()
        running = len(vite_pids(node.data_dir))
        load = api.load()
        dels = [api.delete(sid) for sid in sids]
        out["burst"] = {
            "create_ms": summary_ms(times),
            "creates_per_s": round(len(times) / wall, 1),
            "cpu": busy,
            "vites_alive_after": running,
            "node_load_after": load,
            "delete_ms": summary_ms(dels),
        }

        progress(f"paced: {args.paced} creates, {args.pause}s pause, delete before the next")
        cpu = CpuMeter(node)
        times, dels = [], []
        for _ in bounded(args.paced, 90):
            sid, _, dt = api.create(files)
            times.append(dt)
            time.sleep(args.pause)
            dels.append(api.delete(sid))
            time.sleep(0.1)
        out["paced"] = {
            "create_ms": summary_ms(times),
            "pause_s": args.pause,
            "cpu": cpu.report(),
            "delete_ms": summary_ms(dels),
        }
    finally:
        api.close()
        nodes.stop(node)
    return out


def phase_ready(nodes: Nodes, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """2. create -> ready, and the page load after it; 4. memory of 1 and of 10 Vites."""
    node = nodes.start("ready", "--max-running", "12", "--max-sessions", "1000")
    nodes.wait_healthy(node)
    api = Api(node.port)
    loader = PageLoader(node.port)
    out: dict[str, Any] = {}
    try:
        progress(f"create -> ready: {args.ready} sequential POST ?wait=ready + first page load")
        m0 = api.metrics()
        cpu = CpuMeter(node)
        ready, html, page = [], [], []
        created_ready: list[str] = []
        reqs: list[int] = []
        statuses: dict[str, int] = {}
        slowest: dict[str, list[float]] = {}
        for _ in bounded(args.ready, 120):
            sid, st, dt = api.create(files, wait=True)
            ready.append(dt)
            created_ready.append(st)
            load = loader.load(sid)
            html.append(load["html_s"])
            page.append(load["total_s"])
            reqs.append(load["requests"])
            for k, v in load["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
            for k, v in load["slowest_ms"].items():
                slowest.setdefault(k, []).append(v)
            api.delete(sid)
            time.sleep(0.2)
        m1 = api.metrics()
        spawn = _hist_mean(m0, m1, "preview_node_vite_start_seconds")
        c2r = _hist_mean(m0, m1, "preview_node_create_to_ready_seconds")
        out["create_ready"] = {
            "ready_201_ms": summary_ms(ready),
            "statuses_in_201": {s: created_ready.count(s) for s in set(created_ready)},
            "node_vite_spawn_to_serving_mean_ms": spawn,
            "node_create_to_ready_mean_ms": c2r,
            "first_page_html_ms": summary_ms(html),
            "first_page_full_ms": summary_ms(page),
            "first_page_requests": round(statistics.fmean(reqs), 1) if reqs else 0,
            "first_page_statuses": statuses,
            "first_page_slowest_request_ms_mean": {
                k: round(statistics.fmean(v), 1) for k, v in sorted(slowest.items())
            },
            "cpu": cpu.report(),
        }
        out["create_ready"]["node_startup"] = node_startup_costs()

        progress("memory: one Vite at ready, after its page, after 5 s")
        sid, _, _ = api.create(files, wait=True)
        pid = vite_pids(node.data_dir)[sid]
        at_ready = group_memory(pid)
        load = loader.load(sid)
        after_load = group_memory(pid)
        time.sleep(5)
        settled = group_memory(pid)
        one = {
            "at_ready": kib_to_mib(at_ready),
            "after_page": kib_to_mib(after_load),
            "settled_5s": kib_to_mib(settled),
            "page_requests": load["requests"],
        }
        one["bare_runtime"] = bare_runtime_memory()
        api.delete(sid)
        time.sleep(0.5)

        progress(f"memory: {args.vites} running Vites, each after its page")
        sids = []
        for _ in bounded(args.vites, 90):
            sid, _, _ = api.create(files, wait=True)
            loader.load(sid)
            sids.append(sid)
        time.sleep(5)
        pids = vite_pids(node.data_dir)
        per = [group_memory(pids[s]) for s in sids if s in pids]
        node_mem = smaps_rollup(node.pid)
        many = {
            "vites": len(per),
            "per_vite_pss_mib": _spread([m.get("Pss", 0) for m in per]),
            "per_vite_rss_mib": _spread([m.get("Rss", 0) for m in per]),
            "per_vite_pss_anon_mib": _spread([m.get("Pss_Anon", 0) for m in per]),
            "total_pss_mib": mib(sum(m.get("Pss", 0) for m in per)),
            "total_rss_mib": mib(sum(m.get("Rss", 0) for m in per)),
            "node_process_pss_mib": mib(node_mem.get("Pss", 0)),
            "node_process_rss_mib": mib(node_mem.get("Rss", 0)),
        }
        for sid in sids:
            api.delete(sid)
        out["memory"] = {"one_vite": one, "ten_vites": many}
    finally:
        loader.close()
        api.close()
        nodes.stop(node)
    return out


def _hist_mean(m0: dict[str, float], m1: dict[str, float], name: str) -> float | None:
    n = m1.get(f"{name}_count", 0) - m0.get(f"{name}_count", 0)
    s = m1.get(f"{name}_sum", 0) - m0.get(f"{name}_sum", 0)
    return round(1000 * s / n, 1) if n > 0 else None


def _spread(kibs: list[int]) -> dict[str, float]:
    if not kibs:
        return {}
    return {
        "mean": mib(statistics.fmean(kibs)),
        "min": mib(min(kibs)),
        "max": mib(max(kibs)),
    }


def kib_to_mib(m: dict[str, int]) -> dict[str, float]:
    return {k: (v if k == "processes" else mib(v)) for k, v in m.items()}


def node_startup_costs(runs: int = 3) -> dict[str, Any]:
    """Where a Vite start goes before Vite itself: `node -e 0`, then importing what the
    launcher imports (vite, plugin-react, @tailwindcss/vite) from the runtime dir."""

    def timed(argv: list[str]) -> float | None:
        best = []
        for _ in range(runs):
            t0 = time.perf_counter()
            try:
                subprocess.run(argv, cwd=RUNTIME, capture_output=True, timeout=30, check=True)
            except (OSError, subprocess.SubprocessError):
                return None
            best.append(time.perf_counter() - t0)
        return round(1000 * statistics.median(best), 1)

    imports = (
        "await import('vite'); await import('@vitejs/plugin-react'); "
        "await import('@tailwindcss/vite');"
    )
    return {
        "node_bare_ms": timed(["node", "-e", "0"]),
        "node_launcher_imports_ms": timed(["node", "--input-type=module", "-e", imports]),
    }


def bare_runtime_memory() -> dict[str, float]:
    """PSS of a node process that has imported what the launcher imports, doing nothing."""
    code = (
        "await import('vite'); await import('@vitejs/plugin-react'); "
        "await import('@tailwindcss/vite'); process.stdout.write('ok\\n'); "
        "setTimeout(() => {}, 20000);"
    )
    proc = subprocess.Popen(
        ["node", "--input-type=module", "-e", code],
        cwd=RUNTIME,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()  # blocks at most until the 20 s timer ends it
        time.sleep(1)
        m = smaps_rollup(proc.pid) if ready else {}
        return {k: mib(m.get(k, 0)) for k in ("Rss", "Pss", "Pss_Anon", "Pss_File")}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def phase_wake(nodes: Nodes, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """3. wake -> first byte on a node that stops Vites after 1 s idle."""
    node = nodes.start(
        "wake", "--max-running", "12", "--max-sessions", "1000", "--idle-seconds", "1"
    )
    nodes.wait_healthy(node)
    api = Api(node.port)
    loader = PageLoader(node.port)
    try:
        progress(f"wake: {args.wakes} sessions created and loaded, then left to go idle")
        sids = []
        for _ in bounded(args.wakes, 60):
            sid, _, _ = api.create(files, wait=True)
            loader.load(sid)
            sids.append(sid)
        idle_waits = [api.wait_status(sid, {"idle"}, 20)[1] for sid in sids]
        m0 = api.metrics()
        cpu = CpuMeter(node)
        fb, full, page, bad, not_idle = [], [], [], [], 0
        for sid in sids:
            st, _ = api.wait_status(sid, {"idle"}, 20)
            if st != "idle":
                not_idle += 1
                continue
            vites = len(vite_pids(node.data_dir))
            if vites:  # the previous sample's Vite still shutting down
                time.sleep(1)
            code, t_first, t_all, _ = first_byte(node.port, f"/preview/{sid}/")
            if code != 200:
                bad.append(code)
            fb.append(t_first)
            full.append(t_all)
            page.append(loader.load(sid)["total_s"])
            api.wait_status(sid, {"idle"}, 20)  # back to quiet before the next sample
        m1 = api.metrics()
        for sid in sids:
            api.delete(sid)
        return {
            "first_byte_ms": summary_ms(fb),
            "html_complete_ms": summary_ms(full),
            "page_after_wake_ms": summary_ms(page),
            "node_vite_spawn_to_serving_mean_ms": _hist_mean(
                m0, m1, "preview_node_vite_start_seconds"
            ),
            "wakes_counted_by_node": m1.get("preview_node_wakes_total", 0)
            - m0.get("preview_node_wakes_total", 0),
            "seconds_until_idle_mean": round(statistics.fmean(idle_waits), 2)
            if idle_waits
            else None,
            "non_200": bad,
            "never_idle": not_idle,
            "cpu": cpu.report(),
        }
    finally:
        loader.close()
        api.close()
        nodes.stop(node)


def phase_many(nodes: Nodes, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """5. many registered sessions on a node with --max-running 2."""
    node = nodes.start("many", "--max-running", "2", "--max-sessions", "1000")
    nodes.wait_healthy(node)
    api = Api(node.port)
    out: dict[str, Any] = {}
    try:
        rss_empty = vm_rss_kib(node.pid)
        n = args.sessions
        warm = min(20, n // 4)
        progress(f"many: {n} creates with --max-running 2 (LRU stops the older Vites)")
        times, sids = [], []
        rss_warm = rss_empty
        cpu = CpuMeter(node)
        t_start = time.perf_counter()
        for i in bounded(n, 120):
            if i == warm:
                rss_warm = vm_rss_kib(node.pid)
            sid, _, dt = api.create(files)
            times.append(dt)
            sids.append(sid)
        wall = time.perf_counter() - t_start
        cpu_report = cpu.report()
        # let the last Vites come up and the node settle
        for sid in sids[-2:]:
            api.wait_status(sid, {"ready", "idle", "failed"}, 30)
        time.sleep(1)
        rss_full = vm_rss_kib(node.pid)
        per_session = (rss_full - rss_warm) / max(1, len(sids) - warm)
        k = min(50, len(times) // 2)
        _, listing, t_list = api.request("GET", "/kontext/preview")
        t_get = [api.request("GET", f"/kontext/preview/{s}")[2] for s in sids[:50]]
        statuses: dict[str, int] = {}
        for s in (listing or {}).get("sessions", []):
            statuses[s["status"]] = statuses.get(s["status"], 0) + 1
        ws = [disk_usage(node.data_dir / "sessions" / s) for s in sids]
        vc = [disk_usage(node.data_dir / "vite-cache" / s) for s in sids]
        vc_used = [
            a
            for (a, _), s in zip(vc, sids, strict=True)
            if (node.data_dir / "vite-cache" / s / "vite" / "deps").is_dir()
        ]
        out = {
            "sessions": len(sids),
            "create_ms": summary_ms(times),
            "create_first_k_ms": summary_ms(times[:k]),
            "create_last_k_ms": summary_ms(times[-k:]),
            "k": k,
            "creates_per_s": round(len(times) / wall, 1),
            "cpu": cpu_report,
            "node_rss_mib": {
                "empty": mib(rss_empty),
                f"after_{warm}": mib(rss_warm),
                "after_all": mib(rss_full),
            },
            "node_rss_kib_per_session": round(per_session, 1),
            "statuses": statuses,
            "vites_alive": len(vite_pids(node.data_dir)),
            "node_load": api.load(),
            "disk_session_dir_kib": round(statistics.fmean(a for a, _ in ws) / 1024, 1),
            "disk_session_dir_apparent_kib": round(statistics.fmean(b for _, b in ws) / 1024, 1),
            "disk_vite_cache_kib_mean_all": round(statistics.fmean(a for a, _ in vc) / 1024, 1),
            "disk_vite_cache_kib_mean_when_used": (
                round(statistics.fmean(vc_used) / 1024, 1) if vc_used else 0
            ),
            "vite_cache_dirs_used": len(vc_used),
            "list_all_ms": round(t_list * 1000, 2),
            "get_one_ms": summary_ms(t_get),
        }
        progress("many: restart the node on the same data dir")
        nodes.stop(node)
        node2 = nodes.start(
            "many", "--max-running", "2", "--max-sessions", "1000", data_dir=node.data_dir
        )
        out["restart_to_healthy_s"] = round(nodes.wait_healthy(node2), 2)
        api2 = Api(node2.port)
        _, listing, _ = api2.request("GET", "/kontext/preview")
        out["sessions_after_restart"] = len((listing or {}).get("sessions", []))
        out["node_rss_after_restart_mib"] = mib(vm_rss_kib(node2.pid))
        api2.close()
        nodes.stop(node2)
    finally:
        api.close()
        nodes.stop_all()
    return out


# --------------------------------------------------------------------------- report


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return "ok" if value <= target else "MISSED"


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}" if abs(v) >= 10 else f"{v:.2f}{unit}"
    return f"{v}{unit}"


def headline(r: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """(metric, value, target, verdict) rows for the issue's targets."""
    rows: list[tuple[str, Any, str, str]] = []
    c = r.get("create", {})
    for key, label in (
        ("paced", "create -> 201 p50, paced (quiet)"),
        ("burst", "create -> 201 p50, burst (Vites booting)"),
    ):
        v = c.get(key, {}).get("create_ms", {}).get("p50")
        rows.append((label, fmt(v, " ms"), "<= 20 ms", verdict(v, TARGETS["create_201_p50_ms"])))
    v = r.get("ready", {}).get("create_ready", {}).get("ready_201_ms", {}).get("p50")
    rows.append(
        (
            "create -> ready p50",
            fmt(v, " ms"),
            "<= 1000 ms",
            verdict(v, TARGETS["create_ready_p50_ms"]),
        )
    )
    v = r.get("wake", {}).get("first_byte_ms", {}).get("p50")
    rows.append(
        (
            "wake -> first byte p50",
            fmt(v, " ms"),
            "<= 1000 ms",
            verdict(v, TARGETS["wake_first_byte_p50_ms"]),
        )
    )
    mem = r.get("ready", {}).get("memory", {})
    v = mem.get("one_vite", {}).get("settled_5s", {}).get("Pss")
    rows.append(
        (
            "PSS, one idle Vite (after page, 5 s)",
            fmt(v, " MiB"),
            "<= 150 MB",
            verdict(v, TARGETS["idle_vite_pss_mib"]),
        )
    )
    v = mem.get("ten_vites", {}).get("per_vite_pss_mib", {}).get("mean")
    rows.append(
        (
            "PSS per Vite, 10 running (mean)",
            fmt(v, " MiB"),
            "<= 150 MB",
            verdict(v, TARGETS["idle_vite_pss_mib"]),
        )
    )
    return rows


def table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> None:
    cols = [header, *[tuple(str(x) for x in r) for r in rows]]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for r in cols[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def lat_row(label: str, s: dict[str, Any]) -> tuple[Any, ...]:
    if not s or not s.get("n"):
        return (label, 0, "-", "-", "-", "-")
    return (label, s["n"], fmt(s["p50"]), fmt(s["p90"]), fmt(s["p99"]), fmt(s["max"]))


def print_report(r: dict[str, Any]) -> None:
    print("\n== Targets (from the issue) ==")
    table(headline(r), ("metric", "value", "target", "verdict"))

    print("\n== Latencies (ms) ==")
    rows = []
    c = r.get("create", {})
    if c:
        rows += [
            lat_row("create->201 burst", c["burst"]["create_ms"]),
            lat_row("create->201 paced", c["paced"]["create_ms"]),
            lat_row("DELETE after burst", c["burst"]["delete_ms"]),
            lat_row("DELETE paced (Vite up)", c["paced"]["delete_ms"]),
        ]
    cr = r.get("ready", {}).get("create_ready", {})
    if cr:
        rows += [
            lat_row("create->ready (?wait=ready)", cr["ready_201_ms"]),
            lat_row("first page: index.html", cr["first_page_html_ms"]),
            lat_row(
                f"first page: all ~{cr['first_page_requests']:.0f} req", cr["first_page_full_ms"]
            ),
        ]
    w = r.get("wake", {})
    if w:
        rows += [
            lat_row("wake -> first byte", w["first_byte_ms"]),
            lat_row("wake -> index.html complete", w["html_complete_ms"]),
            lat_row("page load after wake", w["page_after_wake_ms"]),
        ]
    m = r.get("many", {})
    if m:
        rows += [
            lat_row(f"create, first {m['k']} of {m['sessions']}", m["create_first_k_ms"]),
            lat_row(f"create, last {m['k']} of {m['sessions']}", m["create_last_k_ms"]),
            lat_row(f"GET session ({m['sessions']} held)", m["get_one_ms"]),
        ]
    table(rows, ("what", "n", "p50", "p90", "p99", "max"))

    print("\n== Where the time goes ==")
    rows = []
    if c:
        rows.append(
            (
                "burst: creates/s; Vites alive after; node's load header",
                f"{c['burst']['creates_per_s']}/s; {c['burst']['vites_alive_after']}; "
                f"{c['burst']['node_load_after']}",
            )
        )
    if cr:
        rows += [
            (
                "node: Vite spawn -> serving (mean)",
                fmt(cr["node_vite_spawn_to_serving_mean_ms"], " ms"),
            ),
            ("node: create -> ready (mean)", fmt(cr["node_create_to_ready_mean_ms"], " ms")),
            ("`node -e 0` (median of 3)", fmt(cr["node_startup"]["node_bare_ms"], " ms")),
            (
                "node + launcher imports (vite, react, tailwind)",
                fmt(cr["node_startup"]["node_launcher_imports_ms"], " ms"),
            ),
            *[
                (f"first page: slowest {k} request (mean)", fmt(v, " ms"))
                for k, v in cr["first_page_slowest_request_ms_mean"].items()
            ],
            ("201 statuses with ?wait=ready", cr["statuses_in_201"]),
            ("first page response statuses", cr["first_page_statuses"]),
        ]
    if w:
        rows += [
            (
                "wake: node Vite spawn -> serving (mean)",
                fmt(w["node_vite_spawn_to_serving_mean_ms"], " ms"),
            ),
            ("wake: s until `idle` after load (mean)", fmt(w["seconds_until_idle_mean"], " s")),
            ("wake: non-200 / never idle", f"{w['non_200']} / {w['never_idle']}"),
        ]
    table(rows, ("what", "value"))

    cpu_rows = []
    for label, d in (
        ("create burst", c.get("burst", {}).get("cpu")),
        ("create paced", c.get("paced", {}).get("cpu")),
        ("create -> ready + page", cr.get("cpu") if cr else None),
        ("wake", w.get("cpu") if w else None),
        ("many sessions", m.get("cpu") if m else None),
    ):
        if d:
            cpu_rows.append(
                (label, d["seconds"], d["machine_busy_pct"], d["ours_pct"], d["foreign_pct"])
            )
    if cpu_rows:
        print(f"\n== CPU while measuring (% of all {os.cpu_count()} cores) ==")
        table(cpu_rows, ("phase", "s", "machine busy %", "this bench %", "foreign %"))
        print("foreign: what other processes on the machine used; it inflates every number")

    mem = r.get("ready", {}).get("memory", {})
    if mem:
        print("\n== Memory (MiB; Vite = its whole process group) ==")
        one = mem["one_vite"]
        rows = []
        for label, key in (
            ("one Vite at ready", "at_ready"),
            ("one Vite after its page", "after_page"),
            ("one Vite after page + 5 s", "settled_5s"),
        ):
            d = one[key]
            rows.append(
                (
                    label,
                    fmt(d.get("Pss")),
                    fmt(d.get("Pss_Anon")),
                    fmt(d.get("Pss_File")),
                    fmt(d.get("Rss")),
                    d.get("processes"),
                )
            )
        b = one["bare_runtime"]
        rows.append(
            (
                "bare node + launcher imports",
                fmt(b.get("Pss")),
                fmt(b.get("Pss_Anon")),
                fmt(b.get("Pss_File")),
                fmt(b.get("Rss")),
                1,
            )
        )
        t = mem["ten_vites"]
        p, a, rs = t["per_vite_pss_mib"], t["per_vite_pss_anon_mib"], t["per_vite_rss_mib"]
        if p:
            rows.append(
                (
                    f"per Vite of {t['vites']} (mean; min-max PSS {p['min']}-{p['max']})",
                    fmt(p["mean"]),
                    fmt(a["mean"]),
                    "",
                    fmt(rs["mean"]),
                    "",
                )
            )
        rows.append(
            (
                f"all {t['vites']} Vites",
                fmt(t["total_pss_mib"]),
                "",
                "",
                fmt(t["total_rss_mib"]),
                "",
            )
        )
        rows.append(
            (
                "the node process (10 Vites)",
                fmt(t["node_process_pss_mib"]),
                "",
                "",
                fmt(t["node_process_rss_mib"]),
                1,
            )
        )
        table(rows, ("what", "PSS", "PSS anon", "PSS file", "RSS", "procs"))

    if m:
        print(f"\n== {m['sessions']} registered sessions, --max-running 2 ==")
        rss = m["node_rss_mib"]
        rows = [
            ("node RSS empty / warm / all (MiB)", " / ".join(str(v) for v in rss.values())),
            ("node RSS growth per session", f"{m['node_rss_kib_per_session']} KiB"),
            (
                "disk per session dir (allocated / apparent)",
                f"{m['disk_session_dir_kib']} / {m['disk_session_dir_apparent_kib']} KiB",
            ),
            (
                "vite-cache per session (mean all / when used; used)",
                f"{m['disk_vite_cache_kib_mean_all']} / "
                f"{m['disk_vite_cache_kib_mean_when_used']} KiB;"
                f" {m['vite_cache_dirs_used']}",
            ),
            ("creates/s", m["creates_per_s"]),
            ("statuses after", m["statuses"]),
            ("Vites alive after; node's load header", f"{m['vites_alive']}; {m['node_load']}"),
            ("GET /kontext/preview (list all)", f"{m['list_all_ms']} ms"),
            ("restart -> /healthz with them on disk", f"{m.get('restart_to_healthy_s')} s"),
            (
                "sessions after restart; node RSS",
                f"{m.get('sessions_after_restart')}; {m.get('node_rss_after_restart_mib')} MiB",
            ),
        ]
        table(rows, ("what", "value"))


# --------------------------------------------------------------------------- main


def versions() -> dict[str, str]:
    def out(argv: list[str]) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        text = (p.stdout + p.stderr).strip()
        return text.splitlines()[0] if text else "?"

    try:
        vite = json.loads((RUNTIME / "node_modules" / "vite" / "package.json").read_text())[
            "version"
        ]
    except (OSError, ValueError, KeyError):
        vite = "?"
    return {
        "node": out(["node", "--version"]),
        "vite": vite,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git_commit": out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "git_dirty_previewnode": str(
            bool(out(["git", "-C", str(REPO), "status", "--porcelain", "previewnode/"]).strip("?"))
        ),
    }


def fs_type(path: Path) -> str:
    best, kind = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mnt, typ, *_ = line.split()
            if str(path).startswith(mnt) and len(mnt) > len(best):
                best, kind = mnt, typ
    return kind


PHASES = ("create", "ready", "wake", "many")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--creates", type=int, default=100, help="burst creates (phase 1)")
    p.add_argument("--paced", type=int, default=30, help="paced creates (phase 1)")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between paced creates")
    p.add_argument("--ready", type=int, default=15, help="create -> ready samples (phase 2)")
    p.add_argument("--vites", type=int, default=10, help="running Vites measured (phase 4)")
    p.add_argument("--wakes", type=int, default=8, help="wake samples (phase 3)")
    p.add_argument("--sessions", type=int, default=300, help="registered sessions (phase 5)")
    p.add_argument(
        "--only", choices=PHASES, action="append", help="run only these phases (repeatable)"
    )
    p.add_argument("--keep-temp", action="store_true", help="keep data dirs and node logs")
    return p.parse_args(argv)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (RUNTIME / "node_modules" / "vite").exists() or not shutil.which("node"):
        print("needs `node` and the Vite runtime (npm ci --ignore-scripts in previewnode/runtime)")
        return 2
    # Also SIGINT: a shell starts background jobs with it ignored, and Python keeps that.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix="node-bench-"))
    nodes = Nodes(tmp)
    files = fixture_files()
    phases = args.only or list(PHASES)
    started = time.monotonic()
    try:
        print(f"node bench: {os.cpu_count()} cpus, load {loadavg()}, temp {tmp}", flush=True)
        result: dict[str, Any] = {
            "meta": {
                "timestamp": stamp,
                "cpus": os.cpu_count(),
                "loadavg_start": loadavg(),
                "data_dir_fs": fs_type(tmp),
                "fixture_files": sorted(files),
                "package_json": PACKAGE_JSON,
                "versions": versions(),
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "args": vars(args),
            },
            "targets": TARGETS,
        }
        steps: dict[str, Callable[[Nodes, argparse.Namespace, dict[str, str]], dict[str, Any]]] = {
            "create": phase_create,
            "ready": phase_ready,
            "wake": phase_wake,
            "many": phase_many,
        }
        for name in PHASES:
            if name in phases:
                t0 = time.monotonic()
                print(f"[{name}]", flush=True)
                result[name] = steps[name](nodes, args, files)
                result[name]["elapsed_s"] = round(time.monotonic() - t0, 1)
                result[name]["loadavg_after"] = loadavg()
        result["headline"] = [
            {"metric": a, "value": b, "target": c, "verdict": d} for a, b, c, d in headline(result)
        ]
        result["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
        result["meta"]["loadavg_end"] = loadavg()
        print_report(result)
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"node-{stamp}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nJSON: {path}  ({result['meta']['elapsed_s']}s)")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping nodes", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        nodes.stop_all()
        if args.keep_temp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
