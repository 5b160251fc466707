"""One Vite dev server process for one session: start, ready, stop.

`DevServer.run` spawns `runtime/launcher.mjs` (which starts Vite: inside a sandbox with
the app's own configuration, else with a fixed one), reports where it listens once Vite
really serves (a unix socket in bubblewrap, a loopback port otherwise: under Landlock the
one this module chose, which only that dev server may bind), forwards the build errors
the launcher reports, and kills the whole process group when it is cancelled (bubblewrap
dies with it: `--die-with-parent`, its own PID namespace; `confine.py` kills every
descendant it has left).

It must never hand the child anything of the node's environment (secrets, `PREVIEW_*`
settings): the child gets a minimal environment built here. It must never leave a
process behind: the launcher runs in its own process group, which is killed on every
way out of `run`. It does not use PR_SET_PDEATHSIG; the launcher instead exits when its
stdin, a pipe held by this process, reaches EOF.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

import trio

from previewnode.limits import shell_prelude
from previewnode.runtime_errors import RuntimeReport
from previewnode.sandbox import (
    INSIDE_CACHE,
    INSIDE_WORKSPACE,
    Mounts,
    Sandbox,
    bwrap_argv,
    confine_argv,
    landlock_policy,
    prelude_then_exec,
    supervised,
)
from proxycore.upstream import Address

STDERR_TAIL_BYTES = 4096
VITE_TEMP = ".vite-temp"  # where Vite bundles a TS config, in the nearest node_modules
MAX_EVENT_LINE_BYTES = 4 * 1024 * 1024
TERM_GRACE_SECONDS = 2.0
READ_CHUNK = 65536
PROBE_RETRY_SECONDS = 0.05
NOTICE_SECONDS = 1.0  # how long a change notice may wait on a full stdin pipe
SOCKET_NAME = "dev.sock"
LISTEN_BACKLOG = 512

# Rolldown's native code allocates with mimalloc. Without eager arena commit and with
# immediate purging, an idle dev server gives memory back to the OS instead of keeping
# its peak: measured on the fixture app, idle PSS ~165 MiB with these, ~210-310 without,
# and start and first page were no slower.
MIMALLOC_ENV = {"MIMALLOC_ARENA_EAGER_COMMIT": "0", "MIMALLOC_PURGE_DELAY": "0"}

# V8 grows its young generation to 2 x 16 MiB semi-spaces while Vite transforms a page and
# does not shrink it while the server is idle. Capped at 2 MiB (with the launcher's idle
# GC), measured on the fixture app with 10 running Vites, each after its page: PSS per Vite
# 73-76 MiB (anon 69-73) against 99-111 (anon 96-108). The price: importing the runtime
# takes ~50 ms more CPU with any --max-semi-space-size (=16 costs the same as =2), and
# create -> ready and first page were within this machine's noise. On the node's argv, not
# NODE_OPTIONS: nothing the app spawns inherits it.
V8_FLAGS = ("--max-semi-space-size=2",)


@dataclass(frozen=True)
class BuildError:
    file: str
    line: int
    column: int
    message: str

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


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
    sandbox: Sandbox | None = None  # None: unsandboxed, the fixed config
    # bubblewrap: where the node binds the dev server's listener (it gets the descriptor;
    # the directory is the node's alone: previewnode.sandbox)
    socket_dir: Path | None = None
    cgroup_procs: tuple[Path, ...] = ()  # the session's groups, joined before it starts
    ulimits: tuple[tuple[str, str], ...] = ()  # `ulimit` options for its shell parent

    @property
    def socket_path(self) -> Path | None:
        """The listener's host path (where the node connects)."""
        return self.socket_dir / SOCKET_NAME if self.socket_dir is not None else None

    @property
    def bound(self) -> bool:
        """In bubblewrap: its own directories are at `INSIDE_*` for the dev server."""
        return self.sandbox is not None and self.sandbox.mechanism == "bwrap"

    @property
    def root_inside(self) -> Path:
        """The workspace as the dev server sees it."""
        return INSIDE_WORKSPACE if self.bound else self.workspace

    @property
    def cache_inside(self) -> Path:
        return INSIDE_CACHE if self.bound else self.cache_dir


