"""An SSE client over http.client, as a generator's backend reads
`/kontext/preview/{id}/events`: messages, comments (heartbeats) and the stream's end.
The parsing is the `preview` client's own (previewclient.sse)."""

from __future__ import annotations

import http.client
import time
from typing import Any

from previewclient.sse import Message, Parser

__all__ = ["EventStream", "Message"]


class EventStream:
    def __init__(self, port: int, path: str, last_event_id: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.parser = Parser()

    @property
    def comments(self) -> list[str]:
        return self.parser.comments

    def next(self, seconds: float) -> Message | None:
        """The next message within `seconds`; None when the stream ended."""
        assert self.conn.sock is not None
        self.conn.sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            raw = self.response.readline()
            if not raw:
                return None
            msg = self.parser.feed(raw.decode())
            if msg is not None:
                return msg
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
