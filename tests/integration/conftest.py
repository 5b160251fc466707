"""Fixtures: an in-process router on 127.0.0.1 with a ring of test upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from previewcore.session_id import Keys, parse_secrets
from router.service import RouterConfig, RouterService
from tests.support.ring import SECRET, ring_text


@dataclass
class RouterHandle:
    port: int
    ring_path: Path
    keys: Keys
    service: RouterService

    def write_ring(self, nodes: dict[str, tuple[int, str]]) -> None:
        self.ring_path.write_text(ring_text(nodes))


StartRouter = Callable[..., Awaitable[RouterHandle]]


@pytest.fixture
async def start_router(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[StartRouter]:
    """start_router({"node-0": port, ...}, **RouterConfig overrides) -> RouterHandle."""
    services: list[RouterService] = []

    async def start(nodes: dict[str, int | tuple[int, str]], **overrides: Any) -> RouterHandle:
        ring_path = tmp_path / f"ring{len(services)}.toml"
        norm = {k: (v if isinstance(v, tuple) else (v, "active")) for k, v in nodes.items()}
        ring_path.write_text(ring_text(norm))
        secret = tmp_path / "secret"
        secret.write_text(SECRET + "\n")
        cfg = RouterConfig(listen=("127.0.0.1", 0), ring=ring_path, secret_file=secret, **overrides)
        service = RouterService(cfg, handle_signals=False)
        listeners = await nursery.start(service.run)
        services.append(service)
        port = listeners[0].socket.getsockname()[1]
        return RouterHandle(port, ring_path, parse_secrets(SECRET), service)

    yield start
    for s in services:
        s.stop()
