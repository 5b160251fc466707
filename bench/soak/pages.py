"""Page loads as a browser does them: the page, then every module it imports, transitively
(the app's modules, the Vite client, the prebundled deps and their chunks, the CSS), up to
the client's connection limit at once, through one router. A browser loop cycles through
the sessions and alternates the routers.

Never: load more than PAGE_MAX_REQUESTS per page, or run past its deadline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import trio

from bench.node.page import HTML_REF, JS_IMPORT, module_refs
from bench.soak.client import Client
from bench.soak.tally import Tally, checked

PAGE_MAX_REQUESTS = 300
PAGE_DEADLINE = 30.0


async def load_page(tally: Tally, client: Client, sid: str) -> bool:
    """index.html and its module graph; True when every request answered 200."""
    base = f"/preview/{sid}/"
    html = await checked(tally, client, "page", "GET", base, sid=sid)
    if html is None:
        return False
    seen = {base}
    level = module_refs(base, html.body, HTML_REF, base, seen)
    requests, ok = 1, True
    with trio.move_on_after(PAGE_DEADLINE) as scope:
        while level and requests < PAGE_MAX_REQUESTS:
            level = level[: PAGE_MAX_REQUESTS - requests]
            requests += len(level)
            found: list[list[str]] = []

            async def one(url: str, found: list[list[str]] = found) -> None:
                nonlocal ok
                res = await checked(tally, client, "module", "GET", url, sid=sid)
                if res is None:
                    ok = False
                elif "javascript" in res.headers.get("content-type", "") or url.endswith(
                    (".js", ".jsx")
                ):
                    found.append(module_refs(url, res.body, JS_IMPORT, base, seen))

            async with trio.open_nursery() as nursery:
                for url in level:  # the client's limiter bounds how many run at once
                    nursery.start_soon(one, url)
            level = [u for refs in found for u in refs]
    if scope.cancelled_caught:
        tally.error("page", "page load over its deadline", sid=sid, router=client.port)
        return False
    return ok


async def browse(
    tally: Tally,
    routers: Sequence[Client],
    sids: Sequence[str],
    until: float,
    pause: float,
    max_loads: int,
) -> None:
    """Page loads until `until` (trio time) or `max_loads`: session i % n, and each session
    through the routers in turn."""
    for i in range(max_loads):
        if trio.current_time() >= until:
            return
        sid = sids[i % len(sids)]
        client = routers[(i // len(sids)) % len(routers)]
        t0 = time.perf_counter()
        if await load_page(tally, client, sid):
            tally.duration("page load (whole graph)", time.perf_counter() - t0)
        await trio.sleep(pause)
