"""Where a new session goes: consistent hashing with bounded loads (pure).

The ring orders the nodes for every key; what the nodes last reported
(`X-Preview-Node-Load: running=R/M; sessions=S/N`) decides how far along that order to
go. A node is *eligible* while one more session keeps its sessions fraction S/N within
(1 + ε) x the mean over the nodes that take new sessions, (S + 1)/N <= (1 + ε) x mean:
the bound of Mirrokni, Thorup and Zadimoghaddam's "Consistent Hashing with Bounded
Loads" (Google, 2016), whose capacity ⌈(1 + ε) x mean⌉ may end one session over; here
the header's N says what one session is, so no node passes the bound. A node at or
under the mean is eligible too, so that some node always is (while the mean is under
1/ε sessions one more session is more than ε of it). The bound is held on what the
router knows: the last reports, a node never heard from counting as 0. Then:

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
after a single create: sessions even out further, but affinity keys leave their node
far more often (bench/README.md compares both, `bounded` and `bounded-sum`). Sessions
are the balls the model bounds; running Vites come and go.

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
        self._step: dict[str, float] = {}
        self._active: frozenset[str] = frozenset()
        self._total = 0.0

    def report(self, name: str, header: bytes | None) -> None:
        """A node's `X-Preview-Node-Load`; an absent or malformed one changes nothing."""
        load = parse_load(header)
        if load is not None:
            self.note(name, load.total, load.sessions, load.step)

    def note(self, name: str, load: float, sessions: float, step: float = 0.0) -> None:
        """A parsed report: the summed fractions, S/N, and 1/N (one session's share)."""
        if name in self._active:
            self._total += sessions - self._sessions.get(name, 0.0)
        self._load[name] = load
        self._sessions[name] = sessions
        self._step[name] = step

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


def order(
    walk: Iterable[Node],
    loads: Loads,
    mean: float,
    choices: int,
    epsilon: float = EPSILON,
    count: int = COUNT,
) -> list[Node]:
    """Nodes to try, best first: the least loaded of the first `choices` eligible nodes,
    then the other eligible nodes walked, then the overloaded ones, each in ring order.

    The walk stops once it has `choices` eligible nodes and at least `count` in all (or
    at the end of the ring), so it stays a few steps long unless the nodes after the key
    are overloaded. At least one node is always eligible: the least loaded is at or
    under the mean.
    """
    limit = (1.0 + epsilon) * mean
    # The hot loop of every create: plain dict lookups, no method call per node.
    sessions, step = loads._sessions.get, loads._step.get
    eligible: list[Node] = []
    over: list[Node] = []
    for node in walk:
        held = sessions(node.name, 0.0)
        ok = held + step(node.name, 0.0) <= limit or held <= mean
        (eligible if ok else over).append(node)
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
    mean = loads.mean(ring.active)
    if session_id is not None:
        window = [n if n.state == "active" else None for n in ring.route(session_id, ASKED)]
        choice = [n for n in window[: ASKED - SPARE] if n is not None]
        spare = [n for n in window[ASKED - SPARE :] if n is not None]
        return order(choice, loads, mean, STICKY, epsilon) + spare
    if affinity_key:
        return order(ring.successors(affinity_key), loads, mean, STICKY, epsilon)
    return order(ring.successors(random_key()), loads, mean, CHOICES, epsilon)
