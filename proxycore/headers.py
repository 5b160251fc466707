"""Header rewriting for one proxy hop (pure).

What Go's ReverseProxy and Caddy do: drop hop-by-hop headers and every header a
`Connection` header names, add `X-Forwarded-*` (kept from the client only when
the peer is a trusted proxy), keep or mint `X-Request-ID`, and keep Host. Names
arrive lower-cased from both parsers.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import os
import re
from collections.abc import Iterable, Sequence

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"expect",
        b"content-length",  # re-added from the framing the parser reports, never copied blindly
    }
)
# Request headers the proxy sets itself (from the client only through a trusted peer).
_MINTED_HERE = frozenset(
    {b"x-request-id", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
)
_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(spec: str) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()
    )


def is_trusted(peer: str, trusted: Sequence[Network]) -> bool:
    if not trusted:
        return False
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(addr in net for net in trusted)


def get(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


def connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for k, v in headers:
        if k == b"connection":
            tokens.update(t.strip().lower() for t in v.split(b",") if t.strip())
    return tokens


def is_websocket_upgrade(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    upgrade = False
    conn_upgrade = False
    for k, v in headers:
        if k == b"upgrade" and b"websocket" in v.lower():
            upgrade = True
        elif k == b"connection" and b"upgrade" in v.lower():
            conn_upgrade = True
    return upgrade and conn_upgrade


_ID_PREFIX = os.urandom(6).hex()
_id_counter = itertools.count(1)


def new_request_id() -> bytes:
    """Unique per process start (random prefix) and per request (counter): no syscall each."""
    return f"{_ID_PREFIX}{next(_id_counter):012x}".encode()


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    given = get(headers, b"x-request-id")
    if given is not None and _REQUEST_ID_RE.match(given):
        return given
    return new_request_id()


def end_to_end(
    headers: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes] = frozenset()
) -> Headers:
    """Headers minus hop-by-hop ones, those named in Connection, and `drop`."""
    headers = list(headers)
    named = connection_tokens(headers)
    if named:
        drop = drop | named
    return [(k, v) for k, v in headers if k not in HOP_BY_HOP and k not in drop]


def framing(content_length: int | None, chunked: bool) -> Headers:
    if chunked:
        return [(b"transfer-encoding", b"chunked")]
    if content_length is not None:
        return [(b"content-length", str(content_length).encode())]
    return []


def upstream_request_headers(
    headers: Sequence[tuple[bytes, bytes]],
    *,
    peer: str,
    trusted: bool,
    request_id: bytes,
    content_length: int | None,
    chunked: bool,
    upgrade: bool,
) -> Headers:
    """The request's headers as the upstream should see them."""
    out = end_to_end(headers, _MINTED_HERE)
    # RFC 9110 §5.3: several X-Forwarded-For lines mean the same as one comma-joined line.
    prior_for = b", ".join(v for k, v in headers if k == b"x-forwarded-for") if trusted else None
    proto = (get(headers, b"x-forwarded-proto") if trusted else None) or b"http"
    host = (get(headers, b"x-forwarded-host") if trusted else None) or get(headers, b"host")
    out.append(
        (b"x-forwarded-for", prior_for + b", " + peer.encode() if prior_for else peer.encode())
    )
    out.append((b"x-forwarded-proto", proto))
    if host:
        out.append((b"x-forwarded-host", host))
    out.append((b"x-request-id", request_id))
    if upgrade:
        out.append((b"connection", b"Upgrade"))
        out.append((b"upgrade", get(headers, b"upgrade") or b"websocket"))
    out.extend(framing(content_length, chunked))
    return out


@functools.lru_cache(maxsize=16)
def _with_request_id(strip: frozenset[bytes]) -> frozenset[bytes]:
    return strip | {b"x-request-id"}


def downstream_response_headers(
    headers: Sequence[tuple[bytes, bytes]],
    *,
    request_id: bytes,
    content_length: int | None,
    chunked: bool,
    strip: frozenset[bytes] = frozenset(),
) -> Headers:
    """The upstream response's headers as the client should see them."""
    out = end_to_end(headers, _with_request_id(strip))
    out.append((b"x-request-id", request_id))
    out.extend(framing(content_length, chunked))
    return out
