"""Run one router process: listeners, live config, signals, graceful drain.

SIGTERM: `/readyz` turns 503, the listeners close, in-flight requests finish
(bounded by the upstream timeout), WebSocket tunnels may stay up to
`--drain-seconds`, then everything left is cancelled and the process exits 0.
SIGHUP re-reads the ring and secret files at once.
"""

from __future__ import annotations

import logging
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

import trio

from previewcore.auth import parse_tokens
from previewcore.livefile import LiveFile
from previewcore.session_id import Keys, parse_secrets
from proxycore.headers import parse_trusted
from proxycore.server import AdminOnly, HTTPServer, ServerLimits, open_listeners
from proxycore.upstream import UpstreamPool
from router import metrics
from router.app import RouterApp, RouterState, WebPolicy, router_policy
from router.ring import Ring, parse_ring

log = logging.getLogger("preview.router")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass
class RouterConfig:
    listen: tuple[str, int]
    ring: Path
    secret_file: Path
    api_token_file: Path | None = None
    admin_listen: tuple[str, int] | None = None
    trusted_proxies: str = ""
    max_body_bytes: int = 32 * 1024 * 1024
    max_connections: int = 10_000
    connect_timeout: float = 2.0
    upstream_timeout: float = 60.0
    header_timeout: float = 30.0
    drain_seconds: float = 60.0
    pool_idle_seconds: float = 4.0
    reload_interval: float = 0.5
    preview_domain: str | None = None
    api_cors_origins: frozenset[str] = frozenset()
    frame_ancestors: str | None = None


def _ring_counter(ok: bool) -> None:
    metrics.RING_RELOADS.labels("ok" if ok else "failed").inc()


def load_state(cfg: RouterConfig) -> RouterState:
    ring = LiveFile[Ring](cfg.ring, parse_ring, _ring_counter)
    keys = LiveFile[Keys](cfg.secret_file, lambda text, _src: parse_secrets(text))
    tokens = LiveFile(cfg.api_token_file, parse_tokens) if cfg.api_token_file else None
    log.info(
        "config loaded",
        extra={"nodes": sorted(ring.value.nodes), "secrets": keys.value.fingerprints},
    )
    return RouterState(ring=ring, keys=keys, tokens=tokens)


def _export_ring_gauge(state: RouterState) -> None:
    for name, count in state.ring.value.states().items():
        metrics.RING_NODES.labels(name).set(count)


class RouterService:
    def __init__(
        self,
        cfg: RouterConfig,
        sock: socket.socket | None = None,
        *,
        admin_sock: socket.socket | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.cfg = cfg
        self.admin_sock = admin_sock
        self.handle_signals = handle_signals
        self.sock = sock
        self.state = load_state(cfg)
        self.pool = UpstreamPool(cfg.connect_timeout, cfg.pool_idle_seconds)
        policy = router_policy(cfg.upstream_timeout, parse_trusted(cfg.trusted_proxies))
        limits = ServerLimits(
            header_timeout=cfg.header_timeout, max_connections=cfg.max_connections
        )
        web = WebPolicy(cfg.preview_domain, cfg.api_cors_origins, cfg.frame_ancestors)
        self.app = RouterApp(
            self.state,
            self.pool,
            policy,
            max_body_bytes=cfg.max_body_bytes,
            metrics_here=cfg.admin_listen is None,
            web=web,
        )
        self.server = HTTPServer(
            self.app, limits, metrics.OPEN_CONNECTIONS.set, on_finished=self.app.finished
        )
        self.admin: HTTPServer | None = None
        if cfg.admin_listen:
            admin_app = RouterApp(
                self.state, self.pool, policy, max_body_bytes=0, metrics_here=True
            )
            self.admin = HTTPServer(AdminOnly(admin_app), limits, on_finished=admin_app.finished)
        self.listeners: list[trio.SocketListener] = []
        self._stop = trio.Event()

    def reload(self) -> None:
        self.state.ring.reload(force=True)
        self.state.keys.reload(force=True)
        if self.state.tokens:
            self.state.tokens.reload(force=True)

    async def run(
        self, *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as outer:
            self.listeners = await open_listeners(*self.cfg.listen, sock=self.sock)
            async with trio.open_nursery() as serving:
                await serving.start(self.server.serve, self.listeners)
                if self.admin and self.cfg.admin_listen:
                    admin_listeners = await open_listeners(
                        *self.cfg.admin_listen, sock=self.admin_sock
                    )
                    await serving.start(self.admin.serve, admin_listeners)
                outer.start_soon(self._watch_config)
                if self.handle_signals:
                    outer.start_soon(self._signals)
                task_status.started(self.listeners)
                await self._stop.wait()
                await self._drain()
                serving.cancel_scope.cancel()
            outer.cancel_scope.cancel()
        await self.pool.aclose()
        log.info("stopped")

    def stop(self) -> None:
        self._stop.set()

    async def _drain(self) -> None:
        log.info("draining", extra={"inflight": self.state.inflight, "tunnels": self.state.tunnels})
        self.state.draining = True
        self.server.accepting = False
        for listener in self.listeners:
            await listener.aclose()
        with trio.move_on_after(self.cfg.upstream_timeout + 1):
            while self.state.inflight > 0:  # noqa: ASYNC110 - polled only while draining
                await trio.sleep(0.05)
        with trio.move_on_after(self.cfg.drain_seconds):
            while self.state.tunnels > 0:  # noqa: ASYNC110 - polled only while draining
                await trio.sleep(0.1)

    async def _watch_config(self) -> None:
        files: list[LiveFile[object]] = [self.state.ring, self.state.keys]  # type: ignore[list-item]
        if self.state.tokens:
            files.append(self.state.tokens)  # type: ignore[arg-type]
        _export_ring_gauge(self.state)
        while True:
            await trio.sleep(self.cfg.reload_interval)
            for f in files:
                f.reload()
            _export_ring_gauge(self.state)
            # Idle connections to a node that left the ring are never asked for again.
            await self.pool.prune()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            # A worker is forked with these blocked; what arrived meanwhile is delivered now.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading ring and secrets")
                    self.reload()
                    _export_ring_gauge(self.state)
                else:
                    self.stop()
