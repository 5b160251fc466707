"""The listener and the per-connection HTTP/1.1 loop, shared by router and node.

One `ClientConnection` per accepted socket. It owns the read buffer, so every
request head (pipelined ones too) is parsed by `headscan.scan_head` and every body
read by `http1`'s strict framing readers from the same bytes, and it owns the
header deadline. What happens to a parsed request is the `Handler`'s business;
errors raised from it are answered here, once, via `errors.status_for`, and every
finished exchange (answered, failed or abandoned) is reported once to the server's
`on_finished` hook, where each app keeps its metrics and access log.

Never: buffer a body without a limit, or let a handler's exception escape and
take the listener down.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from proxycore.errors import (
    MalformedHTTP,
    NotFound,
    OverCapacity,
    PreviewError,
    RequestTimeout,
    TooLarge,
    error_response,
    status_for,
)
from proxycore.errors import reason as http_reason
from proxycore.headers import Headers, get, is_websocket_upgrade, request_id
from proxycore.headscan import HeadInfo, find_head_end, scan_head
from proxycore.http1 import (
    NEED_DATA,
    ChunkedBody,
    End,
    LengthBody,
    ProtocolError,
    serialize_response_head,
)
from proxycore.response import Framing, client_keeps_alive, frame_response
from proxycore.sockio import Socket

log = logging.getLogger("preview.http")
READ_CHUNK = 64 * 1024


class ClientGone(Exception):
    """The client closed or reset its connection mid-exchange."""


@dataclass
class ServerLimits:
    header_timeout: float = 30.0
    max_connections: int = 10_000


class Handler(Protocol):
    async def handle(self, ex: Exchange) -> None: ...


Finished = Callable[["Exchange"], None]


class Exchange:
    """One request on a client connection: its head, its body, and the response to it."""

    __slots__ = (
        "_body",
        "_continue_sent",
        "client",
        "extra_headers",
        "headers",
        "http_version",
        "info",
        "keep_alive",
        "method",
        "peer",
        "request_id",
        "response_done",
        "response_started",
        "route",
        "started_at",
        "status",
        "target",
        "upgrade",
        "upstream",
    )

    def __init__(self, client: ClientConnection, info: HeadInfo) -> None:
        self.client = client
        self.method: bytes = info.method
        self.target: bytes = info.target
        self.headers: Headers = info.headers
        self.http_version: bytes = info.http_version
        self.keep_alive = client_keeps_alive(self.http_version, self.headers)
        self.response_done = False
        self._continue_sent = False
        self.info = info
        self.peer = client.peer
        self.request_id = request_id(self.headers)
        self.upgrade = is_websocket_upgrade(self.headers)
        self.status = 0
        self.extra_headers: Headers = []  # added to every response: generated, relayed or 101
        self.response_started = False
        # Labels the app sets for its finished-request hook: the route class it chose
        # and the upstream (node) it forwarded to.
        self.route = "error"
        self.upstream = ""
        self.started_at = time.perf_counter()
        # The body still to read; None once read, or when there is none.
        self._body: LengthBody | ChunkedBody | None = None
        if info.chunked:
            self._body = ChunkedBody()
        elif info.content_length:
            self._body = LengthBody(info.content_length)

    @property
    def has_body(self) -> bool:
        return bool(self.info.chunked or self.info.content_length)

    def header(self, name: bytes) -> bytes | None:
        return get(self.headers, name)

    async def body_chunks(self) -> AsyncIterator[bytes | Headers]:
        """The body in chunks of at most 64 KiB, then a `Headers` list if there are trailers."""
        if self._body is None:
            return
        if self.info.expects_continue and not self._continue_sent:
            self._continue_sent = True
            await self.client.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        buf = self.client.buf
        while True:
            try:
                event = self._body.next(buf, False)
            except ProtocolError as exc:
                raise MalformedHTTP(str(exc)) from exc
            if isinstance(event, bytes):
                yield event
            elif isinstance(event, End):
                self._body = None
                if event.trailers:
                    yield event.trailers
                return
            else:
                assert event is NEED_DATA
                data = await self.client.receive()
                if not data:
                    raise ClientGone()
                buf += data

    async def read_body(self, limit: int) -> bytes:
        """The whole body, refused with 413 from Content-Length or once it passes `limit`."""
        if self.info.content_length is not None and self.info.content_length > limit:
            raise TooLarge(f"request body over {limit} bytes")
        parts: list[bytes] = []
        size = 0
        async for chunk in self.body_chunks():
            if isinstance(chunk, bytes):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"request body over {limit} bytes")
                parts.append(chunk)
        return b"".join(parts)

    async def respond(
        self,
        status: int,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes = b"",
        reason: bytes = b"",
    ) -> None:
        """A complete response in one write."""
        hdrs = [*headers, *self.extra_headers, (b"x-request-id", self.request_id)]
        if not any(k.lower() == b"content-length" for k, _ in hdrs):
            hdrs.append((b"content-length", str(len(body)).encode()))
        framing = self.start_response(status, reason or http_reason(status), hdrs)
        self.response_done = True
        await self.client.send(framing.head + framing.body(body) + framing.end())

    def start_response(self, status: int, reason: bytes, headers: Headers) -> Framing:
        """Frame a final response to this request; the caller sends its head and body."""
        framing = frame_response(
            status,
            reason,
            headers,
            head_request=self.method == b"HEAD",
            http11_client=self.http_version == b"1.1",
            client_keep_alive=self.keep_alive,
        )
        self.status = status
        self.response_started = True
        self.keep_alive = framing.keep_alive
        return framing

    def switching_protocols(self, reason: bytes, headers: Headers) -> bytes:
        """The head of a 101: after it, the connection belongs to the tunnel."""
        self.status = 101
        self.response_started = True
        self.response_done = True
        self.keep_alive = False
        return serialize_response_head(101, reason, headers)

    @property
    def request_done(self) -> bool:
        """The whole request, body included, was read."""
        return self._body is None

    def leftover(self) -> bytes:
        """Bytes the client sent past this request, taken (a tunnel's first bytes)."""
        data = bytes(self.client.buf)
        self.client.buf.clear()
        return data

    async def respond_error(self, err: PreviewError) -> None:
        status, headers, body = error_response(err, self.header(b"accept"))
        if err.close_connection:
            headers.append((b"connection", b"close"))
        await self.respond(status, headers, body)


class ClientConnection:
    """One accepted socket: read heads strictly, hand requests to the handler, keep alive."""

    def __init__(
        self,
        stream: Socket,
        handler: Handler,
        limits: ServerLimits,
        peer: str,
        on_finished: Finished | None = None,
    ) -> None:
        self.stream = stream
        self.handler = handler
        self.limits = limits
        self.peer = peer
        self.on_finished = on_finished
        self.buf = bytearray()
        self.closed = False

    async def send(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ClientGone() from exc

    async def receive(self, deadline: float = math.inf) -> bytes:
        """The client's next bytes; a wait past `deadline` raises `trio.TooSlowError`."""
        try:
            return await self.stream.receive_some(READ_CHUNK, deadline)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ClientGone() from exc

    async def _read_head(self, deadline: float) -> bytes | None:
        """The next request head, or None on a clean close between requests.

        Only the waits are bounded by `deadline` (`trio.TooSlowError` past it): a head
        that is already there, or arrives while other tasks run, needs no timer."""
        while True:
            end = find_head_end(self.buf)
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[:end]
                return head
            data = await self.receive(deadline)
            if not data:
                if self.buf.strip():
                    raise MalformedHTTP("connection closed inside a request head")
                return None
            self.buf += data

    async def serve(self) -> None:
        try:
            await self._requests()
        except ClientGone:
            pass
        finally:
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _requests(self) -> None:
        while True:
            # The header deadline runs from the connection's start or the previous response.
            # It is handed to the socket, which bounds only the calls that have to wait: no
            # cancel scope per request (setting a scope's deadline twice per request was
            # 3.4% of the router's CPU at 1 KiB c=32).
            deadline = trio.current_time() + self.limits.header_timeout
            try:
                head = await self._read_head(deadline)
            except trio.TooSlowError:
                if self.buf:
                    await self._answer_early(RequestTimeout())  # an idle connection just closes
                return
            except PreviewError as exc:
                await self._answer_early(exc)
                return
            if head is None:
                return
            try:
                ex = Exchange(self, scan_head(head))
            except PreviewError as exc:
                await self._answer_early(exc)
                return
            try:
                keep = await self._run_handler(ex)
            finally:
                if self.on_finished is not None:
                    self.on_finished(ex)
            if not keep:
                if ex.status >= 400 and ex.response_done:
                    await self._linger()  # e.g. a 413 sent before the body was read
                return

    async def _answer_early(self, exc: PreviewError) -> None:
        """Answer a request we could not parse: no h11 state to trust, so write bytes directly."""
        # Shield first, deadline inside: a deadline outside a shield never reaches in.
        with trio.CancelScope(shield=True), trio.move_on_after(1), contextlib.suppress(ClientGone):
            await self.send(closing_error(exc))
        await self._linger()

    async def _linger(self, seconds: float = 1.0, limit: int = 1 << 20) -> None:
        """Half-close, then read and drop what the client still sends, briefly.

        Closing a socket with unread input makes the kernel send a reset, which can
        destroy our error response before the client reads it (nginx's lingering_close).
        """
        with trio.CancelScope(shield=True), trio.move_on_after(seconds):
            try:
                await self.stream.send_eof()
                seen = 0
                while seen < limit:
                    data = await self.stream.receive_some(READ_CHUNK)
                    if not data:
                        return
                    seen += len(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return

    async def _run_handler(self, ex: Exchange) -> bool:
        """Run the handler; answer its error if nothing was sent yet. True to keep the socket."""
        try:
            await self.handler.handle(ex)
        except ClientGone:
            return False
        except Exception as exc:
            err = status_for(exc)
            if err.status >= 500 and not isinstance(exc, PreviewError):
                log.exception("handler failed", extra={"request_id": ex.request_id.decode()})
            if ex.response_started:
                return False
            await ex.respond_error(err)
            if err.close_connection:
                return False
        if not ex.response_done:
            return False
        if not ex.request_done:
            # The handler answered without reading the body (e.g. an early 4xx): drain a little.
            try:
                with trio.move_on_after(1):
                    async for _ in ex.body_chunks():
                        pass
            except (MalformedHTTP, ClientGone):
                return False
        return ex.keep_alive and ex.request_done


class AdminOnly:
    """The handler of an `--admin-listen` port: /metrics, /healthz and /readyz, nothing else."""

    PATHS = frozenset({b"/metrics", b"/healthz", b"/readyz"})

    def __init__(self, app: Handler) -> None:
        self.app = app

    async def handle(self, ex: Exchange) -> None:
        if ex.target.partition(b"?")[0] not in self.PATHS:
            raise NotFound()
        await self.app.handle(ex)


def _peer_of(stream: Socket) -> str:
    try:
        addr = stream.socket.getpeername()
    except OSError:
        return ""
    return str(addr[0]) if isinstance(addr, tuple) else str(addr)


def enable_keepalive(stream: Socket) -> None:
    """TCP keepalive, so dead peers of long-lived sockets (tunnels) are noticed."""
    sock = stream.socket
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
    except OSError:
        pass


class HTTPServer:
    """Accept loop with a connection cap; `serve` is `nursery.start`-able."""

    def __init__(
        self,
        handler: Handler,
        limits: ServerLimits,
        on_connection: Callable[[int], None] | None = None,
        on_finished: Finished | None = None,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.open_connections = 0
        self.accepting = True
        self._on_connection = on_connection
        self._on_finished = on_finished

    async def serve(
        self,
        listeners: Sequence[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[Sequence[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener, nursery)
            task_status.started(listeners)

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while self.accepting:
                try:
                    stream = await listener.accept()
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    return
                except OSError as exc:
                    log.warning("accept failed: %s", exc)
                    await trio.sleep(0.01)
                    continue
                nursery.start_soon(self._handle, stream)

    def _count(self, delta: int) -> None:
        self.open_connections += delta
        if self._on_connection:
            self._on_connection(self.open_connections)

    async def _handle(self, stream: trio.SocketStream) -> None:
        self._count(1)
        try:
            if self.open_connections > self.limits.max_connections:
                await _refuse(stream)
                return
            sock = Socket.from_stream(stream)
            conn = ClientConnection(
                sock, self.handler, self.limits, _peer_of(sock), self._on_finished
            )
            await conn.serve()
        finally:
            self._count(-1)


def closing_error(err: PreviewError) -> bytes:
    """A complete error response that ends the connection, for when no request was parsed."""
    status, headers, body = error_response(err)
    headers.append((b"connection", b"close"))
    return serialize_response_head(status, http_reason(status), headers) + body


async def _refuse(stream: trio.SocketStream) -> None:
    with trio.move_on_after(1):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(closing_error(OverCapacity("too many connections")))
    await stream.aclose()


async def open_listeners(
    host: str, port: int, sock: socket.socket | None = None
) -> list[trio.SocketListener]:
    """Listeners on host:port, or around an inherited, already-bound socket (workers)."""
    if sock is not None:
        return [trio.SocketListener(trio.socket.from_stdlib_socket(sock))]
    return await trio.open_tcp_listeners(port, host=host, backlog=1024)
