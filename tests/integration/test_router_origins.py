"""The router's side of preview origins, over real loopback sockets to test upstreams:
subdomain routing, who may frame previews, private-preview tokens and the API's CORS."""

from __future__ import annotations

import time

import trio

from previewcore.session_id import mint
from previewcore.viewer import mint_token
from tests.integration.conftest import StartRouter
from tests.support.upstreams import Reply, Upstream, get

HTML = Reply(200, [(b"content-type", b"text/html; charset=utf-8")], [b"<h1>app</h1>"])
JS = Reply(200, [(b"content-type", b"text/javascript")], [b"export {}"])


async def test_a_preview_host_sends_every_path_to_its_session_unchanged(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(lambda s: HTML)
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port}, preview_domain="preview.test")
    sid = mint("node-0", r.keys)
    for path in ("/", "/kontext/preview", "/healthz", "/deep/route?x=1"):
        resp = await get(r.port, path, [(b"host", f"{sid}.preview.test:8080".encode())])
        assert resp.status == 200 and resp.body == b"<h1>app</h1>", path
    assert [s.target for s in up.seen] == [
        b"/",
        b"/kontext/preview",
        b"/healthz",
        b"/deep/route?x=1",
    ]
    assert up.seen[0].header(b"host") == f"{sid}.preview.test:8080".encode()
    # the API host: no preview, and the router's own paths
    assert (await get(r.port, f"/preview/{sid}/", [(b"host", b"preview.test")])).status == 404
    assert (await get(r.port, "/healthz", [(b"host", b"preview.test")])).status == 200
    assert len(up.seen) == 4


async def test_frame_ancestors_go_on_preview_html_only(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(lambda s: JS if s.target.endswith(b".js") else HTML)
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port}, frame_ancestors="'self' https://app.example")
    sid = mint("node-0", r.keys)
    page = await get(r.port, f"/preview/{sid}/")
    assert page.header(b"content-security-policy") == b"frame-ancestors 'self' https://app.example"
    script = await get(r.port, f"/preview/{sid}/main.js")
    assert script.header(b"content-security-policy") is None
    plain = await start_router({"node-0": up.port})
    assert (await get(plain.port, f"/preview/{sid}/")).header(b"content-security-policy") is None


async def test_a_viewer_token_is_traded_for_a_cookie_without_reaching_the_node(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(lambda s: HTML)
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port}, preview_domain="localhost")
    sid = mint("node-0", r.keys)
    host = [(b"host", f"{sid}.localhost:8080".encode())]
    token = mint_token(sid, int(time.time()) + 600, r.keys)
    traded = await get(r.port, f"/app?a=1&preview_token={token}&b=2", host)
    assert traded.status == 303 and traded.header(b"location") == b"/app?a=1&b=2"
    cookie = traded.header(b"set-cookie") or b""
    assert cookie.startswith(f"preview_viewer={token}; Path=/; Max-Age=".encode())
    assert b"HttpOnly; Secure; SameSite=None; Partitioned" in cookie  # *.localhost is secure
    for bad in (token[:-1] + ("a" if token[-1] != "a" else "b"), mint_token(sid, 1, r.keys)):
        refused = await get(r.port, f"/?preview_token={bad}", host)
        assert refused.status == 401 and b'"unauthorized"' in refused.body
    assert up.seen == []  # token checks never reach the node


async def test_api_guard_refuses_foreign_origins_and_non_json_before_the_node(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(lambda s: Reply(200, [(b"content-type", b"application/json")], [b"{}"]))
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port}, api_cors_origins=frozenset({"https://gen.example"}))
    sid = mint("node-0", r.keys)
    api = f"/kontext/preview/{sid}/files"
    json_ct = (b"content-type", b"application/json")
    evil = await get(r.port, api, [(b"origin", b"https://evil.example"), json_ct], "PUT", b"{}")
    assert evil.status == 403 and b'"forbidden_origin"' in evil.body
    form = await get(r.port, api, [(b"content-type", b"text/plain")], "PUT", b"{}")
    assert form.status == 415 and b'"unsupported_media_type"' in form.body
    assert up.seen == []
    pre = await get(r.port, api, [(b"origin", b"https://gen.example")], "OPTIONS")
    assert (
        pre.status == 204 and pre.header(b"access-control-allow-origin") == b"https://gen.example"
    )
    ok = await get(r.port, api, [(b"origin", b"https://gen.example"), json_ct], "PUT", b"{}")
    assert ok.status == 200 and ok.header(b"access-control-allow-origin") == b"https://gen.example"
    assert ok.header(b"vary") == b"Origin"
    assert len(up.seen) == 1
