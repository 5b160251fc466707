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
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

from proxycore import splice
from proxycore.errors import PreviewError, UpstreamRefused, UpstreamTimeout
from proxycore.headers import (
    Headers,
    downstream_response_headers,
    get,
    is_trusted,
    upstream_request_headers,
)
from proxycore.headers import Network as TrustedNetwork
from proxycore.http1 import (
    NEED_DATA,
    End,
    Event,
    ResponseHead,
    encode_chunk,
    last_chunk,
    serialize_head,
)
from proxycore.server import ClientGone, Exchange
from proxycore.upstream import Address, UpstreamConnection, UpstreamPool

FLUSH_AT = 64 * 1024
# How long to wait for a response head before also watching the client for a hang-up:
# most answers come sooner, and watching costs a task per request.
_WATCH_CLIENT_AFTER = 0.2


@dataclass
class ForwardPolicy:
    upstream_timeout: float = 60.0
    trusted: Sequence[TrustedNetwork] = ()
    strip_response: frozenset[bytes] = frozenset()
    drop_request: frozenset[bytes] = field(default_factory=frozenset)
    # Sees (and may extend) the headers of each relayed response before they are sent,
    # e.g. a Content-Security-Policy on HTML only.
    on_response: Callable[[Exchange, int, Headers], None] | None = None


@dataclass(slots=True)
class UpstreamResponse:
    """A response head read from upstream, with the connection its body is still on."""

    up: UpstreamConnection
    response: ResponseHead

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Headers:
        return self.response.headers

    def header(self, name: bytes) -> bytes | None:
        return get(self.response.headers, name)


@dataclass(slots=True)
class OutRequest:
    """A request as it goes upstream: its head already serialized, and its body framing."""

    method: bytes
    head: bytes
    chunked: bool


def build_request(
    ex: Exchange,
    policy: ForwardPolicy,
    body_length: int | None,
    chunked: bool,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> OutRequest:
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
    # Names and values were validated when h11 parsed them from the client (and the
    # target by headscan and h11); the ones we add are ours.
    return OutRequest(ex.method, serialize_head(ex.method, ex.target, headers), chunked)


async def _send_buffered(
    up: UpstreamConnection, request: OutRequest, body: bytes, deadline: float = math.inf
) -> None:
    up.reader.expect_response(request.method == b"HEAD")
    await up.send(request.head + body if body else request.head, deadline)


async def _send_streamed(up: UpstreamConnection, request: OutRequest, ex: Exchange) -> None:
    up.reader.expect_response(request.method == b"HEAD")
    pending = request.head
    async for chunk in ex.body_chunks():
        if isinstance(chunk, bytes):
            pending += encode_chunk(chunk) if request.chunked else chunk
            await up.send(pending)
            pending = b""
        else:  # trailers: only a chunked body has them
            await up.send(pending + last_chunk(chunk))
            return
    if request.chunked:
        pending += last_chunk()
    if pending:
        await up.send(pending)


async def _watching_client(ex: Exchange, up: UpstreamConnection) -> Event:
    """Wait for the response head, abandoning it if the client hangs up meanwhile.

    An upstream failure leaves the nursery as itself, not inside an exception group: the
    caller retries a reused connection on `UpstreamRefused`, and the server maps it to
    502 (wrapped, it was neither: a 500, and no retry, for any head slower than
    `_WATCH_CLIENT_AFTER`, which under CPU load is most of them)."""
    result: list[Event] = []
    failed: list[UpstreamRefused] = []
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
        try:
            result.append(await up.next_event())
        except UpstreamRefused as exc:
            failed.append(exc)
        cancel.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, nursery.cancel_scope)
        nursery.start_soon(wait_head, nursery.cancel_scope)
    if failed:
        raise failed[0]
    if result:
        return result[0]
    assert gone
    raise ClientGone()


async def _read_head(
    up: UpstreamConnection, ex: Exchange | None = None, deadline: float = math.inf
) -> ResponseHead:
    """The final response head (1xx interim answers skipped); with `ex`, the client is
    watched for a hang-up meanwhile. A wait past `deadline` raises `trio.TooSlowError`."""
    while True:
        event = await (up.next_event(deadline) if ex is None else _watching_client(ex, up))
        if isinstance(event, ResponseHead):
            if 100 <= event.status < 200 and event.status != 101:
                continue  # 100 Continue / 103 Early Hints: not relayed
            return event
        raise UpstreamRefused("upstream closed without a response")


