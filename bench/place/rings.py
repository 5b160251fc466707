"""Ring build and walk times at the run's size: `Ring` (routing + placement rings, 160
points per unit of weight, SHA-256) and, for the reason the walk is ours, uhashring's."""

from __future__ import annotations

import statistics
import time
from typing import Any

from router.ring import VNODES, Node, Ring, ring_hash


def timings(nodes: list[Node], builds: int = 3, walks: int = 2000) -> dict[str, Any]:
    built, cpu = [], []
    for _ in range(builds):
        t, c = time.perf_counter(), time.process_time()
        ring = Ring(nodes)
        built.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    keys = [f"{i:024x}" for i in range(walks)]
    place = []
    for key in keys:
        t = time.perf_counter_ns()
        ring.place(key)
        place.append((time.perf_counter_ns() - t) / 1000)
    out: dict[str, Any] = {
        "nodes": len(nodes),
        "points": VNODES * sum(n.weight for n in nodes),
        "build_ms": {
            "median": round(statistics.median(built) * 1000, 1),
            "cpu_median": round(statistics.median(cpu) * 1000, 1),
            "runs": len(built),
        },
        "place_us_p50": round(statistics.median(place), 2),
    }
    try:
        from uhashring import HashRing  # a test extra: the reference walk
    except ImportError:
        return out
    active = {n.name: {"weight": n.weight, "vnodes": VNODES} for n in nodes if n.state == "active"}
    t = time.perf_counter()
    ref = HashRing(nodes=active, hash_fn=ring_hash)
    out["uhashring_build_ms"] = round((time.perf_counter() - t) * 1000, 1)
    ref_place = []
    for key in keys[:200]:
        t = time.perf_counter_ns()
        [c["nodename"] for c in ref.range(key, size=3, unique=True)]
        ref_place.append((time.perf_counter_ns() - t) / 1000)
    out["uhashring_place_us_p50"] = round(statistics.median(ref_place), 2)
    return out
