"""The node's request handler: its API, its health, and the previews it runs.

ID rules (CONTRACT §2, §3): an encoded ID must carry a good MAC *and* name this
node, else 404 (the router should never have sent it); a good one with no live
session is 410 (expired or deleted); a hashed ID not held here is 404 with
`X-Preview-Unknown-Session: 1`, so the router may ask the next node.

Thin by design: `routes.route` decides, `commands` carries out the use cases, the
supervisor owns dev servers, and errors propagate to the server, which answers them.
Preview requests go to the session's Vite through the shared proxy core
(`proxycore.forward` / `proxycore.tunnel`), held while Vite starts.
"""

from __future__ import annotations

import json
import time
from typing import Any

import trio

from previewcore.auth import authorize
from previewcore.decisions import Local, Redirect, Reject
from previewcore.errors import Unauthorized, UnknownSession
from previewcore.jsonbody import decode, require_json
from previewcore.livefile import LiveFile
from previewcore.session_id import Keys, is_encoded, is_valid_hashed_id, verify
from previewcore.urls import preview_path
from previewcore.viewer import COOKIE, cookie_allows, mint_token
from previewcore.wire import LOAD_HEADER, NODE_PRIVATE, PLACEMENT_HEADER, format_load
from previewnode import metrics
from previewnode.api import (
    CheckBody,
    CreateBody,
    PatchBody,
    TokenBody,
    UpdateBody,
    check_path,
    files_object,
    session_object,
)
from previewnode.check import CheckRequest, HeadlessChecker
from previewnode.commands import SessionCommands
from previewnode.config import NodeConfig
from previewnode.errors import NotHeldHere, SessionGone
from previewnode.events import HEARTBEAT, frame
from previewnode.routes import Api, Preview, SessionRedirect, route
from previewnode.sessions import Session, SessionStore, rfc3339
from previewnode.supervisor import Supervisor
from previewnode.workspace import read_tree
from proxycore import logs
from proxycore.errors import BadRequest, NotFound
from proxycore.forward import ForwardPolicy, forward
from proxycore.headers import Headers
from proxycore.server import Exchange
from proxycore.tunnel import tunnel
from proxycore.upstream import UpstreamPool

JSON = [(b"content-type", b"application/json")]


