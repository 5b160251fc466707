"""The headers only router and node exchange, and the node's load report (pure).

A node marks a hashed ID it does not hold (`X-Preview-Unknown-Session`) so a router
may ask the next node, and reports its load on every answer (`X-Preview-Node-Load`)
for the router's placement (router/placement.py); a router proves a client-chosen ID
was placed by the ring (`X-Preview-Placement`). Never: let a client or a dev server set them: the
router strips the node's from every answer and drops the placement one from requests.
"""

from __future__ import annotations

from typing import NamedTuple

UNKNOWN_MARK = b"x-preview-unknown-session"
LOAD_HEADER = b"x-preview-node-load"
PLACEMENT_HEADER = b"x-preview-placement"
NODE_PRIVATE = frozenset({UNKNOWN_MARK, LOAD_HEADER})


def format_load(running: int, max_running: int, sessions: int, max_sessions: int) -> bytes:
    return f"running={running}/{max_running}; sessions={sessions}/{max_sessions}".encode()


class Load(NamedTuple):
    """A parsed load report."""

    total: float  # every fraction summed: the comparable load
    sessions: float  # S/N alone: what placement's bound counts (router/placement.py)
    step: float  # 1/N: what one more session adds to `sessions`


def parse_load(value: bytes | None) -> Load | None:
    """`running=R/M; sessions=S/N` -> its fractions summed, S/N and 1/N; None if absent or bad."""
    if not value:
        return None
    total = sessions = step = 0.0
    try:
        for part in value.decode("ascii").split(";"):
            name, _, frac = part.partition("=")
            used, _, cap = frac.strip().partition("/")
            capacity = max(int(cap), 1)
            fraction = int(used) / capacity
            total += fraction
            if name.strip() == "sessions":
                sessions, step = fraction, 1 / capacity
    except ValueError:
        return None
    return Load(total, sessions, step)