class DevServerFailed(Exception):
    """The dev server exited: before it served, or later with a failure status."""

    def __init__(self, message: str, stderr_tail: str) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n{self.stderr_tail}" if self.stderr_tail else text


def landlocked(config: DevServerConfig) -> bool:
    return config.sandbox is not None and config.sandbox.mechanism == "landlock"


def launcher_config(
    config: DevServerConfig, port: int = 0, listen_fd: int | None = None
) -> dict[str, Any]:
    """The JSON the launcher reads as the first line of its stdin (never argv). `port`:
    where Vite listens (0: the launcher picks one; Landlock: the one its rules allow);
    `listen_fd`: the unix socket it bridges to Vite (bubblewrap: `bind_listener`)."""
    return {
        "root": str(config.root_inside),
        "base": config.base,
        "port": port,
        "allowedHosts": list(config.allowed_hosts),
        "clientPort": config.client_port,
        "clientProtocol": config.client_protocol,
        "nodeModules": str(config.node_modules),
        "cacheDir": str(config.cache_inside / "vite"),
        "ownConfig": config.sandbox is not None,
        "listenFd": listen_fd,
        # The dependency set's `.vite-temp` is shared (bubblewrap mounts a private tmpfs
        # there; Landlock can't): Vite bundles a TS config beside it instead.
        "bundleConfigBeside": landlocked(config),
    }


def command(config: DevServerConfig, port: int = 0, warm: bool = False) -> list[str]:
    """The dev server's argv: the launcher, wrapped in the sandbox when there is one
    (`port`: the one loopback port a Landlock-confined dev server may use; `warm`: it
    imports the runtime's Vite and plugins before it reads its config)."""
    node = shutil.which(config.node_binary) or config.node_binary
    launcher = [node, *V8_FLAGS, str(config.runtime_dir / "launcher.mjs")]  # config by stdin
    if warm:
        launcher.append("--warm")
    prelude = shell_prelude(config.cgroup_procs, config.ulimits)
    if config.sandbox is None:
        return supervised(launcher, prelude) if prelude else launcher
    mounts = Mounts(
        workspace=config.workspace,
        cache_dir=config.cache_dir,
        read_only=(
            config.node_modules.resolve(),
            config.runtime_dir.resolve(),
            (config.runtime_dir / "node_modules").resolve(),  # the launcher's own imports
            Path(node).resolve().parent,
        ),
        scratch=tuple(d for d in (config.node_modules.resolve() / VITE_TEMP,) if d.is_dir()),
    )
    if config.sandbox.mechanism == "landlock":
        policy = landlock_policy(mounts, port)
        return prelude_then_exec(confine_argv(config.sandbox.binary, policy, launcher), prelude)
    return supervised(bwrap_argv(config.sandbox.binary, mounts, launcher), prelude)


