"""Request-head checks: the smuggling and oversize table (CONTRACT §2 "HTTP limits")."""

from __future__ import annotations

import pytest

from proxycore.errors import (
    HeadersTooLarge,
    MalformedHTTP,
    NotImplementedCoding,
    URITooLong,
    VersionNotSupported,
)
from proxycore.headscan import find_head_end, scan_head

H = b"GET / HTTP/1.1\r\nHost: x\r\n"

TABLE: list[tuple[bytes, type[Exception] | None]] = [
    (H + b"\r\n", None),
    (H + b"Content-Length: 5\r\n\r\n", None),
    (H + b"Transfer-Encoding: chunked\r\n\r\n", None),
    (H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n", None),  # identical: allowed
    (H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", MalformedHTTP),
    (H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", MalformedHTTP),
    (H + b"Content-Length: 05\r\nContent-Length: 5\r\n\r\n", MalformedHTTP),  # as written
    (H + b"Content-Length: 5, 6\r\n\r\n", MalformedHTTP),
    (H + b"Content-Length: -1\r\n\r\n", MalformedHTTP),
    (H + b"Content-Length: +5\r\n\r\n", MalformedHTTP),
    (H + b"Transfer-Encoding: chunked, chunked\r\n\r\n", MalformedHTTP),
    (H + b"Transfer-Encoding: gzip, chunked\r\n\r\n", MalformedHTTP),
    (H + b"Transfer-Encoding: \x0bchunked\r\n\r\n", MalformedHTTP),
    (H + b"Transfer-Encoding : chunked\r\n\r\n", MalformedHTTP),
    (H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", MalformedHTTP),
    (H + b"Transfer-Encoding: br\r\n\r\n", NotImplementedCoding),
    (H + b"X-A: 1\r\n folded\r\n\r\n", MalformedHTTP),
    (H + b"X-A: 1\rX-B: 2\r\n\r\n", MalformedHTTP),
    (H + b"X-A: 1\nX-B: 2\r\n\r\n", MalformedHTTP),
    (H + b"X-A: a\x00b\r\n\r\n", MalformedHTTP),
    (H + b"NoColon\r\n\r\n", MalformedHTTP),
    (b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", URITooLong),
    (H + b"X-Big: " + b"a" * 66_000 + b"\r\n\r\n", HeadersTooLarge),
    (b"GET / HTTP/1.0\r\n\r\n", None),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", VersionNotSupported),
    (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", VersionNotSupported),
    (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", VersionNotSupported),
    (b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", VersionNotSupported),
]


@pytest.mark.parametrize(("head", "error"), TABLE)
def test_head_table(head: bytes, error: type[Exception] | None) -> None:
    if error is None:
        scan_head(head)
    else:
        with pytest.raises(error):
            scan_head(head)


def test_framing_is_reported() -> None:
    info = scan_head(H + b"Content-Length: 007\r\n\r\n")
    assert (info.content_length, info.chunked) == (7, False)
    info = scan_head(H + b"Transfer-Encoding: Chunked\r\n\r\n")
    assert (info.content_length, info.chunked) == (None, True)


def test_incomplete_heads_are_bounded_early() -> None:
    assert find_head_end(b"GET / HTTP/1.1\r\nHost") == -1
    with pytest.raises(URITooLong):
        find_head_end(b"GET /" + b"a" * 9000)
    with pytest.raises(HeadersTooLarge):
        find_head_end(H + b"X: " + b"a" * 80_000)
    with pytest.raises(MalformedHTTP):
        find_head_end(b"GET / HTTP/1.1\nHost: x\n\n")
    assert find_head_end(H + b"\r\nBODY") == len(H) + 2
