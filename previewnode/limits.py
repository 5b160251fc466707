"""Per-session resource limits: a cgroup per dev server where the node may make one,
rlimits always.

One tenant's dev server must not take the node down with it: a config that forks
without end, allocates without end or spins on every core. The sandbox hides the node
from it; these bound what it may use. Where a cgroup can be made (v1 `memory`/`pids`/
`cpu` controllers the node may write, or a v2 subtree delegated to it with those
controllers enabled), each dev server and everything it spawns join their own group:
the kernel then refuses forks past `--session-max-pids`, OOM-kills inside the group only
when it passes `--session-memory-bytes`, and throttles it to `--session-cpus`. rlimits
apply either way (core dumps off, open files and file size bounded); RLIMIT_NPROC is
not among them: it counts per real uid, and root is exempt.

The tables (`settings`, `ulimit_args`, `parse_self_cgroup`) are pure; `Groups` is the
thin IO over the cgroup filesystem.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import trio

log = logging.getLogger("preview.limits")
CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_REQUIRED = ("memory", "pids")
V1_OPTIONAL = ("cpu",)
CPU_PERIOD_US = 100_000
GROUP_PREFIX = "preview-node-"
LEAF = "preview-node-leaf"  # v2: where a container's own processes move (see Hierarchy)


@dataclass(frozen=True)
class SessionLimits:
    memory_bytes: int = 2 * 1024**3
    max_pids: int = 512
    cpus: float = 1.0  # 0: unthrottled
    open_files: int = 8192
    file_bytes: int = 1024**3  # the largest file a dev server may write


def settings(version: Literal[1, 2], limits: SessionLimits) -> dict[str, list[tuple[str, str]]]:
    """Which file of which controller's group gets which value (v2: one group, key "")."""
    quota = int(limits.cpus * CPU_PERIOD_US) if limits.cpus > 0 else 0
    if version == 1:
        return {
            "memory": [("memory.limit_in_bytes", str(limits.memory_bytes))],
            "pids": [("pids.max", str(limits.max_pids))],
            "cpu": [
                ("cpu.cfs_period_us", str(CPU_PERIOD_US)),
                ("cpu.cfs_quota_us", str(quota or -1)),
            ],
        }
    return {
        "": [
            ("memory.max", str(limits.memory_bytes)),
            ("memory.swap.max", "0"),
            ("pids.max", str(limits.max_pids)),
            ("cpu.max", f"{quota or 'max'} {CPU_PERIOD_US}"),
        ]
    }


