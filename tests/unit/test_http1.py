"""The upstream-side HTTP/1.1 reader: framing, chunked decoding at any split, strictness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxycore.http1 import (
    NEED_DATA,
    End,
    ProtocolError,
    ResponseHead,
    ResponseReader,
    encode_chunk,
    last_chunk,
    serialize_head,
)


def read_all(
    raw: bytes, splits: list[int] | None = None, head_request: bool = False, eof: bool = False
):  # type: ignore[no-untyped-def]
    """Feed `raw` in pieces; return (head, body, trailers, reader)."""
    r = ResponseReader()
    r.expect_response(head_request)
    cuts = [*sorted(set(splits or [])), len(raw)]
    pieces, last = [], 0
    for c in cuts:
        pieces.append(raw[last:c])
        last = c
    head, body, trailers = None, b"", None
    for piece in [p for p in pieces if p] + ([b""] if eof else []):
        r.feed(piece)  # b"" is the peer's EOF
        while True:
            ev = r.next_event()
            if ev is NEED_DATA:
                break
            if isinstance(ev, ResponseHead):
                if 100 <= ev.status < 200 and ev.status != 101:
                    continue
                head = ev
            elif isinstance(ev, bytes):
                body += ev
            elif isinstance(ev, End):
                trailers = ev.trailers
                return head, body, trailers, r
            if head is not None and head.status == 101:
                return head, body, trailers, r
    return head, body, trailers, r


def test_content_length_body_and_reuse() -> None:
    head, body, trailers, r = read_all(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello"
    )
    assert head is not None and (head.status, head.reason, head.headers) == (
        200,
        b"OK",
        [(b"content-length", b"5"), (b"x-a", b"b")],
    )
    assert body == b"hello" and trailers == [] and r.reusable()


@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=6),
    splits=st.lists(st.integers(0, 3000), max_size=12),
)
def test_chunked_decodes_the_same_at_any_split(chunks: list[bytes], splits: list[int]) -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw += b"".join(encode_chunk(c) for c in chunks) + last_chunk([(b"x-sum", b"1")])
    _head, body, trailers, r = read_all(raw, [s for s in splits if s < len(raw)])
    assert body == b"".join(chunks) and trailers == [(b"x-sum", b"1")] and r.reusable()


def test_chunk_extensions_and_no_trailers() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n"
    _, body, trailers, r = read_all(raw)
    assert body == b"abc" and trailers == [] and r.reusable()


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    _, body, trailers, r = read_all(f"HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n".encode())
    assert body == b"" and trailers == [] and r.reusable()


def test_head_request_has_no_body() -> None:
    _, body, _, r = read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head_request=True)
    assert body == b"" and r.reusable()


def test_interim_answers_are_skipped() -> None:
    head, body, _, _ = read_all(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"
    )
    assert head is not None and head.status == 200 and body == b"z"


def test_101_leaves_the_rest_to_the_caller() -> None:
    head, _, _, r = read_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    )
    assert (
        head is not None
        and head.status == 101
        and r.leftover == b"\x81\x05hello"
        and not r.reusable()
    )


def test_close_delimited_body_is_not_reused() -> None:
    _, body, _, r = read_all(b"HTTP/1.1 200 OK\r\n\r\nuntil close", eof=True)
    assert body == b"until close" and not r.reusable()


@pytest.mark.parametrize(
    ("raw", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", True),
    ],
)
def test_keep_alive_rules(raw: bytes, reusable: bool) -> None:
    assert read_all(raw)[3].reusable() is reusable


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
    ],
)
def test_malformed_answers_raise(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        read_all(raw)


def test_truncated_bodies_raise_at_eof() -> None:
    with pytest.raises(ProtocolError):
        read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", eof=True)
    with pytest.raises(ProtocolError):
        read_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", eof=True)
    with pytest.raises(ProtocolError):
        read_all(b"HTTP/1.1 200 O", eof=True)


def test_serialize_head() -> None:
    assert serialize_head(b"GET", b"/p?q=1", [(b"host", b"h"), (b"x", b"y")]) == (
        b"GET /p?q=1 HTTP/1.1\r\nhost: h\r\nx: y\r\n\r\n"
    )
