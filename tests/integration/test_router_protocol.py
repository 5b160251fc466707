"""Malformed, oversized and slow requests against a real router socket (CONTRACT §2 limits)."""

from __future__ import annotations

import time

import pytest
import trio

from previewcore.session_id import mint
from tests.integration.conftest import StartRouter
from tests.support.upstreams import CountingListener, raw_exchange

SID = "{sid}"
REQ = "GET /preview/{sid}/ HTTP/1.1\r\nHost: x\r\n"

# Framing errors: (request bytes, expected status); the connection must close after the answer.
TABLE = [
    (REQ + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (REQ + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (REQ + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    (REQ + "Transfer-Encoding: xchunked\r\n\r\n", 501),
    (REQ + "Transfer-Encoding:\tchunked\x0b\r\n\r\n", 400),
    (REQ + "X-A: 1\r\n  folded\r\n\r\n", 400),
    ("GET /preview/{sid}/ HTTP/1.1\nHost: x\n\n", 400),
    ("GET /preview/{sid}/ HTTP/1.1\rHost: x\r\n\r\n", 400),
    ("GET /preview/{sid}/" + "a" * 9000 + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (REQ + "X-Big: " + "b" * 70_000 + "\r\n\r\n", 431),
    ("GARBAGE\r\n\r\n", 400),
    ("GET /preview/{sid}/ HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("GET /preview/{sid}/ HTTP/3.0\r\nHost: x\r\n\r\n", 505),
]
# Well-framed requests with a bad path: 400, and the connection may stay in use.
BAD_PATHS = [
    "/preview/{sid}/../../kontext/preview",
    "/preview/{sid}/%2e%2e/x",
    "/preview/{sid}/%2F..%2Fkontext",
    "/preview/{sid}/a%00b",
]


@pytest.mark.parametrize(("raw", "status"), TABLE)
async def test_bad_requests_are_refused_and_never_forwarded(
    nursery: trio.Nursery, start_router: StartRouter, raw: str, status: int
) -> None:
    counter = CountingListener(hang=False)
    await nursery.start(counter.serve)
    r = await start_router({"node-0": counter.port})
    data = raw.replace(SID, mint("node-0", r.keys)).encode("latin-1")
    # Send a valid follow-up request too: after a framing error it must never be processed.
    out = await raw_exchange(r.port, data + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=3)
    assert out.startswith(f"HTTP/1.1 {status} ".encode()), out[:200]
    assert out.count(b"HTTP/1.1 ") == 1, "connection kept after a bad request"
    assert counter.connections == 0


async def test_slowloris_gets_408_at_the_header_timeout(start_router: StartRouter) -> None:
    r = await start_router({"node-0": 1}, header_timeout=0.6)
    stream = await trio.open_tcp_stream("127.0.0.1", r.port)
    t = time.monotonic()
    await stream.send_all(b"GET /healthz HTTP/1.1\r\n")
    out = b""
    with trio.fail_after(5):
        while True:  # drip a header byte every 0.1 s: never completes
            await stream.send_all(b"X")
            with trio.move_on_after(0.1):
                chunk = await stream.receive_some(1000)
                out += chunk
                if not chunk:
                    break
    elapsed = time.monotonic() - t
    assert out.startswith(b"HTTP/1.1 408 "), out
    assert 0.5 < elapsed < 2.5
    await stream.aclose()


async def test_idle_keepalive_connection_is_closed_quietly(start_router: StartRouter) -> None:
    r = await start_router({"node-0": 1}, header_timeout=0.4)
    out = await raw_exchange(r.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=3)
    assert out.startswith(b"HTTP/1.1 200 ") and out.count(b"HTTP/1.1") == 1  # no 408 after the idle


async def test_pipelined_requests_each_get_an_answer(start_router: StartRouter) -> None:
    r = await start_router({"node-0": 1}, header_timeout=0.5)
    out = await raw_exchange(r.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3, wait=3)
    assert out.count(b"HTTP/1.1 200 ") == 3


async def test_max_connections_gives_503(start_router: StartRouter) -> None:
    r = await start_router({"node-0": 1}, max_connections=2)
    held = [await trio.open_tcp_stream("127.0.0.1", r.port) for _ in range(2)]
    await trio.sleep(0.1)
    out = await raw_exchange(r.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=2)
    assert out.startswith(b"HTTP/1.1 503 ")
    for s in held:
        await s.aclose()


@pytest.mark.parametrize("path", BAD_PATHS)
async def test_path_tricks_get_400_and_are_never_forwarded(
    nursery: trio.Nursery, start_router: StartRouter, path: str
) -> None:
    counter = CountingListener(hang=False)
    await nursery.start(counter.serve)
    r = await start_router({"node-0": counter.port}, header_timeout=0.5)
    target = path.replace(SID, mint("node-0", r.keys))
    out = await raw_exchange(r.port, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), wait=3)
    assert out.startswith(b"HTTP/1.1 400 ") and b"bad_request" in out
    assert counter.connections == 0