def ulimit_args(
    limits: SessionLimits, hard: Mapping[str, int] | None = None
) -> list[tuple[str, str]]:
    """`ulimit` option and value pairs for the dev server's shell parent (dash takes one
    per call), never above the hard limits it inherits: raising those needs privileges,
    `ulimit` would fail and so would the start."""
    hard = hard if hard is not None else current_hard_limits()

    def capped(name: str, want: int) -> int:
        have = hard.get(name, resource.RLIM_INFINITY)
        return want if have == resource.RLIM_INFINITY else min(want, have)

    return [
        ("-c", "0"),
        ("-n", str(capped("nofile", limits.open_files))),
        ("-f", str(capped("fsize", limits.file_bytes) // 512)),  # sh counts 512-byte blocks
    ]


def current_hard_limits() -> dict[str, int]:
    return {
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[1],
    }


def parse_self_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup as controller → path ("" for the v2 line `0::/path`)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


@dataclass(frozen=True)
class Hierarchy:
    """Where this node makes its session groups: one directory per controller (v1) or
    one for all (v2, key "")."""

    version: Literal[1, 2]
    parents: dict[str, Path]
    delegated: frozenset[str] = frozenset()  # v2: the controllers the subtree passes on
    # v2, a container's own group (processes in it, controllers not yet enabled): where
    # those processes move so the group may enable controllers for its children (cgroup
    # v2 allows that only in a group with no processes of its own).
    leaf: Path | None = None

    @property
    def name(self) -> str:
        return f"cgroup-v{self.version}"


def discover(
    root: Path = CGROUP_ROOT, self_cgroup: Path = Path("/proc/self/cgroup")
) -> Hierarchy | None:
    """The hierarchy this node may use, or None (then rlimits only). Reads only:
    `Groups` makes the node's parent groups."""
    try:
        own = parse_self_cgroup(self_cgroup.read_text())
    except OSError:
        return None
    tag = f"{GROUP_PREFIX}{os.getpid()}"
    if (root / "cgroup.controllers").exists():  # cgroup v2 mounted at the root
        base = root / own.get("", "/").lstrip("/")
        if not os.access(base, os.W_OK):
            return None
        wanted = {"memory", "pids", "cpu"}
        enabled = _words(base / "cgroup.subtree_control")
        if {"memory", "pids"} <= enabled:  # delegated with the controllers on
            return Hierarchy(2, {"": base / tag}, frozenset(enabled & wanted))
        available = _words(base / "cgroup.controllers")
        if {"memory", "pids"} <= available:  # ours to enable, once our processes move out
            return Hierarchy(2, {"": base / tag}, frozenset(available & wanted), base / LEAF)
        return None
    parents: dict[str, Path] = {}
    for controller in (*V1_REQUIRED, *V1_OPTIONAL):
        base = root / controller / own.get(controller, "/").lstrip("/")
        if not base.is_dir() or not os.access(base, os.W_OK):
            if controller in V1_REQUIRED:
                return None
            continue
        parents[controller] = base / tag
    return Hierarchy(1, parents)


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


class Groups:
    """The session groups of one node: made before a dev server starts, emptied and
    removed after it stopped."""

    def __init__(self, hierarchy: Hierarchy, limits: SessionLimits) -> None:
        """Make this node's parent groups (raises OSError where it may not)."""
        self.hierarchy = hierarchy
        self.limits = limits
        self._settings = settings(hierarchy.version, limits)
        self.remove_stale()
        if hierarchy.leaf is not None:
            _empty_into_leaf(hierarchy.leaf, hierarchy.delegated)
        for parent in hierarchy.parents.values():
            parent.mkdir(exist_ok=True)
            if hierarchy.version == 2:
                wanted = " ".join(
                    f"+{c}" for c in ("memory", "pids", "cpu") if c in hierarchy.delegated
                )
                (parent / "cgroup.subtree_control").write_text(wanted)

    def _dirs(self, name: str) -> list[tuple[str, Path]]:
        return [(c, parent / name) for c, parent in self.hierarchy.parents.items()]

    def make(self, name: str) -> list[Path]:
        """Make (or reuse) the group `name` with the limits set; its `cgroup.procs` files,
        which the dev server's shell parent joins before it starts anything."""
        procs = []
        for controller, group in self._dirs(name):
            group.mkdir(exist_ok=True)
            for file, value in self._settings.get(controller, []):
                try:
                    (group / file).write_text(value)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:  # e.g. no swap accounting: memory.swap.max
                        raise
            procs.append(group / "cgroup.procs")
        return procs

    def kill(self, name: str) -> None:
        """SIGKILL whatever is still in the group (a process that left the sandbox's
        session and process group, or a zombie's children)."""
        for _, group in self._dirs(name):
            if self.hierarchy.version == 2 and (group / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (group / "cgroup.kill").write_text("1")
                continue
            for pid in _pids(group):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def empty(self, name: str) -> bool:
        return not any(_pids(group) for _, group in self._dirs(name))

    def close(self) -> None:
        """This node's own parent groups, once its dev servers are gone (on exit)."""
        for parent in self.hierarchy.parents.values():
            with contextlib.suppress(OSError):
                parent.rmdir()

    def remove(self, name: str) -> None:
        for _, group in self._dirs(name):
            try:
                group.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:  # EBUSY: a process not yet reaped; a restart reuses it
                log.warning("cgroup not removed", extra={"group": str(group), "error": str(exc)})

    def remove_stale(self) -> None:
        """Empty groups of earlier nodes (a node killed with -9 leaves them behind)."""
        for parent in self.hierarchy.parents.values():
            for other in parent.parent.glob(f"{GROUP_PREFIX}*"):
                if other in (parent, parent.parent / LEAF):
                    continue
                if _alive(other.name.removeprefix(GROUP_PREFIX)):
                    continue
                for child in (*(c for c in other.iterdir() if c.is_dir()), other):
                    with contextlib.suppress(OSError):
                        child.rmdir()


GROUP_RELEASE_SECONDS = 2.0


async def release(groups: Groups, name: str) -> None:
    """Nothing a dev server started outlives it: kill what is left in its group, wait
    (bounded) until the kernel has let go of it, remove the group."""
    groups.kill(name)
    with trio.move_on_after(GROUP_RELEASE_SECONDS):
        while not groups.empty(name):  # noqa: ASYNC110 - the kernel tells no one
            await trio.sleep(0.02)
    groups.remove(name)


def _empty_into_leaf(leaf: Path, controllers: frozenset[str]) -> None:
    """Move every process of the leaf's parent group (the node, and the container's init)
    into the leaf, then enable `controllers` for the parent's children."""
    base = leaf.parent
    leaf.mkdir(exist_ok=True)
    for pid in _pids(base):
        with contextlib.suppress(ProcessLookupError):
            try:
                (leaf / "cgroup.procs").write_text(str(pid))
            except OSError as exc:
                if exc.errno != errno.ESRCH:  # gone meanwhile: nothing to move
                    raise
    enable = " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in controllers)
    (base / "cgroup.subtree_control").write_text(enable)


def _pids(group: Path) -> list[int]:
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _alive(pid: str) -> bool:
    return pid.isdigit() and Path(f"/proc/{pid}").exists()


def shell_prelude(procs: Sequence[Path], ulimits: Sequence[tuple[str, str]]) -> str:
    """Shell lines that put the shell itself into each group, then set its rlimits; what
    it starts next inherits both. A group that can't be joined fails the start (97)."""
    lines = [f"echo $$ > {_quote(p)} || exit 97" for p in procs]
    lines += [f"ulimit {option} {value} || exit 97" for option, value in ulimits]
    return "".join(f"{line}; " for line in lines)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\"'\"'") + "'"
