"""The node's HTTP API as the benchmark uses it: one keep-alive connection, JSON in and
out, each call timed from send to the whole response; plus a raw-socket GET timed to its
first response byte (for wake-up) and the node's Prometheus samples."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import time
from typing import Any

from bench.node.fixture import PACKAGE_JSON

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 60.0


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


def hist_mean(m0: dict[str, float], m1: dict[str, float], name: str) -> float | None:
    """Mean in ms of a Prometheus histogram's observations between two `Api.metrics()`."""
    n = m1.get(f"{name}_count", 0) - m0.get(f"{name}_count", 0)
    s = m1.get(f"{name}_sum", 0) - m0.get(f"{name}_sum", 0)
    return round(1000 * s / n, 1) if n > 0 else None
