"""tunnel.splice on real socketpairs: what each side sent arrives whole, in order, both ways."""

from __future__ import annotations

import socket

import trio

from proxycore.sockio import Socket
from proxycore.tunnel import splice


async def _read_all(sock: Socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        data = await sock.receive_some(65536)
        assert data, f"EOF after {len(got)} of {n} bytes"
        got += data
    return bytes(got)


async def test_bulk_one_way_and_small_frames_the_other_both_arrive_whole() -> None:
    client, client_proxy = socket.socketpair()
    upstream_proxy, upstream = socket.socketpair()
    c, u = Socket(client), Socket(upstream)
    bulk = bytes(range(256)) * 4096  # 1 MiB: reads that fill the 64 KiB buffer
    frames = [b"frame%d" % i for i in range(200)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(splice, Socket(client_proxy), Socket(upstream_proxy), b"A", b"B")
        nursery.start_soon(c.send_all, bulk)

        async def frames_back() -> None:
            for frame in frames:
                await u.send_all(frame)
                await trio.sleep(0)

        nursery.start_soon(frames_back)
        with trio.fail_after(10):
            assert await _read_all(u, 1 + len(bulk)) == b"A" + bulk
            want = b"B" + b"".join(frames)
            assert await _read_all(c, len(want)) == want
        await c.send_eof()  # a half-close is passed on ...
        with trio.fail_after(5):
            assert await u.receive_some(10) == b""
        await u.send_eof()  # ... and once both directions ended, the tunnel is done
    assert client_proxy.fileno() == -1 and upstream_proxy.fileno() == -1
    client.close()
    upstream.close()
