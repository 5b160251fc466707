"""How a response to the client is framed: its head's bytes, body encoding, keep-alive (pure).

The server side of RFC 9112 §6 for what this proxy sends: no body for HEAD, 1xx,
204 and 304; `Content-Length` when the length is known; otherwise `chunked` to an
HTTP/1.1 client, or the body delimited by closing the connection to an HTTP/1.0
one. The connection is kept only when the client wants it kept (HTTP/1.1 without
`Connection: close`) and the response allows it; when it will close, the head says
`Connection: close`. The same rules as h11's server side, in one function, so a
response head is built once from headers already validated where they came from
(the strict upstream parser, or the proxy's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proxycore.headers import connection_tokens
from proxycore.http1 import encode_chunk, last_chunk, serialize_response_head

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Framing:
    head: bytes  # the response head, ready to send
    has_body: bool  # False: nothing after the head (HEAD, 1xx, 204, 304)
    chunked: bool  # body bytes go out chunk-encoded
    keep_alive: bool  # the connection may carry another request after this response

    def body(self, data: bytes) -> bytes:
        if not self.has_body or not data:
            return b""
        return encode_chunk(data) if self.chunked else data

    def end(self, trailers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
        return last_chunk(trailers) if self.has_body and self.chunked else b""


def client_keeps_alive(http_version: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """HTTP/1.1 without `Connection: close` (HTTP/1.0 connections are never reused)."""
    return http_version == b"1.1" and b"close" not in connection_tokens(headers)


def frame_response(
    status: int,
    reason: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    *,
    head_request: bool,
    http11_client: bool,
    client_keep_alive: bool,
) -> Framing:
    """The head and body framing of a final response (status >= 200) to one request."""
    out = list(headers)
    has_te = has_cl = has_conn = False
    for k, _ in out:  # one pass: this runs for every response
        if k == b"content-length":
            has_cl = True
        elif k == b"transfer-encoding":
            has_te = True
        elif k == b"connection":
            has_conn = True
    keep = client_keep_alive and not (has_conn and b"close" in connection_tokens(out))
    bodiless_status = status < 200 or status in (204, 304)
    chunked = False
    if not bodiless_status and (has_te or not has_cl):
        # Unknown length: chunked to HTTP/1.1, close-delimited to HTTP/1.0.
        out = [(k, v) for k, v in out if k not in (b"content-length", b"transfer-encoding")]
        if http11_client:
            out.append((b"transfer-encoding", b"chunked"))
            chunked = True
        elif not head_request:
            keep = False
    if not keep:
        tokens = connection_tokens(out) - {b"keep-alive"}
        out = [(k, v) for k, v in out if k != b"connection"]
        out.append((b"connection", b", ".join(sorted(tokens | {b"close"}))))
    has_body = not (head_request or bodiless_status)
    return Framing(serialize_response_head(status, reason, out), has_body, chunked, keep)
