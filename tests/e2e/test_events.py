"""`GET /kontext/preview/{id}/events` through the router: a generator learns of its own
broken edit, and of the fix, without polling (CONTRACT §2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import app_files, cluster, http
from tests.support.processes import poll_until
from tests.support.sse import EventStream, Message

pytestmark = pytest.mark.e2e

BROKEN = "export default function App() {\n  return <div>\n}\n"


def status_of(base: str, sid: str) -> str:
    return str(http("GET", f"{base}/kontext/preview/{sid}").json()["status"])


def errors_event(msg: Message) -> bool:
    return msg.event == "errors"


def test_events_stream_build_errors_resume_and_end(tmp_path: Path) -> None:
    # Heartbeats every 4 s, the router's upstream timeout 2 s: silence on the stream
    # outlasts the timeout, and the stream must not be cut.
    with cluster(
        tmp_path,
        nodes=1,
        node_args=("--events-heartbeat", "4"),
        router_args=("--upstream-timeout", "2"),
    ) as c:
        router = c.routers[0]
        # Not `?wait=ready`: holding the create for Vite's start can outlast the 2 s.
        made = http("POST", f"{router.url}/kontext/preview", {"files": app_files()})
        assert made.status == 201, made.body
        sid = made.json()["sessionId"]
        poll_until(lambda: status_of(router.url, sid) == "ready" or None, 60)
        path = f"/kontext/preview/{sid}/events"
        stream = EventStream(router.port, path)
        assert stream.response.status == 200
        assert stream.response.getheader("content-type", "").startswith("text/event-stream")
        first = stream.next(10)
        assert first is not None and first.event == "session"
        assert first.json()["status"] == "ready" and first.json()["errors"] == []

        t = time.monotonic()
        assert c.put_files(sid, {"src/App.jsx": BROKEN}).status == 200
        files = stream.until(5, lambda m: m.event == "files")
        assert files.json() == {"changed": ["src/App.jsx"], "deleted": []}
        broken = stream.until(5, errors_event)
        print(f"PUT -> errors event: {(time.monotonic() - t) * 1000:.0f} ms")
        (error,) = broken.json()["errors"]
        assert error["file"] == "src/App.jsx" and error["line"] >= 2 and error["message"]

        assert c.put_files(sid, {"src/App.jsx": app_files()["src/App.jsx"]}).status == 200
        cleared = stream.until(5, errors_event)
        assert cleared.json() == {"errors": []}

        quiet = time.monotonic()
        time.sleep(5)  # nothing happens: longer than the router's upstream timeout
        assert c.put_files(sid, {"notes.txt": "still here"}).status == 200
        later = stream.until(5, lambda m: m.event == "files")
        assert later.json()["changed"] == ["notes.txt"]
        assert time.monotonic() - quiet > 5 and "ping" in stream.comments

        # Resuming replays only what came after the given ID, in order, no snapshot.
        resumed = EventStream(router.port, path, last_event_id=broken.id)
        replay: list[Message] = []
        while not replay or replay[-1].id != later.id:
            msg = resumed.next(5)
            assert msg is not None and msg.event != "session", msg
            replay.append(msg)
        assert [m.id for m in replay] == [cleared_id(broken, i + 1) for i in range(len(replay))]
        assert {"errors": []} in [m.json() for m in replay if m.event == "errors"]
        assert replay[-1].json()["changed"] == ["notes.txt"]

        # An ID this node never issued (another boot, or nonsense): a fresh snapshot.
        stale = EventStream(router.port, path, last_event_id="feedbeef.3")
        snapshot = stale.next(5)
        assert snapshot is not None and snapshot.event == "session"

        assert http("DELETE", f"{router.url}/kontext/preview/{sid}").status == 200
        for s in (stream, resumed, stale):
            end = s.until(5, lambda m: m.event == "ended")
            assert end.json() == {"sessionId": sid}
            assert s.next(5) is None  # and the stream is closed
            s.close()


def cleared_id(after: Message, step: int) -> str:
    """The ID `step` events after `after`'s (IDs are {boot}.{seq})."""
    assert after.id is not None
    boot, _, seq = after.id.partition(".")
    return f"{boot}.{int(seq) + step}"


def test_events_of_an_unknown_session_are_404(tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=1) as c:
        sid = c.create()["sessionId"]
        unknown = sid[:-4] + ("aaaa" if not sid.endswith("aaaa") else "bbbb")
        res: Any = http("GET", f"{c.routers[0].url}/kontext/preview/{unknown}/events")
        assert res.status in (404, 410), res.body
