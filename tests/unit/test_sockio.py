"""sockio.Socket: non-blocking calls first, trio only on EAGAIN (real socketpairs)."""

from __future__ import annotations

import socket

import trio

from proxycore.sockio import Socket


async def test_a_reply_read_yields_before_its_first_recv_even_with_bytes_there() -> None:
    a, b = socket.socketpair()
    with a, b:
        ours = Socket(a)
        b.sendall(b"answer")  # already there: receive_some would return it without yielding
        with trio.CancelScope() as scope:
            scope.cancel()  # delivered only at a checkpoint
            await ours.receive_reply(100)
        assert scope.cancelled_caught
        assert await ours.receive_some(100) == b"answer"  # nothing was read before the yield


async def test_a_reply_read_waits_for_bytes_that_come_later() -> None:
    a, b = socket.socketpair()
    with a, b:
        ours = Socket(a)

        async def answer_later() -> None:
            await trio.sleep(0.01)
            b.sendall(b"late")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_later)
            assert await ours.receive_reply(100, trio.current_time() + 5) == b"late"


async def test_a_reply_read_past_its_deadline_raises_too_slow() -> None:
    a, b = socket.socketpair()
    with a, b:
        ours = Socket(a)
        try:
            await ours.receive_reply(100, trio.current_time() + 0.01)
        except trio.TooSlowError:
            return
        raise AssertionError("no TooSlowError")
