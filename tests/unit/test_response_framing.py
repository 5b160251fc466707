"""frame_response(): the head, body encoding and keep-alive of what the proxy sends (pure).

h11's server side is the oracle: for each case the same response is sent through an
h11 connection that read the same request, and both must agree on the bytes on the
wire (modulo header order) and on whether the connection may be reused.
"""

from __future__ import annotations

import h11
import pytest

from proxycore.response import client_keeps_alive, frame_response

CL5 = [(b"content-length", b"5")]
CHUNKED = [(b"transfer-encoding", b"chunked")]


def h11_wire(request: bytes, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(request)
    while not isinstance(conn.next_event(), h11.EndOfMessage):
        pass
    out = conn.send(h11.Response(status_code=status, headers=headers, reason=b"R")) or b""
    if body:
        out += conn.send(h11.Data(data=body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out, conn.our_state is h11.DONE


def ours(request: bytes, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
    line, *rest = request.split(b"\r\n\r\n")[0].split(b"\r\n")
    method, _, version = line.split(b" ")
    req_headers = [(k.lower(), v.strip()) for k, _, v in (h.partition(b":") for h in rest)]
    http_version = version.removeprefix(b"HTTP/")
    f = frame_response(
        status,
        b"R",
        headers,
        head_request=method == b"HEAD",
        http11_client=http_version == b"1.1",
        client_keep_alive=client_keeps_alive(http_version, req_headers),
    )
    return f.head + f.body(body) + f.end(), f.keep_alive


def normalized(wire: bytes) -> tuple[bytes, frozenset[bytes], bytes]:
    head, _, body = wire.partition(b"\r\n\r\n")
    status, *fields = head.split(b"\r\n")
    return status, frozenset(f.lower().replace(b" ", b"") for f in fields), body


GET11 = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
GET11_CLOSE = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
HEAD11 = b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n"
HEAD10 = b"HEAD / HTTP/1.0\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "headers", "body"),
    [
        (GET11, 200, CL5, b"hello"),
        (GET11, 200, CHUNKED, b"hello"),
        (GET11, 200, [], b"hello"),  # unknown length -> chunked to 1.1
        (GET11_CLOSE, 200, CL5, b"hello"),
        (GET11, 200, [*CL5, (b"connection", b"close")], b"hello"),
        (GET11, 200, [*CL5, (b"connection", b"keep-alive")], b"hello"),
        (GET10, 200, CL5, b"hello"),  # 1.0 connections are never reused
        (GET10, 200, CHUNKED, b"hello"),  # 1.0: no chunked, close-delimited
        (GET10, 200, [], b"hello"),
        (HEAD11, 200, CL5, b""),  # HEAD keeps the GET's length, sends no body
        (HEAD11, 200, CHUNKED, b""),
        (HEAD10, 200, CHUNKED, b""),
        (GET11, 204, [], b""),
        (GET11, 304, [(b"etag", b'"x"')], b""),
        (GET11, 404, [(b"content-length", b"0")], b""),
    ],
)
def test_framing_agrees_with_h11(
    request_bytes: bytes, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    theirs, their_keep = h11_wire(request_bytes, status, headers, body)
    mine, my_keep = ours(request_bytes, status, headers, body)
    assert normalized(mine) == normalized(theirs)
    assert my_keep == their_keep


def test_chunked_body_is_encoded_and_ended_with_trailers() -> None:
    f = frame_response(
        200, b"OK", CHUNKED, head_request=False, http11_client=True, client_keep_alive=True
    )
    assert f.body(b"abc") == b"3\r\nabc\r\n" and f.body(b"") == b""
    assert f.end([(b"x-t", b"1")]) == b"0\r\nx-t: 1\r\n\r\n"


def test_close_delimited_body_to_http10_goes_out_as_is_and_closes() -> None:
    f = frame_response(
        200, b"OK", CHUNKED, head_request=False, http11_client=False, client_keep_alive=False
    )
    assert (f.body(b"abc"), f.end(), f.keep_alive) == (b"abc", b"", False)
    assert b"transfer-encoding" not in f.head and b"connection: close" in f.head
