"""What a browser's Vite client does, over raw sockets: GET pages, the HMR handshake, frames."""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass

import trio


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


async def http_get(port: int, target: str, host: str, extra: str = "") -> Response:
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n{extra}Connection: close\r\n\r\n"
    )
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(request.encode())
            data = bytearray()
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return Response(int(lines[0].split()[1]), headers, body)


def dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


class HmrSocket:
    """The server side of a WebSocket as the browser's Vite client sees it (unmasked)."""

    def __init__(self, stream: trio.SocketStream, buffered: bytes) -> None:
        self.stream = stream
        self.buffer = bytearray(buffered)

    async def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame (unmasked, unfragmented)."""
        b0, b1 = await self._read(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(await self._read(2), "big")
        elif length == 127:
            length = int.from_bytes(await self._read(8), "big")
        return b0 & 0x0F, await self._read(length)

    async def send_frame(self, opcode: int, payload: bytes) -> None:
        """A masked client frame of at most 125 bytes (pings, small texts)."""
        mask = os.urandom(4)
        masked = bytes(x ^ mask[i % 4] for i, x in enumerate(payload))
        await self.stream.send_all(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def receive_json(self) -> dict[str, object]:
        opcode, payload = await self.read_frame()
        assert opcode == 0x1, f"expected a text frame, got opcode {opcode}"
        message = json.loads(payload)
        assert isinstance(message, dict)
        return message


async def hmr_handshake(port: int, target: str, host: str) -> tuple[int, HmrSocket]:
    """The exact upgrade a browser's Vite client sends (Origin, token, `vite-hmr`)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: vite-hmr\r\n\r\n"
    )
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(request.encode())
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    return status, HmrSocket(stream, rest)


async def ws_token(port: int, base: str, host: str) -> str:
    client = await http_get(port, f"{base}@vite/client", host)
    match = re.search(rb'const wsToken = "([^"]+)"', client.body)
    assert match, "the served Vite client names its WebSocket token"
    return match.group(1).decode()
