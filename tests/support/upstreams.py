"""Small upstream servers and clients for router tests, on real loopback sockets.

Upstreams here parse with their own h11 connection (not the router's code), so a
test checks what actually crossed the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h11
import trio

from proxycore.headers import get as header_value

Headers = list[tuple[bytes, bytes]]


@dataclass
class Seen:
    method: bytes
    target: bytes
    headers: Headers
    body: bytes
    trailers: Headers

    def header(self, name: bytes) -> bytes | None:
        return header_value(self.headers, name)


@dataclass
class Reply:
    status: int = 200
    headers: Headers = field(default_factory=lambda: [(b"content-type", b"text/plain")])
    chunks: list[bytes] = field(default_factory=lambda: [b"hello"])
    reason: bytes = b"OK"
    trailers: Headers = field(default_factory=list)


Responder = Callable[[Seen], Awaitable[Reply] | Reply]


class LoopbackServer:
    """A server on an ephemeral loopback port (`port` once started); `_conn` serves one
    accepted connection. `nursery.start(server.serve)` returns the port."""

    port = 0

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._conn, listeners)

    async def _conn(self, stream: trio.SocketStream) -> None:
        raise NotImplementedError


class Upstream(LoopbackServer):
    """An HTTP/1.1 server that records each request and answers via `respond`."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.respond = respond or (lambda seen: Reply())
        self.seen: list[Seen] = []
        self.connections = 0
        self.port = 0

    async def _conn(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                req = await _next(conn, stream)
                if not isinstance(req, h11.Request):
                    return
                body = b""
                trailers: Headers = []
                while True:
                    ev = await _next(conn, stream)
                    if isinstance(ev, h11.Data):
                        body += ev.data
                    elif isinstance(ev, h11.EndOfMessage):
                        trailers = list(ev.headers)
                        break
                    else:
                        return
                seen = Seen(req.method, req.target, list(req.headers), body, trailers)
                self.seen.append(seen)
                reply = self.respond(seen)
                if not isinstance(reply, Reply):
                    reply = await reply
                await stream.send_all(
                    conn.send(
                        h11.Response(
                            status_code=reply.status, headers=reply.headers, reason=reply.reason
                        )
                    )
                    or b""
                )
                for chunk in reply.chunks:
                    await stream.send_all(conn.send(h11.Data(data=chunk)) or b"")
                await stream.send_all(conn.send(h11.EndOfMessage(headers=reply.trailers)) or b"")
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, h11.ProtocolError):
            return
        finally:
            await stream.aclose()


async def _next(conn: h11.Connection, stream: trio.SocketStream) -> object:
    while True:
        ev = conn.next_event()
        if ev is not h11.NEED_DATA:
            return ev
        conn.receive_data(await stream.receive_some(65536))


class CountingListener(LoopbackServer):
    """Accepts connections and counts them; `hang` keeps them open without answering."""

    def __init__(self, hang: bool = True) -> None:
        self.connections = 0
        self.port = 0
        self.hang = hang

    async def _conn(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        if self.hang:
            await trio.sleep_forever()
        await stream.aclose()


async def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or `wait` seconds pass)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    out = b""
    with trio.move_on_after(wait):
        await stream.send_all(data)
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            out += chunk
    await stream.aclose()
    return out


@dataclass
class Response:
    status: int
    reason: bytes
    headers: Headers
    body: bytes
    trailers: Headers

    def header(self, name: bytes) -> bytes | None:
        return header_value(self.headers, name)


class Client:
    """A keep-alive HTTP/1.1 client on one connection (h11-based)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def request(
        self,
        method: str,
        target: str,
        headers: Headers | None = None,
        body: bytes | list[bytes] = b"",
        trailers: Headers | None = None,
    ) -> Response:
        hdrs = list(headers or [])
        if not any(k == b"host" for k, _ in hdrs):
            hdrs.insert(0, (b"host", b"preview.test"))
        chunks = body if isinstance(body, list) else ([body] if body else [])
        if isinstance(body, bytes) and body and not any(k == b"content-length" for k, _ in hdrs):
            hdrs.append((b"content-length", str(len(body)).encode()))
        out = self.conn.send(h11.Request(method=method, target=target, headers=hdrs)) or b""
        for c in chunks:
            out += self.conn.send(h11.Data(data=c)) or b""
        out += self.conn.send(h11.EndOfMessage(headers=trailers or [])) or b""
        await self.stream.send_all(out)
        resp = await _next(self.conn, self.stream)
        while isinstance(resp, h11.InformationalResponse):
            resp = await _next(self.conn, self.stream)
        assert isinstance(resp, h11.Response), resp
        data = b""
        while True:
            ev = await _next(self.conn, self.stream)
            if isinstance(ev, h11.Data):
                data += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                tr = list(ev.headers)
                break
            else:
                raise AssertionError(ev)
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return Response(resp.status_code, resp.reason, list(resp.headers), data, tr)

    async def aclose(self) -> None:
        await self.stream.aclose()


@asynccontextmanager
async def client(port: int) -> AsyncIterator[Client]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    c = Client(stream)
    try:
        yield c
    finally:
        await c.aclose()


async def get(
    port: int, target: str, headers: Headers | None = None, method: str = "GET", body: bytes = b""
) -> Response:
    async with client(port) as c:
        return await c.request(method, target, headers, body)
