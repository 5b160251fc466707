"""Start and stop real `preview-router` / `preview-node` processes for tests.

Every process started here is killed at the end of the test (the fixture's
finally), also when the test fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def wait_http(url: str, timeout: float = 20.0, expect: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == expect:
                    return
        except Exception as exc:  # retried until the deadline
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready: {last}")


class Proc:
    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self.logf = log.open("ab")
        full_env = {**os.environ, **(env or {})}
        self.popen = subprocess.Popen(
            args, stdout=self.logf, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        self.logf.close()
        return self.popen.returncode

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Processes:
    """Owns every process a test starts."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Proc] = []

    def start(self, args: list[str], name: str, env: dict[str, str] | None = None) -> Proc:
        p = Proc(args, self.tmp / f"{name}.log", env)
        self.procs.append(p)
        return p

    def router(
        self, ring: Path, secret: Path, *extra: str, port: int | None = None, name: str = "router"
    ) -> tuple[Proc, int]:
        port = port or free_port()
        args = [
            sys.executable,
            "-m",
            "router",
            "--listen",
            f"127.0.0.1:{port}",
            "--ring",
            str(ring),
            "--secret-file",
            str(secret),
            *extra,
        ]
        p = self.start(args, name)
        wait_http(f"http://127.0.0.1:{port}/healthz")
        return p, port

    def node(
        self,
        name: str,
        data_dir: Path,
        secret: Path,
        *extra: str,
        public_url: str = "http://127.0.0.1:8080",
        port: int | None = None,
    ) -> tuple[Proc, int]:
        port = port or free_port()
        args = [
            sys.executable,
            "-m",
            "previewnode",
            "--name",
            name,
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(data_dir),
            "--secret-file",
            str(secret),
            "--public-url",
            public_url,
            *extra,
        ]
        p = self.start(args, name)
        wait_http(f"http://127.0.0.1:{port}/healthz")
        return p, port

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@contextmanager
def processes(tmp: Path) -> Iterator[Processes]:
    ps = Processes(tmp)
    try:
        yield ps
    finally:
        ps.stop_all()


def free_port() -> int:
    """A port free on 127.0.0.1 right now (a process started next may take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
