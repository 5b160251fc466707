"""The router's request handler: route, then forward, tunnel, create or answer locally.

Stateless by design: everything it needs to route is the ID itself, the ring
file and the secrets. The only soft state is the load each node last reported
(`X-Preview-Node-Load`), which bounds placement (`router/placement.py`: a node
holding more than its share is passed over, a random key takes the less loaded
of two); losing it costs nothing but balance.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
import trio

from previewcore.auth import authorize
from previewcore.cors import check_origin, preflight
from previewcore.decisions import Local, Redirect, Reject
from previewcore.errors import InvalidContent, SessionExists, Unauthorized
from previewcore.jsonbody import decode, require_json
from previewcore.livefile import LiveFile
from previewcore.session_id import Keys, is_valid_hashed_id, placement_token
from previewcore.urls import preview_path
from previewcore.viewer import set_cookie, split_token, token_expiry, verify_token
from previewcore.wire import LOAD_HEADER, NODE_PRIVATE, PLACEMENT_HEADER, UNKNOWN_MARK
from proxycore import logs
from proxycore.errors import (
    NotFound,
    OverCapacity,
    PreviewError,
    UpstreamRefused,
    UpstreamTimeout,
)
from proxycore.forward import (
    ForwardPolicy,
    UpstreamResponse,
    discard_response,
    exchange_head,
    relay_response,
    simple_request,
)
from proxycore.headers import Headers, get, is_trusted
from proxycore.server import Exchange
from proxycore.target import split_target
from proxycore.tunnel import finish_upgrade
from proxycore.upstream import ConnectFailed, ConnectTimeout, UpstreamPool
from router import metrics, placement
from router.placement import Loads
from router.ring import Node, Ring
from router.routing import Create, Forward, Preflight, route

QUERY_MARK = b"preview_token="  # a viewer token to trade for its cookie (previewcore.viewer)


class _CreateBody(msgspec.Struct):
    """The fields the router reads from a create body; the node validates the rest."""

    sessionId: str | None = None
    affinityKey: str | None = None


@dataclass
class RouterState:
    ring: LiveFile[Ring]
    keys: LiveFile[Keys]
    tokens: LiveFile[tuple[bytes, ...]] | None = None
    draining: bool = False
    loads: Loads = field(default_factory=Loads)
    inflight: int = 0
    tunnels: int = 0


@dataclass(frozen=True)
class WebPolicy:
    """What browsers get: preview origins, the API's allowed origins, who may frame."""

    preview_domain: str | None = None  # subdomain mode
    cors_origins: frozenset[str] = frozenset()
    frame_ancestors: str | None = None  # CSP frame-ancestors on preview HTML


