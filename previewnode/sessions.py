"""Session records on disk, and the live state of each session in memory.

Layout under `--data-dir`:

    sessions/{id}/record.json   the record (msgspec JSON), written temp + fsync + rename
    sessions/{id}/ws/           the workspace (the upload), `ws/node_modules` -> dependency set
    vite-cache/{id}/            Vite's own cache: outside the workspace, one per session

A sandboxed dev server listens on `{tmp}/preview-sockets-*/{hash of id}/dev.sock`, a
directory of this process's own (unix socket paths are limited to 108 bytes).

A session is registered when `sessions/{id}` exists: creation builds it under a
staging name and renames it into place after fsync, so a crash leaves either a
whole session or none. Nothing of a session lives only in memory: a restart
reads every unexpired record back (as `idle`) and serves the same IDs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec
import trio

from previewnode.devserver import BuildError, DevServer
from previewnode.events import EventLog
from previewnode.lifecycle import Event, Status, next_status, on_load
from previewnode.runtime_errors import RuntimeErrors, RuntimeReport
from previewnode.workspace import remove_tree
from proxycore.upstream import Address

log = logging.getLogger("preview.sessions")
RECORD = "record.json"
WORKSPACE = "ws"


class Record(msgspec.Struct):
    """What is persisted for a session."""

    id: str
    node: str
    created_at: float
    expires_at: float
    hashed: bool = False
    ignored: list[str] = msgspec.field(default_factory=list)
    deps_key: str = "runtime"
    error: str | None = None  # set while the session is `failed`
    failure: Literal["install", "start", "disk"] | None = None  # what failed (None: install, older)
    access: str = "public"  # or "private": viewers need a token (previewcore.viewer)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass(eq=False)
class Session:
    """A registered session and the live state of its dev server."""

    record: Record
    root: Path
    status: Status = Status.IDLE  # changed only by `move`
    errors: list[BuildError] = field(default_factory=list)
    address: Address | None = None  # where its dev server listens (port or unix socket)
    pid: int | None = None
    dev: DevServer | None = None  # while it serves
    events: EventLog = field(default_factory=EventLog)  # what /events streams
    runtime: RuntimeErrors = field(default_factory=RuntimeErrors)  # what browsers reported
    last_active: float = field(default_factory=time.monotonic)
    scope: trio.CancelScope | None = None
    changed: trio.Event = field(default_factory=trio.Event)
    # Held while an update writes its files and while a warm sandbox takes the workspace
    # over (previewnode.warm.adopt): a file written meanwhile would be lost.
    files_lock: trio.Lock = field(default_factory=trio.Lock)
    failures: int = 0  # consecutive failed starts and crashes: the backoff grows with them
    crashes: list[float] = field(default_factory=list)  # when (monotonic), within the window
    retry_at: float = 0.0
    started_at: float = 0.0
    open_sockets: int = 0
    open_requests: int = 0  # preview requests held or being forwarded right now
    removed: bool = False  # deleted or expired: never started again, waiters get 410/404
    stopping: bool = False  # its dev server was told to stop and no longer counts as running

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def workspace(self) -> Path:
        return self.root / WORKSPACE

    @property
    def busy(self) -> bool:
        """A dev server is running or being started for this session."""
        return self.scope is not None

    def move(self, event: Event) -> None:
        """Change status as the lifecycle allows, and wake everyone waiting on this session."""
        before = self.status
        self.status = next_status(self.status, event)
        if self.status is not before:
            self.events.publish("status", self.status_data())
        self.notify()

    def status_data(self) -> dict[str, object]:
        """The session object's status fields, as the event stream sends them."""
        data: dict[str, object] = {"status": str(self.status)}
        if self.status is Status.FAILED and self.record.error:
            data["error"] = self.record.error
        return data

    def set_errors(self, errors: list[BuildError]) -> None:
        if errors != self.errors:
            self.errors = errors
            self.events.publish("errors", {"errors": [e.as_json() for e in errors]})

    def report_runtime(self, report: RuntimeReport) -> None:
        if self.runtime.add(report, time.time()):
            self.events.publish("runtimeErrors", {"runtimeErrors": self.runtime_json()})

    def clear_runtime(self) -> None:
        """The files changed: what browsers saw before no longer says anything."""
        if self.runtime.clear():
            self.events.publish("runtimeErrors", {"runtimeErrors": []})

    def runtime_json(self) -> list[dict[str, object]]:
        return self.runtime.as_json(rfc3339)

    def mark_removed(self) -> None:
        """Deleted or expired: never started again; held requests answer 410/404."""
        self.removed = True
        self.events.end({"sessionId": self.id})
        self.notify()

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Around one preview request: active from its start to its end, held time included
        (an idle stop must not cut a request that waited longer than `--idle-seconds`)."""
        self.open_requests += 1
        self.touch()
        try:
            yield
        finally:
            self.open_requests -= 1
            self.touch()

    @property
    def in_use(self) -> bool:
        """A request or a WebSocket is open: the idle sweep leaves it running."""
        return self.open_requests > 0 or self.open_sockets > 0

    def evictable(self, now: float, idle_seconds: float) -> bool:
        """May be stopped to make room: no request open, and no socket, or only sockets
        silent for `idle_seconds` (browser tabs left open would lock a node otherwise;
        Vite's client reconnects and wakes the session when it is looked at again)."""
        if self.open_requests > 0:
            return False
        return self.open_sockets == 0 or now - self.last_active > idle_seconds

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def notify(self) -> None:
        """Wake everyone waiting for this session's state to change."""
        self.changed.set()
        self.changed = trio.Event()

    def save(self) -> None:
        write_json_atomic(self.root / RECORD, msgspec.json.encode(self.record))


class SessionStore:
    """The sessions of this node: the directory is the truth, the dict its index."""

    def __init__(self, data_dir: Path, node: str) -> None:
        self.dir = data_dir / "sessions"
        self.cache_root = data_dir / "vite-cache"
        # Unix socket paths must fit in 108 bytes, which a data dir's path may not leave:
        # listeners live in a short private directory of this process instead, made on
        # first use (only sandboxed dev servers listen on sockets).
        self._socket_root: Path | None = None
        self.node = node
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cache_root.mkdir(parents=True, exist_ok=True)
        self.sessions: dict[str, Session] = {}

    def load(self) -> int:
        """Read every record back; expired or broken ones are removed. Returns the count."""
        now = time.time()
        for entry in sorted(self.dir.iterdir()):
            if entry.name.startswith("."):
                remove_tree(entry)  # staging left by a crash mid-create
                continue
            try:
                record = msgspec.json.decode((entry / RECORD).read_bytes(), type=Record)
            except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.error("dropping unreadable session %s: %s", entry.name, exc)
                self._remove_dir(entry.name)
                continue
            if record.expires_at <= now or record.id != entry.name:
                self._remove_dir(entry.name)
                continue
            self.sessions[record.id] = Session(record, entry, status=on_load(record.error))
        return len(self.sessions)

    def get(self, sid: str) -> Session | None:
        return self.sessions.get(sid)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self.sessions.values()))

    def __len__(self) -> int:
        return len(self.sessions)

    def staging(self, sid: str) -> Path:
        path = self.dir / f".staging-{sid}-{os.urandom(4).hex()}"
        path.mkdir()
        return path

    def register(self, staging: Path, record: Record) -> Session:
        """Move a fully written staging dir into place: from here on the session exists."""
        write_json_atomic(staging / RECORD, msgspec.json.encode(record))
        final = self.dir / record.id
        os.rename(staging, final)  # fails if the ID exists: no silent overwrite
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        session = Session(record, final, status=Status.STARTING)
        self.sessions[record.id] = session
        return session

    def vite_cache(self, sid: str) -> Path:
        return self.cache_root / sid

    def socket_dir(self, sid: str) -> Path:
        """A sandboxed dev server's listener: outside the workspace, one per session."""
        if self._socket_root is None:
            self._socket_root = Path(tempfile.mkdtemp(prefix="preview-sockets-"))
        return self._socket_root / hashlib.sha256(sid.encode()).hexdigest()[:16]

    def close(self) -> None:
        if self._socket_root is not None:
            shutil.rmtree(self._socket_root, ignore_errors=True)

    def remove(self, session: Session) -> None:
        session.mark_removed()
        self.sessions.pop(session.id, None)
        self._remove_dir(session.id)

    def _remove_dir(self, sid: str) -> None:
        target = self.dir / sid
        if target.exists():
            # rename first: a half-deleted session must never look registered
            trash = self.dir / f".deleted-{sid}-{os.urandom(4).hex()}"
            os.rename(target, trash)
            remove_tree(trash)
        remove_tree(self.cache_root / sid)
        if self._socket_root is not None:
            shutil.rmtree(self.socket_dir(sid), ignore_errors=True)
