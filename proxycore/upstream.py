"""Keep-alive connections to upstreams (nodes, or a node's Vite dev servers).

A connection goes back to the pool only when its reader says the response ended the
exchange cleanly, and is reused only while it has been idle for less than
`idle_timeout`, which must stay below the peer's own keep-alive timeout
(Node's HTTP server under Vite closes idle sockets after 5 s): reusing a socket
the peer is about to close is how a proxy turns a healthy upstream into 502s.
"""

from __future__ import annotations

import errno
import math
import time
from collections import deque

import trio

from proxycore.errors import UpstreamRefused, UpstreamTimeout
from proxycore.http1 import NEED_DATA, Event, ProtocolError, ResponseReader
from proxycore.sockio import Socket

READ_CHUNK = 64 * 1024
# (host, port) over TCP, or the path of a unix socket (a sandboxed dev server's listener).
Address = tuple[str, int] | str


class ConnectFailed(UpstreamRefused):
    """Nothing was sent: safe to try another node."""


class ConnectTimeout(UpstreamTimeout):
    """Nothing was sent: safe to try another node."""


class UpstreamConnection:
    """One socket to an upstream and the reader of the responses arriving on it."""

    __slots__ = ("addr", "asked", "idle_since", "reader", "reused", "stream")

    def __init__(self, stream: Socket, addr: Address) -> None:
        self.stream = stream
        self.addr = addr
        self.reader = ResponseReader()
        self.idle_since = 0.0
        self.reused = False
        self.asked = False  # a request went out and nothing of its answer was read yet

    async def send(self, data: bytes, deadline: float = math.inf) -> None:
        await self.stream.send_all(data, deadline)
        self.asked = True

    def poll(self) -> Event:
        """The next event from bytes already received (or NEED_DATA); garbage is a 502."""
        try:
            return self.reader.next_event()
        except ProtocolError as exc:
            raise UpstreamRefused(f"malformed upstream response: {exc}") from exc

    async def receive(self, deadline: float = math.inf) -> None:
        """Read what the upstream sent next into the reader (b"" at EOF); a wait past
        `deadline` raises `trio.TooSlowError`."""
        try:
            if self.asked:
                self.asked = False
                data = await self.stream.receive_reply(READ_CHUNK, deadline)
            else:
                data = await self.stream.receive_some(READ_CHUNK, deadline)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise UpstreamRefused("upstream connection reset") from exc
        self.reader.feed(data)

    async def next_event(self, deadline: float = math.inf) -> Event:
        """The next response event, reading as needed; never NEED_DATA."""
        while True:
            event = self.poll()
            if event is not NEED_DATA:
                return event
            await self.receive(deadline)

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self.stream.aclose()


class UpstreamPool:
    """Idle connections per upstream address, bounded in count and age."""

    def __init__(
        self, connect_timeout: float = 2.0, idle_timeout: float = 4.0, max_idle_per_addr: int = 64
    ) -> None:
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle_per_addr
        self._idle: dict[Address, deque[UpstreamConnection]] = {}

    async def acquire(self, addr: Address, *, fresh: bool = False) -> UpstreamConnection:
        if not fresh:
            idle = self._idle.get(addr)
            now = time.monotonic()
            while idle:
                up = idle.pop()  # most recently used first: the least likely to be stale
                if now - up.idle_since < self.idle_timeout:
                    up.reused = True
                    return up
                await up.aclose()
        return await self.connect(addr)

    async def connect(self, addr: Address) -> UpstreamConnection:
        where = addr if isinstance(addr, str) else f"{addr[0]}:{addr[1]}"
        with trio.move_on_after(self.connect_timeout) as scope:
            try:
                if isinstance(addr, str):
                    stream = await trio.open_unix_socket(addr)
                else:
                    stream = await trio.open_tcp_stream(*addr)
            except OSError as exc:
                if exc.errno == errno.ETIMEDOUT:
                    raise ConnectTimeout(f"connect to {where} timed out") from exc
                raise ConnectFailed(f"connect to {where} failed: {exc.strerror}") from exc
        if scope.cancelled_caught:
            raise ConnectTimeout(f"connect to {where} timed out")
        return UpstreamConnection(Socket.from_stream(stream), addr)

    async def release(self, up: UpstreamConnection) -> None:
        """Keep `up` for reuse if its exchange ended cleanly, else close it."""
        if up.reader.reusable():
            idle = self._idle.setdefault(up.addr, deque())
            if len(idle) < self.max_idle:
                up.idle_since = time.monotonic()
                up.reused = False
                idle.append(up)
                return
        await up.aclose()

    async def prune(self) -> int:
        """Close every idle connection too old to be reused, whatever its address, and
        forget addresses left with none; how many were closed. `acquire` only looks at the
        address it is asked for, so without this the connections to an upstream nobody
        asks for again (a deleted session's dev server) stay open for ever: the owner
        calls it periodically."""
        now = time.monotonic()
        closed = 0
        for addr, idle in list(self._idle.items()):
            while idle and now - idle[0].idle_since >= self.idle_timeout:  # oldest first
                await idle.popleft().aclose()
                closed += 1
            if not idle:
                del self._idle[addr]
        return closed

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                await idle.pop().aclose()
