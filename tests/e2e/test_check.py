"""The headless check (CONTRACT §2 `POST /kontext/preview/{id}/check`): the node loads the
preview in its own Chromium and says what a human would have seen. A broken app reports
its thrown error and a screenshot; a healthy one none; and the tenant's page, running in
the node's browser, reaches no other origin (the node's own API included)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cluster import app_files, http
from tests.support.processes import processes
from tests.support.ring import SECRET

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n"
PAGE = (
    '<!doctype html>\n<html>\n<body>\n<div id="root"></div>\n'
    '<script type="module" src="/src/main.js"></script>\n</body>\n</html>\n'
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("check")
    secret = tmp / "secret"
    secret.write_text(SECRET + "\n")
    with processes(tmp) as ps:
        proc, port = ps.node(
            "node-0",
            tmp / "data",
            secret,
            "--check-browser",
            "/usr/bin/chromium",
            "--preview-domain",  # subdomain mode: the node's API is another origin
            "preview.test",
            public_url="http://preview.test:18080",
        )
        yield {"base": f"http://127.0.0.1:{port}", "port": port, "log": proc.log}


def check(node: dict[str, Any], files: dict[str, str], **body: Any) -> dict[str, Any]:
    base = node["base"]
    sid = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files}).json()["sessionId"]
    res = http("POST", f"{base}/kontext/preview/{sid}/check", body or None)
    assert res.status == 200, res.body
    return res.json()


def test_a_broken_app_reports_its_error_and_a_screenshot(node: dict[str, Any]) -> None:
    files = {
        "index.html": PAGE,
        "src/main.js": (
            'document.getElementById("root").textContent = "half rendered";\n'
            'setTimeout(() => { throw new Error("boom in the check"); }, 10);\n'
        ),
    }
    result = check(node, files, waitMs=500)
    assert result["ok"] is False and result["status"] == 200
    assert any("boom in the check" in e["message"] for e in result["runtimeErrors"]), result
    png = base64.b64decode(result["screenshot"])
    assert png.startswith(PNG) and len(png) > 1000
    assert result["firstContentfulPaintMs"] is not None


def test_a_healthy_app_reports_nothing(node: dict[str, Any]) -> None:
    result = check(node, app_files())
    assert result["ok"] is True, {k: v for k, v in result.items() if k != "screenshot"}
    assert result["runtimeErrors"] == [] and result["consoleErrors"] == []
    assert result["failedRequests"] == []


def test_the_page_reaches_no_other_origin(node: dict[str, Any]) -> None:
    """The tenant's JavaScript runs in the node's browser: it must not reach the node's
    API (SSRF), nor anything else, by name or by address."""
    targets = [
        f"http://127.0.0.1:{node['port']}/kontext/preview",
        f"http://localhost:{node['port']}/healthz",
        "http://169.254.169.254/latest/meta-data/",
        "http://example.com/",
    ]
    calls = "\n".join(
        f'fetch("{t}").then(() => console.log("reached {i}"), () => {{}});'
        for i, t in enumerate(targets)
    )
    files = {"index.html": PAGE, "src/main.js": calls + "\n"}
    result = check(node, files, waitMs=1500)
    blocked = {f["url"] for f in result["failedRequests"]}
    for target in targets:
        assert any(b.startswith(target.split("/latest")[0]) for b in blocked), (target, result)
    listed = [
        line
        for line in node["log"].read_text().splitlines()
        if '"method": "GET"' in line and '"path": "/kontext/preview"' in line
    ]
    assert not listed, listed  # the node never saw the page's call to its API


def test_bad_check_bodies_are_422(node: dict[str, Any]) -> None:
    base = node["base"]
    sid = http("POST", f"{base}/kontext/preview", {"files": app_files()}).json()["sessionId"]
    for body in ({"path": "about"}, {"path": "/../x"}, {"waitMs": 999999}, {"nope": 1}):
        res = http("POST", f"{base}/kontext/preview/{sid}/check", body)
        assert res.status == 422, (body, res.body)
