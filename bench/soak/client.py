"""A browser-like HTTP/1.1 client on trio: keep-alive connections to one router, at most
`size` at once (what a browser opens per origin), h11 for the protocol.

A connection is reused only when h11 says both sides are done, and only while it has been
idle for less than IDLE_REUSE seconds (the router closes idle ones after its header
timeout, and a request racing that close would be the client's fault). A request on a
reused connection that fails before any response byte is sent once more on a fresh one,
as browsers do; those retries are counted, not hidden.

Never: follow redirects, decompress, or read a body without the size bound.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import h11
import trio

HOST = "127.0.0.1"
IDLE_REUSE = 4.0  # seconds: well under the router's --header-timeout
MAX_BODY = 16 * 1024 * 1024
READ_CHUNK = 65536


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from send to the whole body read

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.body)
        assert isinstance(doc, dict)
        return doc


class Stale(Exception):
    """A reused connection closed before any byte of the response: safe to send again."""


class _Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()
        self.used = False

    def reusable(self) -> bool:
        return (
            self.h11.our_state is h11.DONE
            and self.h11.their_state is h11.DONE
            and time.monotonic() - self.idle_since < IDLE_REUSE
        )

    async def exchange(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        reused = self.used
        self.used = True
        if reused:
            self.h11.start_next_cycle()
        hdrs = [*headers]
        if body is not None:
            hdrs.append(("Content-Length", str(len(body))))
        data = self.h11.send(h11.Request(method=method, target=target, headers=hdrs)) or b""
        if body:
            data += self.h11.send(h11.Data(data=body)) or b""
        data += self.h11.send(h11.EndOfMessage()) or b""
        got_any = False
        try:
            await self.stream.send_all(data)
            status, out_headers, chunks, size = 0, {}, [], 0
            while True:
                event = self.h11.next_event()
                if event is h11.NEED_DATA:
                    chunk = await self.stream.receive_some(READ_CHUNK)
                    if chunk:
                        got_any = True
                    self.h11.receive_data(chunk)
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    out_headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > MAX_BODY:
                        raise h11.RemoteProtocolError("body over the client's bound")
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    self.idle_since = time.monotonic()
                    return status, out_headers, b"".join(chunks)
                elif isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("closed before the response ended")
        except (trio.BrokenResourceError, h11.RemoteProtocolError, OSError) as exc:
            if reused and not got_any:
                raise Stale(str(exc)) from exc
            raise

    async def aclose(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, OSError):
            await self.stream.aclose()


class Client:
    """Up to `size` keep-alive connections to 127.0.0.1:`port`, each request with
    `Host: {host}` (the public host both routers serve)."""

    def __init__(self, port: int, host: str, size: int = 6, timeout: float = 30.0) -> None:
        self.port = port
        self.host = host
        self.timeout = timeout
        self.limit = trio.CapacityLimiter(size)
        self.idle: list[_Conn] = []
        self.stale_retries = 0

    async def request(
        self,
        method: str,
        target: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One exchange, bounded by the client's timeout (trio.TooSlowError after it)."""
        data = json.dumps(body).encode() if body is not None else None
        hdrs = [("Host", self.host), ("Accept", "*/*"), *(headers or {}).items()]
        if data is not None:
            hdrs.append(("Content-Type", "application/json"))
        async with self.limit:
            t0 = time.perf_counter()
            with trio.fail_after(self.timeout):
                for attempt in (0, 1):
                    conn = await self._conn(fresh=attempt == 1)
                    try:
                        status, rh, rb = await conn.exchange(method, target, hdrs, data)
                    except Stale:
                        await conn.aclose()
                        self.stale_retries += 1
                        continue
                    except BaseException:
                        await conn.aclose()
                        raise
                    if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                        self.idle.append(conn)
                    else:
                        await conn.aclose()
                    return Response(status, rh, rb, time.perf_counter() - t0)
            raise AssertionError("unreachable: the second attempt is never stale")

    async def _conn(self, fresh: bool) -> _Conn:
        while self.idle and not fresh:
            conn = self.idle.pop()
            if conn.reusable():
                return conn
            await conn.aclose()
        stream = await trio.open_tcp_stream(HOST, self.port)
        return _Conn(stream)

    async def aclose(self) -> None:
        while self.idle:
            await self.idle.pop().aclose()


@contextlib.asynccontextmanager
async def clients(
    ports: list[int], host: str, size: int = 6, request_bound: float = 30.0
) -> AsyncIterator[list[Client]]:
    """One client per router port, each request bounded by `request_bound` s, all closed
    when the block ends."""
    opened = [Client(p, host, size, request_bound) for p in ports]
    try:
        yield opened
    finally:
        with trio.CancelScope(shield=True):
            for c in opened:
                await c.aclose()
