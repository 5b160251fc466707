"""Sandboxes started ahead of need: a session that wakes skips Node's start and the
runtime's imports, most of a wake (measured here: ~300-370 ms of ~530 ms spawn to serving
for the fixture app).

A warm sandbox is the launcher in its sandbox, started on empty directories of its own (a
workspace, a Vite cache, a listener's directory), blocked on the first line of its stdin
(its configuration) once Vite and the fixed config's plugins are imported: it says
`{"event":"waiting"}`. Handing one to a session (`adopt`, for the workspace and for the
cache):

1. the session's directory is copied into the warm one's as hard links (no file data
   copied; links are not followed: a tenant's symlink stays a symlink),
2. the two are swapped with renameat2(RENAME_EXCHANGE): atomically, the session's path
   names the directory the sandbox bound (a bind mount follows the inode, not the path),
3. the old directory, now at the warm one's path, is removed.

At every instant the session's path names a complete copy of its files: a node killed
mid-way leaves only this pool's own area to clear at its next start. The session's
updates wait on its `files_lock` meanwhile.

Which sessions take one: those on the runtime's dependency set (a warm sandbox has the
runtime bound read-only, no other set), under bubblewrap (inside, every sandbox has its
own directories at the same paths: previewnode.sandbox.INSIDE_*) or unsandboxed. Not
under Landlock: its rules and its one loopback port are fixed when it starts, for paths
it would see at their host paths. A warm sandbox serves one session and dies with it:
nothing of one tenant is ever in a process another gets.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from previewnode import metrics
from previewnode.devserver import DevServerConfig, launch, stop
from previewnode.limits import Groups, release
from previewnode.workspace import remove_tree

log = logging.getLogger("preview.warm")
WAITING_SECONDS = 30.0  # a launcher still importing after this is discarded
RETRY_SECONDS = 2.0  # after a warm start failed; doubles up to MAX_RETRY_SECONDS
MAX_RETRY_SECONDS = 60.0
# After a take, the next one starts this much later: a start is ~0.4 s of CPU, which
# would compete with the page of the session just handed one (its first transforms).
REFILL_DELAY_SECONDS = 1.0
WAITING = {"event": "waiting"}  # the launcher's first stdout line, warm and imported

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a: Path, b: Path) -> None:
    """Swap the paths `a` and `b` atomically (both must exist, on one filesystem)."""
    if _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a), None, str(b))


def link_tree(src: Path, dst: Path) -> None:
    """Copy the tree under `src` into the empty directory `dst`: directories made anew
    (with their modes), everything else hard-linked, no link followed. Iterative: a
    tenant's dev server may have made its workspace arbitrarily deep."""
    stack = [(src, dst)]
    while stack:
        here, there = stack.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                target = there / entry.name
                if entry.is_dir(follow_symlinks=False):
                    os.mkdir(target, entry.stat(follow_symlinks=False).st_mode & 0o7777)
                    stack.append((Path(entry.path), target))
                else:
                    os.link(entry.path, target, follow_symlinks=False)


def adopt(own: Path, bound: Path) -> None:
    """Make the path `own` name the directory `bound` (empty, bound in a warm sandbox),
    holding what `own` holds; `bound`'s path is gone afterwards. Raises OSError (e.g.
    EXDEV, EMLINK) with `own` untouched."""
    if not own.exists():
        os.rename(bound, own)
        return
    try:
        link_tree(own, bound)
        exchange(bound, own)
    except OSError:
        remove_tree(bound)
        raise
    remove_tree(bound)  # the old directory now


@dataclass(frozen=True)
class Warm:
    """A launcher waiting in its sandbox; `config` names its own directories."""

    process: trio.Process
    config: DevServerConfig
    group: str  # its cgroup's name (previewnode.limits.Groups)
    listen_fd: int | None  # the number of the listener it was passed (bubblewrap)


Configure = Callable[[str, tuple[Path, ...]], DevServerConfig]


