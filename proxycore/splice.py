"""Move a response body from upstream to client inside the kernel (`splice(2)` via a pipe).

A large `Content-Length` body relayed through Python is read into a buffer, sliced
into an event, copied into the outgoing message and written: three copies of every
byte, and a parser step per 64 KiB. When the body passes to the client unchanged
(no re-chunking) and nothing of it is buffered yet, `splice` moves it socket -> pipe
-> socket without it ever entering the process. Linux only; where `splice` is refused
(an old kernel, a socket type without splice support) nothing has moved yet and the
caller falls back to copying.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os

import trio

from proxycore.errors import UpstreamRefused, UpstreamTimeout
from proxycore.server import ClientGone
from proxycore.sockio import Socket

# Below this the three copies cost less than the pipe's four extra syscalls.
SPLICE_AT = 16 * 1024
_PIPE_BYTES = 256 * 1024
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def available() -> bool:
    return hasattr(os, "splice")


async def splice_body(src: Socket, dst: Socket, count: int, stall: float) -> int | None:
    """Move exactly `count` bytes from `src` to `dst`; None if splice cannot be used here
    (then nothing was moved). `stall` bounds each wait for the upstream, not the client."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):  # the default 64 KiB pipe works too, in more calls
            fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_BYTES)
        with trio.CancelScope() as scope:
            moved = 0
            while moved < count:
                try:
                    n = os.splice(
                        src.socket.fileno(), w, min(count - moved, _PIPE_BYTES), flags=_FLAGS
                    )
                except BlockingIOError:
                    scope.deadline = trio.current_time() + stall
                    await trio.lowlevel.wait_readable(src.socket)
                    scope.deadline = math.inf
                    continue
                except OSError as exc:
                    if moved == 0 and exc.errno in _UNSUPPORTED:
                        return None
                    raise UpstreamRefused("upstream connection reset") from exc
                if n == 0:
                    raise UpstreamRefused("connection closed inside a response body")
                await _drain(r, dst, n)
                moved += n
            return moved
        raise UpstreamTimeout("upstream stalled mid-body")
    finally:
        os.close(r)
        os.close(w)


async def _drain(pipe: int, dst: Socket, n: int) -> None:
    """Write the `n` bytes waiting in the pipe to `dst`."""
    while n:
        try:
            n -= os.splice(pipe, dst.socket.fileno(), n, flags=_FLAGS)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(dst.socket)
        except OSError as exc:
            raise ClientGone() from exc
