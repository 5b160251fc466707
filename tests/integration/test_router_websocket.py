"""WebSocket upgrades through the router: 101 only after the upstream's, then a byte splice."""

from __future__ import annotations

import base64
import os

import trio
from trio_websocket import open_websocket_url, serve_websocket

from previewcore.session_id import mint
from tests.integration.conftest import StartRouter
from tests.support.upstreams import Reply, Upstream, raw_exchange


async def _echo_server(request) -> None:  # type: ignore[no-untyped-def]
    ws = await request.accept(
        subprotocol=request.proposed_subprotocols[0] if request.proposed_subprotocols else None
    )
    try:
        while True:
            msg = await ws.get_message()
            await ws.send_message(f"echo:{msg}")
    except Exception:
        return


async def test_websocket_echo_through_router(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    server = await nursery.start(serve_websocket, _echo_server, "127.0.0.1", 0, None)
    r = await start_router({"node-0": server.port})
    sid = mint("node-0", r.keys)
    async with open_websocket_url(
        f"ws://127.0.0.1:{r.port}/preview/{sid}/hmr?token=abc", subprotocols=["vite-hmr"]
    ) as ws:
        assert ws.subprotocol == "vite-hmr"
        for i in range(20):
            msg = f"m{i}" * (i * 500 + 1)
            await ws.send_message(msg)
            assert await ws.get_message() == "echo:" + msg
        big = "x" * 300_000
        await ws.send_message(big)
        assert await ws.get_message() == "echo:" + big
    with trio.fail_after(2):  # both sockets are closed once either side closes
        while r.service.state.tunnels:
            await trio.sleep(0.01)


def _handshake(path: str, extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: preview.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def _eager_server(stream: trio.SocketStream) -> None:
    """Answers 101 and, in the same write, its first frame; then echoes raw bytes."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += await stream.receive_some(4096)
    _, _, rest = buf.partition(b"\r\n\r\n")
    await stream.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: x\r\n\r\nHELLO-RIGHT-AFTER-101"
    )
    assert not rest, "the router sent the client's bytes before the 101"
    try:
        while True:
            data = await stream.receive_some(4096)
            if not data:
                break
            await stream.send_all(data.upper())
    except trio.BrokenResourceError:
        pass
    await stream.aclose()


async def test_bytes_after_101_on_both_sides_are_delivered(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    listeners = await nursery.start(trio.serve_tcp, _eager_server, 0)
    port = listeners[0].socket.getsockname()[1]
    r = await start_router({"node-0": port})
    sid = mint("node-0", r.keys)
    stream = await trio.open_tcp_stream("127.0.0.1", r.port)
    # the client's first bytes travel in the same packet as its handshake
    await stream.send_all(_handshake(f"/preview/{sid}/hmr") + b"client-early")
    got = b""
    with trio.fail_after(3):
        while b"CLIENT-EARLY" not in got:  # forwarded only after the upstream's 101
            got += await stream.receive_some(4096)
    assert got.startswith(b"HTTP/1.1 101 ")
    assert b"HELLO-RIGHT-AFTER-101" in got
    await stream.send_all(b"ping")
    with trio.fail_after(3):
        more = b""
        while b"PING" not in more:
            more += await stream.receive_some(4096)
    # half-close: our EOF reaches the server, which closes; we then see EOF
    await stream.send_eof()
    with trio.fail_after(3):
        while await stream.receive_some(4096):
            pass
    await stream.aclose()


async def test_refused_upgrade_is_passed_through_as_a_normal_response(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(
        lambda s: Reply(400, [(b"content-length", b"11")], [b"bad token!!"], reason=b"Bad Request")
    )
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port}, header_timeout=0.5)
    sid = mint("node-0", r.keys)
    out = await raw_exchange(r.port, _handshake(f"/preview/{sid}/hmr?token=wrong"), wait=3)
    assert out.startswith(b"HTTP/1.1 400 Bad Request")
    assert out.endswith(b"bad token!!")
    assert b"101" not in out.split(b"\r\n")[0]
    assert up.seen[0].header(b"upgrade") == b"websocket"


async def test_upgrade_to_a_silent_upstream_times_out(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    """Vite ignores a wrong subprotocol entirely: the router's timeout must end the wait."""
    from tests.support.upstreams import CountingListener

    hang = CountingListener(hang=True)
    await nursery.start(hang.serve)
    r = await start_router({"node-0": hang.port}, upstream_timeout=0.5)
    out = await raw_exchange(r.port, _handshake(f"/preview/{mint('node-0', r.keys)}/hmr"), wait=4)
    assert out.startswith(b"HTTP/1.1 504 ")


async def test_hashed_id_websocket_falls_back_to_the_node_that_holds_it(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    """After a ring change a hashed ID's owner may not hold it: the upgrade goes on to the next node."""
    marker = Upstream(lambda s: Reply(404, [(b"x-preview-unknown-session", b"1")], [b"{}"]))
    await nursery.start(marker.serve)
    server = await nursery.start(serve_websocket, _echo_server, "127.0.0.1", 0, None)
    r = await start_router({"node-a": marker.port, "node-b": server.port})
    ring = r.service.state.ring.value
    sid = next(f"p{i}" for i in range(1000) if ring.route(f"p{i}")[0].name == "node-a")
    async with open_websocket_url(
        f"ws://127.0.0.1:{r.port}/preview/{sid}/hmr", subprotocols=["vite-hmr"]
    ) as ws:
        await ws.send_message("hi")
        assert await ws.get_message() == "echo:hi"
    assert marker.seen and marker.seen[0].header(b"upgrade") == b"websocket"
