"""previewcore.wire: the node's load report, written by nodes and read by routers (pure)."""

from __future__ import annotations

import pytest

from previewcore.wire import LOAD_HEADER, NODE_PRIVATE, UNKNOWN_MARK, format_load, parse_load


def test_the_load_header_has_the_contract_format() -> None:
    assert format_load(1, 4, 10, 100) == b"running=1/4; sessions=10/100"


@pytest.mark.parametrize(
    ("running", "max_running", "sessions", "max_sessions", "load"),
    [
        (0, 4, 0, 100, 0.0),
        (1, 4, 10, 100, 0.35),
        (4, 4, 100, 100, 2.0),
        (2, 8, 1, 4, 0.5),
        (0, 0, 0, 0, 0.0),  # a zero capacity never divides by zero
        (3, 0, 0, 0, 3.0),
    ],
)
def test_parse_load_reads_back_what_format_load_wrote(
    running: int, max_running: int, sessions: int, max_sessions: int, load: float
) -> None:
    value = format_load(running, max_running, sessions, max_sessions)
    parsed = parse_load(value)
    assert parsed is not None and parsed.total == pytest.approx(load)
    assert parsed.sessions == pytest.approx(sessions / max(max_sessions, 1))
    assert parsed.step == pytest.approx(1 / max(max_sessions, 1))


def test_a_fuller_node_reads_as_more_loaded() -> None:
    light = parse_load(format_load(1, 8, 5, 100))
    heavy = parse_load(format_load(6, 8, 50, 100))
    assert light is not None and heavy is not None and light.total < heavy.total


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"garbage",
        b"running=1",
        b"running=x/4; sessions=1/2",
        b"running=1/4; sessions=1/y",
        b"running=1/4;",
        b"running=1.5/4",
        b"\xff\xfe",
        b"running=\xc3\xa9/4",
    ],
)
def test_a_malformed_or_absent_load_reads_as_none(value: bytes | None) -> None:
    assert parse_load(value) is None


def test_the_node_private_headers_are_the_marker_and_the_load() -> None:
    assert UNKNOWN_MARK == b"x-preview-unknown-session"
    assert LOAD_HEADER == b"x-preview-node-load"
    assert frozenset({UNKNOWN_MARK, LOAD_HEADER}) == NODE_PRIVATE
