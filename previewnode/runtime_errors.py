"""What browsers showing a preview reported (CONTRACT §2 `runtimeErrors`), kept per session.

The reports come from the page client through the dev server, that is from inside the
sandbox, from code the tenant wrote: typed and bounded on the way in (devserver), and
here deduplicated (one entry per message and place, with a count), capped at 50 entries
(the least recently seen goes) and rate-limited, so a page that throws in a loop costs
the node a counter, not memory. Cleared when the session's files change. Pure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 50
RATE_WINDOW = 10.0  # seconds
RATE_MAX = 100  # reports per window per session; beyond, dropped


@dataclass(frozen=True, slots=True)
class RuntimeReport:
    kind: str  # error | unhandledrejection | console.error | console.warn
    message: str
    file: str | None
    line: int
    column: int
    stack: str


@dataclass(slots=True)
class Seen:
    report: RuntimeReport
    count: int
    first_seen: float
    last_seen: float


class RuntimeErrors:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str | None, int, int], Seen] = {}
        self._recent: deque[float] = deque()

    def add(self, report: RuntimeReport, now: float) -> bool:
        """Record one report; False when it was dropped by the rate limit."""
        while self._recent and now - self._recent[0] >= RATE_WINDOW:
            self._recent.popleft()
        if len(self._recent) >= RATE_MAX:
            return False
        self._recent.append(now)
        key = (report.kind, report.message, report.file, report.line, report.column)
        entry = self._entries.get(key)
        if entry is not None:
            entry.count += 1
            entry.last_seen = now
            return True
        if len(self._entries) >= MAX_ENTRIES:
            oldest = min(self._entries, key=lambda k: self._entries[k].last_seen)
            del self._entries[oldest]
        self._entries[key] = Seen(report, 1, now, now)
        return True

    def clear(self) -> bool:
        """Forget everything (the files changed); True when there was something."""
        had = bool(self._entries)
        self._entries.clear()
        return had

    def as_json(self, stamp: Callable[[float], str]) -> list[dict[str, Any]]:
        """The session object's `runtimeErrors`, first seen first; `stamp` writes times."""
        entries = sorted(self._entries.values(), key=lambda e: e.first_seen)
        return [
            {
                "message": e.report.message,
                "file": e.report.file,
                "line": e.report.line,
                "column": e.report.column,
                "stack": e.report.stack,
                "kind": e.report.kind,
                "count": e.count,
                "firstSeen": stamp(e.first_seen),
                "lastSeen": stamp(e.last_seen),
            }
            for e in entries
        ]
