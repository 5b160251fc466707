"""One supervisor for the child processes that tests, `bench/` and `scripts/run_local.py` start.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only us and
whatever the child started can be killed with it. Stopping a child: SIGTERM (or the signal
asked for) to its leader, which stops its own children; SIGKILL to the whole group after the
grace period; and SIGKILL to anything still in the group once the leader is gone (nginx
workers, say). `processes()` stops every child it started when its block ends: normally, on
an error, on Ctrl-C, and on SIGTERM, which raises KeyboardInterrupt while the block runs in
the main thread (a SIGINT that a shell left ignored for a background job, too). While the
children are being stopped, SIGINT and SIGTERM are ignored, so a second Ctrl-C cannot
orphan one.

Never: leave a child running after the block, signal a group we did not start (a reaped
child's group is never signalled again: its number may belong to someone else by then), or
wait without a bound.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from signal import SIG_DFL, SIG_IGN, SIGINT, SIGKILL, SIGTERM
from typing import Any, TypeVar
from urllib.parse import urlsplit

HOST = "127.0.0.1"

T = TypeVar("T")


class Exited(RuntimeError):
    """A child ended while we were waiting for it to answer."""


def free_port(host: str = HOST) -> int:
    """A port free on `host` right now (a process started next may take it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Proc:
    """One child, the leader of its own process group, its output appended to `log`."""

    def __init__(
        self,
        args: Sequence[str],
        log: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.args = list(args)
        self.name = name or log.stem
        self.log = log
        self.logf = log.open("ab")
        self.killed = False  # SIGKILLed after the grace period
        self.popen = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.returncode is None and self._peek() is None

    def _peek(self) -> os.waitid_result | None:
        """The leader's exit, if it has exited, without reaping it: while it is an unreaped
        zombie its pid (and so its group's id) cannot be given to another process."""
        if self.popen.returncode is not None:
            return None
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped behind our back (popen.wait() by a caller)
            self.popen.poll()
            return None

    def signal(self, sig: int) -> None:
        """Signal the leader (not its group), if it still runs."""
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, grace: float = 10.0, sig: int = SIGTERM) -> int | None:
        """`sig` to the leader, SIGKILL to its group after `grace` s; then its leftovers."""
        self.signal(sig)
        return self.finish(grace)

    def finish(self, grace: float) -> int | None:
        """Wait up to `grace` s for the leader, then SIGKILL its group; SIGKILL what it left
        in its group; reap it and close the log. Idempotent."""
        if self.popen.returncode is None:  # not reaped: the group's id is still ours
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
            if self.alive():
                self.killed = True
            self._kill_group()
            self.popen.wait(5)
        if not self.logf.closed:
            self.logf.close()
        return self.popen.returncode

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, SIGKILL)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.output().splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if not self.alive():
            code = self.finish(0)
            raise Exited(f"{self.name} exited ({code}):\n{self.tail()}")


class Processes:
    """Owns every child started through it; logs go to `logs/{name}.log`."""

    def __init__(self, logs: Path, grace: float = 10.0, cwd: Path | None = None) -> None:
        self.logs = logs
        self.grace = grace
        self.cwd = cwd
        self.procs: list[Proc] = []
        self.before_stop: list[Callable[[], None]] = []

    def start(
        self,
        args: Sequence[str],
        name: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        p = Proc(args, self.logs / f"{name}.log", env, cwd or self.cwd, name)
        self.procs.append(p)
        return p

    def stop(self, p: Proc, sig: int = SIGTERM, grace: float | None = None) -> int | None:
        code = p.stop(self.grace if grace is None else grace, sig)
        with contextlib.suppress(ValueError):
            self.procs.remove(p)
        return code

    def stop_all(self) -> list[Proc]:
        """The `before_stop` callbacks (a caller's own orderly stop, newest first), then
        SIGTERM to every leader at once (newest first), one shared grace period, and SIGKILL
        for the groups still there. Returns the children that had to be killed."""
        for fn in reversed(self.before_stop):
            fn()
        self.before_stop.clear()
        procs = list(reversed(self.procs))
        for p in procs:
            p.signal(SIGTERM)
        deadline = time.monotonic() + self.grace
        for p in procs:
            p.finish(max(0.1, deadline - time.monotonic()))
        self.procs.clear()
        return [p for p in procs if p.killed]

    def router(
        self, ring: Path, secret: Path, *extra: str, port: int | None = None, name: str = "router"
    ) -> tuple[Proc, int]:
        """A `python -m router` on 127.0.0.1, once its /healthz answers."""
        files = ("--ring", str(ring), "--secret-file", str(secret))
        return self._service("router", name, port, *files, *extra)

    def node(
        self,
        name: str,
        data_dir: Path,
        secret: Path,
        *extra: str,
        public_url: str = "http://127.0.0.1:8080",
        port: int | None = None,
    ) -> tuple[Proc, int]:
        """A `python -m previewnode` on 127.0.0.1, once its /healthz answers."""
        flags = ("--name", name, "--data-dir", str(data_dir), "--secret-file", str(secret))
        return self._service("previewnode", name, port, *flags, "--public-url", public_url, *extra)

    def _service(self, module: str, name: str, port: int | None, *flags: str) -> tuple[Proc, int]:
        port = port or free_port()
        args = [sys.executable, "-m", module, "--listen", f"{HOST}:{port}", *flags]
        p = self.start(args, name)
        wait_http(f"http://{HOST}:{port}/healthz", proc=p)
        return p, port


@contextlib.contextmanager
def processes(logs: Path, grace: float = 10.0, cwd: Path | None = None) -> Iterator[Processes]:
    """A supervisor whose children are all stopped when the block ends, however it ends."""
    ps = Processes(logs, grace, cwd)
    with _interrupts_raise():
        try:
            yield ps
        finally:
            with _signals_ignored():
                ps.stop_all()


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _interrupts_raise() -> Iterator[None]:
    """SIGTERM (when nobody handles it) and an ignored SIGINT raise KeyboardInterrupt."""
    saved: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig, unhandled in ((SIGTERM, SIG_DFL), (SIGINT, SIG_IGN)):
            if signal.getsignal(sig) == unhandled:
                saved[sig] = signal.signal(sig, _raise_interrupt)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, SIG_IGN) for sig in (SIGINT, SIGTERM)}
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def wait_port(
    port: int, host: str = HOST, timeout: float = 15.0, proc: Proc | None = None
) -> float:
    """Seconds until a TCP connect to host:port succeeds; Exited if `proc` ends first."""
    return _wait(lambda: _connects(host, port), f"{host}:{port}", timeout, proc, 0.05)


