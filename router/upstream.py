"""Keep-alive connections to upstreams (nodes, or a node's Vite dev servers).

A connection goes back to the pool only when h11 says both sides finished the
exchange cleanly, and is reused only while it has been idle for less than
`idle_timeout`, which must stay below the peer's own keep-alive timeout
(Node's HTTP server under Vite closes idle sockets after 5 s): reusing a socket
the peer is about to close is how a proxy turns a healthy upstream into 502s.
"""

from __future__ import annotations

import errno
import time
from collections import deque

import h11
import trio

from router.errors import UpstreamRefused, UpstreamTimeout

READ_CHUNK = 64 * 1024


class ConnectFailed(UpstreamRefused):
    """Nothing was sent: safe to try another node."""


class ConnectTimeout(UpstreamTimeout):
    """Nothing was sent: safe to try another node."""


class UpstreamConnection:
    __slots__ = ("addr", "conn", "idle_since", "reused", "stream")

    def __init__(self, stream: trio.SocketStream, addr: tuple[str, int]) -> None:
        self.stream = stream
        self.addr = addr
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=256 * 1024)
        self.idle_since = 0.0
        self.reused = False

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        """Next response-side event; raises UpstreamRefused on EOF, reset or garbage."""
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamRefused(f"malformed upstream response: {exc}") from exc
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            try:
                data = await self.stream.receive_some(READ_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise UpstreamRefused("upstream connection reset") from exc
            self.conn.receive_data(data)

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
        self._idle: dict[tuple[str, int], deque[UpstreamConnection]] = {}

    async def acquire(self, addr: tuple[str, int], *, fresh: bool = False) -> UpstreamConnection:
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

    async def connect(self, addr: tuple[str, int]) -> UpstreamConnection:
        host, port = addr
        with trio.move_on_after(self.connect_timeout) as scope:
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                if exc.errno == errno.ETIMEDOUT:
                    raise ConnectTimeout(f"connect to {host}:{port} timed out") from exc
                raise ConnectFailed(f"connect to {host}:{port} failed: {exc.strerror}") from exc
        if scope.cancelled_caught:
            raise ConnectTimeout(f"connect to {host}:{port} timed out")
        return UpstreamConnection(stream, addr)

    async def release(self, up: UpstreamConnection) -> None:
        """Keep `up` for reuse if its exchange ended cleanly, else close it."""
        c = up.conn
        if c.our_state is h11.DONE and c.their_state is h11.DONE:
            try:
                c.start_next_cycle()
            except h11.LocalProtocolError:
                await up.aclose()
                return
            idle = self._idle.setdefault(up.addr, deque())
            if len(idle) < self.max_idle:
                up.idle_since = time.monotonic()
                up.reused = False
                idle.append(up)
                return
        await up.aclose()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                await idle.pop().aclose()
