"""Which browser origins may call the API, and the CORS answers they get (pure).

A browser attaches `Origin` to every cross-origin request (and to same-origin ones that
are not GET/HEAD), so an API request carrying an `Origin` not in `--api-cors-origins` is
one some web page made a visitor's browser send: it is refused (403) before anything
happens. Listed origins (a browser-based generator) get CORS answers, preflight
included. Requests without `Origin` (curl, servers, the `preview` client) are not
browsers and are not affected.
"""

from __future__ import annotations

from previewcore.errors import ForbiddenOrigin

Headers = list[tuple[bytes, bytes]]
ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = b"authorization, content-type, last-event-id, x-request-id"
MAX_AGE = b"600"


def parse_origins(spec: str) -> frozenset[str]:
    """`https://a.example,https://b.example` -> the set (scheme://host[:port], no path)."""
    origins = frozenset(o.strip().rstrip("/").lower() for o in spec.split(",") if o.strip())
    for origin in origins:
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            raise ValueError(f"--api-cors-origins: {origin!r} is not scheme://host[:port]")
    return origins


def check_origin(origin: bytes | None, allowed: frozenset[str]) -> Headers:
    """The CORS headers for an API answer; 403 for an origin that is not allowed."""
    if origin is None:
        return []
    text = origin.decode("latin-1").lower()
    if text not in allowed:
        raise ForbiddenOrigin(f"origin {text[:100]} may not call the API")
    return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]


def preflight(origin: bytes | None, allowed: frozenset[str]) -> Headers:
    """The answer to `OPTIONS /kontext/...` from an allowed origin (else 403)."""
    if origin is None:
        raise ForbiddenOrigin("a CORS preflight needs an Origin")
    return [
        *check_origin(origin, allowed),
        (b"access-control-allow-methods", ALLOW_METHODS),
        (b"access-control-allow-headers", ALLOW_HEADERS),
        (b"access-control-max-age", MAX_AGE),
    ]
