"""WebSocket upgrades: ask upstream first, answer 101 only after its 101, then splice bytes.

The client never sees a 101 the upstream did not give: a refused upgrade (Vite
answers 400 to a bad token, 403 to an unknown Host) reaches the client as a
normal response and the connection never becomes a tunnel. After both 101s the
bytes each side had already read past the handshake are delivered first, then
both directions are copied until either side closes; a half-close is passed on,
and cancellation closes both sockets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import trio

from proxycore.forward import ForwardPolicy, UpstreamResponse, exchange_head, relay_response
from proxycore.headers import end_to_end
from proxycore.server import Exchange, enable_keepalive
from proxycore.sockio import Socket
from proxycore.upstream import READ_CHUNK, Address, UpstreamPool

Activity = Callable[[], None]


async def _pump(src: Socket, dst: Socket, first: bytes, on_activity: Activity | None) -> None:
    """Copy `src` to `dst` until `src` ends (then half-close `dst`).

    A WebSocket carries small frames one at a time: after a read shorter than the buffer
    the socket is drained, so the next step is to wait for it (one `epoll_ctl`), not a
    `recv` bound to fail with EAGAIN first. Sockio's `receive_some` did that failed call,
    its exception and its bookkeeping on every frame: 5 syscalls per frame and direction,
    now 4 (strace). Only a full read, which may leave more behind, reads again at once,
    with a checkpoint between, so a busy tunnel cannot starve the other tasks."""
    rsock, wsock = src.socket, dst.socket
    try:
        if first:
            await dst.send_all(first)
        more = False  # the last read filled the buffer: more may be waiting
        while True:
            if more:
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.wait_readable(rsock)
            try:
                data = rsock.recv(READ_CHUNK)
            except BlockingIOError:
                more = False
                continue
            if not data:
                with contextlib.suppress(
                    trio.BrokenResourceError, trio.ClosedResourceError, OSError
                ):
                    await dst.send_eof()
                return
            more = len(data) == READ_CHUNK
            if on_activity is not None:
                on_activity()
            try:
                sent = wsock.send(data)
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                await dst.send_all(memoryview(data)[sent:])  # waits for room, as it must
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        raise _TunnelBroken() from None


class _TunnelBroken(Exception):
    pass


async def splice(
    a: Socket,
    b: Socket,
    a_first: bytes,
    b_first: bytes,
    on_activity: Activity | None = None,
) -> None:
    """Copy a->b and b->a until both directions end; an error on either closes both.

    `a_first` is what was read from `a` before the splice (sent to `b` first).
    """
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, a, b, a_first, on_activity)
            nursery.start_soon(_pump, b, a, b_first, on_activity)
    except* _TunnelBroken:
        pass
    finally:
        with trio.CancelScope(shield=True):
            await a.aclose()
            await b.aclose()


async def tunnel(
    ex: Exchange,
    pool: UpstreamPool,
    addr: Address,
    policy: ForwardPolicy,
    on_open: Callable[[], None] | None = None,
    on_close: Callable[[], None] | None = None,
    on_activity: Activity | None = None,
) -> int:
    """Forward an upgrade request; splice on 101, else relay the refusal. Returns the status."""
    resp = await exchange_head(ex, pool, addr, policy, body=b"" if ex.has_body else None)
    return await finish_upgrade(ex, resp, pool, policy, on_open, on_close, on_activity)


async def finish_upgrade(
    ex: Exchange,
    resp: UpstreamResponse,
    pool: UpstreamPool,
    policy: ForwardPolicy,
    on_open: Callable[[], None] | None = None,
    on_close: Callable[[], None] | None = None,
    on_activity: Activity | None = None,
) -> int:
    """Given the upstream's answer to an upgrade: splice on 101, else relay it as a response."""
    if resp.status != 101:
        await relay_response(ex, resp, pool, policy)
        return resp.status
    headers = end_to_end(resp.headers, policy.strip_response)
    headers += [(b"connection", b"Upgrade"), (b"upgrade", resp.header(b"upgrade") or b"websocket")]
    headers.extend(ex.extra_headers)
    await ex.client.send(ex.switching_protocols(resp.response.reason, headers))
    client_first = ex.leftover()
    upstream_first = resp.up.reader.leftover
    enable_keepalive(ex.client.stream)
    enable_keepalive(resp.up.stream)
    if on_open is not None:
        on_open()
    try:
        await splice(ex.client.stream, resp.up.stream, client_first, upstream_first, on_activity)
    finally:
        if on_close is not None:
            on_close()
    return 101
