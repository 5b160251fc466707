"""Sockets that wait for trio only when the kernel says EAGAIN.

`trio.SocketStream` makes every receive and send a full schedule point: it checks
for cancellation, tries the call, and then yields to the scheduler even when the
call succeeded at once. On the proxied path that is four forced trips through
trio's run loop per exchange, the largest single cost after parsing in a profile of
the router. `Socket` keeps trio's stream interface (`receive_some`, `send_all`,
`send_eof`, `aclose`, `.socket`) and its exceptions, but tries the non-blocking
call first and waits (`wait_readable`/`wait_writable`) only when it would block.

Fairness: a task whose peer always has bytes ready would then never yield, so every
`BUDGET` calls that did not wait end with a checkpoint. Cancellation is delivered
at those checkpoints and at every wait, as trio's own calls deliver it.

Deadlines: `receive_some` and `send_all` take an optional absolute `deadline` (trio's
clock) that bounds only their waits, raising `trio.TooSlowError` once a wait passes it.
A call that completes without waiting cannot overrun it, so the caller needs no cancel
scope of its own: a scope entered and left per exchange, plus its deadline changes, was
~11% of the router's CPU at 1 KiB c=32 (py-spy), and under load the upstream's answer
is nearly always there by the time the task is scheduled again.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Awaitable, Callable

import trio

BUDGET = 16
_unyielded = 0  # calls that completed without waiting since this thread last yielded


async def _spend() -> None:
    global _unyielded
    _unyielded += 1
    if _unyielded >= BUDGET:
        _unyielded = 0
        await trio.lowlevel.checkpoint()


async def _wait(
    wait: Callable[[socket.socket], Awaitable[None]], sock: socket.socket, deadline: float
) -> None:
    """`wait(sock)`, bounded by `deadline` (a scope only when there is one to keep)."""
    if deadline == math.inf:
        await wait(sock)
        return
    with trio.move_on_at(deadline):
        await wait(sock)
        return
    raise trio.TooSlowError()


def _waited() -> None:
    global _unyielded
    _unyielded = 0


class Socket:
    """A connected non-blocking stdlib socket with trio's `SocketStream` methods."""

    __slots__ = ("socket",)

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.socket = sock

    @classmethod
    def from_stream(cls, stream: trio.SocketStream) -> Socket:
        """Take over the file descriptor of a trio stream (which keeps its TCP_NODELAY)."""
        trio_sock = stream.socket
        family, kind = trio_sock.family, trio_sock.type
        fd = trio_sock.detach()
        return cls(socket.socket(family, kind, fileno=fd))

    def _check_open(self) -> None:
        if self.socket.fileno() < 0:
            raise trio.ClosedResourceError("socket was closed")

    async def receive_some(self, max_bytes: int, deadline: float = math.inf) -> bytes:
        """Up to `max_bytes` bytes; b"" once the peer has closed its side.

        On EAGAIN, let the other tasks run once and try again before registering with
        epoll: under load the peer's next bytes have usually arrived by then, which
        saves the registration's two `epoll_ctl` calls and a trip through `epoll_wait`.
        """
        self._check_open()
        yielded = False
        while True:
            try:
                data = self.socket.recv(max_bytes)
            except BlockingIOError:
                if yielded:
                    await _wait(trio.lowlevel.wait_readable, self.socket, deadline)
                else:
                    await trio.lowlevel.checkpoint()
                    yielded = True
                _waited()
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            await _spend()
            return data

    async def receive_reply(self, max_bytes: int, deadline: float = math.inf) -> bytes:
        """`receive_some` right after sending the peer a request: its answer cannot be
        here yet, so let the other tasks run first and only then try `recv`.

        At 1 KiB c=32 the `recv` straight after a request went upstream failed with
        EAGAIN on 79% of exchanges (strace); each failure is a syscall and an exception
        before the same yield this makes first."""
        self._check_open()
        await trio.lowlevel.checkpoint()
        _waited()
        while True:
            try:
                data = self.socket.recv(max_bytes)
            except BlockingIOError:
                await _wait(trio.lowlevel.wait_readable, self.socket, deadline)
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            await _spend()
            return data

    async def send_all(
        self, data: bytes | bytearray | memoryview, deadline: float = math.inf
    ) -> None:
        self._check_open()
        try:
            sent = self.socket.send(data)  # usually all of it: no memoryview, no loop
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        if sent < len(data):
            await self._send_rest(memoryview(data)[sent:], deadline)
        await _spend()

    async def _send_rest(self, view: memoryview, deadline: float) -> None:
        while view:
            try:
                view = view[self.socket.send(view) :]
            except BlockingIOError:
                await _wait(trio.lowlevel.wait_writable, self.socket, deadline)
                _waited()
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc

    async def send_eof(self) -> None:
        self._check_open()
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        await _spend()

    async def aclose(self) -> None:
        """Close; a task waiting on this socket gets `ClosedResourceError`."""
        if self.socket.fileno() >= 0:
            trio.lowlevel.notify_closing(self.socket)
            self.socket.close()
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def __aenter__(self) -> Socket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
