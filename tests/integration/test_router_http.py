"""The router forwarding HTTP over real loopback sockets to test upstreams."""

from __future__ import annotations

import json
import time

import pytest
import trio

from previewcore.session_id import mint
from tests.integration.conftest import StartRouter
from tests.support.processes import free_port
from tests.support.upstreams import (
    CountingListener,
    LoopbackServer,
    Reply,
    Seen,
    Upstream,
    client,
    get,
)

JSON = [(b"content-type", b"application/json")]


async def test_forwarding_fidelity_both_ways(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(
        lambda s: Reply(
            201,
            [
                (b"x-up", b"1"),
                (b"set-cookie", b"a=1"),
                (b"set-cookie", b"b=2"),
                (b"content-length", b"4"),
            ],
            [b"pong"],
            reason=b"Made It",
        )
    )
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    sid = mint("node-0", r.keys)
    async with client(r.port) as c:
        resp = await c.request(
            "POST",
            f"/preview/{sid}/api/x?q=1&r=%20",
            [(b"x-custom", b"v"), (b"content-type", b"text/plain"), (b"x-request-id", b"req-123")],
            b"ping-body",
        )
    seen = up.seen[0]
    assert (seen.method, seen.target, seen.body) == (
        b"POST",
        f"/preview/{sid}/api/x?q=1&r=%20".encode(),
        b"ping-body",
    )
    assert seen.header(b"host") == b"preview.test"  # Host preserved
    assert seen.header(b"x-custom") == b"v"
    assert seen.header(b"x-forwarded-for") == b"127.0.0.1"
    assert seen.header(b"x-forwarded-host") == b"preview.test"
    assert seen.header(b"x-forwarded-proto") == b"http"
    assert seen.header(b"x-request-id") == b"req-123"
    assert (resp.status, resp.reason, resp.body) == (201, b"Made It", b"pong")
    assert resp.header(b"x-up") == b"1" and resp.header(b"x-request-id") == b"req-123"
    assert [v for k, v in resp.headers if k == b"set-cookie"] == [b"a=1", b"b=2"]


async def test_hop_by_hop_and_connection_named_headers_are_dropped(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(
        lambda s: Reply(
            200, [(b"connection", b"x-secret"), (b"x-secret", b"1"), (b"keep-alive", b"5")]
        )
    )
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    resp = await get(
        r.port,
        f"/preview/{mint('node-0', r.keys)}/",
        [
            (b"connection", b"x-drop-me"),
            (b"x-drop-me", b"1"),
            (b"proxy-authorization", b"x"),
            (b"te", b"trailers"),
        ],
    )
    seen = up.seen[0]
    for name in (b"x-drop-me", b"proxy-authorization", b"te"):
        assert seen.header(name) is None, name
    assert resp.header(b"x-secret") is None and resp.header(b"keep-alive") is None


async def test_x_forwarded_kept_only_from_trusted_proxies(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream()
    await nursery.start(up.serve)
    spoof = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https")]
    untrusted = await start_router({"node-0": up.port})
    trusted = await start_router({"node-0": up.port}, trusted_proxies="127.0.0.0/8")
    await get(untrusted.port, f"/preview/{mint('node-0', untrusted.keys)}/", spoof)
    await get(trusted.port, f"/preview/{mint('node-0', trusted.keys)}/", spoof)
    assert up.seen[0].header(b"x-forwarded-for") == b"127.0.0.1"
    assert up.seen[0].header(b"x-forwarded-proto") == b"http"
    assert up.seen[1].header(b"x-forwarded-for") == b"6.6.6.6, 127.0.0.1"
    assert up.seen[1].header(b"x-forwarded-proto") == b"https"


async def test_chunked_bodies_and_trailers_pass_through(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(
        lambda s: Reply(
            200,
            [(b"transfer-encoding", b"chunked")],
            [b"a" * 10, b"b" * 70_000],
            trailers=[(b"x-sum", b"9")],
        )
    )
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    async with client(r.port) as c:
        resp = await c.request(
            "PUT",
            f"/preview/{mint('node-0', r.keys)}/upload",
            [(b"transfer-encoding", b"chunked")],
            [b"x" * 100, b"y" * 100_000],
            trailers=[(b"x-checksum", b"abc")],
        )
    assert up.seen[0].body == b"x" * 100 + b"y" * 100_000
    assert up.seen[0].trailers == [(b"x-checksum", b"abc")]
    assert resp.body == b"a" * 10 + b"b" * 70_000
    assert resp.trailers == [(b"x-sum", b"9")]


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
async def test_bodiless_responses(
    nursery: trio.Nursery, start_router: StartRouter, method: str, status: int
) -> None:
    def respond(seen: Seen) -> Reply:
        if status == 200:
            return Reply(
                200, [(b"content-length", b"5")], [b"hello"] if seen.method == b"GET" else []
            )
        return Reply(status, [], [])

    up = Upstream(respond)
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    sid = mint("node-0", r.keys)
    async with client(r.port) as c:
        resp = await c.request(method, f"/preview/{sid}/")
        assert (resp.status, resp.body) == (status, b"")
        again = await c.request("GET", f"/preview/{sid}/")  # the connection is still in sync
        assert again.status == status and again.body == (b"hello" if status == 200 else b"")


async def test_expect_100_continue(nursery: trio.Nursery, start_router: StartRouter) -> None:
    up = Upstream()
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    sid = mint("node-0", r.keys)
    stream = await trio.open_tcp_stream("127.0.0.1", r.port)
    await stream.send_all(
        f"POST /preview/{sid}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    with trio.fail_after(3):
        first = await stream.receive_some(1000)
    assert first.startswith(b"HTTP/1.1 100")
    await stream.send_all(b"data")
    with trio.fail_after(3):
        rest = await stream.receive_some(1000)
    assert b"200" in rest and up.seen[0].body == b"data"
    await stream.aclose()


async def test_upstream_connections_are_reused(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream()
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    sid = mint("node-0", r.keys)
    async with client(r.port) as c:
        for _ in range(20):
            assert (await c.request("GET", f"/preview/{sid}/")).status == 200
    assert up.connections == 1 and len(up.seen) == 20


async def test_stale_pooled_connection_is_retried_once(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    """An upstream that closes idle sockets: the bodiless request is retried on a fresh one."""
    up = Upstream(
        lambda s: Reply(200, [(b"connection", b"close")] if s.target.endswith(b"close") else [])
    )
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    sid = mint("node-0", r.keys)
    for _ in range(5):
        assert (await get(r.port, f"/preview/{sid}/")).status == 200


async def test_refused_upstream_is_502_fast(start_router: StartRouter) -> None:
    r = await start_router({"node-0": free_port()})
    t = time.monotonic()
    resp = await get(r.port, f"/preview/{mint('node-0', r.keys)}/")
    assert resp.status == 502 and json.loads(resp.body)["code"] == "node_unreachable"
    assert time.monotonic() - t < 1.0


async def test_hanging_upstream_is_504_at_the_timeout(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    hang = CountingListener(hang=True)
    await nursery.start(hang.serve)
    r = await start_router({"node-0": hang.port}, upstream_timeout=0.5)
    t = time.monotonic()
    resp = await get(r.port, f"/preview/{mint('node-0', r.keys)}/")
    elapsed = time.monotonic() - t
    assert resp.status == 504 and json.loads(resp.body)["code"] == "node_timeout"
    assert 0.45 < elapsed < 3.0


async def test_forged_and_unknown_ids_get_404_without_upstream_connection(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    counter = CountingListener(hang=False)
    await nursery.start(counter.serve)
    r = await start_router({"node-0": counter.port})
    good = mint("node-0", r.keys)
    forged = good[:-2] + ("aa" if good[-2:] != "aa" else "bb")
    other_secret = mint("node-0", type(r.keys)((b"z" * 40,)))
    absent = mint("node-7", r.keys)
    for sid in (forged, other_secret, absent, "node-0--nonsense"):
        for target in (f"/preview/{sid}/", f"/kontext/preview/{sid}"):
            resp = await get(r.port, target)
            assert resp.status == 404 and json.loads(resp.body)["code"] == "unknown_session", target
    await trio.sleep(0.1)
    assert counter.connections == 0


async def test_browser_gets_html_errors(start_router: StartRouter) -> None:
    r = await start_router({"node-0": free_port()})
    resp = await get(
        r.port, "/preview/node-0--x/", [(b"accept", b"text/html,application/xhtml+xml")]
    )
    assert resp.status == 404 and resp.header(
        b"content-type",
    ).startswith(b"text/html")  # type: ignore[union-attr]
    assert b"unknown_session" in resp.body


async def test_draining_node_still_serves_its_sessions(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream()
    await nursery.start(up.serve)
    r = await start_router({"node-0": (up.port, "draining")})
    assert (await get(r.port, f"/preview/{mint('node-0', r.keys)}/")).status == 200


async def test_hashed_id_falls_back_along_the_ring(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    """The owner says "not held here": the router asks the next node, which holds it."""
    ports: dict[str, int] = {}
    holder = "node-b"

    def make(name: str) -> Upstream:
        def respond(seen: Seen) -> Reply:
            if name == holder:
                return Reply(200, [], [name.encode()])
            return Reply(404, [(b"x-preview-unknown-session", b"1")], [b"{}"])

        return Upstream(respond)

    ups = {name: make(name) for name in ("node-a", "node-b", "node-c")}
    for name, up in ups.items():
        ports[name] = await nursery.start(up.serve)
    r = await start_router(ports)
    ring = r.service.state.ring.value
    # pick an ID whose owner is not the holder, so the fallback must work
    sid = next(f"proj{i}" for i in range(1000) if ring.route(f"proj{i}")[0].name != holder)
    resp = await get(r.port, f"/preview/{sid}/")
    assert (resp.status, resp.body) == (200, b"node-b")
    assert resp.header(b"x-preview-unknown-session") is None
    # an ID held nowhere: the last node's 404 is relayed, without the private marker
    for up in ups.values():
        up.respond = lambda s: Reply(404, [(b"x-preview-unknown-session", b"1")], [b"{}"])
    resp = await get(r.port, f"/preview/{sid}/")
    assert resp.status == 404 and resp.header(b"x-preview-unknown-session") is None


async def test_api_token_required_when_configured(
    nursery: trio.Nursery, start_router: StartRouter, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    up = Upstream()
    await nursery.start(up.serve)
    tokens = tmp_path / "tokens"
    tokens.write_text("tok-1\ntok-2\n")
    r = await start_router({"node-0": up.port}, api_token_file=tokens)
    sid = mint("node-0", r.keys)
    assert (await get(r.port, f"/kontext/preview/{sid}")).status == 401
    assert (
        await get(r.port, f"/kontext/preview/{sid}", [(b"authorization", b"Bearer nope")])
    ).status == 401
    assert (
        await get(r.port, f"/kontext/preview/{sid}", [(b"authorization", b"Bearer tok-2")])
    ).status == 200
    assert (
        await get(r.port, f"/preview/{sid}/")
    ).status == 200  # the preview itself needs no token


async def test_create_skips_full_node_and_places_client_chosen_ids(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    def node(name: str, full: bool) -> Upstream:
        def respond(seen: Seen) -> Reply:
            if seen.method == b"GET":
                return Reply(404, [(b"x-preview-unknown-session", b"1")], [b"{}"])
            if full:
                return Reply(
                    503,
                    [
                        (b"retry-after", b"2"),
                        (b"x-preview-node-load", b"running=5/5; sessions=9/9"),
                    ],
                    [b"{}"],
                )
            return Reply(
                201, [(b"content-type", b"application/json")], [json.dumps({"node": name}).encode()]
            )

        return Upstream(respond)

    full, ok = node("node-a", True), node("node-b", False)
    r = await start_router(
        {"node-a": await nursery.start(full.serve), "node-b": await nursery.start(ok.serve)}
    )
    for i in range(6):
        resp = await get(
            r.port,
            "/kontext/preview",
            method="POST",
            body=json.dumps({"files": {}, "affinityKey": f"p{i}"}).encode(),
            headers=[(b"content-type", b"application/json")],
        )
        assert resp.status == 201 and json.loads(resp.body)["node"] == "node-b"
    resp = await get(
        r.port,
        "/kontext/preview",
        method="POST",
        body=json.dumps({"sessionId": "my-proj"}).encode(),
        headers=JSON,
    )
    assert resp.status == 201
    post = [s for s in ok.seen if s.method == b"POST"][-1]
    assert (
        post.header(b"x-preview-placement") is not None
    )  # the ring placed it; the node may accept it
    assert json.loads(post.body)["sessionId"] == "my-proj"


async def test_create_with_taken_session_id_is_409(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    up = Upstream(
        lambda s: Reply(200, [], [b"{}"]) if s.method == b"GET" else Reply(201, [], [b"{}"])
    )
    r = await start_router({"node-0": await nursery.start(up.serve)})
    resp = await get(
        r.port, "/kontext/preview", method="POST", body=b'{"sessionId": "taken"}', headers=JSON
    )
    assert resp.status == 409 and json.loads(resp.body)["code"] == "session_exists"
    assert all(s.method == b"GET" for s in up.seen)


async def test_create_rejects_bad_bodies(start_router: StartRouter) -> None:
    r = await start_router({"node-0": free_port()}, max_body_bytes=1000)
    assert (
        await get(r.port, "/kontext/preview", method="POST", body=b"{nope", headers=JSON)
    ).status == 400
    resp = await get(
        r.port, "/kontext/preview", method="POST", body=b'{"sessionId": "a--b"}', headers=JSON
    )
    assert resp.status == 422
    assert (
        await get(r.port, "/kontext/preview", method="POST", body=b"x" * 2000, headers=JSON)
    ).status == 413


async def test_referer_redirect_into_the_session(start_router: StartRouter) -> None:
    r = await start_router({"node-0": free_port()})
    sid = mint("node-0", r.keys)
    resp = await get(
        r.port, "/logo.svg?x=1", [(b"referer", f"http://preview.test/preview/{sid}/".encode())]
    )
    assert (
        resp.status == 307 and resp.header(b"location") == f"/preview/{sid}/logo.svg?x=1".encode()
    )
    resp = await get(r.port, f"/preview/{sid}?a=b")
    assert resp.status == 308 and resp.header(b"location") == f"/preview/{sid}/?a=b".encode()


async def test_health_ready_metrics(start_router: StartRouter) -> None:
    r = await start_router({"node-0": free_port()})
    assert (await get(r.port, "/healthz")).status == 200
    assert (await get(r.port, "/readyz")).status == 200
    await get(r.port, "/nope")
    metrics = await get(r.port, "/metrics")
    assert metrics.status == 200
    assert b'preview_router_requests_total{route="error",status="404"}' in metrics.body
    assert b'preview_router_ring_nodes{state="active"} 1.0' in metrics.body


async def test_ring_change_is_used_within_2s_and_broken_file_keeps_old_ring(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    a, b = Upstream(lambda s: Reply(200, [], [b"a"])), Upstream(lambda s: Reply(200, [], [b"b"]))
    pa, pb = await nursery.start(a.serve), await nursery.start(b.serve)
    r = await start_router({"node-a": pa})
    sid_b = mint("node-b", r.keys)
    assert (await get(r.port, f"/preview/{sid_b}/")).status == 404
    r.write_ring({"node-a": (pa, "active"), "node-b": (pb, "active")})
    t = time.monotonic()
    while (await get(r.port, f"/preview/{sid_b}/")).status != 200:
        assert time.monotonic() - t < 2.0, "new node not used within 2 s"
        await trio.sleep(0.05)
    r.ring_path.write_text("[[nodes]]\nname = 'broken\n")
    await trio.sleep(1.2)
    assert (await get(r.port, f"/preview/{sid_b}/")).body == b"b"  # old ring still in force


async def test_client_gone_cancels_the_upstream_request(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    """A client that hangs up while its request is held upstream frees the upstream socket."""
    closed_at: list[float] = []

    async def silent_upstream(stream: trio.SocketStream) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive_some(4096)
        while await stream.receive_some(4096):  # never answers; waits for the router to give up
            pass
        closed_at.append(time.monotonic())

    listeners = await nursery.start(trio.serve_tcp, silent_upstream, 0)
    r = await start_router({"node-0": listeners[0].socket.getsockname()[1]})
    stream = await trio.open_tcp_stream("127.0.0.1", r.port)
    await stream.send_all(
        f"GET /preview/{mint('node-0', r.keys)}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    await trio.sleep(0.5)  # held upstream
    gone = time.monotonic()
    await stream.aclose()
    with trio.fail_after(3):
        while not closed_at:
            await trio.sleep(0.02)
    assert closed_at[0] - gone < 1.0


async def test_pipelined_request_behind_a_slow_one_is_kept(
    nursery: trio.Nursery, start_router: StartRouter
) -> None:
    """While waiting on a slow upstream the router watches the client; bytes it reads then
    (the next pipelined request) must still be served, in order."""

    async def respond(seen: Seen) -> Reply:
        if seen.target.endswith(b"/slow"):
            await trio.sleep(0.6)
        return Reply(200, [], [seen.target.rsplit(b"/", 1)[1]])

    up = Upstream(respond)
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port}, header_timeout=1.5)
    sid = mint("node-0", r.keys)
    stream = await trio.open_tcp_stream("127.0.0.1", r.port)
    await stream.send_all(f"GET /preview/{sid}/slow HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await trio.sleep(0.3)  # the router is now watching this client while it waits upstream
    await stream.send_all(f"GET /preview/{sid}/fast HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    out = b""
    with trio.move_on_after(4):
        while out.count(b"HTTP/1.1 200") < 2 or not out.endswith(b"fast"):
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            out += chunk
    await stream.aclose()
    assert out.count(b"HTTP/1.1 200") == 2, out
    assert out.index(b"slow") < out.index(b"fast")


class DropsReused(LoopbackServer):
    """Answers the first request on each connection; a later one on the same connection
    is read, then, after `delay`, the connection is closed without an answer (a peer
    closing an idle keep-alive socket as the request arrives; `always`: every request)."""

    def __init__(self, delay: float, always: bool = False) -> None:
        self.delay, self.always = delay, always
        self.port = 0
        self.dropped = 0

    async def _conn(self, stream: trio.SocketStream) -> None:
        async with stream:
            buf = b""
            for served in range(100):
                while b"\r\n\r\n" not in buf:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buf += data
                buf = buf.split(b"\r\n\r\n", 1)[1]  # bodiless GETs only
                if served > 0 or self.always:
                    await trio.sleep(self.delay)
                    self.dropped += 1
                    return
                await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


# The router answers a head that takes longer than 0.2 s while watching for the client
# hanging up (forward._WATCH_CLIENT_AFTER): the same answers either way.
@pytest.mark.parametrize("delay", [0.0, 0.5], ids=["at-once", "after-the-watch-began"])
async def test_a_reused_connection_dropped_without_an_answer_is_retried_fresh(
    nursery: trio.Nursery, start_router: StartRouter, delay: float
) -> None:
    up = DropsReused(delay)
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    sid = mint("node-0", r.keys)
    for _ in range(3):
        resp = await get(r.port, f"/preview/{sid}/")
        assert resp.status == 200, resp.body
    assert up.dropped >= 1  # a pooled connection was reused, dropped and the retry served


@pytest.mark.parametrize("delay", [0.0, 0.5], ids=["at-once", "after-the-watch-began"])
async def test_an_upstream_closing_without_an_answer_is_502_node_unreachable(
    nursery: trio.Nursery, start_router: StartRouter, delay: float
) -> None:
    up = DropsReused(delay, always=True)
    await nursery.start(up.serve)
    r = await start_router({"node-0": up.port})
    resp = await get(r.port, f"/preview/{mint('node-0', r.keys)}/")
    assert resp.status == 502 and json.loads(resp.body)["code"] == "node_unreachable", resp.body
