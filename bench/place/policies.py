"""The placements compared: the ring alone, the router before bounded loads, and now.

Each takes (ring, loads, kind, key) and returns the nodes to try in order, as the router's
`_candidates` does; `bounded` *is* the router's code (`router.placement.candidates`), the
other two are kept here as they were, for comparison. `bounded-sum` is the same code fed
the summed load where it reads the sessions fraction (`SUMMED`; no one-session step): the
bound as first written on this branch (617a9b7), kept to show why it counts sessions.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.place.workload import AFFINITY, RANDOM, SESSION
from router.placement import EPSILON, Loads, candidates
from router.ring import Node, Ring

Policy = Callable[[Ring, Loads, int, str], list[Node]]


def ring_only(ring: Ring, loads: Loads, kind: int, key: str) -> list[Node]:
    """Consistent hashing alone: the key's first three nodes, loads ignored."""
    return ring.place(key)


def two_choices(ring: Ring, loads: Loads, kind: int, key: str) -> list[Node]:
    """`RouterApp._candidates` at 5ef512e: keys on the ring, a random key the less loaded of two."""
    nodes = ring.place(key)
    if kind == RANDOM and len(nodes) >= 2:
        a, b = nodes[0], nodes[1]
        if loads.load(b.name) < loads.load(a.name):
            nodes[0], nodes[1] = b, a
    return nodes


def bounded_with(epsilon: float = EPSILON) -> Policy:
    """router/placement.py, as `RouterApp._candidates` calls it."""

    def bounded(ring: Ring, loads: Loads, kind: int, key: str) -> list[Node]:
        return candidates(
            ring,
            loads,
            key if kind == SESSION else None,
            key if kind == AFFINITY else None,
            lambda: key,
            epsilon,
        )

    return bounded


POLICIES: dict[str, Callable[[float], Policy]] = {
    "ring": lambda _eps: ring_only,
    "p2c": lambda _eps: two_choices,
    "bounded": bounded_with,
    "bounded-sum": bounded_with,
}
SUMMED = frozenset({"bounded-sum"})  # policies whose loads report the sum as the sessions