class NodeApp:
    def __init__(
        self,
        cfg: NodeConfig,
        store: SessionStore,
        supervisor: Supervisor,
        commands: SessionCommands,
        keys: LiveFile[Keys],
        tokens: LiveFile[tuple[bytes, ...]] | None,
        pool: UpstreamPool,
        *,
        metrics_here: bool,
        checker: HeadlessChecker | None = None,
    ) -> None:
        self.cfg = cfg
        self.checker = checker
        self.store = store
        self.supervisor = supervisor
        self.commands = commands
        self.keys = keys
        self.tokens = tokens
        self.pool = pool
        self.metrics_here = metrics_here
        self.inflight = 0
        self.policy = ForwardPolicy(
            upstream_timeout=max(60.0, cfg.hold_seconds * 2),
            # A dev server runs uploaded code: it must not speak for the node to the router.
            strip_response=NODE_PRIVATE,
            drop_request=frozenset({PLACEMENT_HEADER}),
        )

    def load_headers(self) -> Headers:
        cfg = self.cfg
        value = format_load(
            len(self.supervisor.running()), cfg.max_running, len(self.store), cfg.max_sessions
        )
        return [(LOAD_HEADER, value)]

    def resolve(self, sid: str) -> Session:
        """The live session for an ID, or the contract's error for it."""
        if is_encoded(sid):
            owner = verify(sid, self.keys.value)
            if owner != self.cfg.name:
                raise UnknownSession()
            session = self.store.get(sid)
            if session is None:
                raise SessionGone()
            return session
        if not is_valid_hashed_id(sid):
            raise BadRequest("malformed session ID")
        session = self.store.get(sid)
        if session is None:
            raise NotHeldHere()
        return session

    async def respond_json(self, ex: Exchange, status: int, obj: dict[str, Any]) -> None:
        await ex.respond(status, JSON, json.dumps(obj).encode())

    async def handle(self, ex: Exchange) -> None:
        ex.extra_headers = self.load_headers()
        referer = ex.header(b"referer")
        decision = route(
            ex.method.decode("ascii", "replace"),
            ex.target.decode("latin-1"),
            referer.decode("latin-1") if referer is not None else None,
            host=ex.header(b"host"),
            preview_domain=self.cfg.preview_domain,
        )
        ex.route = decision.route_class
        self.inflight += 1
        try:
            if isinstance(decision, Preview):
                await self._preview(ex, self.resolve(decision.session_id))
            elif isinstance(decision, Api):
                tokens = self.tokens.value if self.tokens is not None else None
                authorize(ex.header(b"authorization"), tokens)
                await self._api(ex, decision)
            elif isinstance(decision, SessionRedirect):
                location = preview_path(self.resolve(decision.session_id).id) + decision.suffix
                await ex.respond(308, [(b"location", location.encode())])
            elif isinstance(decision, Redirect):
                await ex.respond(decision.status, [(b"location", decision.location.encode())])
            elif isinstance(decision, Local):
                await self._local(ex, decision.path)
            elif isinstance(decision, Reject):
                raise decision.error
        finally:
            self.inflight -= 1

    def finished(self, ex: Exchange) -> None:
        """The server's finished-request hook: request metrics and the access log line."""
        metrics.REQUESTS.labels(ex.route, str(ex.status)).inc()
        logs.access(ex, ex.route, node=self.cfg.name)

    async def _local(self, ex: Exchange, path: str) -> None:
        if path == "/healthz":
            await self.respond_json(ex, 200, {"status": "ok", "node": self.cfg.name})
        elif path == "/readyz":
            draining = self.commands.draining
            ready = not draining and not self.commands.full()
            state = {
                "ready": ready,
                "draining": draining,
                "sessions": len(self.store),
                "sandbox": self.supervisor.mechanism,
                "limits": self.supervisor.groups.hierarchy.name
                if self.supervisor.groups
                else "rlimit",
            }
            await self.respond_json(ex, 200 if ready else 503, state)
        elif path == "/metrics" and self.metrics_here:
            ctype, body = metrics.render()
            await ex.respond(200, [(b"content-type", ctype)], body)
        else:
            raise NotFound()

    async def _preview(self, ex: Exchange, s: Session) -> None:
        if s.record.access == "private" and not cookie_allows(
            ex.header(b"cookie"), s.id, self.keys.value, time.time()
        ):
            raise Unauthorized("this preview is private: open it with a preview token")
        with s.serving():
            address = await self.supervisor.wait_ready(s, self.cfg.hold_seconds)
            if not ex.upgrade:
                await forward(ex, self.pool, address, self.policy)
                return
            # From here a socket, not a request: only its traffic keeps the session active
            # (a silent one must not hold a slot forever: Supervisor.start may evict it).
            s.open_sockets += 1
        try:
            await tunnel(ex, self.pool, address, self.policy, on_activity=s.touch)
        finally:
            s.open_sockets -= 1
            s.touch()

    async def _api(self, ex: Exchange, api: Api) -> None:
        cfg, commands = self.cfg, self.commands
        if ex.has_body or api.action in ("create", "extend", "put_files", "token"):
            require_json(ex.header(b"content-type"))
        if api.action == "create":
            created = decode(await ex.read_body(cfg.max_body_bytes), CreateBody)
            s = await commands.create(
                created, ex.header(PLACEMENT_HEADER), self.keys.value, wait_ready=api.wait_ready
            )
            await self.respond_json(ex, 201, session_object(s, cfg))
            return
        if api.action == "list":
            await self._list(ex)
            return
        assert api.session_id is not None
        s = self.resolve(api.session_id)
        if api.action == "get":
            pass
        elif api.action == "extend":
            commands.extend(s, decode(await ex.read_body(cfg.max_body_bytes), PatchBody))
        elif api.action == "delete":
            await commands.delete(s)
        elif api.action == "put_files":
            await commands.update(s, decode(await ex.read_body(cfg.max_body_bytes), UpdateBody))
        elif api.action == "get_files":
            files = await trio.to_thread.run_sync(read_tree, s.workspace)
            await self.respond_json(ex, 200, files_object(files))
            return
        elif api.action == "events":
            await self._events(ex, s)
            return
        elif api.action == "check":
            raw = await ex.read_body(cfg.max_body_bytes)
            check = decode(raw, CheckBody) if raw.strip() else CheckBody()
            result = await self._check(s, check_path(check), check.waitMs)
            await self.respond_json(ex, 200, result)
            return
        elif api.action == "token":
            body = decode(await ex.read_body(cfg.max_body_bytes), TokenBody)
            token, expires_at = commands.viewer_token(s, body, self.keys.value)
            obj = {"success": True, "token": token, "expiresAt": rfc3339(expires_at)}
            await self.respond_json(ex, 200, obj)
            return
        await self.respond_json(ex, 200, session_object(s, cfg))

    async def _events(self, ex: Exchange, s: Session) -> None:
        """Server-Sent Events until the session ends, the node drains or the client goes:
        a snapshot first unless `Last-Event-ID` resumes inside the buffer, then each event
        as it happens, a heartbeat comment when nothing did for a while."""
        log_ = s.events
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),  # nginx and friends: don't buffer this
        ]
        framing = ex.start_response(200, b"OK", headers)
        await ex.client.send(framing.head)
        cursor = log_.resume_point(ex.header(b"last-event-id"))
        while True:
            pending = log_.after(cursor)
            out = b""
            if cursor is None or pending is None:  # a fresh client, or one that missed too much
                cursor, pending = log_.seq, []
                out += frame(log_.event_id(cursor), "session", session_object(s, self.cfg))
            for event in pending:
                out += frame(log_.event_id(event.seq), event.kind, event.data)
                cursor = event.seq
            if out:
                await ex.client.send(framing.body(out))
            if log_.ended or self.commands.draining:
                await ex.client.send(framing.end())
                ex.response_done = True
                return
            with trio.move_on_after(self.cfg.events_heartbeat) as waited:
                await log_.wait_after(cursor)
            if waited.cancelled_caught:
                await ex.client.send(framing.body(HEARTBEAT))

    async def _check(self, s: Session, path: str, wait_ms: int) -> dict[str, object]:
        """Load the preview in the node's own headless browser, through this node."""
        if self.checker is None:
            raise NotFound("the headless check is not enabled on this node (--check-browser)")
        await self.supervisor.wait_ready(s, self.cfg.hold_seconds)
        cfg = self.cfg
        url = f"http://{cfg.preview_host(s.id)}:{cfg.listen[1]}{cfg.dev_server_base(s.id)}{path}"
        cookie = None
        if s.record.access == "private":
            expires = int(min(time.time() + 300, s.record.expires_at))
            cookie = (COOKIE, mint_token(s.id, expires, self.keys.value))
        return await self.checker.check(CheckRequest(url, cookie, wait_ms))

    async def _list(self, ex: Exchange) -> None:
        sessions = [
            {
                "sessionId": s.id,
                "status": s.status,
                "expiresAt": session_object(s, self.cfg)["expiresAt"],
            }
            for s in self.store
        ]
        await self.respond_json(
            ex, 200, {"success": True, "node": self.cfg.name, "sessions": sessions}
        )
