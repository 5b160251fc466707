"""The upstream pool's idle connections: `prune` closes the ones too old to be reused
whatever their address, so a dev server nobody asks for again (its session deleted) keeps
no connection of the node's open for ever (found by bench/soak: 5 to 6 sockets per deleted
session stayed in the node, their peer gone).

A real unix socket in the test's temp dir: an upstream that answers each request with an
empty 200 and reports when the pool's end of a connection closed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from proxycore.http1 import End
from proxycore.upstream import UpstreamConnection, UpstreamPool

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


async def upstream(
    path: str,
    closed: trio.MemorySendChannel[int],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen()
    listener = trio.SocketListener(sock)
    task_status.started()
    async with trio.open_nursery() as nursery:
        n = 0
        while True:
            stream = await listener.accept()
            nursery.start_soon(_serve, stream, n, closed)
            n += 1


async def _serve(stream: trio.SocketStream, n: int, closed: trio.MemorySendChannel[int]) -> None:
    async with stream:
        while data := await stream.receive_some(65536):
            if b"\r\n\r\n" in data:
                await stream.send_all(RESPONSE)
    await closed.send(n)  # the pool's end closed this connection


async def exchange(pool: UpstreamPool, path: str) -> UpstreamConnection:
    """One GET on a pooled connection, read to its end and given back to the pool."""
    up = await pool.acquire(path)
    up.reader.expect_response(False)
    await up.send(b"GET / HTTP/1.1\r\nHost: dev\r\n\r\n")
    while not isinstance(await up.next_event(), End):
        pass
    await pool.release(up)
    return up


async def test_prune_closes_idle_connections_nobody_asks_for_again(tmp_path: Path) -> None:
    path = str(tmp_path / "dev.sock")
    send, closed = trio.open_memory_channel[int](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(upstream, path, send)
        pool = UpstreamPool(idle_timeout=0.0)  # every idle connection is already too old
        await exchange(pool, path)
        assert await pool.prune() == 1
        with trio.fail_after(5):
            assert await closed.receive() == 0
        assert await pool.prune() == 0  # nothing left, and the address forgotten
        nursery.cancel_scope.cancel()


async def test_prune_keeps_connections_young_enough_to_reuse(tmp_path: Path) -> None:
    path = str(tmp_path / "dev.sock")
    send, closed = trio.open_memory_channel[int](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(upstream, path, send)
        pool = UpstreamPool(idle_timeout=60.0)
        first = await exchange(pool, path)
        assert await pool.prune() == 0
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.WouldBlock):
            closed.receive_nowait()  # the upstream still has its connection
        again = await pool.acquire(path)
        assert again is first and again.reused
        await again.aclose()
        nursery.cancel_scope.cancel()