async def _send_and_read_head(
    ex: Exchange,
    up: UpstreamConnection,
    request: OutRequest,
    body: bytes | None,
    watch: bool,
    deadline: float,
) -> ResponseHead | None:
    """Send the request and read its response head by `deadline`; None if it ran out.

    Most answers come within `_WATCH_CLIENT_AFTER`: until then no task watches the
    client (a task per request is dear on this path); only a slower answer gets one.
    A buffered request is bounded by deadlines on its socket calls, with no cancel
    scope at all (sockio: a scope per exchange cost ~11% of the router's CPU); a
    streamed body reads the client too, so it keeps a scope."""
    try:
        if body is None:
            return await _send_streamed_and_read_head(ex, up, request, watch, deadline)
        try:
            await _send_buffered(up, request, body, deadline)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise UpstreamRefused("upstream closed while sending") from exc
        first = min(deadline, trio.current_time() + _WATCH_CLIENT_AFTER) if watch else deadline
        return await _read_head(up, deadline=first)
    except trio.TooSlowError:
        pass
    if not watch or trio.current_time() >= deadline:
        return None
    with trio.move_on_at(deadline):
        return await _read_head(up, ex)
    return None


async def _send_streamed_and_read_head(
    ex: Exchange, up: UpstreamConnection, request: OutRequest, watch: bool, deadline: float
) -> ResponseHead:
    """Stream the client's body upstream, then read the head until `deadline` (or, when
    watching, `_WATCH_CLIENT_AFTER` after the body); past it, `trio.TooSlowError`."""
    with trio.CancelScope(deadline=deadline) as scope:
        try:
            await _send_streamed(up, request, ex)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise UpstreamRefused("upstream closed while sending") from exc
        if watch:
            scope.deadline = min(deadline, trio.current_time() + _WATCH_CLIENT_AFTER)
        return await _read_head(up)
    raise trio.TooSlowError()


async def exchange_head(
    ex: Exchange,
    pool: UpstreamPool,
    addr: Address,
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
    watch = watch_client and not ex.upgrade
    for attempt in range(attempts):
        up = await pool.acquire(addr, fresh=ex.upgrade or attempt > 0)
        reused = up.reused
        try:
            deadline = trio.current_time() + policy.upstream_timeout
            body_now = data if replayable else None
            response = await _send_and_read_head(ex, up, request, body_now, watch, deadline)
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


def is_event_stream(content_type: bytes | None) -> bool:
    """`text/event-stream` (Server-Sent Events), parameters and case aside."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"text/event-stream"


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
    headers.extend(ex.extra_headers)
    if policy.on_response is not None:
        policy.on_response(ex, response.status, headers)
    # An event stream is silent by design between events: the upstream timeout bounds
    # its head, never its life (the client going away ends it).
    stall = math.inf if is_event_stream(resp.header(b"content-type")) else policy.upstream_timeout
    ok = False
    try:
        framing = ex.start_response(response.status, response.reason, headers)
        out = framing.head
        verbatim = splice.available() and framing.has_body and not framing.chunked
        while True:
            event = up.poll()
            if event is NEED_DATA:
                if out:
                    await ex.client.send(out)
                    out = b""
                left = up.reader.unbuffered_length_left() if verbatim else 0
                if left >= splice.SPLICE_AT:
                    moved = await splice.splice_body(up.stream, ex.client.stream, left, stall)
                    if moved is not None:
                        up.reader.moved_past(moved)
                        continue
                    verbatim = False  # refused here: copy instead
                with trio.move_on_after(stall) as scope:
                    await up.receive()
                if scope.cancelled_caught:
                    raise UpstreamTimeout("upstream stalled mid-body")
            elif isinstance(event, bytes):
                out += framing.body(event)
                if len(out) >= FLUSH_AT:
                    await ex.client.send(out)
                    out = b""
            elif isinstance(event, End):
                out += framing.end(event.trailers)
                await ex.client.send(out)
                ex.response_done = True
                ok = True
                return
            else:
                raise UpstreamRefused("unexpected response head mid-body")
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
            if isinstance(event, bytes):
                size += len(event)
                if size > limit:
                    raise UpstreamRefused("upstream answer too large")
                parts.append(event)
            elif isinstance(event, End):
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
    addr: Address,
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
    addr: Address,
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
        await _send_buffered(
            up, OutRequest(method, serialize_head(method, target, headers), False), b""
        )
        response = await _read_head(up)
    except BaseException:
        await up.aclose()
        raise
    resp = UpstreamResponse(up, response)
    body = await read_response_body(resp, pool, limit)
    return resp.status, resp.headers, body
