"""A web origin per session, private previews in iframes, and an API browsers can't misuse.

Real routers, nodes, Vite and headless Chromium in subdomain mode on `localhost`
(Chromium resolves `*.localhost` to loopback; Python gets there through `via_host`).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser

from tests.support.browser import Watched, open_app
from tests.support.cluster import Cluster, HTTPResult, app_files, cluster
from tests.support.cluster import http as api_call

pytestmark = pytest.mark.e2e

DOMAIN = "localhost"
SUBDOMAIN = ("--preview-domain", DOMAIN)
LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'


def files(title: str) -> dict[str, str]:
    out = app_files()
    out["src/App.jsx"] = (
        out["src/App.jsx"]
        .replace("Fixture app", title)
        .replace(
            '<h1 className="text-2xl font-bold">',
            '<img src="/logo.svg" alt="logo" /><h1 className="text-2xl font-bold">',
        )
    )
    out["public/logo.svg"] = LOGO
    return out


def via_host(method: str, url: str, **headers: str) -> HTTPResult:
    """A request to a `{id}.localhost` URL on 127.0.0.1 with the URL's Host; no redirects
    followed (a 303 is what is tested)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=60)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, headers={"host": parts.netloc, **headers})
        resp = conn.getresponse()
        return HTTPResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def subdomains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("origins")
    with cluster(tmp, nodes=1, routers=1, node_args=SUBDOMAIN, router_args=SUBDOMAIN) as c:
        yield c


def node_sessions(c: Cluster) -> int:
    return sum(
        len(api_call("GET", f"{n.url}/kontext/preview").json()["sessions"])
        for n in c.nodes.values()
    )


def test_each_session_is_its_own_origin(browser: Browser, subdomains: Cluster) -> None:
    c = subdomains
    a, b = c.create(files=files("Session A")), c.create(files=files("Session B"))
    port = c.public_port
    assert a["previewUrl"] == f"http://{a['sessionId']}.localhost:{port}/"
    assert a["wsUrl"] == f"ws://{a['sessionId']}.localhost:{port}/hmr"
    wb = open_app(browser, b["previewUrl"])
    wb.page.evaluate("localStorage.setItem('who', 'B'); document.cookie = 'who=B; path=/'")
    wa = open_app(browser, a["previewUrl"])
    page = wa.page
    page.get_by_text("Session A").wait_for(timeout=10_000)
    # the app's root-absolute image comes from its own origin root, with no redirect
    # (waited for: its text can show before the image has loaded)
    page.wait_for_function("document.querySelector('img')?.complete", timeout=10_000)
    logo = page.evaluate(
        "() => { const i = document.querySelector('img'); return [i.complete, i.naturalWidth, i.src] }"
    )
    assert logo == [True, 8, f"{a['previewUrl']}logo.svg"]
    assert not [r for r in wa.failed if "logo" in r]
    # storage and cookies are per origin
    assert page.evaluate("localStorage.getItem('who')") is None
    assert "who=B" not in page.evaluate("document.cookie")
    # B's DOM and source are out of A's reach
    framed = page.evaluate(
        """async (url) => {
            const f = document.createElement('iframe');
            f.src = url;
            document.body.appendChild(f);
            await new Promise((r) => (f.onload = r));
            try { return f.contentDocument === null ? 'blocked' : f.contentDocument.title; }
            catch (e) { return 'blocked: ' + e.name; }
        }""",
        b["previewUrl"],
    )
    assert framed.startswith("blocked"), framed
    source = page.evaluate(
        """async (url) => {
            try { const r = await fetch(url + 'src/App.jsx'); return 'read: ' + (await r.text()).slice(0, 40); }
            catch (e) { return 'blocked: ' + e.name; }
        }""",
        b["previewUrl"],
    )
    assert source.startswith("blocked"), source
    # the API is not on a preview origin: /kontext/* there is the app's own path
    api = page.evaluate(
        """async () => {
            const r = await fetch('/kontext/preview/' + location.hostname.split('.')[0]);
            return [r.status, r.headers.get('content-type'), (await r.text()).slice(0, 200)];
        }"""
    )
    assert '"success"' not in api[2] and "sessionId" not in api[2], api
    # an edit reaches A by HMR without a reload
    page.evaluate("window.__marker = 'kept'")
    res = c.put_files(a["sessionId"], {"src/App.jsx": files("Session A edited")["src/App.jsx"]})
    assert res.status == 200, res.body
    page.get_by_text("Session A edited").wait_for(timeout=10_000)
    assert page.evaluate("window.__marker") == "kept", "reloaded instead of hot-updating"
    assert wa.open_hmr(), wa.console
    wa.page.close()
    wb.page.close()


def test_preview_paths_are_not_served_on_the_api_host(subdomains: Cluster) -> None:
    s = subdomains.create(files=files("Elsewhere"))
    res = api_call("GET", f"{subdomains.routers[0].url}/preview/{s['sessionId']}/")
    assert res.status == 404 and res.json()["code"] == "not_found"