class RouterApp:
    def __init__(
        self,
        state: RouterState,
        pool: UpstreamPool,
        policy: ForwardPolicy,
        *,
        max_body_bytes: int,
        metrics_here: bool,
        web: WebPolicy | None = None,
        choose: Callable[[], str] | None = None,
    ) -> None:
        self.state = state
        self.pool = pool
        self.web = web or WebPolicy()
        self.policy = replace(policy, on_response=self._on_response)
        self.max_body = max_body_bytes
        self.metrics_here = metrics_here
        self._random_key = choose or (lambda: os.urandom(12).hex())
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def handle(self, ex: Exchange) -> None:
        """Carry out the route's decision; errors propagate to the server, which answers them."""
        st = self.state
        decision = route(
            ex.method.decode("ascii", "replace"),
            ex.target.decode("latin-1"),
            _str(ex.header(b"referer")),
            st.ring.value,
            st.keys.value,
            host=ex.header(b"host"),
            preview_domain=self.web.preview_domain,
        )
        ex.route = decision.route_class
        st.inflight += 1
        try:
            if isinstance(decision, Forward):
                ex.upstream = decision.nodes[0].name
                if decision.route_class == "api":
                    self._api_guard(ex)
                elif QUERY_MARK in ex.target:
                    await self._trade_token(ex, decision.session_id)
                    return
                await self._forward(ex, decision)
            elif isinstance(decision, Create):
                self._api_guard(ex)
                await self._create(ex)
            elif isinstance(decision, Preflight):
                headers = preflight(ex.header(b"origin"), self.web.cors_origins)
                await ex.respond(204, headers)
            elif isinstance(decision, Local):
                await self._local(ex, decision.path)
            elif isinstance(decision, Redirect):
                await ex.respond(decision.status, [(b"location", decision.location.encode())])
            elif isinstance(decision, Reject):
                raise decision.error
        finally:
            st.inflight -= 1

    def finished(self, ex: Exchange) -> None:
        """The server's finished-request hook: request metrics and the access log line."""
        elapsed = time.perf_counter() - ex.started_at
        key = (ex.route, ex.status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                metrics.REQUESTS.labels(ex.route, str(ex.status)),
                metrics.LATENCY.labels(ex.route),
            )
        children[0].inc()
        children[1].observe(elapsed)
        logs.access(ex, ex.route, node=ex.upstream)

    def _api_guard(self, ex: Exchange) -> None:
        """Before anything reaches a node: the browser's origin, the token, a JSON body."""
        ex.extra_headers = check_origin(ex.header(b"origin"), self.web.cors_origins)
        tokens = self.state.tokens
        authorize(ex.header(b"authorization"), tokens.value if tokens is not None else None)
        if ex.has_body:
            require_json(ex.header(b"content-type"))

    async def _trade_token(self, ex: Exchange, sid: str) -> None:
        """`?preview_token=` -> the viewer cookie, then the same URL without the token."""
        target = split_target(ex.target.decode("latin-1"))
        token, rest = split_token(target.query)
        now = time.time()
        if token is None or not verify_token(sid, token, self.state.keys.value, now):
            raise Unauthorized("the preview token is invalid or expired")
        expiry = token_expiry(token)
        assert expiry is not None  # verified above
        path = "/" if self.web.preview_domain else preview_path(sid)
        cookie = set_cookie(token, expiry - int(now), path=path, secure=self._secure(ex))
        location = target.path + ("?" + rest if rest else "")
        headers = [(b"location", location.encode()), (b"set-cookie", cookie)]
        await ex.respond(303, [*headers, (b"cache-control", b"no-store")])

    def _secure(self, ex: Exchange) -> bool:
        """Whether the browser reached us over https (or on localhost, which it trusts)."""
        proto = (
            ex.header(b"x-forwarded-proto") if is_trusted(ex.peer, self.policy.trusted) else None
        )
        if proto == b"https":
            return True
        host = (ex.header(b"host") or b"").partition(b":")[0].lower()
        return host in (b"localhost", b"127.0.0.1") or host.endswith(b".localhost")

    def _on_response(self, ex: Exchange, status: int, headers: Headers) -> None:
        """Frame-ancestors on preview HTML: the operator chooses who may frame previews."""
        if self.web.frame_ancestors and ex.route == "preview":
            ctype = get(headers, b"content-type") or b""
            if ctype.lower().startswith(b"text/html"):
                csp = b"frame-ancestors " + self.web.frame_ancestors.encode()
                headers.append((b"content-security-policy", csp))

    async def _local(self, ex: Exchange, path: str) -> None:
        if path == "/healthz":
            await ex.respond(200, [(b"content-type", b"application/json")], b'{"status":"ok"}')
        elif path == "/readyz":
            ready = not self.state.draining and bool(self.state.ring.value.nodes)
            body = json.dumps({"ready": ready, "nodes": len(self.state.ring.value.nodes)}).encode()
            await ex.respond(200 if ready else 503, [(b"content-type", b"application/json")], body)
        elif path == "/metrics" and self.metrics_here:
            ctype, body = metrics.render()
            await ex.respond(200, [(b"content-type", ctype)], body)
        else:
            raise NotFound()

    def _note_load(self, node: Node, resp: UpstreamResponse) -> None:
        self.state.loads.report(node.name, resp.header(LOAD_HEADER))

    async def _head(
        self,
        ex: Exchange,
        node: Node,
        body: bytes | None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> UpstreamResponse:
        try:
            resp = await exchange_head(
                ex,
                self.pool,
                (node.host, node.port),
                self.policy,
                body=body,
                extra_headers=extra or (),
            )
        except UpstreamRefused:
            metrics.UPSTREAM_ERRORS.labels(node.name, "refused").inc()
            raise
        except UpstreamTimeout:
            metrics.UPSTREAM_ERRORS.labels(node.name, "timeout").inc()
            raise
        self._note_load(node, resp)
        return resp

    async def _forward(self, ex: Exchange, decision: Forward) -> None:
        """Forward to the owner; for hashed IDs, on the unknown-session mark, to its successors."""
        body: bytes | None = None
        if decision.route_class == "api" and ex.has_body:
            body = await ex.read_body(self.max_body)
        replayable = body is not None or not ex.has_body
        nodes = decision.nodes if (replayable and not decision.encoded) else decision.nodes[:1]
        for i, node in enumerate(nodes):
            ex.upstream = node.name
            resp = await self._head(ex, node, body)
            if resp.header(UNKNOWN_MARK) is not None and i + 1 < len(nodes):
                await discard_response(resp, self.pool)
                continue
            if ex.upgrade and decision.route_class == "preview":
                await self._splice(ex, node, resp)
            else:
                await relay_response(ex, resp, self.pool, self.policy)
            return

    async def _splice(self, ex: Exchange, node: Node, resp: UpstreamResponse) -> None:
        """Finish an upgrade; an open tunnel counts as a tunnel, not an in-flight request."""
        gauge = metrics.OPEN_WEBSOCKETS.labels(node.name)
        st = self.state

        def opened() -> None:
            st.inflight -= 1
            st.tunnels += 1
            gauge.inc()

        def closed() -> None:
            st.tunnels -= 1
            st.inflight += 1
            gauge.dec()

        await finish_upgrade(ex, resp, self.pool, self.policy, opened, closed)

    def _candidates(self, ring: Ring, sid: str | None, affinity: str | None) -> list[Node]:
        return placement.candidates(ring, self.state.loads, sid, affinity, self._random_key)

    async def _exists(self, sid: str, ring: Ring, authorization: bytes | None) -> bool:
        """Is a client-chosen ID already held by its owner or the next nodes along the ring?"""
        headers = [(b"host", b"preview-router"), (b"accept", b"application/json")]
        if authorization is not None:
            headers.append((b"authorization", authorization))
        for node in ring.route(sid):
            status = 0
            with trio.move_on_after(self.policy.upstream_timeout):
                # A node that cannot answer cannot hold a live copy we could reach.
                with contextlib.suppress(UpstreamRefused, UpstreamTimeout):
                    status, _, _ = await simple_request(
                        self.pool,
                        (node.host, node.port),
                        b"GET",
                        f"/kontext/preview/{sid}".encode(),
                        headers,
                    )
            if status == 200:
                return True
        return False

    async def _create(self, ex: Exchange) -> None:
        body = await ex.read_body(self.max_body)
        fields = decode(body, _CreateBody)
        sid = fields.sessionId
        if sid is not None and not is_valid_hashed_id(sid):
            raise InvalidContent("sessionId must match [A-Za-z0-9_-]{1,64} and not contain '--'")
        ring = self.state.ring.value
        candidates = self._candidates(ring, sid, fields.affinityKey)
        if not candidates:
            raise OverCapacity("no active node takes new sessions")
        extra: list[tuple[bytes, bytes]] = []
        if sid is not None:
            if await self._exists(sid, ring, ex.header(b"authorization")):
                raise SessionExists(f"session {sid} exists")
            extra.append((PLACEMENT_HEADER, placement_token(sid, self.state.keys.value).encode()))
        last: PreviewError = OverCapacity("every node is full or unreachable")
        for node in candidates:
            try:
                resp = await self._head(ex, node, body, extra)
            except (ConnectFailed, ConnectTimeout) as exc:
                last = exc
                continue
            if resp.status == 503:
                await discard_response(resp, self.pool)
                continue
            ex.upstream = node.name
            await relay_response(ex, resp, self.pool, self.policy)
            return
        raise last


def _str(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def router_policy(upstream_timeout: float, trusted: tuple[object, ...]) -> ForwardPolicy:
    return ForwardPolicy(
        upstream_timeout=upstream_timeout,
        trusted=trusted,  # type: ignore[arg-type]
        strip_response=NODE_PRIVATE,
        drop_request=frozenset({PLACEMENT_HEADER}),
    )
