"""The soak's traffic, all at once for `seconds`: the long-lived sessions (created, loaded,
each with its HMR socket), the browsers' page loads, the edits, the churn of extra
sessions, and the sampler; then the check that no dev server outlived its session.

Every loop stops at the deadline and after its maximum count; the whole run is bounded by
a safety timeout on top. Every socket is closed when its task ends, however it ends.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import trio

from bench.node.fixture import PACKAGE_JSON, fixture_files
from bench.soak.churn import churn
from bench.soak.client import Client, clients
from bench.soak.edits import Ledger, edit_loop
from bench.soak.hmr import Watcher
from bench.soak.pages import browse, load_page
from bench.soak.sampler import Sampler, sample_loop
from bench.soak.tally import Tally, checked

API_TIMEOUT = 45.0  # over the node's --hold-seconds (30): creates wait for ready
SAFETY_S = 300.0  # on top of setup and the run: only a hang reaches it
LEFTOVER_WITHIN = 15.0  # a deleted session's dev server must be gone by then


@dataclass
class Plan:
    seconds: float
    sessions: int
    edit_every: float
    update_deadline: float
    churn_every: float
    browsers: int
    page_pause: float
    sample_every: float


class SetupFailed(RuntimeError):
    pass


async def soak(
    plan: Plan, ports: list[int], host: str, tally: Tally, ledger: Ledger, sampler: Sampler
) -> dict[str, Any]:
    """Run the plan against routers on `ports`; returns the long-lived sessions and timing."""
    with trio.fail_after(plan.seconds + SAFETY_S):
        async with clients(ports, host, size=8, request_bound=API_TIMEOUT) as api:
            return await _soak(plan, api, host, tally, ledger, sampler)


async def _soak(
    plan: Plan, api: list[Client], host: str, tally: Tally, ledger: Ledger, sampler: Sampler
) -> dict[str, Any]:
    files = fixture_files()
    body = {"files": files, "packageJson": PACKAGE_JSON}
    t_setup = trio.current_time()
    sessions = await _create_sessions(plan, api, tally, body, sampler)
    async with trio.open_nursery() as watching:
        for i, s in enumerate(sessions):
            await watching.start(Watcher(tally, ledger, api[i % len(api)], host, s["sid"]).run)
        setup_s = trio.current_time() - t_setup
        start = trio.current_time()
        until = start + plan.seconds
        n = len(sessions)
        async with contextlib.AsyncExitStack() as stack:
            browsers = [
                await stack.enter_async_context(clients([c.port for c in api], host))
                for _ in range(plan.browsers)
            ]
            async with trio.open_nursery() as traffic:
                max_samples = int(plan.seconds / plan.sample_every) + 2
                traffic.start_soon(
                    sample_loop, sampler, start, until, plan.sample_every, max_samples
                )
                sids = [s["sid"] for s in sessions]
                for b, routers in enumerate(browsers):
                    order = sids[b:] + sids[:b]  # browsers on different sessions at once
                    max_loads = int(plan.seconds / max(plan.page_pause, 0.05)) + 2
                    traffic.start_soon(browse, tally, routers, order, until, plan.page_pause,
                                       max_loads)  # fmt: skip
                max_edits = int(plan.seconds / plan.edit_every) + 2
                for i, sid in enumerate(sids):
                    first = start + 1.0 + i * plan.edit_every / n  # spread over the period
                    traffic.start_soon(edit_loop, tally, ledger, api, sid, i, files["src/App.jsx"],
                                       first, until, plan.edit_every, max_edits)  # fmt: skip
                max_cycles = int(plan.seconds / plan.churn_every) + 2
                traffic.start_soon(churn, tally, api, host, body, start + plan.churn_every / 2,
                                   until, plan.churn_every, max_cycles)  # fmt: skip
            stale = sum(c.stale_retries for routers in browsers for c in routers)
            tally.event("stale keep-alive retries", stale + sum(c.stale_retries for c in api))
        leftovers = await _leftover_vites(sampler, {s["sid"] for s in sessions})
        for sid in leftovers:
            tally.error("dev server", "still running after its session's DELETE", sid=sid)
        watching.cancel_scope.cancel()
    return {
        "sessions": sessions,
        "setup_s": round(setup_s, 1),
        "traffic_s": round(trio.current_time() - start, 1),
    }


async def _create_sessions(
    plan: Plan, api: list[Client], tally: Tally, body: dict[str, Any], sampler: Sampler
) -> list[dict[str, str]]:
    """The long-lived sessions, through the routers in turn, each ready and loaded once
    (Vite pushes updates only for modules in its graph)."""
    sessions: list[dict[str, str]] = []
    for i in range(plan.sessions):
        client = api[i % len(api)]
        res = await checked(
            tally, client, "create", "POST", "/kontext/preview?wait=ready", 201, body
        )
        if res is None:
            raise SetupFailed(f"create {i}: {tally.error_samples[-1:]}")
        doc = res.json()
        tally.event("creates (long-lived)")
        sid, node = str(doc["sessionId"]), str(doc["node"])
        sessions.append({"sid": sid, "node": node, "name": f"vite s{i} ({node})"})
        sampler.sessions[sid] = f"vite s{i} ({node})"
        if not await load_page(tally, client, sid):
            raise SetupFailed(f"page of session {i}: {tally.error_samples[-1:]}")
    return sessions


async def _leftover_vites(sampler: Sampler, keep: set[str]) -> set[str]:
    """Dev servers of sessions other than `keep` still running after LEFTOVER_WITHIN s."""
    extra: set[str] = set()
    with trio.move_on_after(LEFTOVER_WITHIN):
        while True:
            extra = set(await trio.to_thread.run_sync(sampler.vites)) - keep
            if not extra:
                return extra
            await trio.sleep(0.5)
    return extra