class _Embedder(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def embedding_site(iframe_src: str) -> Iterator[str]:
    """Another site (127.0.0.1, not *.localhost) whose page frames the preview."""
    handler = type(
        "Embed",
        (_Embedder,),
        {"page": f'<iframe id="p" src="{iframe_src}" width="600" height="400"></iframe>'.encode()},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def mint(c: Cluster, sid: str, ttl: float = 600) -> str:
    res = api_call("POST", f"{c.routers[0].url}/kontext/preview/{sid}/token", {"ttlSeconds": ttl})
    assert res.status == 200, res.body
    return str(res.json()["token"])


def test_a_private_preview_needs_a_token_then_works_in_a_third_party_iframe(
    browser: Browser, subdomains: Cluster
) -> None:
    c = subdomains
    s = c.create(files=files("Private"), access="private")
    other = c.create(files=files("Other"), access="private")
    assert s["access"] == "private"
    url = s["previewUrl"]
    # without a token: 401, as JSON or as a page
    res = via_host("GET", url)
    assert res.status == 401 and res.json()["code"] == "unauthorized"
    page_401 = via_host("GET", url, accept="text/html")
    assert page_401.status == 401 and b"<h1>401" in page_401.body
    # forged, expired, or another session's token: 401
    good = mint(c, s["sessionId"])
    expiry, _, mac = good.partition(".")
    for bad in (
        f"{expiry}.{mac[:-1]}x",
        f"{int(expiry) + 60}.{mac}",
        f"{int(time.time()) - 5}.{mac}",
        mint(c, other["sessionId"]),
    ):
        assert via_host("GET", f"{url}?preview_token={bad}").status == 401, bad
    # a good token: a cookie and a redirect to the clean URL
    traded = via_host("GET", f"{url}?x=1&preview_token={good}")
    assert traded.status == 303 and traded.headers["location"] == "/?x=1"
    cookie = traded.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie
    assert "Domain" not in cookie
    value = cookie.split(";")[0]
    assert via_host("GET", url, cookie=value).status == 200
    # the cookie of one session does not open another
    assert via_host("GET", other["previewUrl"], cookie=value).status == 401
    # a parent-domain cookie of the same name planted by another session's page neither
    # opens this one nor locks its own viewer out
    planted = "preview_viewer=" + mint(c, other["sessionId"])
    assert via_host("GET", url, cookie=planted).status == 401
    assert via_host("GET", url, cookie=f"{planted}; {value}").status == 200
    assert via_host("GET", url, cookie=f"{value}; {planted}").status == 200
    # in a browser, framed by another site: the page renders and its HMR socket opens
    with embedding_site(f"{url}?preview_token={mint(c, s['sessionId'])}") as site:
        page = browser.new_page()
        w = Watched(page)
        page.goto(site, wait_until="load", timeout=30_000)
        frame = page.frame_locator("#p")
        frame.get_by_text("Private").wait_for(timeout=20_000)
        deadline = time.monotonic() + 10
        while not w.open_hmr():
            assert time.monotonic() < deadline, f"no HMR socket in the iframe: {w.console}"
            page.wait_for_timeout(100)
        page.close()


def test_cross_site_forms_and_fetches_create_nothing(browser: Browser, tmp_path: Path) -> None:
    with cluster(
        tmp_path,
        nodes=1,
        routers=1,
        node_args=SUBDOMAIN,
        router_args=(*SUBDOMAIN, "--api-cors-origins", "http://127.0.0.1:1"),
    ) as c:
        api = f"http://localhost:{c.public_port}/kontext/preview"
        before = node_sessions(c)
        attack = (
            f'<form id="f" method="POST" action="{api}" enctype="text/plain">'
            '<input name=\'{"files": {"index.html": "x", "a": "\' value=\'"}}\'></form>'
            "<script>document.getElementById('f').submit()</script>"
        )
        with embedding_site("about:blank") as site:
            page = browser.new_page()
            page.goto(site)
            result = page.evaluate(
                """async (api) => {
                    try {
                        const r = await fetch(api, {method: 'POST', headers: {'content-type': 'application/json'},
                                                     body: JSON.stringify({files: {'index.html': 'x'}})});
                        return 'status ' + r.status;
                    } catch (e) { return 'blocked: ' + e.name; }
                }""",
                api,
            )
            assert result.startswith("blocked"), result
            page.set_content(attack)  # then the form, which navigates the page away
            page.wait_for_timeout(1500)
            page.close()
        assert node_sessions(c) == before
        # what the browser sent, spelled out: refused before anything is created
        local = api.replace("localhost", "127.0.0.1")
        form = raw(
            "POST",
            local,
            b'{"files": {}}',
            {"content-type": "text/plain", "origin": "http://evil.example"},
        )
        assert form[0] == 403 and json.loads(form[1])["code"] == "forbidden_origin"
        plain = raw("POST", local, b'{"files": {}}', {"content-type": "text/plain"})
        assert plain[0] == 415 and json.loads(plain[1])["code"] == "unsupported_media_type"
        cross = raw("POST", local, b'{"files": {}}', {"origin": "http://evil.example"})
        assert cross[0] == 403
        assert node_sessions(c) == before
        # an allowed origin: preflight, then the request, with CORS answers
        allowed = {"origin": "http://127.0.0.1:1"}
        pre = api_call(
            "OPTIONS", local, None, headers={**allowed, "access-control-request-method": "POST"}
        )
        assert (
            pre.status == 204 and pre.headers["access-control-allow-origin"] == "http://127.0.0.1:1"
        )
        made = api_call("POST", local, {"files": app_files()}, headers=allowed)
        assert (
            made.status == 201
            and made.headers["access-control-allow-origin"] == "http://127.0.0.1:1"
        )
        assert node_sessions(c) == before + 1
        # JSON nested 1,000 deep: a clear 400, not a 500
        deep = raw(
            "POST", local, b'{"packageJson": ' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"}", {}
        )
        assert deep[0] == 400 and json.loads(deep[1])["code"] == "bad_request"
        assert node_sessions(c) == before + 1


def raw(method: str, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """A request with exactly these bytes and headers (JSON unless `content-type` says else)."""
    req = urllib.request.Request(
        url, data=body, method=method, headers={"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
