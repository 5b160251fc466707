"""Where a new session goes: consistent hashing with bounded loads (pure).

The ring orders the nodes for every key; what the nodes last reported
(`X-Preview-Node-Load: running=R/M; sessions=S/N`) decides how far along that order to
go. A node is *eligible* while its sessions fraction S/N is under (1 + ε) x the mean
over the nodes that take new sessions, or while it holds none: for whole sessions that
is S + 1 <= ⌈(1 + ε) x mean⌉, the capacity of Mirrokni, Thorup and Zadimoghaddam's
"Consistent Hashing with Bounded Loads" (Google, 2016). It is held on what the router
knows: the last reports, a node never heard from counting as 0. Then:

- an affinity key takes the first eligible node from the key, so a project keeps its
  node (and that node's warm dependency cache) until the node holds more than its share,
  and then spills to the next node along the ring: the same one on every router;
- a fresh random key takes the less loaded (running + sessions fractions, as before) of
  the first two eligible nodes: power of two choices within the bound;
- a client-chosen session ID is placed only on the nodes routing will ask for it (its
  owner and the next `FALLBACK_SUCCESSORS` nodes, CONTRACT §4): a bound that skipped
  past them would strand the session where no router looks. The bound chooses between
  the owner and its first successor only; the last successor is kept for the 503 retry
  and for a ring change: with a node added in front, a session the bound moved one step
  is still among the nodes asked (one step more than the owner costs its requests one
  more hop). The ID also wins over an `affinityKey` sent with it, for the same reason.

Why the bound counts sessions and not the summed load: one create adds 1/M to `running`
(1/8 by default) but only 1/N to `sessions`, so on the sum a node is over a 10% bound
after a single create and affinity keys moved on three times in four (bench/placement.py:
26% of affinity creates on their ring node, against 66% with this bound, at the same
max/mean). Sessions are the balls the model bounds; running Vites come and go.

The answer is always a complete order, the pick first, then the other eligible nodes
walked, then the overloaded ones, so the router's retry on 503 still reaches a node
when the bound alone would refuse one.

Never: opens a socket, reads the clock or draws its own randomness (the caller passes
the random key's source), and never places on a draining node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from previewcore.wire import parse_load
from router.ring import Node, Ring
from router.routing import FALLBACK_SUCCESSORS

EPSILON = 0.10
COUNT = 3  # nodes in the order at least, when the ring has them: the router's retry budget
STICKY = 1  # an affinity key or session ID: the first eligible node
CHOICES = 2  # a random key: the less loaded of the first two eligible nodes
ASKED = 1 + FALLBACK_SUCCESSORS  # nodes routing asks for a hashed ID
SPARE = 1  # of those, kept out of the bound's choice: room for one node added in front


class Loads:
    """What each node last reported, with the sessions fractions' sum over one ring's active
    nodes kept current.

    The bound needs the mean on every create: summing 1,000 entries each time cost about
    100 µs, so the sum follows each report and is taken afresh only when the ring (its
    set of active names) is another one.
    """

    def __init__(self) -> None:
        self._load: dict[str, float] = {}
        self._sessions: dict[str, float] = {}
        self._active: frozenset[str] = frozenset()
        self._total = 0.0

    def report(self, name: str, header: bytes | None) -> None:
        """A node's `X-Preview-Node-Load`; an absent or malformed one changes nothing."""
        load = parse_load(header)
        if load is not None:
            self.note(name, load.total, load.sessions)

    def note(self, name: str, load: float, sessions: float) -> None:
        """A parsed report: the summed fractions and the sessions fraction."""
        if name in self._active:
            self._total += sessions - self._sessions.get(name, 0.0)
        self._load[name] = load
        self._sessions[name] = sessions

    def load(self, name: str) -> float:
        """Running and sessions fractions summed, 0 for a node never heard from."""
        return self._load.get(name, 0.0)

    def sessions(self, name: str) -> float:
        """The sessions fraction S/N, 0 for a node never heard from."""
        return self._sessions.get(name, 0.0)

    def mean(self, active: frozenset[str]) -> float:
        """Mean sessions fraction over `active` (a `Ring.active`), unreported nodes as 0."""
        if active is not self._active:
            self._active = active
            self._total = sum(self._sessions.get(name, 0.0) for name in active)
        # Rounding in the running sum must not push an all-idle ring's bound below 0.
        return max(self._total, 0.0) / len(active) if active else 0.0


def bound(loads: Loads, ring: Ring, epsilon: float = EPSILON) -> float:
    """The sessions fraction under which a node still takes new sessions."""
    return (1.0 + epsilon) * loads.mean(ring.active)


def order(
    walk: Iterable[Node], loads: Loads, limit: float, choices: int, count: int = COUNT
) -> list[Node]:
    """Nodes to try, best first: the least loaded of the first `choices` eligible nodes,
    then the other eligible nodes walked, then the overloaded ones, each in ring order.

    The walk stops once it has `choices` eligible nodes and at least `count` in all (or
    at the end of the ring), so it stays a few steps long unless the nodes after the key
    are overloaded. At least one node is always eligible: the least loaded is empty or
    under the bound.
    """
    sessions = loads._sessions.get  # the hot loop of every create: no method call per node
    eligible: list[Node] = []
    over: list[Node] = []
    for node in walk:
        held = sessions(node.name, 0.0)
        (eligible if held < limit or held == 0.0 else over).append(node)
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
        window = [n if n.state == "active" else None for n in ring.route(session_id, ASKED)]
        choice = [n for n in window[: ASKED - SPARE] if n is not None]
        spare = [n for n in window[ASKED - SPARE :] if n is not None]
        return order(choice, loads, limit, STICKY) + spare
    if affinity_key:
        return order(ring.successors(affinity_key), loads, limit, STICKY)
    return order(ring.successors(random_key()), loads, limit, CHOICES)
