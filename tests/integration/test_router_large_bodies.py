"""Large response bodies: moved by `splice` inside the kernel, byte for byte, and a body cut
short upstream ends the client's connection instead of being passed off as complete."""

from __future__ import annotations

import os

import pytest
import trio

from previewcore.session_id import mint
from proxycore import splice
from tests.integration.conftest import StartRouter
from tests.support.upstreams import Reply, Upstream, client, raw_exchange

BODY = os.urandom(3 * 1024 * 1024)
CHUNKS = [BODY[i : i + 256 * 1024] for i in range(0, len(BODY), 256 * 1024)]


@pytest.fixture
def spliced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes each `splice_body` call moved, -1 for a call that raised."""
    moved: list[int] = []
    real = splice.splice_body

    async def spy(*args: object) -> int | None:
        moved.append(-1)
        n = await real(*args)  # type: ignore[arg-type]
        moved[-1] = n or 0
        return n

    monkeypatch.setattr(splice, "splice_body", spy)
    return moved


async def test_a_large_body_arrives_exactly_and_the_connections_are_reused(
    nursery: trio.Nursery, start_router: StartRouter, spliced: list[int]
) -> None:
    length = [(b"content-length", str(len(BODY)).encode())]
    up = Upstream(lambda s: Reply(200, length, CHUNKS))
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    sid = mint("node-0", r.keys)
    async with client(r.port) as c:
        for _ in range(3):
            resp = await c.request("GET", f"/preview/{sid}/big.bin")
            assert resp.status == 200 and resp.body == BODY
            assert resp.header(b"content-length") == str(len(BODY)).encode()
    assert spliced and sum(spliced) > len(BODY), spliced  # most of each body, in the kernel
    assert up.connections == 1  # the upstream connection went back to the pool after each


async def test_a_body_cut_short_upstream_closes_the_client_connection(
    nursery: trio.Nursery, start_router: StartRouter, spliced: list[int]
) -> None:
    async def cut_short(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
        await stream.send_all(b"x" * 100_000)
        await trio.sleep(0.2)  # the rest of the headroom comes later, then never
        await stream.send_all(b"y" * 100_000)
        await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, cut_short, 0)
    r = await start_router({"node-0": listeners[0].socket.getsockname()[1]})
    sid = mint("node-0", r.keys)
    raw = await raw_exchange(
        r.port, f"GET /preview/{sid}/x HTTP/1.1\r\nHost: t\r\n\r\n".encode(), wait=10
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == 200_000  # all that came, and the connection closed: never "complete"
    assert spliced == [-1]  # the cut happened inside the kernel path, and raised
    async with client(r.port) as c:
        assert (await c.request("GET", "/healthz")).status == 200
