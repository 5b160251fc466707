"""The node's request handler: its API, its health, and the previews it runs.

ID rules (CONTRACT §2, §3): an encoded ID must carry a good MAC *and* name this
node, else 404 (the router should never have sent it); a good one with no live
session is 410 (expired or deleted); a hashed ID not held here is 404 with
`X-Preview-Unknown-Session: 1`, so the router may ask the next node.

Preview requests go to the session's Vite through the project's one proxy core
(`router.forward` / `router.tunnel`), held while Vite starts.
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import time
from typing import Any

import trio

from previewnode import metrics
from previewnode.api import (
    CreateBody,
    PatchBody,
    UpdateBody,
    decode,
    files_object,
    make_upload,
    session_object,
    ttl,
)
from previewnode.config import NodeConfig
from previewnode.deps import DependencyInstaller, plan
from previewnode.runner import Runner, link_node_modules
from previewnode.sessions import Record, Session, SessionStore
from previewnode.workspace import Limits, apply_update, read_tree, write_tree
from router import logs
from router.app import check_token
from router.errors import (
    BadRequest,
    Draining,
    InvalidContent,
    NotFound,
    NotHeldHere,
    OverCapacity,
    PreviewError,
    SessionExists,
    SessionGone,
    Unauthorized,
    UnknownSession,
)
from router.forward import ForwardPolicy, forward
from router.headers import Headers
from router.livefile import LiveFile
from router.routing import referer_session, split_target
from router.server import Exchange
from router.session_id import (
    PLACEMENT_HEADER,
    Keys,
    is_encoded,
    is_valid_hashed_id,
    mint,
    verify,
    verify_placement,
)
from router.tunnel import tunnel
from router.upstream import UpstreamPool

log = logging.getLogger("preview.access")
JSON = [(b"content-type", b"application/json")]


class NodeApp:
    def __init__(
        self,
        cfg: NodeConfig,
        store: SessionStore,
        runner: Runner,
        installer: DependencyInstaller,
        keys: LiveFile[Keys],
        tokens: LiveFile[tuple[bytes, ...]] | None,
        pool: UpstreamPool,
        *,
        metrics_here: bool,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.runner = runner
        self.installer = installer
        self.keys = keys
        self.tokens = tokens
        self.pool = pool
        self.metrics_here = metrics_here
        self.draining = False
        self.inflight = 0
        self.limits = Limits(cfg.max_files, cfg.max_file_bytes)
        self.policy = ForwardPolicy(
            upstream_timeout=max(60.0, cfg.hold_seconds * 2),
            extra_response_headers=self.load_headers,
            drop_request=frozenset({PLACEMENT_HEADER}),
        )

    # -- shared -----------------------------------------------------------------------------

    def load_headers(self) -> Headers:
        running = len(self.runner.running())
        cfg = self.cfg
        value = (
            f"running={running}/{cfg.max_running}; sessions={len(self.store)}/{cfg.max_sessions}"
        )
        return [(b"x-preview-node-load", value.encode())]

    def full(self) -> bool:
        return len(self.store) >= self.cfg.max_sessions

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

    # -- dispatch ---------------------------------------------------------------------------

    async def handle(self, ex: Exchange) -> None:
        ex.extra_headers = self.load_headers()
        route = "error"
        self.inflight += 1
        try:
            target = split_target(ex.target.decode("latin-1"))
            path, method = target.path, ex.method.decode("ascii", "replace")
            parts = path.split("/", 4)
            first = parts[1] if len(parts) > 1 else ""
            if path in ("/healthz", "/readyz", "/metrics"):
                route = "local"
                await self._local(ex, path)
            elif first == "preview" and len(parts) >= 3 and parts[2]:
                session = self.resolve(parts[2])
                if len(parts) == 3:
                    route = "redirect"
                    location = f"/preview/{session.id}/{target.suffix}"
                    await ex.respond(308, [(b"location", location.encode())])
                else:
                    route = "preview"
                    await self._preview(ex, session)
            elif first == "kontext" and len(parts) >= 3 and parts[2] == "preview":
                route = "api"
                self._authorize(ex)
                await self._api(ex, method, parts[3:], target.query)
            elif (sid := referer_session(_str(ex.header(b"referer")))) is not None:
                route = "redirect"
                await ex.respond(
                    307, [(b"location", f"/preview/{sid}{path}{target.suffix}".encode())]
                )
            else:
                raise NotFound()
        except PreviewError as exc:
            if ex.response_started:
                raise
            await ex.respond_error(exc)
            if exc.close_connection:
                raise
        finally:
            self.inflight -= 1
            self._record(ex, route)

    def _record(self, ex: Exchange, route: str) -> None:
        metrics.REQUESTS.labels(route, str(ex.status)).inc()
        logs.access(ex, route, node=self.cfg.name)

    def _authorize(self, ex: Exchange) -> None:
        if self.tokens is not None and not check_token(
            ex.header(b"authorization"), self.tokens.value
        ):
            raise Unauthorized()

    async def _local(self, ex: Exchange, path: str) -> None:
        if path == "/healthz":
            await self.respond_json(ex, 200, {"status": "ok", "node": self.cfg.name})
        elif path == "/readyz":
            ready = not self.draining and not self.full()
            state = {"ready": ready, "draining": self.draining, "sessions": len(self.store)}
            await self.respond_json(ex, 200 if ready else 503, state)
        elif path == "/metrics" and self.metrics_here:
            ctype, body = metrics.render()
            await ex.respond(200, [(b"content-type", ctype)], body)
        else:
            raise NotFound()

    # -- previews ---------------------------------------------------------------------------

    async def _preview(self, ex: Exchange, s: Session) -> None:
        s.touch()
        port = await self.runner.wait_ready(s, self.cfg.hold_seconds)
        addr = ("127.0.0.1", port)
        if ex.upgrade:

            def opened() -> None:
                s.open_sockets += 1

            def closed() -> None:
                s.open_sockets -= 1
                s.touch()

            await tunnel(ex, self.pool, addr, self.policy, opened, closed, s.touch)
        else:
            await forward(ex, self.pool, addr, self.policy)

    # -- API --------------------------------------------------------------------------------

    async def _api(self, ex: Exchange, method: str, rest: list[str], query: str) -> None:
        if not rest or rest == [""]:
            if method == "POST":
                await self._create(ex, "wait=ready" in query.split("&"))
            elif method == "GET":
                await self._list(ex)
            else:
                raise NotFound()
            return
        s = self.resolve(rest[0])
        tail = rest[1] if len(rest) > 1 else None
        if tail is None and method == "GET":
            await self.respond_json(ex, 200, session_object(s, self.cfg))
        elif tail is None and method == "PATCH":
            body = decode(await ex.read_body(self.cfg.max_body_bytes), PatchBody)
            s.record.expires_at = time.time() + ttl(body.ttlSeconds, self.cfg)
            s.save()
            await self.respond_json(ex, 200, session_object(s, self.cfg))
        elif tail is None and method == "DELETE":
            await self.runner.remove(s)
            await self.respond_json(ex, 200, session_object(s, self.cfg))
        elif tail == "files" and method == "PUT":
            await self._update(ex, s)
        elif tail == "files" and method == "GET":
            files = await trio.to_thread.run_sync(read_tree, s.workspace)
            await self.respond_json(ex, 200, files_object(files))
        else:
            raise NotFound()

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

    def _session_id_for_create(self, ex: Exchange, chosen: str | None) -> tuple[str, bool]:
        if chosen is None:
            return mint(self.cfg.name, self.keys.value), False
        token = ex.header(PLACEMENT_HEADER)
        if token is None or not verify_placement(chosen, token.decode("latin-1"), self.keys.value):
            raise InvalidContent(
                "a client-chosen sessionId needs the router's ring: create it through a router"
            )
        if not is_valid_hashed_id(chosen):
            raise InvalidContent("sessionId must match [A-Za-z0-9_-]{1,64} and not contain '--'")
        if self.store.get(chosen) is not None:
            raise SessionExists(f"session {chosen} exists")
        return chosen, True

    async def _create(self, ex: Exchange, wait: bool) -> None:
        if self.draining:
            raise Draining()
        if self.full():
            raise OverCapacity("this node holds its maximum number of sessions")
        body = decode(await ex.read_body(self.cfg.max_body_bytes), CreateBody)
        sid, hashed = self._session_id_for_create(ex, body.sessionId)
        upload = make_upload(body.files, body.packageJson, [], self.limits)
        deps_plan = plan(upload.deps or {}, self.installer.runtime_versions)
        created = time.time()
        record = Record(
            id=sid,
            node=self.cfg.name,
            created_at=created,
            expires_at=created + ttl(body.ttlSeconds, self.cfg),
            hashed=hashed,
            ignored=upload.ignored,
            deps_key=deps_plan.key,
        )

        def write() -> Session:
            staging = self.store.staging(sid)
            try:
                write_tree(staging / "ws", upload.files)
                if self.installer.is_ready(deps_plan):
                    link_node_modules(staging / "ws", self.installer.node_modules_for(deps_plan))
                return self.store.register(staging, record)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

        try:
            s = await trio.to_thread.run_sync(write)
        except FileExistsError as exc:
            raise SessionExists(f"session {sid} exists") from exc
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:  # rename onto an existing session
                raise SessionExists(f"session {sid} exists") from exc
            raise
        self.runner.plans[sid] = deps_plan
        log.info(
            "session created",
            extra={"session_id": sid, "deps": deps_plan.key, "files": len(upload.files)},
        )
        self._start_if_room(s)
        if wait:
            with trio.move_on_after(self.cfg.hold_seconds):
                while s.status in ("starting", "installing", "idle") and s.busy:
                    await s.changed.wait()
        await self.respond_json(ex, 201, session_object(s, self.cfg))

    def _start_if_room(self, s: Session) -> None:
        """Start Vite now if there is room; if not, the session stays registered and idle
        (its first request starts it, or gets 503): a create or update never fails late."""
        try:
            self.runner.start(s)
        except OverCapacity:
            s.status = "idle"

    async def _update(self, ex: Exchange, s: Session) -> None:
        body = decode(await ex.read_body(self.cfg.max_body_bytes), UpdateBody)
        upload = make_upload(body.files, body.packageJson, body.delete, self.limits)
        await trio.to_thread.run_sync(apply_update, s.workspace, upload.files, upload.deletes)
        s.touch()
        changed = False
        new_ignored = sorted(set(s.record.ignored) | set(upload.ignored))
        if new_ignored != s.record.ignored:
            s.record.ignored, changed = new_ignored, True
        if upload.deps is not None or "package.json" in upload.deletes:
            new_plan = plan(upload.deps or {}, self.installer.runtime_versions)
            if new_plan.key != s.record.deps_key or s.record.error is not None:
                s.record.deps_key, s.record.error, changed = new_plan.key, None, True
                self.runner.plans[s.id] = new_plan
                await self.runner.stop_and_wait(s)
                s.status = "idle"
                s.failures = 0
                self._start_if_room(s)  # re-resolve: `installing` until the new set is ready
        if changed:
            s.save()
        await self.respond_json(ex, 200, session_object(s, self.cfg))


def _str(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
