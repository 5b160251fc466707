"""`preview up --watch`'s pure parts for the event stream: SSE parsing and what it prints."""

from __future__ import annotations

import pytest

from previewclient.report import event_lines
from previewclient.sse import Parser


def parse(text: str) -> tuple[list[tuple[str | None, str, str]], Parser]:
    parser = Parser()
    out = []
    for line in text.splitlines(keepends=True):
        msg = parser.feed(line)
        if msg is not None:
            out.append((msg.id, msg.event, msg.data))
    return out, parser


def test_messages_comments_and_the_last_id() -> None:
    stream = (
        ": ping\n\n"
        "id: b.1\nevent: session\ndata: {}\n\n"
        'event: errors\r\ndata: {"errors": []}\r\n\r\n'  # no id: the last one stands
        "data: one\ndata: two\n\n"  # multi-line data, the default event
        "id: b.4\nevent: ended\ndata: {}\n\n"
        "id: b.5\nevent: cut\ndata: half"  # unterminated: not a message yet
    )
    messages, parser = parse(stream)
    assert messages == [
        ("b.1", "session", "{}"),
        (None, "errors", '{"errors": []}'),
        (None, "message", "one\ntwo"),
        ("b.4", "ended", "{}"),
    ]
    assert parser.comments == ["ping"] and parser.last_id == "b.4"


@pytest.mark.parametrize(
    ("kind", "data", "lines"),
    [
        ("errors", {"errors": []}, ["build errors: none"]),
        (
            "errors",
            {"errors": [{"file": "src/App.jsx", "line": 3, "column": 1, "message": "bad\nmore"}]},
            ["build errors: 1", "  src/App.jsx:3:1: bad", "    more"],
        ),
        (
            "runtimeErrors",
            {
                "runtimeErrors": [
                    {
                        "kind": "error",
                        "message": "boom",
                        "file": "src/main.js",
                        "line": 6,
                        "column": 9,
                        "count": 3,
                    }
                ]
            },
            ["runtime errors: 1", "  src/main.js:6:9: [error] boom (x3)"],
        ),
        ("runtimeErrors", {"runtimeErrors": []}, ["runtime errors: none"]),
        ("status", {"status": "failed", "error": "npm said no"}, ["status: failed (npm said no)"]),
        ("install", {"phase": "started"}, ["install: started"]),
        ("ended", {"sessionId": "x"}, ["the session ended"]),
        ("hmr", {"type": "update", "paths": ["src/App.jsx"]}, []),
        ("files", {"changed": [], "deleted": []}, []),
        ("errors", ["not", "an", "object"], []),
    ],
)
def test_what_a_watch_prints_per_event(kind: str, data: object, lines: list[str]) -> None:
    assert event_lines(kind, data) == lines
