"""Warm sandboxes (previewnode.warm), for real: a session that starts or wakes is handed
a launcher already up in its own sandbox, serves its own files and edits, and leaves
nothing behind; the pool refills; a session on dependencies of its own starts cold."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.cluster import app_files, http, metric, single_node
from tests.support.processes import launcher_pids, poll_until

pytestmark = pytest.mark.e2e

WARM = "preview_node_warm_sandboxes"
HANDED = "preview_node_warm_starts_total"
STARTS = "preview_node_vite_starts_total"


def served(base: str, sid: str, path: str) -> str:
    resp = http("GET", f"{base}/preview/{sid}/{path}")
    assert resp.status == 200, (path, resp.status, resp.body[:300])
    return resp.body.decode()


def test_a_session_starts_and_wakes_in_warm_sandboxes_with_its_own_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with single_node(tmp_path, "--warm-sandboxes", "1", "--idle-seconds", "1") as node:
        base = node.url
        assert http("GET", f"{base}/readyz").json()["sandbox"] == "bwrap"
        poll_until(lambda: metric(base, WARM) == 1, 30)
        assert launcher_pids(str(data / "warm"))  # up before any session exists

        files = {**app_files(), "src/marker.js": "export const marker = 'first-marker';\n"}
        made = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files}).json()
        sid = made["sessionId"]
        assert made["status"] == "ready", made
        assert metric(base, HANDED) == 1 and metric(base, STARTS) == 1
        assert "first-marker" in served(base, sid, "src/marker.js")
        (pid,) = launcher_pids(sid)  # found by its session's workspace: the swap is in place
        ws = data / "sessions" / sid / "ws"
        assert (ws / "src" / "marker.js").is_file() and not ws.is_symlink()

        # an edit while it serves reaches Vite (its watcher sees the swapped-in directory)
        put = http(
            "PUT",
            f"{base}/kontext/preview/{sid}/files",
            {"files": {"src/marker.js": "export const marker = 'second-marker';\n"}},
        )
        assert put.status == 200, put.body
        poll_until(lambda: "second-marker" in served(base, sid, "src/marker.js"), 10)

        # idle, edited while stopped, woken: a second warm sandbox, the edit served
        poll_until(
            lambda: http("GET", f"{base}/kontext/preview/{sid}").json()["status"] == "idle", 20
        )
        poll_until(lambda: not launcher_pids(sid), 10)
        assert os.path.exists(f"/proc/{pid}") is False or not launcher_pids(sid)
        poll_until(lambda: metric(base, WARM) == 1, 30)
        http(
            "PUT",
            f"{base}/kontext/preview/{sid}/files",
            {"files": {"src/marker.js": "export const marker = 'third-marker';\n"}},
        )
        assert "third-marker" in served(base, sid, "src/marker.js")
        assert metric(base, HANDED) == 2 and metric(base, STARTS) == 2
        assert launcher_pids(sid) and launcher_pids(sid) != [pid]
        # what is left of the pool's area is the one sandbox waiting now
        poll_until(lambda: metric(base, WARM) == 1, 30)
        assert [p.name for p in (data / "warm").iterdir()] == [
            p.name for p in (data / "warm").iterdir() if p.name.startswith("warm-")
        ]
        assert len(list((data / "warm").iterdir())) == 1

        assert http("DELETE", f"{base}/kontext/preview/{sid}").status == 200
        poll_until(lambda: not launcher_pids(sid), 10)
    # the node is gone: so is every launcher it started, the waiting one too
    poll_until(lambda: not launcher_pids(str(data)), 10)


def test_without_warm_sandboxes_every_start_is_cold(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with single_node(tmp_path, "--warm-sandboxes", "0") as node:
        base = node.url
        made = http("POST", f"{base}/kontext/preview?wait=ready", {"files": app_files()}).json()
        assert made["status"] == "ready", made
        assert metric(base, HANDED) == 0 and metric(base, STARTS) == 1
        assert not (data / "warm").exists() and not launcher_pids(str(data / "warm"))


def test_a_node_stopped_while_its_warm_sandbox_imports_leaves_no_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with single_node(tmp_path, "--warm-sandboxes", "2") as node:
        poll_until(lambda: launcher_pids(str(data / "warm")), 10)  # started, importing
        assert metric(node.url, WARM) < 2
        node.proc.signal(signal.SIGTERM)
        assert node.proc.popen.wait(20) == 0
    poll_until(lambda: not launcher_pids(str(data)), 10)


def test_sessions_deleted_while_they_take_a_warm_sandbox_leave_only_the_pool(
    tmp_path: Path,
) -> None:
    """A DELETE lands while the session's start is taking a warm sandbox over (swapping
    its directories in, or waiting to boot it): the sandbox is stopped all the same."""
    data = tmp_path / "data"
    with single_node(tmp_path, "--warm-sandboxes", "1") as node:
        for _ in range(6):
            poll_until(lambda: metric(node.url, WARM) == 1, 30)
            made = http("POST", f"{node.url}/kontext/preview", {"files": app_files()})
            assert made.status == 201, made.body
            sid = made.json()["sessionId"]
            assert http("DELETE", f"{node.url}/kontext/preview/{sid}").status == 200
        poll_until(lambda: metric(node.url, WARM) == 1, 30)
        poll_until(lambda: len(launcher_pids(str(data))) == 1, 10)  # the pool's one
        time.sleep(1.5)
        assert len(launcher_pids(str(data))) == 1, launcher_pids(str(data))
