"""Where a new session goes: consistent hashing with bounded loads (pure).

The ring orders the nodes for every key; the loads the nodes last reported
(`X-Preview-Node-Load`, its fractions summed) decide how far along that order to go. A
node is *eligible* while its load is at most (1 + ε) x the mean load of the nodes that
take new sessions, the cap of Mirrokni, Thorup and Zadimoghaddam's "Consistent Hashing
with Bounded Loads" (Google, 2016), held here on what the router knows: the reported
loads, a node never heard from counting as 0. Then:

- an affinity key takes the first eligible node from the key, so a project keeps its
  node (and that node's warm dependency cache) until the node is overloaded, and then
  spills to the next node along the ring: the same one on every router replica;
- a fresh random key takes the less loaded of the first two eligible nodes (power of
  two choices), which evens out what the ring's arcs do not;
- a client-chosen session ID is placed only on the nodes routing will ask for it (its
  owner and the next `FALLBACK_SUCCESSORS` nodes, CONTRACT §4): a bound that skipped
  past them would strand the session where no router looks. It also wins over an
  `affinityKey` sent with it, for the same reason.

The answer is always a complete order, the pick first, then the other eligible nodes
walked, then the overloaded ones, so the router's retry on 503 still reaches a node
when the bound alone would refuse one.

Never: opens a socket, reads the clock or draws its own randomness (the caller passes
the random key's source), and never places on a draining node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping

from router.ring import Node, Ring
from router.routing import FALLBACK_SUCCESSORS

EPSILON = 0.10
COUNT = 3  # nodes in the order at least, when the ring has them: the router's retry budget
STICKY = 1  # an affinity key or session ID: the first eligible node
CHOICES = 2  # a random key: the less loaded of the first two eligible nodes


class Loads(MutableMapping[str, float]):
    """What each node last reported, with its sum over one ring's active nodes kept current.

    The bound needs the mean on every create: summing 1,000 entries each time cost about
    100 µs, so the sum follows each report and is taken afresh only when the ring (its
    set of active names) is another one.
    """

    def __init__(self) -> None:
        self._loads: dict[str, float] = {}
        self._active: frozenset[str] = frozenset()
        self._total = 0.0

    def __getitem__(self, name: str) -> float:
        return self._loads[name]

    def __setitem__(self, name: str, load: float) -> None:
        if name in self._active:
            self._total += load - self._loads.get(name, 0.0)
        self._loads[name] = load

    def __delitem__(self, name: str) -> None:
        load = self._loads.pop(name)
        if name in self._active:
            self._total -= load

    def __iter__(self) -> Iterator[str]:
        return iter(self._loads)

    def __len__(self) -> int:
        return len(self._loads)

    def load(self, name: str) -> float:
        """The last report, 0 for a node never heard from."""
        return self._loads.get(name, 0.0)

    def mean(self, active: frozenset[str]) -> float:
        """Mean load over `active` (a `Ring.active`), nodes never heard from counting as 0."""
        if active is not self._active:
            self._active = active
            self._total = sum(self._loads.get(name, 0.0) for name in active)
        # Rounding in the running sum must not push an all-idle ring's bound below 0.
        return max(self._total, 0.0) / len(active) if active else 0.0


def bound(loads: Loads, ring: Ring, epsilon: float = EPSILON) -> float:
    """The load at or under which a node still takes new sessions."""
    return (1.0 + epsilon) * loads.mean(ring.active)


def order(
    walk: Iterable[Node], loads: Loads, limit: float, choices: int, count: int = COUNT
) -> list[Node]:
    """Nodes to try, best first: the least loaded of the first `choices` eligible nodes,
    then the other eligible nodes walked, then the overloaded ones, each in ring order.

    The walk stops once it has `choices` eligible nodes and at least `count` in all (or
    at the end of the ring), so it stays a few steps long unless the nodes after the key
    are overloaded. At least one node is always eligible: the least loaded is at or under
    the mean.
    """
    eligible: list[Node] = []
    over: list[Node] = []
    for node in walk:
        (eligible if loads.load(node.name) <= limit else over).append(node)
        if len(eligible) >= choices and len(eligible) + len(over) >= count:
            break
    # sorted() is stable: between equal loads the ring's order decides.
    head = sorted(eligible[:choices], key=lambda n: loads.load(n.name))
    return head + eligible[choices:] + over


def candidates(
    ring: Ring,
    loads: Loads,
    session_id: str | None,
    affinity_key: str | None,
    random_key: Callable[[], str],
    epsilon: float = EPSILON,
) -> list[Node]:
    """Where to create a session, in the order to try; empty when no node is active."""
    limit = bound(loads, ring, epsilon)
    if session_id is not None:
        window = ring.route(session_id, 1 + FALLBACK_SUCCESSORS)
        return order((n for n in window if n.state == "active"), loads, limit, STICKY)
    if affinity_key:
        return order(ring.successors(affinity_key), loads, limit, STICKY)
    return order(ring.successors(random_key()), loads, limit, CHOICES)
