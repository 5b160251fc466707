"""What the API asks of a node: create, update, extend and delete a session.

The use cases behind `/kontext/preview`, apart from HTTP: they take decoded bodies
and return the session, so the order that makes the contract hold lives here and
only here: validate everything, write the whole session and register it (rename
into place after fsync), and only then start its dev server and answer.

Never: register a session whose files are not all written, or fail a create or an
update after its session was registered (a full node leaves it `idle`, not lost).
"""

from __future__ import annotations

import errno
import logging
import shutil
import time

import trio

from previewcore.errors import InsufficientStorage, InvalidContent, SessionExists
from previewcore.session_id import (
    Keys,
    is_valid_hashed_id,
    mint,
    verify_placement,
)
from previewcore.urls import is_dns_label
from previewcore.viewer import MAX_TTL as MAX_TOKEN_TTL
from previewcore.viewer import mint_token
from previewnode.api import CreateBody, PatchBody, TokenBody, UpdateBody, make_upload, ttl
from previewnode.config import NodeConfig
from previewnode.deps import DependencyInstaller, plan
from previewnode.errors import Draining
from previewnode.lifecycle import Status
from previewnode.sessions import Record, Session, SessionStore
from previewnode.supervisor import Supervisor, link_node_modules
from previewnode.workspace import (
    Limits,
    apply_update,
    check_totals,
    disk_refusal,
    file_sizes,
    write_tree,
)
from proxycore.errors import OverCapacity

log = logging.getLogger("preview.sessions")


DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class SessionCommands:
    def __init__(
        self,
        cfg: NodeConfig,
        store: SessionStore,
        supervisor: Supervisor,
        installer: DependencyInstaller,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.supervisor = supervisor
        self.installer = installer
        self.limits = Limits(cfg.max_files, cfg.max_file_bytes, cfg.max_workspace_bytes)
        self.draining = False

    @property
    def sandboxed(self) -> bool:
        return self.supervisor.sandbox is not None

    def _ignored(self, configs: list[str]) -> list[str]:
        """Uploaded configs are stored, and run only inside a sandbox (CONTRACT §6)."""
        return [] if self.sandboxed else configs

    def full(self) -> bool:
        return len(self.store) >= self.cfg.max_sessions

    def _disk_allows(self, incoming: int) -> None:
        """Raise InsufficientStorage unless `incoming` more bytes leave the watermark free."""
        refusal = disk_refusal(self.cfg.data_dir, incoming, self.cfg.min_free_bytes)
        if refusal is not None:
            raise InsufficientStorage(refusal)

    def _session_id(self, chosen: str | None, placement: bytes | None, keys: Keys) -> str:
        """A minted ID, or the client's own when the router proves the ring placed it."""
        if chosen is None:
            return mint(self.cfg.name, keys)
        if placement is None or not verify_placement(chosen, placement.decode("latin-1"), keys):
            raise InvalidContent(
                "a client-chosen sessionId needs the router's ring: create it through a router"
            )
        if not is_valid_hashed_id(chosen):
            raise InvalidContent("sessionId must match [A-Za-z0-9_-]{1,64} and not contain '--'")
        if self.cfg.preview_domain and not is_dns_label(chosen):
            raise InvalidContent(
                "with --preview-domain a sessionId is a host label: [a-z0-9-], at most 63"
            )
        if self.store.get(chosen) is not None:
            raise SessionExists(f"session {chosen} exists")
        return chosen

    async def create(
        self, body: CreateBody, placement: bytes | None, keys: Keys, *, wait_ready: bool
    ) -> Session:
        if self.draining:
            raise Draining()
        if self.full():
            raise OverCapacity("this node holds its maximum number of sessions")
        sid = self._session_id(body.sessionId, placement, keys)
        upload = make_upload(
            body.files, body.packageJson, [], self.limits, own_tooling=self.sandboxed
        )
        check_totals({}, upload.files, [], self.limits)
        self._disk_allows(sum(map(len, upload.files.values())))
        deps_plan = plan(upload.deps or {}, self.installer.runtime_versions)
        created = time.time()
        record = Record(
            id=sid,
            node=self.cfg.name,
            created_at=created,
            expires_at=created + ttl(body.ttlSeconds, self.cfg),
            hashed=body.sessionId is not None,
            ignored=self._ignored(upload.ignored),
            deps_key=deps_plan.key,
            access=body.access or self.cfg.default_access,
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
            if exc.errno in DISK_FULL:  # the staging copy is gone again: nothing registered
                raise InsufficientStorage("the node's disk filled up during the create") from exc
            raise
        self.supervisor.set_plan(s, deps_plan)
        log.info(
            "session created",
            extra={"session_id": sid, "deps": deps_plan.key, "files": len(upload.files)},
        )
        self.supervisor.start_if_room(s)
        if wait_ready:
            with trio.move_on_after(self.cfg.hold_seconds):
                while s.status in ("starting", "installing", "idle") and s.busy:
                    await s.changed.wait()
        return s

    async def update(self, s: Session, body: UpdateBody) -> Session:
        upload = make_upload(
            body.files, body.packageJson, body.delete, self.limits, own_tooling=self.sandboxed
        )
        sizes = await trio.to_thread.run_sync(file_sizes, s.workspace)
        check_totals(sizes, upload.files, upload.deletes, self.limits)
        self._disk_allows(sum(map(len, upload.files.values())))
        wrote, deleted = sorted(upload.files), sorted(upload.deletes)
        async with s.files_lock:
            try:
                await trio.to_thread.run_sync(
                    apply_update, s.workspace, upload.files, upload.deletes
                )
            except OSError as exc:
                if exc.errno in DISK_FULL:
                    raise InsufficientStorage(
                        "the node's disk filled up during the update"
                    ) from exc
                raise
            s.events.publish("files", {"changed": wrote, "deleted": deleted})
            s.clear_runtime()
            if s.dev is not None:
                await s.dev.files_changed(wrote, deleted)
        s.touch()
        changed = False
        new_ignored = sorted(set(s.record.ignored) | set(self._ignored(upload.ignored)))
        if new_ignored != s.record.ignored:
            s.record.ignored, changed = new_ignored, True
        if upload.deps is not None or "package.json" in upload.deletes:
            new_plan = plan(upload.deps or {}, self.installer.runtime_versions)
            if new_plan.key != s.record.deps_key or s.record.error is not None:
                s.record.deps_key, s.record.error, s.record.failure = new_plan.key, None, None
                changed = True
                await self.supervisor.restart_with(s, new_plan)
        if s.status is Status.FAILED and s.record.failure in ("start", "disk"):
            self.supervisor.retry(s)  # its dev server gave up or was stopped: try the new files
        if changed:
            s.save()
        return s

    def extend(self, s: Session, body: PatchBody) -> Session:
        s.record.expires_at = time.time() + ttl(body.ttlSeconds, self.cfg)
        s.save()
        return s

    def viewer_token(self, s: Session, body: TokenBody, keys: Keys) -> tuple[str, int]:
        """A token that opens this private preview until it expires (or the session ends)."""
        if not 0 < body.ttlSeconds <= MAX_TOKEN_TTL:
            raise InvalidContent(f"ttlSeconds must be in (0, {MAX_TOKEN_TTL}]")
        expires_at = int(min(time.time() + body.ttlSeconds, s.record.expires_at))
        return mint_token(s.id, expires_at, keys), expires_at

    async def delete(self, s: Session) -> Session:
        await self.supervisor.remove(s)
        return s
