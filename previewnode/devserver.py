"""One Vite dev server process for one session: start, ready, stop.

`DevServer.run` spawns `runtime/launcher.mjs` (which starts Vite with a fixed
configuration), reports the port once Vite really serves, forwards the build errors the
launcher reports, and kills the whole process group when it is cancelled.

It must never hand the child anything of the node's environment (secrets, `PREVIEW_*`
settings): the child gets a minimal environment built here. It must never leave a
process behind: the launcher runs in its own process group, which is killed on every
way out of `run`. It does not use PR_SET_PDEATHSIG; the launcher instead exits when its
stdin, a pipe held by this process, reaches EOF.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

import trio

STDERR_TAIL_BYTES = 4096
MAX_EVENT_LINE_BYTES = 4 * 1024 * 1024
TERM_GRACE_SECONDS = 2.0
READ_CHUNK = 65536
PROBE_RETRY_SECONDS = 0.05

# Rolldown's native code allocates with mimalloc. Without eager arena commit and with
# immediate purging, an idle dev server gives memory back to the OS instead of keeping
# its peak: measured on the fixture app, idle PSS ~165 MiB with these, ~210-310 without,
# and start and first page were no slower.
MIMALLOC_ENV = {"MIMALLOC_ARENA_EAGER_COMMIT": "0", "MIMALLOC_PURGE_DELAY": "0"}


@dataclass(frozen=True)
class BuildError:
    file: str
    line: int
    column: int
    message: str


@dataclass(frozen=True)
class DevServerConfig:
    session_id: str
    workspace: Path
    node_modules: Path
    cache_dir: Path
    runtime_dir: Path
    base: str
    allowed_hosts: tuple[str, ...]
    client_port: int
    client_protocol: str
    node_binary: str = "node"


class DevServerFailed(Exception):
    """The dev server exited: before it served, or later with a failure status."""

    def __init__(self, message: str, stderr_tail: str) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n{self.stderr_tail}" if self.stderr_tail else text


def launcher_config(config: DevServerConfig) -> dict[str, Any]:
    """The JSON the launcher receives as argv[2]."""
    return {
        "root": str(config.workspace),
        "base": config.base,
        "port": 0,
        "allowedHosts": list(config.allowed_hosts),
        "clientPort": config.client_port,
        "clientProtocol": config.client_protocol,
        "nodeModules": str(config.node_modules),
        "cacheDir": str(config.cache_dir / "vite"),
    }


def child_environment(config: DevServerConfig) -> dict[str, str]:
    """A minimal environment: nothing of the node's own is passed on."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(config.cache_dir / "home"),
        "NO_COLOR": "1",
    }
    env.update(MIMALLOC_ENV)
    return env


def parse_errors(raw: object) -> list[BuildError] | None:
    """The launcher's `errors` list, or None when it is malformed."""
    if not isinstance(raw, list):
        return None
    errors: list[BuildError] = []
    for item in raw:
        if not isinstance(item, dict):
            return None
        file, line, column, message = (item.get(k) for k in ("file", "line", "column", "message"))
        if not (
            isinstance(file, str)
            and isinstance(line, int)
            and isinstance(column, int)
            and isinstance(message, str)
        ):
            return None
        errors.append(BuildError(file, line, column, message))
    return errors


class DevServer:
    def __init__(
        self, config: DevServerConfig, on_errors: Callable[[list[BuildError]], None]
    ) -> None:
        self.config = config
        self.on_errors = on_errors
        self.port: int | None = None
        self.pid: int | None = None
        self._stderr = bytearray()
        self._announced_port: int | None = None
        self._stderr_done = trio.Event()
        self._ready_or_eof = trio.Event()

    @property
    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Run Vite until it exits or this task is cancelled.

        `task_status.started(port)` once Vite answers HTTP on `port`. Raises
        DevServerFailed when the process exits before that, or later with a non-zero
        status; returns when it later exits with status 0.
        """
        config = self.config
        (config.cache_dir / "home").mkdir(parents=True, exist_ok=True)
        (config.cache_dir / "vite").mkdir(parents=True, exist_ok=True)
        argv = [
            config.node_binary,
            str(config.runtime_dir / "launcher.mjs"),
            json.dumps(launcher_config(config)),
        ]
        process = await trio.lowlevel.open_process(
            argv,
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
            env=child_environment(config),
            cwd=str(config.workspace),
            start_new_session=True,
        )
        self.pid = process.pid
        failure: DevServerFailed | None = None
        try:
            async with trio.open_nursery() as nursery:
                assert process.stdout is not None and process.stderr is not None
                nursery.start_soon(self._drain_stdout, process.stdout)
                nursery.start_soon(self._drain_stderr, process.stderr)
                failure = await self._serve(process, task_status)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._stop(process)
        if failure is not None:
            raise failure

    async def _serve(
        self, process: trio.Process, task_status: trio.TaskStatus[int]
    ) -> DevServerFailed | None:
        await self._ready_or_eof.wait()
        port = self._announced_port
        if port is not None and await self._probe_until_serving(process, port):
            self.port = port
            task_status.started(port)
        code = await process.wait()
        # Let the last words reach the tail before reporting them.
        with trio.move_on_after(1):
            await self._stderr_done.wait()
        if self.port is None:
            return DevServerFailed(
                f"dev server exited with status {code} before serving", self.stderr_tail
            )
        if code != 0:
            return DevServerFailed(f"dev server exited with status {code}", self.stderr_tail)
        return None

    async def _probe_until_serving(self, process: trio.Process, port: int) -> bool:
        """GET the base path until Vite answers with any status; False if it exits."""
        host = self.config.allowed_hosts[0] if self.config.allowed_hosts else "localhost"
        request = (
            f"GET {self.config.base} HTTP/1.1\r\nHost: {host}\r\n"
            "Accept: text/html\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        while process.poll() is None:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(PROBE_RETRY_SECONDS)
                continue
            async with stream:
                try:
                    await stream.send_all(request)
                    head = await stream.receive_some(16)
                except (OSError, trio.BrokenResourceError):
                    head = b""
            if head.startswith(b"HTTP/1.1 "):
                return True
            await trio.sleep(PROBE_RETRY_SECONDS)
        return False

    async def _drain_stdout(self, stream: trio.abc.ReceiveStream) -> None:
        buffer = bytearray()
        overlong = False
        try:
            while chunk := await stream.receive_some(READ_CHUNK):
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if overlong:
                        overlong = False
                    else:
                        self._handle_event_line(line)
                if len(buffer) > MAX_EVENT_LINE_BYTES:
                    buffer.clear()
                    overlong = True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._ready_or_eof.set()

    def _handle_event_line(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "ready" and isinstance(event.get("port"), int):
            self._announced_port = event["port"]
            self._ready_or_eof.set()
        elif kind == "errors":
            errors = parse_errors(event.get("errors"))
            if errors is not None:
                self.on_errors(errors)

    async def _drain_stderr(self, stream: trio.abc.ReceiveStream) -> None:
        try:
            while chunk := await stream.receive_some(READ_CHUNK):
                self._stderr += chunk
                if len(self._stderr) > STDERR_TAIL_BYTES:
                    del self._stderr[: len(self._stderr) - STDERR_TAIL_BYTES]
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._stderr_done.set()

    async def _stop(self, process: trio.Process) -> None:
        """SIGTERM the process group, SIGKILL it after a grace period, reap the leader."""
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            with trio.move_on_after(TERM_GRACE_SECONDS):
                await process.wait()
        # Also after a clean exit: nothing started in the group may outlive it.
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                await stream.aclose()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
