"""A small Server-Sent Events client over http.client, as a generator's backend would read
`/kontext/preview/{id}/events`: messages, comments (heartbeats) and the stream's end."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    id: str | None = None
    event: str = "message"
    data: str = ""
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


class EventStream:
    def __init__(self, port: int, path: str, last_event_id: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.comments: list[str] = []  # heartbeats seen so far

    def next(self, seconds: float) -> Message | None:
        """The next message within `seconds` (comments are collected on the way); None
        when the stream ended."""
        assert self.conn.sock is not None
        self.conn.sock.settimeout(seconds)
        msg = Message()
        started = False
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            raw = self.response.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\r\n")
            if not line:
                if started:
                    return msg
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            started = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                msg.id = value
            elif name == "event":
                msg.event = value
            elif name == "data":
                msg.data = f"{msg.data}\n{value}" if msg.data else value
        raise TimeoutError(f"no complete message within {seconds} s")

    def until(self, seconds: float, predicate: Any) -> Message:
        """The first message within `seconds` for which `predicate(msg)` holds."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no matching event within {seconds} s"
            msg = self.next(left)
            assert msg is not None, "the stream ended first"
            if predicate(msg):
                return msg

    def close(self) -> None:
        self.conn.close()
