"""A session's live events (CONTRACT §2, `GET /kontext/preview/{id}/events`).

A code generator should not have to poll to learn that its edit broke the build: each
session keeps a small, bounded log of what happened to it (status changes, install
progress, build errors set and cleared, files changed, HMR updates Vite sent, the
session's end), and Server-Sent Events clients read it live and resume from
`Last-Event-ID`. Event IDs are `{boot}.{seq}`: `boot` names this node process, so an ID
from before a restart (whose log is gone) is recognised as such and answered with a
fresh snapshot instead of a silent gap. The data of each event has the session object's
shapes (`{"status": ...}`, `{"errors": [...]}`).

The log and the wire format are pure; the HTTP loop lives in previewnode.app.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any

import trio

BUFFER_EVENTS = 256  # per session: enough for a burst of edits, bounded for a node of many
HEARTBEAT = b": ping\n\n"
BOOT = secrets.token_hex(4)  # this node process; event IDs from another one don't resume


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str
    data: dict[str, Any]


class EventLog:
    """The last `size` events of one session, and a way to wait for the next one."""

    def __init__(self, size: int = BUFFER_EVENTS, boot: str = BOOT) -> None:
        self.boot = boot
        self.seq = 0
        self.ended = False
        self._events: deque[Event] = deque(maxlen=size)
        self._next = trio.Event()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        if self.ended:
            return
        self.seq += 1
        self._events.append(Event(self.seq, kind, data))
        self._next.set()
        self._next = trio.Event()

    def end(self, data: dict[str, Any]) -> None:
        """The session is gone: one last event, then every stream closes."""
        self.publish("ended", data)
        self.ended = True

    def after(self, seq: int | None) -> list[Event] | None:
        """Events after `seq`; None when the client can't resume there (no ID, an ID of
        another boot, or older than the buffer): it then gets a snapshot first."""
        if seq is None or seq > self.seq:
            return None
        oldest = self._events[0].seq if self._events else self.seq + 1
        if seq < oldest - 1:
            return None
        return [e for e in self._events if e.seq > seq]

    async def wait_after(self, seq: int) -> None:
        """Until an event after `seq` exists (or the log ended)."""
        while self.seq <= seq and not self.ended:
            await self._next.wait()

    def event_id(self, seq: int) -> str:
        return f"{self.boot}.{seq}"

    def resume_point(self, last_event_id: bytes | None) -> int | None:
        """The sequence number a `Last-Event-ID` names in this log, or None."""
        if not last_event_id:
            return None
        boot, _, seq = last_event_id.decode("ascii", "replace").strip().partition(".")
        if boot != self.boot or not seq.isdigit() or len(seq) > 18:
            return None
        return int(seq)


def frame(event_id: str, kind: str, data: dict[str, Any]) -> bytes:
    """One SSE message. JSON never holds a raw newline, so `data:` is a single line."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event_id}\nevent: {kind}\ndata: {body}\n\n".encode()
