"""The connection loop's header deadline, on virtual time (trio's autojump clock).

A `ClientConnection` serves one end of a local socket pair (the deadline is handed to
its `sockio.Socket`), on virtual time, so the deadline is checked to the millisecond
without waiting for it.
"""

from __future__ import annotations

import socket

import trio
import trio.testing

from proxycore.server import ClientConnection, Exchange, ServerLimits
from proxycore.sockio import Socket


class Hello:
    async def handle(self, ex: Exchange) -> None:
        await ex.respond(200, [(b"content-type", b"text/plain")], b"hi")


async def read_until_closed(stream: trio.abc.Stream) -> bytes:
    out = b""
    while chunk := await stream.receive_some(65536):
        out += chunk
    return out


def connection(header_timeout: float) -> tuple[trio.abc.Stream, ClientConnection]:
    """A client stream, and the server's connection loop on the other end of it."""
    ours, theirs = socket.socketpair()
    client = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
    limits = ServerLimits(header_timeout=header_timeout)
    return client, ClientConnection(Socket(theirs), Hello(), limits, "127.0.0.1")


async def _answered(stream: trio.abc.Stream, received: bytearray) -> bool:
    """Wait 0.1 s for the server's answer; keep what arrived."""
    with trio.move_on_after(0.1):
        received += await stream.receive_some(65536)
        return True
    return False


async def test_slowloris_gets_408_exactly_at_the_header_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, conn = connection(header_timeout=0.6)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.serve)
        start = trio.current_time()
        await client.send_all(b"GET / HTTP/1.1\r\n")
        received = bytearray()
        with trio.move_on_after(5):  # a header byte every 0.1 s: the head never completes
            while not await _answered(client, received):
                await client.send_all(b"X")
        answered_at = trio.current_time() - start
        answer = bytes(received) + await read_until_closed(client)
    assert 0.6 <= answered_at < 0.7
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in answer.lower()


async def test_idle_keepalive_connection_closes_quietly_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, conn = connection(header_timeout=5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.serve)
        start = trio.current_time()
        await client.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        out = await read_until_closed(client)
        elapsed = trio.current_time() - start
    assert out.count(b"HTTP/1.1 ") == 1 and out.startswith(b"HTTP/1.1 200 ")  # no 408 after
    assert 5 <= elapsed < 5.1


async def test_pipelined_requests_are_answered_in_order_before_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, conn = connection(header_timeout=1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.serve)
        await client.send_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n" * 3)
        out = await read_until_closed(client)
    assert out.count(b"HTTP/1.1 200 ") == 3


async def test_lingering_after_an_error_ends_within_a_second_when_the_client_stays_silent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Regression: the linger's 1 s deadline sat outside its shield, so it never fired and
    # a client that kept a refused connection open held it (and a drain) forever.
    client, conn = connection(header_timeout=30)
    served = trio.Event()

    async def serve() -> None:
        await conn.serve()
        served.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        start = trio.current_time()
        await client.send_all(b"GET / HTTP/1.1\r\nbad header line\r\n\r\n")
        answer = await read_until_closed(client)  # the server's half-close; ours stays open
        with trio.move_on_after(5):
            await served.wait()
        elapsed = trio.current_time() - start
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert served.is_set() and elapsed <= 1.0 + 0.01
