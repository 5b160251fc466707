"""Pinning to a core with taskset, so a server never competes with its own load generator."""

from __future__ import annotations

import os


def taskset(core: int | None) -> list[str]:
    """The argv prefix that pins a child to `core` (nothing when unpinned)."""
    return ["taskset", "-c", str(core)] if core is not None else []


def pin_self(core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
