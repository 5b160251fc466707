"""WebSocket echo round trips through a target (wsproto on a blocking socket, one
connection, sequential messages), and the trio-websocket echo server behind them."""

from __future__ import annotations

import contextlib
import socket
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench.harness.stats import percentile
from bench.proxy.layout import HOST

WS_PAYLOAD = b"x" * 64


def ws_roundtrips(port: int, path: str, n: int, warm: int, deadline_s: float) -> dict[str, Any]:
    """Sequential echo round trips over one connection; microseconds."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Message,
        Ping,
        RejectConnection,
        Request,
    )

    sock = socket.create_connection((HOST, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ws = WSConnection(ConnectionType.CLIENT)

    def events() -> Iterator[object]:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("websocket closed by peer")
        ws.receive_data(data)
        yield from ws.events()

    try:
        sock.sendall(ws.send(Request(host=f"{HOST}:{port}", target=path)))
        accepted = False
        while not accepted:
            for ev in events():
                if isinstance(ev, RejectConnection):
                    raise RuntimeError(f"websocket upgrade refused: {ev.status_code}")
                accepted = accepted or isinstance(ev, AcceptConnection)
        samples: list[float] = []
        end = time.monotonic() + deadline_s
        for i in range(warm + n):
            t0 = time.perf_counter_ns()
            sock.sendall(ws.send(Message(data=WS_PAYLOAD)))
            got = False
            while not got:
                for ev in events():
                    if isinstance(ev, BytesMessage) and ev.message_finished:
                        got = True
                    elif isinstance(ev, Ping):
                        sock.sendall(ws.send(ev.response()))
                    elif isinstance(ev, CloseConnection):
                        raise RuntimeError("websocket closed by peer")
            if i >= warm:
                samples.append((time.perf_counter_ns() - t0) / 1000.0)
            if time.monotonic() > end:
                break
        with contextlib.suppress(Exception):
            sock.sendall(ws.send(CloseConnection(code=1000)))
    finally:
        sock.close()
    samples.sort()
    return {
        "messages": len(samples),
        "payload_bytes": len(WS_PAYLOAD),
        "p50_us": round(percentile(samples, 50), 1),
        "p99_us": round(percentile(samples, 99), 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "max_us": round(samples[-1], 1),
    }


def ws_echo_server(port: int) -> None:
    """Run as a child process: a trio-websocket echo server on 127.0.0.1:port."""
    import trio
    from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        while True:
            try:
                await ws.send_message(await ws.get_message())
            except ConnectionClosed:
                return

    async def main() -> None:
        await serve_websocket(handler, HOST, port, ssl_context=None)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
