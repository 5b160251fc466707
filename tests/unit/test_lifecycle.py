"""The session lifecycle: every allowed move, and that every other one is refused (pure)."""

from __future__ import annotations

import itertools

import pytest

from previewnode.lifecycle import TRANSITIONS, Event, IllegalMove, Status, next_status, on_load

S, E = Status, Event

# Every allowed (from, event) -> to, spelled out: the table in lifecycle.py must match it.
ALLOWED = [
    (S.IDLE, E.START, S.STARTING),
    (S.STARTING, E.START, S.STARTING),  # registered, then started
    (S.IDLE, E.INSTALL, S.INSTALLING),
    (S.STARTING, E.INSTALL, S.INSTALLING),
    (S.STARTING, E.BOOT, S.STARTING),
    (S.INSTALLING, E.BOOT, S.STARTING),
    (S.STARTING, E.SERVING, S.READY),
    (S.INSTALLING, E.INSTALL_FAILED, S.FAILED),
    (S.STARTING, E.CRASHED, S.IDLE),
    (S.INSTALLING, E.CRASHED, S.IDLE),
    (S.READY, E.CRASHED, S.IDLE),
    (S.IDLE, E.CRASHED, S.IDLE),
    (S.STARTING, E.STOPPED, S.IDLE),
    (S.INSTALLING, E.STOPPED, S.IDLE),
    (S.READY, E.STOPPED, S.IDLE),
    (S.IDLE, E.STOPPED, S.IDLE),
    (S.STARTING, E.GAVE_UP, S.FAILED),  # crashed too often in a row
    (S.INSTALLING, E.GAVE_UP, S.FAILED),  # preparing it failed too often
    (S.READY, E.GAVE_UP, S.FAILED),
    (S.IDLE, E.GAVE_UP, S.FAILED),
    (S.FAILED, E.STOPPED, S.FAILED),  # a failed install stays failed when its task ends
    (S.FAILED, E.FILES_CHANGED, S.IDLE),  # an upload to a session that gave up retries it
    (S.STARTING, E.NO_ROOM, S.IDLE),
    (S.IDLE, E.NO_ROOM, S.IDLE),
    *[(s, E.DEPS_CHANGED, S.IDLE) for s in Status],  # an upload's new dependencies retry
]


@pytest.mark.parametrize(("current", "event", "expected"), ALLOWED)
def test_allowed_moves(current: Status, event: Event, expected: Status) -> None:
    assert next_status(current, event) is expected


def test_the_table_allows_exactly_the_listed_moves() -> None:
    assert {(c, e): t for c, e, t in ALLOWED} == TRANSITIONS


REFUSED = [
    (c, e)
    for c, e in itertools.product(Status, Event)
    if (c, e) not in {(a, b) for a, b, _ in ALLOWED}
]


@pytest.mark.parametrize(("current", "event"), REFUSED)
def test_every_other_move_is_refused(current: Status, event: Event) -> None:
    with pytest.raises(IllegalMove, match=str(event)):
        next_status(current, event)


@pytest.mark.parametrize(
    ("current", "event"),
    [
        (S.IDLE, E.SERVING),  # never ready without having been started
        (S.READY, E.START),  # a running server is not started twice
        (S.FAILED, E.START),  # a failed install waits for new dependencies
        (S.FAILED, E.CRASHED),
        (S.FAILED, E.GAVE_UP),
        (S.READY, E.FILES_CHANGED),  # an upload to a healthy session is HMR, not a restart
        (S.READY, E.INSTALL_FAILED),
    ],
)
def test_moves_that_would_report_a_wrong_status_are_refused(current: Status, event: Event) -> None:
    assert (current, event) in REFUSED


def test_a_session_read_back_after_a_restart_is_idle_or_failed() -> None:
    assert on_load(None) is S.IDLE
    assert on_load("dependency install failed: E404") is S.FAILED
    assert on_load("the dev server crashed 3 times within 60 s: ...") is S.FAILED


def test_statuses_are_the_contracts_strings() -> None:
    assert sorted(map(str, Status)) == ["failed", "idle", "installing", "ready", "starting"]
