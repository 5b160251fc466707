"""Real headless Chromium against real routers, nodes and Vite: the preview as a user sees it.

Debian's Chromium driven by the `playwright` package (`executable_path`), never a
downloaded browser. Shows: the page renders through the router, its HMR WebSocket
opens (no 400), an edit arrives by HMR without a full reload (a `window` marker and
React state survive), and the page recovers after a node or router restart.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.support.browser import Watched, open_app
from tests.support.cluster import Cluster, app_files, cluster, http
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e

APP = app_files()["src/App.jsx"]


def edit_arrives_without_reload(c_put: Any, w: Watched, marker: str) -> float:
    """Click to make state, set a marker, PUT an edit; the DOM changes, marker and state stay.

    Returns the edit -> DOM latency in ms.
    """
    page = w.page
    page.get_by_role("button").click()
    page.get_by_text("count is 1").wait_for(timeout=5000)
    page.evaluate(f"window.__marker = '{marker}'")
    t = time.monotonic()
    res = c_put({"src/App.jsx": APP.replace("Fixture app", f"Edited {marker}")})
    assert res.status == 200, res.body
    page.get_by_text(f"Edited {marker}").wait_for(timeout=10_000)
    latency = (time.monotonic() - t) * 1000
    assert page.evaluate("window.__marker") == marker, "the page reloaded instead of hot-updating"
    assert page.get_by_text("count is 1").is_visible(), "React state was lost"
    return latency


def test_browser_hmr_through_the_router_and_directly(browser: Browser, tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=1, routers=1) as c:
        s = c.create()
        w = open_app(browser, s["previewUrl"])
        assert w.open_hmr()[0].url.startswith(
            f"ws://127.0.0.1:{c.public_port}/preview/{s['sessionId']}/hmr?token="
        )
        via_router = edit_arrives_without_reload(
            lambda f: c.put_files(s["sessionId"], f), w, "router"
        )
        assert not w.errors(), w.console
        w.page.close()
        # The same through a node that is its own public URL (no router in the path).
        direct_port = free_port()
        c.ps.node(
            "node-direct",
            tmp_path / "direct",
            c.secret,
            "--log-level",
            "warning",
            public_url=f"http://127.0.0.1:{direct_port}",
            port=direct_port,
        )
        d = http(
            "POST", f"http://127.0.0.1:{direct_port}/kontext/preview", {"files": app_files()}
        ).json()
        wd = open_app(browser, d["previewUrl"])
        direct = edit_arrives_without_reload(
            lambda f: http(
                "PUT",
                f"http://127.0.0.1:{direct_port}/kontext/preview/{d['sessionId']}/files",
                {"files": f},
            ),
            wd,
            "direct",
        )
        assert not wd.errors(), wd.console
        wd.page.close()
    print(f"edit -> DOM via router: {via_router:.0f} ms; directly on the node: {direct:.0f} ms")


def _recovers(c: Cluster, w: Watched, sid: str) -> None:
    """The page reloads itself once the server is back, and later edits arrive again."""
    page = w.page
    page.wait_for_function(
        "window.__marker === undefined", timeout=30_000
    )  # Vite's client reloaded
    page.get_by_role("button").wait_for(timeout=15_000)
    deadline = time.monotonic() + 15
    while not w.open_hmr():
        assert time.monotonic() < deadline, f"HMR socket did not reconnect; console: {w.console}"
        page.wait_for_timeout(100)
    edit_arrives_without_reload(lambda f: c.put_files(sid, f), w, "after-restart")


def test_page_recovers_after_its_node_restarts(browser: Browser, tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=1, routers=1) as c:
        s = c.create()
        w = open_app(browser, s["previewUrl"])
        w.page.evaluate("window.__marker = 'before'")
        c.restart_node("node-0")
        _recovers(c, w, s["sessionId"])
        w.page.close()


def test_page_hmr_socket_reconnects_after_router_restart(browser: Browser, tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=1, routers=1) as c:
        s = c.create()
        w = open_app(browser, s["previewUrl"])
        w.page.evaluate("window.__marker = 'before'")
        first = w.open_hmr()[0]
        c.restart_router(c.routers[0])
        deadline = time.monotonic() + 10
        while not first.is_closed():
            assert time.monotonic() < deadline, (
                "the old socket stayed open through a router restart"
            )
            w.page.wait_for_timeout(100)
        _recovers(c, w, s["sessionId"])
        w.page.close()