class WarmPool:
    """Keeps `size` warm sandboxes, starting one whenever one is taken. `configure(name,
    cgroup procs)` is the dev server config of a sandbox with directories of its own,
    under `area` (on the data dir's filesystem: `adopt` swaps them in by rename)."""

    def __init__(
        self,
        size: int,
        area: Path,
        configure: Configure,
        groups: Groups | None,
        cold_starts: trio.Semaphore,
    ) -> None:
        self.size = size
        self.area = area
        self.configure = configure
        self.groups = groups
        self.cold_starts = cold_starts
        self._ready: list[Warm] = []
        self._taken = trio.Event()
        self._names = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    @property
    def ready(self) -> int:
        return len(self._ready)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the pool full until cancelled; then stop every sandbox still waiting."""
        remove_tree(self.area)  # a killed node's leftovers
        self.area.mkdir(parents=True)
        failures = 0
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                while True:
                    if len(self._ready) >= self.size:
                        await self._taken.wait()
                        self._taken = trio.Event()
                        await trio.sleep(REFILL_DELAY_SECONDS)
                        continue
                    warm = await self._start_one()
                    if warm is None:
                        failures += 1
                        await trio.sleep(min(MAX_RETRY_SECONDS, RETRY_SECONDS * 2**failures))
                        continue
                    failures = 0
                    self._ready.append(warm)
                    metrics.WARM_READY.set(len(self._ready))
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                for warm in self._ready:
                    await self.discard(warm)
                self._ready.clear()
                metrics.WARM_READY.set(0)

    def take(self) -> Warm | None:
        """A warm sandbox that is still alive, or None; the pool starts another."""
        while self._ready:
            warm = self._ready.pop(0)
            self._taken.set()
            metrics.WARM_READY.set(len(self._ready))
            if warm.process.poll() is None:
                return warm
            log.warning("a warm sandbox had exited", extra={"code": warm.process.returncode})
            if self._nursery is not None:
                self._nursery.start_soon(self.discard, warm)
        return None

    def disable(self, why: str) -> None:
        """No more warm sandboxes on this node (e.g. its file system can't swap
        directories: every one would be started for nothing); those waiting are stopped."""
        log.error("warm sandboxes disabled", extra={"why": why})
        self.size = 0
        while self._ready:
            warm = self._ready.pop()
            if self._nursery is not None:
                self._nursery.start_soon(self.discard, warm)
        metrics.WARM_READY.set(0)

    async def discard(self, warm: Warm) -> None:
        """Stop a warm sandbox (one nobody will use, or one whose session is done with
        it), release its cgroup, and remove what it had."""
        await stop(warm.process)  # nothing if its dev server already stopped it
        await self._clear(warm.group, warm.config.socket_dir)

    async def _clear(self, name: str, socket_dir: Path | None) -> None:
        """What a warm sandbox `name` had besides its process: its cgroup, its listener's
        directory, its area."""
        if self.groups is not None:
            await release(self.groups, name)
        if socket_dir is not None:
            remove_tree(socket_dir)
        remove_tree(self.area / name)

    async def _start_one(self) -> Warm | None:
        name = f"warm-{next(self._names)}"
        try:
            procs = tuple(self.groups.make(name)) if self.groups else ()
            config = self.configure(name, procs)
            for empty in (config.workspace, config.cache_dir):
                empty.mkdir(parents=True)  # empty: the session's own are swapped in whole
        except OSError as exc:
            log.error("a warm sandbox could not be prepared", extra={"error": str(exc)})
            await self._clear(name, None)
            return None
        async with self.cold_starts:  # below the sessions' own starts, never above
            try:
                process, listen_fd = await launch(config, warm=True)
            except OSError as exc:
                log.error("a warm sandbox could not be started", extra={"error": str(exc)})
                await self._clear(name, config.socket_dir)
                return None
            warm = Warm(process, config, name, listen_fd)
            try:
                if await _until_waiting(process):
                    return warm
            except BaseException:  # cancelled while it imported: nothing may outlive the pool
                with trio.CancelScope(shield=True):
                    await self.discard(warm)
                raise
        log.error("a warm sandbox did not get ready", extra={"code": process.poll()})
        await self.discard(warm)
        return None


async def _until_waiting(process: trio.Process) -> bool:
    """Read its stdout up to the first line: True when it says it is waiting."""
    assert process.stdout is not None
    line = b""
    with trio.move_on_after(WAITING_SECONDS):
        while b"\n" not in line and len(line) < 4096:
            chunk = await process.stdout.receive_some(4096)
            if not chunk:
                break
            line += chunk
    try:
        return bool(json.loads(line.split(b"\n", 1)[0]) == WAITING)
    except ValueError:
        return False
