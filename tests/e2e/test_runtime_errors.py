"""Runtime errors from a real browser (CONTRACT §2 `runtimeErrors`): Chromium opens a
preview whose code throws after it rendered and logs with console.error; the session
object lists both, at their uploaded file and line (through the source maps), and a
later PUT clears them. Subdomain mode through a router, as in production."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.support.cluster import cluster, http
from tests.support.processes import poll_until

pytestmark = pytest.mark.e2e

SUBDOMAIN = ("--preview-domain", "localhost")
FILES = {
    "index.html": (
        '<!doctype html>\n<html>\n<body>\n<div id="root"></div>\n'
        '<script type="module" src="/src/main.js"></script>\n</body>\n</html>\n'
    ),
    "src/main.js": (
        'import { warn } from "./warn.jsx";\n'
        "\n"
        'document.getElementById("root").textContent = "rendered";\n'
        "warn();\n"
        "setTimeout(() => {\n"
        '  throw new Error("boom after render");\n'
        "}, 50);\n"
    ),
    # JSX: the transform moves code around, so only the source map gives line 5
    "src/warn.jsx": (
        "const badge = <b>x</b>;\n"
        "\n"
        "export function warn() {\n"
        "  const kind = badge.type;\n"
        '  console.error("careful", kind);\n'
        "}\n"
        "if (import.meta.hot) import.meta.hot.accept();\n"  # updates apply in place
    ),
}


def test_runtime_errors_are_reported_with_their_place_and_cleared(
    browser: Browser, tmp_path: Path
) -> None:
    with cluster(tmp_path, nodes=1, node_args=SUBDOMAIN, router_args=SUBDOMAIN) as c:
        api = f"http://127.0.0.1:{c.public_port}/kontext/preview"
        s = http("POST", f"{api}?wait=ready", {"files": FILES}).json()
        assert s["runtimeErrors"] == []
        page = browser.new_page()
        try:
            t = time.monotonic()
            page.goto(s["previewUrl"], wait_until="load", timeout=30_000)
            page.get_by_text("rendered").wait_for(timeout=10_000)

            def both() -> list[dict[str, Any]] | None:
                seen = http("GET", f"{api}/{s['sessionId']}").json()["runtimeErrors"]
                kinds = {e["kind"] for e in seen}
                return seen if {"error", "console.error"} <= kinds else None

            seen = {e["kind"]: e for e in poll_until(both, 5)}
            print(f"page load -> both reported: {(time.monotonic() - t) * 1000:.0f} ms")
        finally:
            page.close()
        thrown, logged = seen["error"], seen["console.error"]
        assert "boom after render" in thrown["message"]
        assert (thrown["file"], thrown["line"]) == ("src/main.js", 6), thrown
        assert thrown["count"] == 1 and thrown["firstSeen"] and thrown["lastSeen"]
        assert "src/main.js:6:" in thrown["stack"] and "localhost:" not in thrown["stack"]
        assert logged["message"] == "careful b"
        assert (logged["file"], logged["line"]) == ("src/warn.jsx", 5), logged
        put = http("PUT", f"{api}/{s['sessionId']}/files", {"files": {"notes.txt": "x"}})
        assert put.status == 200
        assert http("GET", f"{api}/{s['sessionId']}").json()["runtimeErrors"] == []


def test_a_framing_generator_ui_hears_routes_errors_and_updates(
    browser: Browser, tmp_path: Path
) -> None:
    """The documented postMessage shapes, {source: "kontext-preview", type, ...}, as the
    parent page of an iframe receives them."""
    with cluster(tmp_path, nodes=1, node_args=SUBDOMAIN, router_args=SUBDOMAIN) as c:
        api = f"http://127.0.0.1:{c.public_port}/kontext/preview"
        s = http("POST", f"{api}?wait=ready", {"files": FILES}).json()
        page = browser.new_page()
        try:
            page.set_content(
                "<script>window.__msgs = []; addEventListener('message', (e) =>"
                " e.data && e.data.source === 'kontext-preview' && __msgs.push(e.data));"
                f'</script><iframe src="{s["previewUrl"]}"></iframe>'
            )

            def types() -> set[str]:
                return {m["type"] for m in page.evaluate("window.__msgs")}

            poll_until(lambda: {"route", "error"} <= types(), 10)
            edit = FILES["src/warn.jsx"].replace("careful", "still careful")
            put = http("PUT", f"{api}/{s['sessionId']}/files", {"files": {"src/warn.jsx": edit}})
            assert put.status == 200
            poll_until(lambda: "update-applied" in types(), 10)
            msgs = page.evaluate("window.__msgs")
        finally:
            page.close()
        route = next(m for m in msgs if m["type"] == "route")
        assert route["path"] == "/"
        errors = [m for m in msgs if m["type"] == "error"]
        assert any(m["kind"] == "error" and "boom after render" in m["message"] for m in errors)
        applied = next(m for m in msgs if m["type"] == "update-applied")
        assert any(p.endswith("src/warn.jsx") for p in applied["paths"]), applied
