"""One run: `sessions` creates through one placement policy while the ring changes.

The ring goes through the timeline: from `drain_at` a share of the nodes is draining
(they keep their sessions, take no new ones); at `change_at` one node is added and one
active node removed, whose sessions their clients create again at once (counted).

What the router knows of the loads, three ways:
- fresh: one router; each create's 201 or 503 carries its node's load, as it does;
- `routers` = R: creates spread over R routers in turn, each with its own loads,
  learning only from its own responses (a node's other routers' creates unseen);
- `stale_every` = K: no response carries a load; every node's load is refreshed at
  once every K creates (the pessimistic case).
Placement cost is the policy call alone, timed per create (perf_counter_ns).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.harness.stats import percentile
from bench.place.cluster import Cluster, Held
from bench.place.policies import Policy
from bench.place.workload import AFFINITY, RANDOM, SESSION, Mix, Workload
from router.placement import ASKED, Loads
from router.ring import Ring


@dataclass(frozen=True)
class Timeline:
    """The rings a run goes through. `grown` (start of change: added, not yet removed) is
    only used to count what adding a node moves; `final` is in force from `change_at`."""

    start: Ring
    drained: Ring
    grown: Ring
    final: Ring
    added: str
    removed: str
    drain_at: int
    change_at: int


@dataclass(frozen=True)
class Settings:
    sessions: int
    max_sessions: int
    max_running: int
    window: int
    seed: int
    seconds: float  # time bound of one run
    stale_every: int = 0  # 0: loads from responses
    routers: int = 1
    summed: bool = False  # the bound reads the summed load (bounded-sum)

    def loads_label(self) -> str:
        if self.stale_every:
            return f"K={self.stale_every:,}"
        return f"{self.routers} routers" if self.routers > 1 else "fresh"


OnChange = Callable[[Cluster, Timeline], dict[str, Any]]


def run(
    policy: Policy, timeline: Timeline, mix: Mix, s: Settings, on_change: OnChange | None = None
) -> dict[str, Any]:
    work = Workload(mix, s.seed)
    again = random.Random(s.seed + 1)  # re-creates' random keys: the main stream stays aligned
    cluster = Cluster(s.max_sessions, s.max_running, s.window)
    routers = [Loads() for _ in range(max(1, s.routers))]
    learn = s.stale_every == 0
    costs: list[int] = []
    tally = {"refused": 0, "failed": 0, "on_draining": 0, "affinity": 0, "affinity_home": 0}
    homes: dict[tuple[int, str], str] = {}
    clock = time.perf_counter_ns
    report, add, summed = cluster.report, cluster.add, s.summed

    def tell(loads: Loads, name: str) -> None:
        load = report(name)
        if summed:
            loads.note(name, load.total, load.total)
        else:
            loads.note(name, load.total, load.sessions, load.step)

    def create(ring: Ring, loads: Loads, kind: int, key: str) -> None:
        t = clock()
        order = policy(ring, loads, kind, key)
        costs.append(clock() - t)
        held: Held = None if kind == RANDOM else (kind, key)
        for node in order:
            name = node.name
            placed = add(name, held)
            if learn:  # the 201 or the 503 carries the node's load
                tell(loads, name)
            if not placed:
                tally["refused"] += 1
                continue
            if name not in ring.active:
                tally["on_draining"] += 1
            if kind == AFFINITY:
                tally["affinity"] += 1
                home = homes.get((id(ring), key))
                if home is None:
                    home = homes[(id(ring), key)] = ring.place(key, 1)[0].name
                tally["affinity_home"] += name == home
            return
        tally["failed"] += 1

    ring = timeline.start
    change: dict[str, Any] = {}
    started, cpu = time.monotonic(), time.process_time()
    done = 0
    for i in range(s.sessions):
        loads = routers[i % len(routers)]
        if i == timeline.drain_at:
            ring = timeline.drained
        if i == timeline.change_at:
            if on_change is not None:
                change = on_change(cluster, timeline)
            ring = timeline.final
            lost = cluster.remove(timeline.removed)
            change["recreated"] = len(lost)
            for held in lost:
                kind, key = held if held is not None else (RANDOM, f"{again.getrandbits(96):024x}")
                create(ring, loads, kind, key)
        if s.stale_every and i % s.stale_every == 0:
            for name in ring.nodes:
                tell(loads, name)
        kind, key = work.next()
        create(ring, loads, kind, key)
        done = i + 1
        if i & 0xFFF == 0 and time.monotonic() - started > s.seconds:
            print(f"    (time bound hit after {done:,} of {s.sessions:,} creates)", flush=True)
            break
    elapsed = (time.monotonic() - started, time.process_time() - cpu)
    return summary(cluster, ring, costs, tally, change, done, s, elapsed)


def summary(
    cluster: Cluster,
    ring: Ring,
    costs: list[int],
    tally: dict[str, int],
    change: dict[str, Any],
    done: int,
    s: Settings,
    elapsed: tuple[float, float],
) -> dict[str, Any]:
    """Sessions per node over the nodes that take new sessions at the end (draining ones
    stopped growing at the drain and are left out of max and mean alike)."""
    counts = sorted(len(cluster.held[name]) for name in ring.active)
    hashed = [
        (holder, held[1])
        for holder, sessions in cluster.held.items()
        for held in sessions
        if held is not None and held[0] == SESSION
    ]
    # A client-chosen ID is found only on the nodes routing asks (CONTRACT §4).
    unreachable = sum(
        holder not in [n.name for n in ring.route(sid, ASKED)] for holder, sid in hashed
    )
    mean = statistics.fmean(counts)
    cost_us = sorted(c / 1000 for c in costs)
    return {
        "creates": done,
        "truncated": done < s.sessions,
        "loads": s.loads_label(),
        "active_nodes": len(counts),
        "sessions_per_node": {
            "mean": round(mean, 2),
            "max": counts[-1],
            "min": counts[0],
            "p99": percentile(counts, 99),
            "max_over_mean": round(counts[-1] / mean, 4),
            "p99_over_mean": round(percentile(counts, 99) / mean, 4),
            "min_over_mean": round(counts[0] / mean, 4),
        },
        "full_nodes": sum(c >= s.max_sessions for c in counts),
        "refused_503": tally["refused"],
        "failed_creates": tally["failed"],
        "placed_on_draining": tally["on_draining"],
        "hashed_sessions": len(hashed),
        "hashed_unreachable": unreachable,
        "affinity_on_home_node": (
            round(tally["affinity_home"] / tally["affinity"], 4) if tally["affinity"] else None
        ),
        "placement_us": {
            "p50": round(percentile(cost_us, 50), 2),
            "p99": round(percentile(cost_us, 99), 2),
            "mean": round(statistics.fmean(cost_us), 2),
        },
        "change": change,
        "elapsed_s": round(elapsed[0], 1),
        "cpu_s": round(elapsed[1], 1),  # this process's CPU time: the machine may be shared
    }