def child_environment(config: DevServerConfig) -> dict[str, str]:
    """A minimal environment: nothing of the node's own is passed on."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(config.cache_inside / "home"),
        "NO_COLOR": "1",
    }
    if landlocked(config):  # no private /tmp: its temp dir is in its cache dir
        env["TMPDIR"] = str(config.cache_dir / "tmp")
    env.update(MIMALLOC_ENV)
    return env


def make_dirs(config: DevServerConfig) -> None:
    """The directories a dev server expects in its cache dir."""
    (config.cache_dir / "home").mkdir(parents=True, exist_ok=True)
    (config.cache_dir / "vite").mkdir(parents=True, exist_ok=True)
    if landlocked(config):
        (config.cache_dir / "tmp").mkdir(parents=True, exist_ok=True)


def bind_listener(config: DevServerConfig) -> int | None:
    """bubblewrap: a listening unix socket at `config.socket_path`, as an inheritable
    descriptor numbered 10 or above (the shell parent uses 3), for the dev server to
    accept on; None otherwise. The node made the socket, in a directory of its own, so
    the path it connects to is one no dev server can replace."""
    if config.socket_dir is None or config.socket_path is None:
        return None
    config.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.socket_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(config.socket_path))
        listener.listen(LISTEN_BACKLOG)
        fd = fcntl.fcntl(listener.fileno(), fcntl.F_DUPFD, 10)
    os.set_inheritable(fd, True)
    return fd


async def spawn(
    config: DevServerConfig, port: int = 0, warm: bool = False, listen_fd: int | None = None
) -> trio.Process:
    """Start the launcher (sandboxed as `config` says) in its own process group, with
    `listen_fd` passed on; it waits for its configuration on stdin."""
    return await trio.lowlevel.open_process(
        command(config, port, warm),
        stdin=PIPE,
        stdout=PIPE,
        stderr=PIPE,
        env=child_environment(config),
        cwd=str(config.workspace),
        start_new_session=True,
        pass_fds=() if listen_fd is None else (listen_fd,),
    )


async def launch(
    config: DevServerConfig, port: int = 0, warm: bool = False
) -> tuple[trio.Process, int | None]:
    """`spawn` with the listener `bind_listener` made passed on: the launcher and the
    descriptor's number (what its config names). The node's own copy is closed once the
    launcher holds it."""
    listen_fd = bind_listener(config)
    try:
        return await spawn(config, port, warm, listen_fd), listen_fd
    finally:
        if listen_fd is not None:
            os.close(listen_fd)


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now. Only the dev server it is given to may bind it
    (Landlock); a host process taking it first fails that start (Vite's strictPort)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


HMR_KINDS = ("update", "full-reload", "applied")
MAX_HMR_PATHS = 100


def parse_hmr(event: dict[str, Any]) -> tuple[str, list[str]] | None:
    """An `hmr` line's (kind, paths); None when malformed. The line comes from inside the
    sandbox, so it is bounded and typed here, never trusted."""
    kind, paths = event.get("type"), event.get("paths")
    if kind not in HMR_KINDS or not isinstance(paths, list):
        return None
    if not all(isinstance(p, str) and len(p) <= 1024 for p in paths):
        return None
    return str(kind), paths[:MAX_HMR_PATHS]


RUNTIME_KINDS = frozenset({"error", "unhandledrejection", "console.error", "console.warn"})


def parse_runtime_error(event: dict[str, Any]) -> RuntimeReport | None:
    """A `runtime-error` line as a report; None when malformed. From inside the sandbox
    (the tenant's page wrote it): typed and cut here."""
    kind, message, file = event.get("kind"), event.get("message"), event.get("file")
    line, column, stack = event.get("line"), event.get("column"), event.get("stack", "")
    if kind not in RUNTIME_KINDS or not isinstance(message, str) or not isinstance(stack, str):
        return None
    if file is not None and not (isinstance(file, str) and 0 < len(file) <= 1024):
        return None
    if not (isinstance(line, int) and isinstance(column, int) and line >= 0 and column >= 0):
        return None
    return RuntimeReport(str(kind), message[:2000], file, line, column, stack[:4000])


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
        self,
        config: DevServerConfig,
        on_errors: Callable[[list[BuildError]], None],
        on_hmr: Callable[[str, list[str]], None] | None = None,
        on_runtime: Callable[[RuntimeReport], None] | None = None,
        warm: trio.Process | None = None,
        listen_fd: int | None = None,
    ) -> None:
        self.config = config
        # A launcher already started in this config's sandbox (previewnode.warm), waiting
        # for its configuration, with the listener it was passed: run() hands it that
        # instead of starting one.
        self.warm = warm
        self.listen_fd = listen_fd
        self.on_errors = on_errors
        self.on_hmr = on_hmr  # (kind, workspace paths) of each update Vite sent browsers
        self.on_runtime = on_runtime  # what a browser showing the preview reported
        self.address: Address | None = None
        self.pid: int | None = None
        self.port = 0  # Landlock: the one loopback port this dev server may use
        self._stderr = bytearray()
        self._announced: Address | None = None
        self._stderr_done = trio.Event()
        self._ready_or_eof = trio.Event()
        self._stdin: trio.abc.SendStream | None = None
        self._stdin_lock = trio.Lock()

    @property
    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    async def run(
        self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run Vite until it exits or this task is cancelled.

        `task_status.started(address)` once Vite answers HTTP there. Raises
        DevServerFailed when the process exits before that, or later with a non-zero
        status; returns when it later exits with status 0.
        """
        config = self.config
        make_dirs(config)
        if self.warm is not None:
            process = self.warm
        else:
            if landlocked(config):
                self.port = free_loopback_port()
            process, self.listen_fd = await launch(config, self.port)
        self.pid = process.pid
        self._stdin = process.stdin
        assert process.stdin is not None
        with contextlib.suppress(trio.BrokenResourceError):  # then it exits: reported below
            await process.stdin.send_all(
                json.dumps(launcher_config(config, self.port, self.listen_fd)).encode() + b"\n"
            )
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

    async def files_changed(self, changed: list[str], deleted: list[str]) -> None:
        """Tell the launcher which workspace paths an update wrote and deleted.

        File watchers drop events under load (an atomic replace seen late, or not at
        all); the launcher uses this notice to replay, through Vite's own watcher
        handlers, any change its watcher has not reported. Best effort: a dev server
        that is gone or stuck costs the notice, never the update."""
        stdin = self._stdin
        if stdin is None or not (changed or deleted):
            return
        line = json.dumps({"changed": changed, "deleted": deleted}).encode() + b"\n"
        with trio.move_on_after(NOTICE_SECONDS):
            async with self._stdin_lock:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stdin.send_all(line)

    async def _serve(
        self, process: trio.Process, task_status: trio.TaskStatus[Address]
    ) -> DevServerFailed | None:
        await self._ready_or_eof.wait()
        address = self._announced
        if address is not None and await self._probe_until_serving(process, address):
            self.address = address
            task_status.started(address)
        code = await process.wait()
        # Let the last words reach the tail before reporting them.
        with trio.move_on_after(1):
            await self._stderr_done.wait()
        if self.address is None:
            return DevServerFailed(
                f"dev server exited with status {code} before serving", self.stderr_tail
            )
        if code != 0:
            return DevServerFailed(f"dev server exited with status {code}", self.stderr_tail)
        return None

    async def _probe_until_serving(self, process: trio.Process, address: Address) -> bool:
        """GET the base path until Vite answers with any status; False if it exits."""
        host = self.config.allowed_hosts[0] if self.config.allowed_hosts else "localhost"
        request = (
            f"GET {self.config.base} HTTP/1.1\r\nHost: {host}\r\n"
            "Accept: text/html\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        while process.poll() is None:
            try:
                if isinstance(address, str):
                    stream = await trio.open_unix_socket(address)
                else:
                    stream = await trio.open_tcp_stream(*address)
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
            if self.port and event["port"] != self.port:
                return  # Landlock: only the port we gave it
            self._announced = ("127.0.0.1", event["port"])
            self._ready_or_eof.set()
        elif kind == "ready" and self.listen_fd is not None and event.get("fd") == self.listen_fd:
            self._announced = str(self.config.socket_path)  # the node's own socket
            self._ready_or_eof.set()
        elif kind == "errors":
            errors = parse_errors(event.get("errors"))
            if errors is not None:
                self.on_errors(errors)
        elif kind == "runtime-error" and self.on_runtime is not None:
            report = parse_runtime_error(event)
            if report is not None:
                self.on_runtime(report)
        elif kind == "hmr" and self.on_hmr is not None:
            parsed = parse_hmr(event)
            if parsed is not None:
                self.on_hmr(*parsed)

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
        await stop(process)
        self._stdin = None


async def stop(process: trio.Process) -> None:
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
