"""Stream one request and its response between a client and an upstream (the proxy core).

Used by the router (client -> node) and by the node (client -> its Vite). Bodies
move in chunks of at most 64 KiB, each write awaited before the next read, so a
slow reader slows the writer instead of growing memory. Writes are coalesced per
message: a small response leaves in one `send_all`, head and body together.

Retries: a bodiless or buffered request whose *reused* upstream connection fails
before any response byte is sent once more on a fresh connection (CONTRACT §2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import h11
import trio

from router.errors import PreviewError, UpstreamRefused, UpstreamTimeout
from router.headers import (
    NODE_PRIVATE,
    Headers,
    downstream_response_headers,
    get,
    is_trusted,
    plain,
    upstream_request_headers,
)
from router.headers import Network as TrustedNetwork
from router.server import ClientGone, Exchange
from router.upstream import READ_CHUNK, UpstreamConnection, UpstreamPool

FLUSH_AT = 64 * 1024
# How long to wait for a response head before also watching the client for a hang-up:
# most answers come sooner, and watching costs a task per request.
_WATCH_CLIENT_AFTER = 0.2


@dataclass
class ForwardPolicy:
    upstream_timeout: float = 60.0
    trusted: Sequence[TrustedNetwork] = ()
    strip_response: frozenset[bytes] = NODE_PRIVATE
    # Extra response headers computed per response (the node's X-Preview-Node-Load).
    extra_response_headers: Callable[[], Headers] | None = None
    drop_request: frozenset[bytes] = field(default_factory=frozenset)


@dataclass(slots=True)
class UpstreamResponse:
    """A response head read from upstream, with the connection its body is still on."""

    up: UpstreamConnection
    response: h11.Response | h11.InformationalResponse
    headers: Headers = field(default_factory=list)

    def __post_init__(self) -> None:
        self.headers = plain(self.response.headers)

    @property
    def status(self) -> int:
        return self.response.status_code

    def header(self, name: bytes) -> bytes | None:
        return get(self.headers, name)


def build_request(
    ex: Exchange,
    policy: ForwardPolicy,
    body_length: int | None,
    chunked: bool,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> h11.Request:
    headers = upstream_request_headers(
        ex.headers,
        peer=ex.peer,
        trusted=is_trusted(ex.peer, policy.trusted),
        request_id=ex.request_id,
        content_length=body_length,
        chunked=chunked,
        upgrade=ex.upgrade,
    )
    if policy.drop_request:
        headers = [(k, v) for k, v in headers if k not in policy.drop_request]
    headers.extend(extra_headers)
    # `_parsed=True` (h11 < 0.17, pinned): the names and values were validated when h11
    # parsed them from the client, and the ones we add are ours; skip validating twice.
    return h11.Request(method=ex.method, target=ex.target, headers=headers, _parsed=True)


async def _send_buffered(up: UpstreamConnection, request: h11.Request, body: bytes) -> None:
    out = up.conn.send(request) or b""
    if body:
        out += up.conn.send(h11.Data(data=body)) or b""
    out += up.conn.send(h11.EndOfMessage()) or b""
    await up.send(out)


async def _send_streamed(up: UpstreamConnection, request: h11.Request, ex: Exchange) -> None:
    pending = up.conn.send(request) or b""
    async for chunk in ex.body_chunks():
        if isinstance(chunk, bytes):
            pending += up.conn.send(h11.Data(data=chunk)) or b""
            await up.send(pending)
            pending = b""
        else:
            pending += up.conn.send(h11.EndOfMessage(headers=chunk)) or b""
            await up.send(pending)
            return
    pending += up.conn.send(h11.EndOfMessage()) or b""
    await up.send(pending)


async def _watching_client(ex: Exchange, up: UpstreamConnection) -> h11.Event | type[h11.PAUSED]:
    """Wait for the response head, abandoning it if the client hangs up meanwhile."""
    result: list[h11.Event | type[h11.PAUSED]] = []
    gone = False

    async def watch(cancel: trio.CancelScope) -> None:
        nonlocal gone
        try:
            while True:
                data = await ex.client.receive()
                if not data:
                    break
                ex.client.buf += data  # pipelined bytes: the connection loop reads them later
        except ClientGone:
            pass
        gone = True
        cancel.cancel()

    async def wait_head(cancel: trio.CancelScope) -> None:
        result.append(await up.next_event())
        cancel.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, nursery.cancel_scope)
        nursery.start_soon(wait_head, nursery.cancel_scope)
    if result:
        return result[0]
    assert gone
    raise ClientGone()


async def _read_head(
    ex: Exchange | None, up: UpstreamConnection
) -> h11.Response | h11.InformationalResponse:
    while True:
        event: h11.Event | type[h11.PAUSED] | None = None
        if ex is None:
            event = await up.next_event()
        else:
            with trio.move_on_after(_WATCH_CLIENT_AFTER):
                event = await up.next_event()
            if event is None:
                event = await _watching_client(ex, up)
        if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
            continue  # 100 Continue / 103 Early Hints: not relayed
        if isinstance(event, (h11.Response, h11.InformationalResponse)):
            return event
        raise UpstreamRefused("upstream closed without a response")


async def exchange_head(
    ex: Exchange,
    pool: UpstreamPool,
    addr: tuple[str, int],
    policy: ForwardPolicy,
    *,
    body: bytes | None,
    watch_client: bool = True,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> UpstreamResponse:
    """Send the request upstream (buffered `body`, or the client's stream when None) and
    return the response head. The caller relays or discards the rest."""
    replayable = body is not None or not ex.has_body
    if replayable:
        data = body or b""
        framed = body is not None or ex.info.content_length is not None
        request = build_request(ex, policy, len(data) if framed else None, False, extra_headers)
    else:
        request = build_request(ex, policy, ex.info.content_length, ex.info.chunked, extra_headers)
        data = b""
    attempts = 2 if replayable and not ex.upgrade else 1
    for attempt in range(attempts):
        up = await pool.acquire(addr, fresh=ex.upgrade or attempt > 0)
        reused = up.reused
        try:
            response = None
            with trio.CancelScope(deadline=trio.current_time() + policy.upstream_timeout):
                try:
                    if replayable:
                        await _send_buffered(up, request, data)
                    else:
                        await _send_streamed(up, request, ex)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    raise UpstreamRefused("upstream closed while sending") from exc
                response = await _read_head(ex if watch_client and not ex.upgrade else None, up)
            if response is None:
                raise UpstreamTimeout()
            return UpstreamResponse(up, response)
        except UpstreamRefused:
            await up.aclose()
            if reused and attempt + 1 < attempts:
                continue
            raise
        except BaseException:
            await up.aclose()
            raise
    raise AssertionError("unreachable")


async def relay_response(
    ex: Exchange, resp: UpstreamResponse, pool: UpstreamPool, policy: ForwardPolicy
) -> None:
    """Stream the upstream's response to the client, then pool or close the upstream."""
    up = resp.up
    response = resp.response
    chunked = resp.header(b"transfer-encoding") is not None
    cl = resp.header(b"content-length")
    headers = downstream_response_headers(
        resp.headers,
        request_id=ex.request_id,
        content_length=int(cl) if cl is not None and not chunked else None,
        chunked=chunked,
        strip=policy.strip_response,
    )
    if policy.extra_response_headers is not None:
        headers.extend(policy.extra_response_headers())
    ok = False
    try:
        ex.status = response.status_code
        ex.response_started = True
        out = (
            ex.conn.send(
                h11.Response(  # parsed from upstream by h11 plus our own: validated once
                    status_code=response.status_code,
                    headers=headers,
                    reason=response.reason,
                    _parsed=True,
                )
            )
            or b""
        )
        keep_trailers = chunked and ex.http_version == b"1.1"
        while True:
            try:
                event = up.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamRefused(f"malformed upstream body: {exc}") from exc
            if event is h11.NEED_DATA:
                if out:
                    await ex.client.send(out)
                    out = b""
                with trio.move_on_after(policy.upstream_timeout) as scope:
                    try:
                        data = await up.stream.receive_some(READ_CHUNK)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                        raise UpstreamRefused("upstream reset mid-body") from exc
                if scope.cancelled_caught:
                    raise UpstreamTimeout("upstream stalled mid-body")
                up.conn.receive_data(data)
            elif isinstance(event, h11.Data):
                out += ex.conn.send(h11.Data(data=event.data)) or b""
                if len(out) >= FLUSH_AT:
                    await ex.client.send(out)
                    out = b""
            elif isinstance(event, h11.EndOfMessage):
                trailers = list(event.headers) if keep_trailers else []
                out += ex.conn.send(h11.EndOfMessage(headers=trailers)) or b""
                await ex.client.send(out)
                ok = True
                return
            else:
                raise UpstreamRefused("upstream closed mid-body")
    finally:
        if ok:
            await pool.release(up)
        else:
            await up.aclose()


async def discard_response(
    resp: UpstreamResponse, pool: UpstreamPool, limit: int = 1 << 20
) -> None:
    """Read and drop a (small) response body so its connection can be reused."""
    with contextlib.suppress(PreviewError):
        await read_response_body(resp, pool, limit)


async def read_response_body(resp: UpstreamResponse, pool: UpstreamPool, limit: int) -> bytes:
    """A whole (bounded) response body; the connection is pooled after, or closed on error."""
    up = resp.up
    parts: list[bytes] = []
    size = 0
    ok = False
    try:
        while True:
            event = await up.next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise UpstreamRefused("upstream answer too large")
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                ok = True
                return b"".join(parts)
            else:
                raise UpstreamRefused("upstream closed mid-body")
    finally:
        if ok:
            await pool.release(up)
        else:
            await up.aclose()


async def forward(
    ex: Exchange,
    pool: UpstreamPool,
    addr: tuple[str, int],
    policy: ForwardPolicy,
    *,
    body: bytes | None = None,
) -> int:
    """Proxy one exchange to `addr` and relay the answer; returns the status sent."""
    resp = await exchange_head(ex, pool, addr, policy, body=body)
    await relay_response(ex, resp, pool, policy)
    return resp.status


async def simple_request(
    pool: UpstreamPool,
    addr: tuple[str, int],
    method: bytes,
    target: bytes,
    headers: Headers,
    limit: int = 1 << 20,
) -> tuple[int, Headers, bytes]:
    """A bodiless request of the proxy's own (e.g. "does this session exist?").

    The caller bounds it in time.
    """
    up = await pool.acquire(addr)
    try:
        await _send_buffered(up, h11.Request(method=method, target=target, headers=headers), b"")
        response = await _read_head(None, up)
    except BaseException:
        await up.aclose()
        raise
    resp = UpstreamResponse(up, response)
    body = await read_response_body(resp, pool, limit)
    return resp.status, resp.headers, body
