"""Server-Sent Events, line by line (the WHATWG event-stream format; pure).

`/kontext/preview/{id}/events` sends `id:`, `event:` and one `data:` line per message
and `:` comments as heartbeats; this parser takes any valid stream, multi-line data
included."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Message:
    id: str | None = None
    event: str = "message"
    data: str = ""

    def json(self) -> Any:
        return json.loads(self.data)


class Parser:
    def __init__(self) -> None:
        self._msg = Message()
        self._started = False
        self.comments: list[str] = []  # heartbeats seen so far
        self.last_id: str | None = None  # what to send as Last-Event-ID on reconnect

    def feed(self, line: str) -> Message | None:
        """One line (its end of line stripped or not); a message when `line` ends one."""
        line = line.rstrip("\r\n")
        if not line:
            if not self._started:
                return None
            msg, self._msg, self._started = self._msg, Message(), False
            if msg.id is not None:
                self.last_id = msg.id
            return msg
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return None
        self._started = True
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._msg.id = value
        elif name == "event":
            self._msg.event = value
        elif name == "data":
            self._msg.data = f"{self._msg.data}\n{value}" if self._msg.data else value
        return None
