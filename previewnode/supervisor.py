"""The one owner of dev servers: start on demand, hold requests meanwhile, stop when idle.

`Supervisor.run` is `nursery.start`-able: once started, each running dev server is a
task in the supervisor's own nursery, inside a cancel scope the session keeps:
stopping a session is cancelling that scope (the dev server kills its process group
on the way out), and cancelling `run` stops them all. Starts are capped near the core count
(a cold Vite start is CPU-bound), running servers by `--max-running` (the least
recently used one without an open WebSocket is stopped to make room).

A dev server that fails before it serves is started again by its session's task, after
a backoff that grows with consecutive failures (held requests keep waiting); one that
crashes after serving is restarted on its next request, after the same backoff. A
session whose dev server crashed `MAX_CRASHES` times within `CRASH_WINDOW` is `failed`,
with the last lines of its stderr as `error`, and nothing restarts it until an upload
changes its files; one whose dependencies failed to install stays `failed` until an
upload changes them (or names them again).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from previewnode import cache_gc, metrics
from previewnode.config import NodeConfig
from previewnode.deps import DependencyInstaller, InstallFailed, Plan, plan, requested
from previewnode.devserver import DevServer, DevServerConfig, DevServerFailed
from previewnode.errors import NotHeldHere, SessionFailed, SessionGone, Starting
from previewnode.lifecycle import Event, Status
from previewnode.limits import Groups, release, ulimit_args
from previewnode.redact import cut_paths, tail
from previewnode.sandbox import INSIDE_CACHE, INSIDE_WORKSPACE, Sandbox
from previewnode.sessions import Session, SessionStore
from previewnode.warm import Warm, WarmPool, adopt
from previewnode.workspace import disk_refusal, disk_used, empty_dir, remove_tree
from proxycore.errors import OverCapacity, PreviewError
from proxycore.upstream import Address

log = logging.getLogger("preview.runner")
MAX_BACKOFF = 10.0
# A dev server that crashes this often this fast will not get better by itself: its
# session is `failed` (with why) instead of burning a CPU on restarts forever.
MAX_CRASHES = 3
CRASH_WINDOW = 60.0


# renameat2(RENAME_EXCHANGE) refused by the data dir's file system (or sessions and the
# pool on different ones): no warm sandbox could ever be handed over there.
UNSWAPPABLE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV})


def gone(s: Session) -> PreviewError:
    """What a request for a removed session gets: 410 for minted IDs, 404 for chosen ones."""
    return NotHeldHere() if s.record.hashed else SessionGone()


def backoff(failures: int) -> float:
    return 0.0 if failures <= 0 else min(MAX_BACKOFF, 0.5 * 2 ** (failures - 1))


@dataclass(frozen=True)
class Crash:
    """How a dev server ended that nobody stopped."""

    why: str
    stderr: str  # its tail, as the dev server wrote it
    served: bool  # it had served: restarted lazily, on its next request


def link_node_modules(workspace: Path, target: Path) -> None:
    """Point `workspace/node_modules` at a dependency set, atomically."""
    link = workspace / "node_modules"
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    tmp = workspace / f".node_modules.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)


class Supervisor:
    def __init__(
        self,
        cfg: NodeConfig,
        store: SessionStore,
        installer: DependencyInstaller,
        sandbox: Sandbox | None = None,
        groups: Groups | None = None,
    ) -> None:
        self.cfg = cfg
        self.sandbox = sandbox  # None: unsandboxed with the fixed config
        self.groups = groups  # per-session cgroups, or None: rlimits only
        self._ulimits = tuple(ulimit_args(cfg.session_limits))
        self.store = store
        self.installer = installer
        self.cold_starts = trio.Semaphore(max(1, os.cpu_count() or 2))
        self._nursery: trio.Nursery | None = None
        self._plans: dict[str, Plan] = {}
        self.warm: WarmPool | None = None
        if cfg.warm_sandboxes and self.mechanism in ("bwrap", "none"):  # not Landlock: warm.py
            area = cfg.data_dir / "warm"
            self.warm = WarmPool(
                cfg.warm_sandboxes, area, self._warm_config, groups, self.cold_starts
            )

    @property
    def mechanism(self) -> str:
        """What dev servers run in: `bwrap`, `landlock`, or `none`."""
        return self.sandbox.mechanism if self.sandbox else "none"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the dev servers until cancelled; cancelling stops every one of them."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.warm is not None:
                await nursery.start(self.warm.run)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def running(self) -> list[Session]:
        """Sessions whose dev server runs or is starting, minus those already being stopped
        (counting those would let a burst of creates stop the same one over and over)."""
        return [s for s in self.store if s.busy and not s.stopping]

    def vite_pids(self) -> list[int]:
        return [s.pid for s in self.store if s.pid is not None]

    # -- starting ---------------------------------------------------------------------------

    def start(self, s: Session) -> None:
        """Begin starting `s`'s dev server in the background (no-op if it runs or is starting).

        Raises `OverCapacity` when every slot is held by a session with an open socket."""
        if s.removed:
            raise gone(s)
        if s.busy:
            return
        if self._nursery is None:
            raise RuntimeError("the supervisor is not running (start it with nursery.start)")
        running = self.running()
        if len(running) >= self.cfg.max_running:
            now, idle = time.monotonic(), self.cfg.idle_seconds
            victims = sorted(
                (r for r in running if r.evictable(now, idle)), key=lambda r: r.last_active
            )
            if not victims:
                raise OverCapacity("every running preview is in use")
            log.info("stopping least recently used dev server", extra={"session_id": victims[0].id})
            self.stop(victims[0])
        if s.status is Status.IDLE and s.record.error is None:
            metrics.WAKES.inc()
        s.scope = trio.CancelScope()
        s.move(Event.START if self._deps_ready(s) else Event.INSTALL)
        self._nursery.start_soon(self._run, s, s.scope)

    def start_if_room(self, s: Session) -> None:
        """Start now if there is room; if not, the session stays registered and idle (its
        first request starts it, or gets 503): a create or update never fails late."""
        try:
            self.start(s)
        except OverCapacity:
            s.move(Event.NO_ROOM)

    def set_plan(self, s: Session, deps: Plan) -> None:
        """The dependency set the session's next dev server uses (from a create or update)."""
        self._plans[s.id] = deps

    def plan_for(self, s: Session) -> Plan:
        """The session's dependency plan; after a restart, recomputed from its package.json."""
        known = self._plans.get(s.id)
        if known is not None:
            return known
        try:
            doc = json.loads((s.workspace / "package.json").read_text())
            result = plan(
                requested(doc, own_tooling=self.sandbox is not None),
                self.installer.runtime_versions,
            )
        except FileNotFoundError:
            result = Plan("runtime", {})
        except (OSError, ValueError, PreviewError) as exc:
            log.warning(
                "unusable package.json, using the runtime",
                extra={"session_id": s.id, "error": str(exc)},
            )
            result = Plan("runtime", {})
        self._plans[s.id] = result
        return result

    def _deps_ready(self, s: Session) -> bool:
        return self.installer.is_ready(self.plan_for(s))

    async def wait_ready(self, s: Session, hold: float) -> Address:
        """Where `s`'s serving dev server listens, starting it if needed, waiting at most `hold`."""
        deadline = trio.current_time() + hold
        held = False
        while True:
            if s.removed:
                raise gone(s)
            if s.status is Status.READY and s.address is not None:
                if held:
                    metrics.HELD.labels("served").inc()
                return s.address
            if s.status is Status.FAILED and s.record.error is not None:
                raise SessionFailed(f"the preview failed: {s.record.error[-500:]}")
            if not s.busy:
                wait = s.retry_at - time.monotonic()
                if wait > 0 and trio.current_time() + wait > deadline:
                    raise Starting(
                        "the preview is restarting after a crash", retry_after=int(wait) + 1
                    )
                if wait > 0:
                    await trio.sleep(wait)
                self.start(s)
            held = True
            changed = s.changed
            with trio.move_on_at(deadline):
                await changed.wait()
                continue
            metrics.HELD.labels("timeout").inc()
            raise Starting(retry_after=2)

    async def _run(self, s: Session, scope: trio.CancelScope) -> None:
        """Install if needed, start, serve until the dev server exits or `scope` is cancelled;
        start again after a backoff while it fails before serving (a stop ends the wait).

        Nothing raised here may escape: one session's failure must never end the node.
        """
        with scope:
            again = await self._attempt(s)
            while again:
                await trio.sleep(backoff(s.failures))
                again = await self._attempt(s)
        s.address = s.pid = s.dev = None
        s.scope = None
        s.stopping = False
        s.move(Event.STOPPED)

    async def _attempt(self, s: Session) -> bool:
        """One try at serving; True when it failed before serving and may be tried again."""
        try:
            node_modules = await self._dependencies(s)
        except InstallFailed as exc:
            metrics.INSTALLS.labels("failed").inc()
            s.record.error = f"dependency install failed: {exc}"
            s.record.failure = "install"
            s.save()
            s.move(Event.INSTALL_FAILED)
            log.error(
                "dependency install failed",
                extra={"session_id": s.id, "error": str(exc)[-500:]},
            )
            return False
        except Exception as exc:  # e.g. the workspace vanished: cost one session, not the node
            log.error("preparing the dev server failed", exc_info=exc, extra={"session_id": s.id})
            return self._crashed(s, Crash(f"preparing failed: {exc}", "", served=False))
        crash = await self._serve(s, node_modules)
        return self._crashed(s, crash)

    async def _serve(self, s: Session, node_modules: Path) -> Crash:
        warm = self._take_warm(s)
        if warm is not None:
            assert self.warm is not None
            try:
                if await self._adopt(s, warm):
                    return await self._serve_in(s, node_modules, (), warm)
            finally:  # served, failed to take over, or cancelled anywhere: it is done
                with trio.CancelScope(shield=True):
                    await self.warm.discard(warm)
        try:
            procs = tuple(self.groups.make(s.id)) if self.groups else ()
        except OSError as exc:
            return Crash(f"its cgroup could not be made: {exc}", "", served=False)
        try:
            return await self._serve_in(s, node_modules, procs)
        finally:
            if self.groups:
                with trio.CancelScope(shield=True):
                    await release(self.groups, s.id)

    def _take_warm(self, s: Session) -> Warm | None:
        """A warm sandbox for `s`, or None (no pool, none ready, or not on the runtime's
        dependencies). The caller owns it from here: it discards it on every way out."""
        if self.warm is None or not self.plan_for(s).uses_runtime:
            return None
        return self.warm.take()

    async def _adopt(self, s: Session, warm: Warm) -> bool:
        """Swap the session's workspace and cache into the warm sandbox's directories;
        False when the swap failed (the session's own are untouched: it starts cold)."""
        assert self.warm is not None
        try:
            async with s.files_lock:
                await trio.to_thread.run_sync(adopt, s.workspace, warm.config.workspace)
            await trio.to_thread.run_sync(adopt, self.store.vite_cache(s.id), warm.config.cache_dir)
        except OSError as exc:
            log.warning(
                "a warm sandbox could not take the session over: starting one",
                extra={"session_id": s.id, "error": str(exc)},
            )
            if exc.errno in UNSWAPPABLE:  # the file system's doing: it would fail every time
                self.warm.disable(f"the data dir's file system: {exc}")
            return False
        remove_tree(warm.config.workspace.parent)  # its emptied area
        metrics.WARM_STARTS.inc()
        return True

    def _warm_config(self, name: str, procs: tuple[Path, ...]) -> DevServerConfig:
        """A warm sandbox's: directories of its own under the pool's area, the runtime's
        dependencies; what names a session goes in the config line it gets later."""
        assert self.warm is not None
        area = self.warm.area / name
        cfg = self.cfg
        return DevServerConfig(
            session_id=name,
            workspace=area / "ws",
            node_modules=self.installer.runtime_node_modules,
            cache_dir=area / "cache",
            runtime_dir=cfg.runtime_dir,
            base="/",
            allowed_hosts=(),
            client_port=cfg.public_port,
            client_protocol=cfg.ws_scheme,
            sandbox=self.sandbox,
            socket_dir=self.store.socket_dir(name) if self.mechanism == "bwrap" else None,
            cgroup_procs=procs,
            ulimits=self._ulimits,
        )

    async def _serve_in(
        self, s: Session, node_modules: Path, procs: tuple[Path, ...], warm: Warm | None = None
    ) -> Crash:
        """Serve until the dev server ends by itself: how it ended (a stop is a cancel)."""
        started = time.monotonic()
        config = self._dev_config(s, node_modules, procs)
        if warm is not None:  # its listener is in the warm sandbox's own directory
            config = dataclasses.replace(config, socket_dir=warm.config.socket_dir)
        dev = DevServer(
            config,
            s.set_errors,
            lambda kind, paths: s.events.publish("hmr", {"type": kind, "paths": paths}),
            s.report_runtime,
            warm=warm.process if warm else None,
            listen_fd=warm.listen_fd if warm else None,
        )
        crash: Crash | None = None
        try:
            async with trio.open_nursery() as nursery:
                async with self.cold_starts:
                    s.move(Event.BOOT)
                    metrics.VITE_STARTS.inc()
                    address = await nursery.start(dev.run)
                self._ready(s, dev, address, started)
        except* DevServerFailed as group:
            exc = group.exceptions[0]
            said = exc.stderr_tail if isinstance(exc, DevServerFailed) else ""
            crash = Crash(str(exc).splitlines()[0], said, dev.address is not None)
        except* Exception as group:  # a bug here must cost one session, not the node
            log.error("dev server supervision failed", exc_info=group, extra={"session_id": s.id})
            crash = Crash("supervision failed", "", dev.address is not None)
        return crash or Crash("exited", dev.stderr_tail, served=True)  # by itself, status 0

    def _ready(self, s: Session, dev: DevServer, address: Address, started: float) -> None:
        s.address, s.pid, s.dev = address, dev.pid, dev
        s.failures = 0
        metrics.VITE_START_SECONDS.observe(time.monotonic() - started)
        if s.started_at == 0.0:
            s.started_at = time.monotonic()
            metrics.CREATE_TO_READY.observe(time.time() - s.record.created_at)
        log.info(
            "dev server ready",
            extra={
                "session_id": s.id,
                "address": address,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        s.move(Event.SERVING)

    def _crashed(self, s: Session, crash: Crash) -> bool:
        """Count a crash. True: retry after the backoff (it never served: nobody else would
        start it, and held requests wait on). False: it waits for a request (it had served),
        or it crashed `MAX_CRASHES` times within `CRASH_WINDOW` and is `failed` now."""
        metrics.VITE_CRASHES.inc()
        now = time.monotonic()
        s.failures += 1
        s.crashes = [t for t in s.crashes if now - t < CRASH_WINDOW] + [now]
        s.retry_at = now + backoff(s.failures)
        log.error(
            "dev server stopped unexpectedly",
            extra={
                "session_id": s.id,
                "why": crash.why,
                "stderr_tail": crash.stderr[-2000:],
                "crashes": len(s.crashes),
            },
        )
        if len(s.crashes) >= MAX_CRASHES:
            self._give_up(s, crash)
            return False
        if crash.served:
            s.move(Event.CRASHED)
            return False
        return True  # still `starting`: its task starts it again after the backoff

    def _give_up(self, s: Session, crash: Crash) -> None:
        """`failed`, with why and the last lines of its stderr (the node's paths cut)."""
        metrics.VITE_GAVE_UP.inc()
        said = tail(cut_paths(crash.stderr, self._private_roots(s)))
        s.record.error = (
            f"the dev server crashed {len(s.crashes)} times within {CRASH_WINDOW:.0f} s: "
            f"{cut_paths(crash.why, self._private_roots(s))}" + (f"\n{said}" if said else "")
        )
        s.record.failure = "start"
        s.save()
        s.move(Event.GAVE_UP)

    async def _over_disk(self, s: Session) -> bool:
        """Stop a dev server whose session's workspace and cache passed `--session-disk-bytes`.

        The app's own config and plugins run inside the sandbox and may write to both (the
        node bounds only what uploads bring); a tenant filling the node's disk would fail
        every other session on it. The Vite cache is dropped (it is rebuilt on start);
        what the dev server wrote into the workspace stays, for the tenant to see and
        delete with the upload that retries the session."""
        limit = self.cfg.session_disk_bytes
        cache = self.store.vite_cache(s.id)
        used = await trio.to_thread.run_sync(disk_used, (s.workspace, cache))
        if used <= limit:
            return False
        log.warning(
            "session over its disk limit: stopping its dev server",
            extra={"session_id": s.id, "bytes": used, "limit": limit},
        )
        metrics.DISK_STOPS.inc()
        await self.stop_and_wait(s)
        await trio.to_thread.run_sync(empty_dir, cache)
        s.record.error = (
            f"the session's files and cache took {used} bytes, over its disk limit of "
            f"{limit} bytes: its dev server was stopped; delete what it wrote to retry"
        )
        s.record.failure = "disk"
        s.save()
        s.move(Event.GAVE_UP)
        return True

    def _private_roots(self, s: Session) -> list[tuple[str, str]]:
        """The node's own directories a dev server's output may name, and what to say
        instead: the workspace's files by their upload names, the rest by a label."""
        cfg = self.cfg
        named = [
            (s.workspace, ""),
            (self.installer.node_modules_for(self.plan_for(s)), "node_modules"),
            (cfg.runtime_dir, "<runtime>"),
            (self.store.vite_cache(s.id), "<vite-cache>"),
            (cfg.cache_dir, "<cache-dir>"),
            (cfg.data_dir, "<data-dir>"),
        ]
        if self.sandbox and self.sandbox.listens_on_socket:
            named.append((self.store.socket_dir(s.id), "<socket-dir>"))
        if self.mechanism == "bwrap":  # the same directories, as the dev server sees them
            named += [(INSIDE_WORKSPACE, ""), (INSIDE_CACHE, "<vite-cache>")]
        return [(str(p), label) for path, label in named for p in {path, path.resolve()}]

    def retry(self, s: Session) -> None:
        """An upload to a session whose dev server gave up: forget its crashes, try again."""
        s.failures = 0
        s.crashes.clear()
        s.record.error = s.record.failure = None
        s.save()
        s.move(Event.FILES_CHANGED)
        self.start_if_room(s)

    async def _dependencies(self, s: Session) -> Path:
        deps = self.plan_for(s)
        if not self.installer.is_ready(deps):
            refusal = disk_refusal(self.cfg.data_dir, 0, self.cfg.min_free_bytes)
            if refusal is not None:
                raise InstallFailed(f"not installed: {refusal}")
            t = time.monotonic()
            s.events.publish("install", {"phase": "started"})
            try:
                target = await self.installer.ensure(deps)
            except InstallFailed as exc:
                s.events.publish("install", {"phase": "failed", "error": str(exc)[-2000:]})
                raise
            seconds = time.monotonic() - t
            s.events.publish("install", {"phase": "finished", "seconds": round(seconds, 3)})
            metrics.INSTALLS.labels("ok").inc()
            metrics.INSTALL_SECONDS.observe(seconds)
        else:
            target = self.installer.node_modules_for(deps)
        if not deps.uses_runtime:
            cache_gc.touch(target.parent)  # in use: the collector keeps it longest
        link_node_modules(s.workspace, target)
        return target

    def _dev_config(
        self, s: Session, node_modules: Path, procs: tuple[Path, ...] = ()
    ) -> DevServerConfig:
        cfg = self.cfg
        return DevServerConfig(
            session_id=s.id,
            workspace=s.workspace,
            node_modules=node_modules,
            cache_dir=self.store.vite_cache(s.id),
            runtime_dir=cfg.runtime_dir,
            base=cfg.dev_server_base(s.id),
            allowed_hosts=(cfg.preview_host(s.id),),
            client_port=cfg.public_port,
            client_protocol=cfg.ws_scheme,
            sandbox=self.sandbox,
            socket_dir=(
                self.store.socket_dir(s.id)
                if self.sandbox and self.sandbox.listens_on_socket
                else None
            ),
            cgroup_procs=procs,
            ulimits=self._ulimits,
        )

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, s: Session) -> None:
        if s.scope is not None:
            s.stopping = True
            s.scope.cancel()

    async def remove(self, s: Session) -> None:
        """Delete a session: nobody may start it again, then stop its Vite, then drop its files."""
        s.mark_removed()  # held requests answer 410/404 instead of restarting it
        await self.stop_and_wait(s)
        self.store.remove(s)
        self._plans.pop(s.id, None)

    async def restart_with(self, s: Session, deps: Plan) -> None:
        """New dependencies: stop the dev server, forget past failures, start over."""
        self.set_plan(s, deps)
        await self.stop_and_wait(s)
        s.failures = 0
        s.crashes.clear()
        s.move(Event.DEPS_CHANGED)
        self.start_if_room(s)  # `installing` until the new set is ready

    async def stop_and_wait(self, s: Session) -> None:
        self.stop(s)
        with trio.move_on_after(10):
            while s.busy:
                await s.changed.wait()

    async def sweep(self) -> None:
        """Stop idle dev servers and remove expired sessions (run periodically)."""
        now_mono, now = time.monotonic(), time.time()
        for s in self.store:
            if s.record.expires_at <= now:
                log.info("session expired", extra={"session_id": s.id})
                await self.remove(s)
                continue
            if s.busy and not s.stopping and await self._over_disk(s):
                continue  # stopped, and failed until an upload retries it
            if (
                s.busy
                and s.status is Status.READY
                and not s.in_use
                and (now_mono - s.last_active > self.cfg.idle_seconds)
            ):
                log.info("stopping idle dev server", extra={"session_id": s.id})
                await self.stop_and_wait(s)
