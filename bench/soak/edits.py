"""Edits and the updates they must cause: every few seconds each session's `src/App.jsx` is
PUT with a unique marker in its heading; the session's HMR socket must then get an `update`
for it, and the module that update names must serve that marker, within the deadline.

The ledger is pure bookkeeping (no sockets): `push` before the PUT (its update may arrive
before the 200), `drop` when the PUT failed, `seen`
when a socket's update led to the marker; an edit not seen within the deadline of its PUT
is missed (a late one is missed too, and counted as late besides).

Never: count a failed PUT as pushed (it is an error already), or an edit as seen from the
page loads (only the HMR socket's update counts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from bench.soak.client import Client
from bench.soak.tally import Tally, checked

MARKER = re.compile(rb"soak-(\d+)-(\d+)")
SEEN_SLACK = 5.0  # extra seconds an edit waits for a late update, so lateness is measured


def marker(index: int, n: int) -> str:
    return f"soak-{index}-{n}"


def edited_app(app: str, mark: str) -> str:
    """The fixture's App.jsx with `mark` in its heading (JSX text survives the transform)."""
    out = app.replace("Fixture app", f"Fixture app {mark}", 1)
    assert out != app, "the fixture's App.jsx has no 'Fixture app' heading"
    return out


@dataclass
class Edit:
    sid: str
    mark: str
    sent: float  # trio time the PUT was sent
    seen: float | None = None  # trio time the update frame arrived
    event: trio.Event = field(default_factory=trio.Event)


@dataclass
class Ledger:
    deadline: float
    edits: dict[str, Edit] = field(default_factory=dict)
    unknown: int = 0  # updates whose module served no marker we pushed

    def push(self, sid: str, mark: str, sent: float) -> Edit:
        edit = Edit(sid, mark, sent)
        self.edits[mark] = edit
        return edit

    def drop(self, mark: str) -> None:
        """A PUT that failed: an error already, not an edit that was pushed."""
        self.edits.pop(mark, None)

    def seen(self, sid: str, mark: str, at: float) -> None:
        edit = self.edits.get(mark)
        if edit is None or edit.sid != sid:
            self.unknown += 1
            return
        if edit.seen is None:
            edit.seen = at
            edit.event.set()

    def in_time(self, edit: Edit) -> bool:
        return edit.seen is not None and edit.seen - edit.sent <= self.deadline

    def missed(self) -> list[Edit]:
        return [e for e in self.edits.values() if not self.in_time(e)]

    def summary(self) -> dict[str, Any]:
        missed = self.missed()
        return {
            "pushed": len(self.edits),
            "seen_in_time": len(self.edits) - len(missed),
            "missed": len(missed),
            "late": sum(e.seen is not None for e in missed),
            "never_seen": sum(e.seen is None for e in missed),
            "unknown_markers": self.unknown,
            "deadline_s": self.deadline,
            "missed_edits": [
                {"sid": e.sid, "marker": e.mark, "late_s": None if e.seen is None else
                 round(e.seen - e.sent, 3)}
                for e in missed[:40]
            ],
        }  # fmt: skip


async def edit_loop(
    tally: Tally,
    ledger: Ledger,
    routers: Sequence[Client],
    sid: str,
    index: int,
    app: str,
    first: float,
    until: float,
    every: float,
    max_edits: int,
) -> None:
    """A PUT at `first` and every `every` s after it (trio time) until `until` or
    `max_edits`, through the routers in turn; each waits for its update (deadline + slack),
    so one that arrives late delays the next."""
    for n in range(max_edits):
        due = max(first + n * every, trio.current_time())
        if due >= until:
            return
        await trio.sleep_until(due)
        start = trio.current_time()
        mark = marker(index, n)
        body = {"files": {"src/App.jsx": edited_app(app, mark)}}
        client = routers[n % len(routers)]
        edit = ledger.push(sid, mark, start)  # before the PUT: its update may beat the 200
        res = await checked(
            tally, client, "put", "PUT", f"/kontext/preview/{sid}/files", body=body, sid=sid
        )
        if res is None:
            ledger.drop(mark)
        else:
            with trio.move_on_after(ledger.deadline + SEEN_SLACK):
                await edit.event.wait()
            if edit.seen is not None:
                tally.duration("put -> hmr update", edit.seen - start)
