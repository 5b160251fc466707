"""Garbage collection of installed dependency sets (`{cache-dir}/deps/{key}`).

Every distinct dependency key costs a full install that outlives its session (reproduced:
`left-pad` at four specs made four installs that stayed after their sessions were
deleted). A set that a registered session names (idle ones included: they wake) is never
removed. The others go when they have not been used for `UNUSED_SECONDS`, or sooner,
least recently used first, while the cache is over `--max-cache-bytes`.

`choose` is the pure policy; `scan` and `remove` are the thin IO. Each set records its
size once, when installed (`.size`), and its last use (`.last-used`, touched whenever a
session links it), so a collection reads two small files per set, not the trees.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from previewnode.workspace import tree_bytes

UNUSED_SECONDS = 3600.0
SIZE_FILE = ".size"
USED_FILE = ".last-used"
COMPLETE_FILE = ".complete"


@dataclass(frozen=True, slots=True)
class CacheSet:
    key: str
    size: int
    last_used: float


def choose(sets: Iterable[CacheSet], in_use: set[str], cap: int, now: float) -> list[str]:
    """Keys to remove: unused ones past `UNUSED_SECONDS`, then LRU while over `cap`."""
    all_sets = list(sets)
    total = sum(s.size for s in all_sets)
    free = sorted((s for s in all_sets if s.key not in in_use), key=lambda s: s.last_used)
    out: list[str] = []
    for s in free:
        if now - s.last_used > UNUSED_SECONDS or total > cap:
            out.append(s.key)
            total -= s.size
    return out


def record_install(set_dir: Path) -> None:
    """Once, when a set is complete: its size, and a first use."""
    (set_dir / SIZE_FILE).write_text(str(tree_bytes(set_dir)))
    touch(set_dir)


def touch(set_dir: Path) -> None:
    with contextlib.suppress(OSError):
        (set_dir / USED_FILE).write_text(str(time.time()))


def scan(deps_dir: Path) -> list[CacheSet]:
    """The complete sets in the cache (staging and trash directories are not sets)."""
    out = []
    with contextlib.suppress(FileNotFoundError):
        for entry in deps_dir.iterdir():
            if entry.name.startswith(".") or not (entry / COMPLETE_FILE).exists():
                continue
            out.append(CacheSet(entry.name, _number(entry / SIZE_FILE), _used(entry)))
    return out


def remove(deps_dir: Path, key: str) -> None:
    """Out of the way at once (a rename), then deleted: nothing links a half-deleted set."""
    trash = deps_dir / f".trash-{key}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.replace(deps_dir / key, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _number(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return tree_bytes(path.parent)  # an older set: measured once here


def _used(set_dir: Path) -> float:
    try:
        return float((set_dir / USED_FILE).read_text().strip())
    except (OSError, ValueError):
        try:
            return (set_dir / COMPLETE_FILE).stat().st_mtime
        except OSError:
            return 0.0
