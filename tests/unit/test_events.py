"""A session's event log (pure): resuming inside the buffer, snapshots outside it, and
the wire format."""

from __future__ import annotations

import json

import pytest
import trio

from previewnode.events import EventLog, frame


def filled(n: int, size: int = 4) -> EventLog:
    log = EventLog(size=size, boot="b00t")
    for i in range(n):
        log.publish("files", {"i": i})
    return log


@pytest.mark.parametrize(
    ("published", "seq", "expected"),
    [
        (3, 0, [1, 2, 3]),  # everything since the start, still buffered
        (3, 2, [3]),
        (3, 3, []),  # up to date
        (6, 2, [3, 4, 5, 6]),  # the oldest kept is 3: resuming after 2 loses nothing
        (6, 1, None),  # event 2 fell out of the buffer: snapshot
        (3, 4, None),  # an ID from the future (another boot with the same prefix)
        (3, None, None),  # a fresh client
    ],
)
def test_after_resumes_only_without_a_gap(
    published: int, seq: int | None, expected: list[int] | None
) -> None:
    got = filled(published).after(seq)
    assert (None if got is None else [e.seq for e in got]) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"b00t.7", 7),
        (b" b00t.7 ", 7),
        (b"other.7", None),  # another node process: its log is gone
        (b"b00t.", None),
        (b"b00t.-1", None),
        (b"b00t.1e3", None),
        (b"b00t." + b"9" * 40, None),
        (b"", None),
        (None, None),
        (b"\xff\xfe", None),
    ],
)
def test_last_event_id_names_a_point_in_this_boot_only(
    header: bytes | None, expected: int | None
) -> None:
    assert EventLog(boot="b00t").resume_point(header) == expected


def test_an_ended_log_takes_no_more_events() -> None:
    log = filled(2)
    log.end({"sessionId": "x"})
    log.publish("files", {})
    assert log.ended and [e.kind for e in log.after(0) or []] == ["files", "files", "ended"]


def test_frame_is_one_sse_message_whatever_the_data_holds() -> None:
    raw = frame("b00t.3", "errors", {"errors": [{"message": "line one\nline two\r\n\n"}]})
    text = raw.decode()
    assert text.endswith("\n\n") and text.count("\n\n") == 1
    lines = text[:-2].split("\n")
    assert lines[:2] == ["id: b00t.3", "event: errors"] and lines[2].startswith("data: ")
    assert json.loads(lines[2][6:]) == {"errors": [{"message": "line one\nline two\r\n\n"}]}


async def test_waiters_wake_on_the_next_event_and_on_the_end() -> None:
    log = filled(1)
    woke: list[int] = []

    async def wait() -> None:
        await log.wait_after(1)
        woke.append(log.seq)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(0.01)
        assert woke == []
        log.publish("files", {})
    assert woke == [2]
    with trio.fail_after(1):
        log.end({})
        await log.wait_after(log.seq)  # ended: returns at once