def wait_http(
    url: str,
    timeout: float = 20.0,
    expect: int = 200,
    proc: Proc | None = None,
    interval: float = 0.05,
) -> float:
    """Seconds until GET url answers `expect` (plain http, no proxies, no redirects)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "") or "/"

    def answers() -> bool:
        c = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=1)
        try:
            c.request("GET", target)
            return c.getresponse().status == expect
        finally:
            c.close()

    return _wait(answers, url, timeout, proc, interval)


def _connects(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


def _wait(
    ready: Callable[[], bool], what: str, timeout: float, proc: Proc | None, interval: float
) -> float:
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        try:
            if ready():
                return time.perf_counter() - t0
        except (OSError, http.client.HTTPException) as exc:  # retried until the deadline
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout} s: {last}")


def launcher_pids(needle: str, warm: bool = True) -> list[int]:
    """PIDs of the Vite launchers whose workspace's host path contains `needle`: a
    session ID, or a data dir. The launcher's argv names nothing (its config comes by
    stdin; node comes first, V8 flags may follow it: devserver.V8_FLAGS), so it is found
    by where it runs: its working directory, or in bubblewrap (where that is /preview/app
    for every one) what its mount there holds, which names the directory's path now (a
    warm sandbox's, renamed into its session since). `warm=False`: only those serving a
    session, not those waiting in a node's warm pool (`{data-dir}/warm/`)."""
    out = subprocess.run(
        ["pgrep", "-f", "^[^ ]*node( --[^ ]+)* [^ ]*launcher.mjs"], capture_output=True, text=True
    ).stdout
    needles = {needle, _within_its_filesystem(needle)}
    pids = []
    for pid in out.split():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if cwd.removesuffix(" (deleted)") == INSIDE_WORKSPACE:  # gone from the host too
                cwd = _mount_root(int(pid), INSIDE_WORKSPACE)
        except OSError:
            continue
        if any(n in cwd for n in needles) and (warm or "/warm/warm-" not in cwd):
            pids.append(int(pid))
    return pids


INSIDE_WORKSPACE = "/preview/app"  # previewnode.sandbox.INSIDE_WORKSPACE


def _mount_root(pid: int, mount_point: str) -> str:
    """What the process's mount at `mount_point` shows: the directory's path within its
    filesystem (mountinfo's fourth field)."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == mount_point:
            return fields[3]
    return ""


def _within_its_filesystem(path: str) -> str:
    """`path` as mountinfo names it: relative to the mount its filesystem is at."""
    here = Path(path)
    if not here.is_absolute():
        return path
    top = here
    while not os.path.ismount(top) and top != top.parent:
        top = top.parent
    return "/" + here.relative_to(top).as_posix() if top != here else path


def poll_until(probe: Callable[[], T], seconds: float, step: float = 0.1) -> T:
    """`probe()`'s first truthy value within `seconds` (an AssertionError after)."""
    deadline = time.monotonic() + seconds
    while not (value := probe()):
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(step)
    return value
