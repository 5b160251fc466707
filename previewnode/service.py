"""Run one node: load sessions, serve, sweep idle and expired ones, drain on SIGTERM.

SIGTERM: `/readyz` turns 503 and creation is refused, the listeners close,
in-flight requests finish (bounded by the hold time), every Vite is stopped,
and the process exits 0. Sessions stay on disk: a restart with the same
`--name` and `--data-dir` serves the same IDs (Vite started lazily).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal

import trio

from previewcore.auth import parse_tokens
from previewcore.livefile import LiveFile
from previewcore.session_id import Keys, is_valid_node_name, parse_secrets
from previewnode import metrics, sandbox
from previewnode.app import NodeApp
from previewnode.check import HeadlessChecker
from previewnode.commands import SessionCommands
from previewnode.config import NodeConfig
from previewnode.deps import DependencyInstaller
from previewnode.lifecycle import Status
from previewnode.limits import Groups, discover
from previewnode.sessions import SessionStore
from previewnode.supervisor import Supervisor
from proxycore.server import AdminOnly, HTTPServer, ServerLimits, open_listeners
from proxycore.upstream import UpstreamPool

log = logging.getLogger("preview.node")
PR_SET_CHILD_SUBREAPER = 36
# Node's HTTP server (under Vite) closes idle keep-alive sockets after 5 s.
VITE_POOL_IDLE_SECONDS = 4.0


def become_subreaper() -> None:
    """Orphaned grandchildren (e.g. npm's) are re-parented to us, so we can reap them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def session_groups(cfg: NodeConfig) -> Groups | None:
    """Per-session cgroups where this node may make them; None: rlimits only."""
    hierarchy = discover()
    if hierarchy is None:
        return None
    try:
        return Groups(hierarchy, cfg.session_limits)
    except OSError as exc:
        log.warning("cgroups not usable: rlimits only", extra={"error": str(exc)})
        return None


class NodeService:
    def __init__(self, cfg: NodeConfig, *, handle_signals: bool = True) -> None:
        if not is_valid_node_name(cfg.name):
            raise ValueError(
                f"--name {cfg.name!r}: 3-20 of [a-z0-9-], no leading/trailing '-' or '--'"
            )
        if not (cfg.runtime_dir / "launcher.mjs").exists():
            raise ValueError(f"--runtime-dir {cfg.runtime_dir} has no launcher.mjs")
        if not (cfg.runtime_dir / "node_modules" / "vite").exists():
            raise ValueError(
                f"--runtime-dir {cfg.runtime_dir}: run `npm ci --ignore-scripts` there first"
            )
        if cfg.npmrc is not None and not cfg.npmrc.is_file():
            raise ValueError(f"--npmrc {cfg.npmrc}: no such file")  # not silently npm's default
        self.cfg = cfg
        self.handle_signals = handle_signals
        self.keys = LiveFile[Keys](cfg.secret_file, lambda text, _src: parse_secrets(text))
        self.tokens = LiveFile(cfg.api_token_file, parse_tokens) if cfg.api_token_file else None
        self.store = SessionStore(cfg.data_dir, cfg.name)
        loaded = self.store.load()
        self.installer = DependencyInstaller(cfg.runtime_dir, cfg.cache_dir, cfg.npmrc)
        self.sandbox = sandbox.choose(cfg.sandbox, cfg.sandbox_mechanism)  # type: ignore[arg-type]
        groups = session_groups(cfg)
        bounded_by = groups.hierarchy.name if groups else "rlimit"
        metrics.LIMITS.labels(bounded_by).set(1)
        log.info("dev server limits", extra={"limits": bounded_by})
        self.supervisor = Supervisor(cfg, self.store, self.installer, self.sandbox, groups)
        metrics.SANDBOX.labels(self.supervisor.mechanism).set(1)  # what /readyz says too
        self.commands = SessionCommands(cfg, self.store, self.supervisor, self.installer)
        self.pool = UpstreamPool(cfg.connect_timeout, VITE_POOL_IDLE_SECONDS)
        self.checker = HeadlessChecker(cfg.check_browser) if cfg.check_browser else None
        self.app = self._node_app(metrics_here=cfg.admin_listen is None)
        limits = ServerLimits(header_timeout=cfg.header_timeout)
        self.server = HTTPServer(self.app, limits, on_finished=self.app.finished)
        # The admin listener answers /metrics (and health) only; it shares the drain flag.
        self.admin: HTTPServer | None = None
        if cfg.admin_listen:
            admin_app = self._node_app(metrics_here=True)
            self.admin = HTTPServer(AdminOnly(admin_app), limits, on_finished=admin_app.finished)
        metrics.install_collector(
            metrics.SessionCollector(self._statuses, self.supervisor.vite_pids)
        )
        self._stop = trio.Event()
        self.listeners: list[trio.SocketListener] = []
        log.info(
            "node loaded",
            extra={"node": cfg.name, "sessions": loaded, "secrets": self.keys.value.fingerprints},
        )

    def _node_app(self, *, metrics_here: bool) -> NodeApp:
        return NodeApp(
            self.cfg,
            self.store,
            self.supervisor,
            self.commands,
            self.keys,
            self.tokens,
            self.pool,
            metrics_here=metrics_here,
            checker=self.checker,
        )

    def _statuses(self) -> dict[str, int]:
        counts = dict.fromkeys(map(str, Status), 0)
        for s in self.store:
            counts[s.status] += 1
        return counts

    def stop(self) -> None:
        self._stop.set()

    async def run(
        self, *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        become_subreaper()
        async with trio.open_nursery() as outer:
            async with trio.open_nursery() as sessions:
                await sessions.start(self.supervisor.run)
                async with trio.open_nursery() as serving:
                    self.listeners = await open_listeners(*self.cfg.listen)
                    await serving.start(self.server.serve, self.listeners)
                    if self.admin and self.cfg.admin_listen:
                        await serving.start(
                            self.admin.serve, await open_listeners(*self.cfg.admin_listen)
                        )
                    outer.start_soon(self._housekeeping)
                    if self.handle_signals:
                        outer.start_soon(self._signals)
                    task_status.started(self.listeners)
                    await self._stop.wait()
                    await self._drain()
                    serving.cancel_scope.cancel()
                sessions.cancel_scope.cancel()  # stops every Vite (each kills its process group)
            outer.cancel_scope.cancel()
        await self.pool.aclose()
        if self.checker is not None:
            await trio.to_thread.run_sync(self.checker.close)
        self.store.close()
        if self.supervisor.groups:
            self.supervisor.groups.close()
        log.info("stopped")

    async def _drain(self) -> None:
        log.info("draining", extra={"inflight": self.app.inflight})
        self.commands.draining = True
        self.server.accepting = False
        for listener in self.listeners:
            await listener.aclose()
        with trio.move_on_after(self.cfg.hold_seconds + 5):
            while self.app.inflight > 0:  # noqa: ASYNC110 - polled only while draining
                await trio.sleep(0.05)

    async def _housekeeping(self) -> None:
        while True:
            await trio.sleep(min(self.cfg.sweep_interval, max(0.2, self.cfg.idle_seconds / 4)))
            self.keys.reload()
            if self.tokens:
                self.tokens.reload()
            await self.supervisor.sweep()
            await self.pool.prune()  # connections to dev servers that stopped or went
            await self._collect_cache()

    async def _collect_cache(self) -> None:
        in_use = {s.record.deps_key for s in self.store if not s.removed}
        removed = await trio.to_thread.run_sync(
            self.installer.collect, in_use, self.cfg.max_cache_bytes
        )
        if removed:
            metrics.CACHE_REMOVED.inc(len(removed))
            log.info("dependency sets removed", extra={"keys": removed})
            await self.installer.prune_store()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.keys.reload(force=True)
                else:
                    self.stop()
