"""Creates and deletes: every few seconds an extra session is created through one router
(`?wait=ready`), its page loaded through the other (any replica serves it right after the
201), an HMR socket opened, and the session deleted; then its socket must close and its ID
must answer 410. What that catches: tunnels, pooled connections and dev servers that
outlive their session.

Never: leave a session of its own behind (the steps between the create and the DELETE
tally their failures instead of raising, so the DELETE always runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from bench.soak.client import Client
from bench.soak.hmr import frames_until_closed, open_hmr
from bench.soak.pages import load_page
from bench.soak.tally import Tally, checked

CLOSE_WITHIN = 10.0  # the socket of a deleted session


async def churn(
    tally: Tally,
    routers: Sequence[Client],
    host: str,
    body: dict[str, Any],
    first: float,
    until: float,
    every: float,
    max_cycles: int,
) -> None:
    """A create -> page -> socket -> delete cycle at `first` and every `every` s after it
    (trio time; a slow cycle delays the next) until `until` or `max_cycles`."""
    for i in range(max_cycles):
        due = max(first + i * every, trio.current_time())
        if due >= until:
            return
        await trio.sleep_until(due)
        one, other = routers[i % len(routers)], routers[(i + 1) % len(routers)]
        await cycle(tally, one, other, host, body)


async def cycle(tally: Tally, one: Client, other: Client, host: str, body: dict[str, Any]) -> None:
    res = await checked(tally, one, "create", "POST", "/kontext/preview?wait=ready", 201, body)
    if res is None:
        return
    doc = res.json()
    sid = str(doc["sessionId"])
    tally.event("creates (churn)")
    if doc.get("status") != "ready":
        tally.error("create", f"201 with status {doc.get('status')}", sid=sid)
    await load_page(tally, other, sid)
    sock = await open_hmr(tally, one.port, host, sid)
    try:
        gone = await checked(tally, other, "delete", "DELETE", f"/kontext/preview/{sid}", sid=sid)
        if gone is not None:
            tally.event("deletes (churn)")
        if sock is not None and gone is not None:
            with trio.move_on_after(CLOSE_WITHIN) as scope:
                await frames_until_closed(sock)
            if scope.cancelled_caught:
                tally.error(
                    "hmr after delete", f"socket open {CLOSE_WITHIN:g} s after the DELETE", sid=sid
                )
    finally:
        if sock is not None:
            with trio.CancelScope(shield=True):
                await sock.stream.aclose()
    await checked(tally, one, "get after delete", "GET", f"/kontext/preview/{sid}", 410, sid=sid)
