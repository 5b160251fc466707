"""The headers only router and node exchange, and the node's load report (pure).

A node marks a hashed ID it does not hold (`X-Preview-Unknown-Session`) so a router
may ask the next node, and reports its load on every answer (`X-Preview-Node-Load`)
for the router's power-of-two placement; a router proves a client-chosen ID was placed
by the ring (`X-Preview-Placement`). Never: let a client or a dev server set them: the
router strips the node's from every answer and drops the placement one from requests.
"""

from __future__ import annotations

UNKNOWN_MARK = b"x-preview-unknown-session"
LOAD_HEADER = b"x-preview-node-load"
PLACEMENT_HEADER = b"x-preview-placement"
NODE_PRIVATE = frozenset({UNKNOWN_MARK, LOAD_HEADER})


def format_load(running: int, max_running: int, sessions: int, max_sessions: int) -> bytes:
    return f"running={running}/{max_running}; sessions={sessions}/{max_sessions}".encode()


def parse_load(value: bytes | None) -> float | None:
    """`running=R/M; sessions=S/N` -> a comparable load (fractions summed), None if absent."""
    if not value:
        return None
    total = 0.0
    try:
        for part in value.decode("ascii").split(";"):
            _, _, frac = part.partition("=")
            used, _, cap = frac.strip().partition("/")
            total += int(used) / max(int(cap), 1)
    except ValueError:
        return None
    return total
