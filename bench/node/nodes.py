"""Nodes for the benchmark, one at a time, through the shared supervisor: each its own port,
data dir and process group. Stopping one: SIGTERM (it stops its Vites), SIGKILL after 20 s,
then any Vite still alive under its data dir, killed by the Vite's own process group."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import Proc, Processes, free_port, wait_http

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
STOP_GRACE = 20.0


@dataclass
class Node:
    name: str
    port: int
    data_dir: Path
    proc: Proc
    healthy_s: float = 0.0  # from start until /healthz answered

    @property
    def pid(self) -> int:
        return self.proc.pid


class Nodes:
    """Every node this benchmark starts; stopped on the way out, with their Vites."""

    def __init__(self, procs: Processes, tmp: Path, extra: tuple[str, ...] = ()) -> None:
        self.procs = procs
        self.tmp = tmp
        self.extra = extra  # flags every node gets (e.g. --sandbox off)
        self.secret = tmp / "secret"
        self.secret.write_text(secrets.token_urlsafe(48) + "\n")
        self.secret.chmod(0o600)
        self.started: list[Node] = []
        procs.before_stop.append(self.stop_all)  # with their Vites, however the run ends

    def start(self, tag: str, *flags: str, data_dir: Path | None = None) -> Node:
        port = free_port()
        data = data_dir or self.tmp / f"data-{tag}"
        data.mkdir(exist_ok=True)
        argv = [
            sys.executable, "-m", "previewnode",
            "--name", "node-0",
            "--listen", f"{HOST}:{port}",
            "--data-dir", str(data),
            "--secret-file", str(self.secret),
            "--public-url", f"http://{HOST}:{port}",
            "--log-level", "warning",
            *self.extra,
            *flags,
        ]  # fmt: skip
        node = Node(tag, port, data, self.procs.start(argv, f"node-{tag}", cwd=REPO))
        self.started.append(node)
        return node

    @contextlib.contextmanager
    def running(self, tag: str, *flags: str, data_dir: Path | None = None) -> Iterator[Node]:
        """A started node, once /healthz answers; stopped (with its Vites) when the block ends."""
        node = self.start(tag, *flags, data_dir=data_dir)
        try:
            node.healthy_s = self.wait_healthy(node)
            yield node
        finally:
            self.stop(node)

    def wait_healthy(self, node: Node, timeout: float = 30.0) -> float:
        """Seconds from now until /healthz answers 200."""
        url = f"http://{HOST}:{node.port}/healthz"
        return wait_http(url, timeout=timeout, proc=node.proc, interval=0.02)

    def stop(self, node: Node) -> None:
        self.procs.stop(node.proc, grace=STOP_GRACE)
        for pid in vite_pids(node.data_dir).values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if node in self.started:
            self.started.remove(node)

    def stop_all(self) -> None:
        for node in reversed(list(self.started)):
            self.stop(node)


def vite_pids(data_dir: Path) -> dict[str, int]:
    """session id -> launcher pid, for launchers working in this data dir.

    `pgrep -f launcher.mjs` finds every launcher on the machine (other test runs too);
    only those whose working directory is `{data_dir}/sessions/{id}/ws` are ours (the
    launcher's argv names nothing: its config comes by stdin).
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
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if not cwd.startswith(prefix):
            continue
        sid = cwd[len(prefix) :].split("/", 1)[0]
        # the first (lowest) pid: sandboxed, that is the group leader above bwrap and Vite
        found.setdefault(sid, pid)
    return found
