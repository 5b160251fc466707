"""Bounded-load placement (router/placement.py): the bound, affinity, power of two, fallbacks."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from router.placement import COUNT, EPSILON, STICKY, Loads, candidates, order
from router.ring import Node, Ring


def ring_of(n: int, draining: tuple[int, ...] = ()) -> Ring:
    return Ring(
        Node(f"node-{i}", f"http://10.0.0.{i}:9000", "draining" if i in draining else "active")
        for i in range(n)
    )


def loads_of(sessions: dict[str, float], running: dict[str, float] | None = None) -> Loads:
    """Reports with these sessions fractions (and running fractions, default 0)."""
    loads = Loads()
    for name, fraction in sessions.items():
        loads.note(name, fraction + (running or {}).get(name, 0.0), fraction)
    return loads


def set_sessions(loads: Loads, name: str, fraction: float) -> None:
    loads.note(name, fraction, fraction)


def bound(loads: Loads, ring: Ring) -> float:
    """The sessions fraction a node may reach: (1 + ε) x the mean of the active nodes."""
    return (1 + EPSILON) * loads.mean(ring.active)


def keys(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(96):024x}" for _ in range(n)]


def place(ring: Ring, loads: Loads, key: str, *, kind: str) -> list[Node]:
    """kind: 'affinity', 'session' (client-chosen ID) or 'random' (key as the random draw)."""
    return candidates(
        ring,
        loads,
        key if kind == "session" else None,
        key if kind == "affinity" else None,
        lambda: key,
    )


RING = ring_of(10)
KINDS = ("affinity", "session", "random")


def test_the_mean_is_over_active_nodes_with_unreported_ones_as_zero() -> None:
    ring = ring_of(4, draining=(3,))
    loads = loads_of({"node-0": 0.9, "node-1": 0.3, "node-3": 5.0})  # node-2 never reported
    assert loads.mean(ring.active) == pytest.approx((0.9 + 0.3 + 0.0) / 3)


@pytest.mark.parametrize("kind", KINDS)
def test_an_overloaded_node_is_never_the_pick(kind: str) -> None:
    loads = loads_of({f"node-{i}": 1.0 + (i % 3) for i in range(10)})  # mean 1.9, limit 2.09
    limit = bound(loads, RING)
    over = {n for n in RING.nodes if loads.sessions(n) > limit}
    assert over  # the loads above put a third of the ring over the bound
    for key in keys(2000):
        pick = place(RING, loads, key, kind=kind)[0].name
        # The bound places a session ID on its owner or first successor: over the bound
        # only when both are.
        window = {n.name for n in RING.route(key)[:2]} if kind == "session" else set()
        assert pick not in over or window <= over


def test_affinity_sticks_under_the_bound_and_moves_when_over() -> None:
    key = "project-42"
    home = RING.place(key)[0].name
    loads = loads_of(dict.fromkeys(RING.nodes, 1.0))
    assert place(RING, loads, key, kind="affinity")[0].name == home
    set_sessions(loads, home, 1.05)  # above the mean (1.005), under the bound (1.1055)
    assert loads.sessions(home) <= bound(loads, RING)
    assert place(RING, loads, key, kind="affinity")[0].name == home
    set_sessions(loads, home, 3.0)
    moved = place(RING, loads, key, kind="affinity")
    assert moved[0].name == RING.place(key)[1].name  # the next node along the ring
    assert home in [n.name for n in moved]  # still a fallback
    set_sessions(loads, home, 1.0)
    assert place(RING, loads, key, kind="affinity")[0].name == home  # and back once it is not


def test_running_vites_do_not_move_an_affinity_key() -> None:
    """One create adds 1/8 to `running` but 1/N to `sessions`: only sessions count."""
    key = "project-7"
    home = RING.place(key)[0].name
    loads = loads_of(dict.fromkeys(RING.nodes, 0.5), {home: 1.0})  # all 8 Vites busy
    assert loads.load(home) > bound(loads, RING)  # over the bound on the summed load
    assert place(RING, loads, key, kind="affinity")[0].name == home


def test_a_node_takes_a_session_only_if_it_stays_within_the_bound() -> None:
    """(S + 1)/N <= (1 + ε) x mean, in sixteenths with ε = 1/4 so that floats are exact."""
    walk = list(RING.successors("project-3"))
    loads = Loads()
    for name in RING.nodes:
        loads.note(name, 0.0, 8 / 16, 1 / 16)
    mean = 8 / 16  # limit 10/16
    loads.note(walk[0].name, 0.0, 9 / 16, 1 / 16)  # 10/16 after one more: at the bound
    assert order(walk, loads, mean, STICKY, 0.25)[0] == walk[0]
    loads.note(walk[0].name, 0.0, 10 / 16, 1 / 16)  # 11/16 after one more: over it
    assert order(walk, loads, mean, STICKY, 0.25)[0] == walk[1]


def test_nodes_at_or_under_the_mean_take_a_session_even_when_it_is_more_than_epsilon() -> None:
    """With 2-session nodes one session is half a node: the mean keeps someone eligible."""
    walk = list(RING.successors("project-5"))
    loads = Loads()
    for name in RING.nodes:
        loads.note(name, 0.0, 1 / 4, 1 / 2)
    assert order(walk, loads, 1 / 4, STICKY)[0] == walk[0]  # 3/4 after it, but at the mean
    loads.note(walk[0].name, 0.0, 1 / 2, 1 / 2)
    assert order(walk, loads, 1 / 4, STICKY)[0] == walk[1]


def test_an_idle_ring_has_every_node_eligible_at_once() -> None:
    loads = loads_of(dict.fromkeys(RING.nodes, 0.0))
    for key in keys(50):
        assert place(RING, loads, key, kind="affinity") == RING.place(key)


def test_random_key_takes_the_less_loaded_of_the_first_two_eligible() -> None:
    rng = random.Random(2)
    sessions = {f"node-{i}": 0.1 * i for i in range(10)}
    loads = loads_of(sessions, {n: rng.random() for n in RING.nodes})
    limit = bound(loads, RING)
    for key in keys(500):
        eligible = [n for n in RING.successors(key) if loads.sessions(n.name) <= limit][:2]
        want = min(eligible, key=lambda n: loads.load(n.name))  # running + sessions
        assert place(RING, loads, key, kind="random")[0] == want


def test_equal_loads_keep_the_ring_order() -> None:
    loads = Loads()
    for key in keys(200):
        assert place(RING, loads, key, kind="random") == RING.place(key)


@pytest.mark.parametrize("kind", KINDS)
def test_draining_nodes_are_never_candidates(kind: str) -> None:
    ring = ring_of(12, draining=(0, 5, 7))
    loads = loads_of({"node-0": 0.0, "node-5": 0.0, "node-7": 0.0, "node-1": 9.0, "node-2": 9.0})
    seen = {n.name for k in keys(2000) for n in place(ring, loads, k, kind=kind)}
    assert seen and not seen & {"node-0", "node-5", "node-7"}


@pytest.mark.parametrize("kind", ("affinity", "random"))
def test_the_order_is_complete_eligible_first_then_overloaded(kind: str) -> None:
    rng = random.Random(7)
    for key in keys(500):
        loads = loads_of({n: rng.choice((0.2, 0.5, 3.0)) for n in RING.nodes})
        limit = bound(loads, RING)
        got = place(RING, loads, key, kind=kind)
        names = [n.name for n in got]
        assert len(set(names)) == len(names) >= COUNT
        walk = [n.name for n in RING.successors(key)]
        assert walk[: len(names)] == sorted(names, key=walk.index)  # a prefix of the ring walk
        ok = [loads.sessions(n) <= limit for n in names]
        assert ok == sorted(ok, reverse=True)  # no overloaded node before an eligible one


def test_when_only_one_node_is_eligible_the_rest_follow_as_fallbacks() -> None:
    loads = loads_of({n: 5.0 for n in RING.nodes} | {"node-3": 0.0})
    for key in keys(50):
        walk = [n.name for n in RING.successors(key)]
        upto = max(walk.index("node-3") + 1, COUNT)
        affinity = [n.name for n in place(RING, loads, key, kind="affinity")]
        assert affinity == ["node-3"] + [n for n in walk[:upto] if n != "node-3"]
        # a random key looks for a second eligible node, to the end of the ring
        random_ = [n.name for n in place(RING, loads, key, kind="random")]
        assert random_ == ["node-3"] + [n for n in walk if n != "node-3"]


def test_a_session_id_stays_within_the_nodes_routing_asks() -> None:
    ring = ring_of(10, draining=(4,))
    loads = loads_of(dict.fromkeys(ring.nodes, 9.0) | {"node-8": 0.0})  # all but one over
    for sid in (f"proj-{i}" for i in range(300)):
        asked = [n.name for n in ring.route(sid)]
        got = [n.name for n in candidates(ring, loads, sid, "an-affinity-key", lambda: "x")]
        active = [n for n in asked if n != "node-4"]
        assert sorted(got) == sorted(active)  # only there, and every one of them
        if "node-8" in asked[:2]:
            assert got[0] == "node-8"  # the bound's pick
        else:
            assert got == active  # nothing eligible within reach: ring order


def test_the_bound_never_moves_a_session_id_past_the_owners_first_successor() -> None:
    """A node added in front then still leaves it among the three nodes routing asks."""
    loads = loads_of(dict.fromkeys(RING.nodes, 0.0))
    for sid in (f"s-{i}" for i in range(300)):
        asked = [n.name for n in RING.route(sid)]
        for name in asked[:2]:
            set_sessions(loads, name, 9.0)
        got = [n.name for n in candidates(RING, loads, sid, None, lambda: "x")]
        assert got == asked  # both over: the owner first, the spare last, as the ring has them
        for name in asked[:2]:
            set_sessions(loads, name, 0.0)


def test_an_idle_ring_has_every_node_eligible() -> None:
    loads = loads_of(dict.fromkeys(RING.nodes, 0.0))
    loads.mean(RING.active)
    for name, fraction in (("node-1", 0.1), ("node-2", 0.7), ("node-3", 0.3)):
        set_sessions(loads, name, fraction)
    for name in ("node-1", "node-2", "node-3"):
        set_sessions(loads, name, 0.0)  # the running sum rounds to -5.6e-17; the bound stays 0
    assert all(place(RING, loads, k, kind="affinity") == RING.place(k) for k in keys(100))


def test_seeded_random_keys_give_the_same_placements() -> None:
    def run(seed: int) -> list[str]:
        rng = random.Random(seed)
        loads, out = Loads(), []
        for _ in range(3000):
            node = candidates(RING, loads, None, None, lambda: f"{rng.getrandbits(96):024x}")[0]
            set_sessions(loads, node.name, loads.sessions(node.name) + 0.01)
            out.append(node.name)
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_running_sum_matches_a_fresh_sum_and_follows_ring_changes() -> None:
    rng = random.Random(5)
    loads = Loads()
    ring = ring_of(20, draining=(2,))
    loads.mean(ring.active)
    for _ in range(5000):  # includes nodes outside the ring and draining ones
        set_sessions(loads, f"node-{rng.randrange(25)}", rng.random())
    fresh = sum(loads.sessions(n) for n in ring.active) / len(ring.active)
    assert loads.mean(ring.active) == pytest.approx(fresh)
    grown = ring_of(25)
    assert loads.mean(grown.active) == pytest.approx(
        sum(loads.sessions(f"node-{i}") for i in range(25)) / 25
    )
    assert Loads().mean(frozenset()) == 0.0


def test_a_report_is_the_nodes_header_parsed() -> None:
    loads = Loads()
    loads.report("node-1", b"running=4/8; sessions=50/200")
    assert loads.load("node-1") == pytest.approx(0.75)
    assert loads.sessions("node-1") == pytest.approx(0.25)
    for bad in (None, b"", b"garbage"):
        loads.report("node-1", bad)  # an absent or malformed header keeps the last report
    assert loads.sessions("node-1") == pytest.approx(0.25)
    # and one session is 1/200 of it: 0.25 is within 1.1 x 0.229, 0.255 is not
    one, two = RING.nodes["node-1"], RING.nodes["node-2"]
    assert order([one, two], loads, 0.229, STICKY) == [two, one]
    assert loads.load("node-9") == loads.sessions("node-9") == 0.0


def test_bounded_loads_hold_max_over_mean_where_the_plain_ring_does_not() -> None:
    """A hot project and 200 creates per node: the bound caps every node; the ring alone doesn't."""
    ring = ring_of(50)
    rng = random.Random(11)
    step = 1 / 1000  # one session on a node with --max-sessions 1000

    def run(bounded: bool) -> float:
        loads, held = Loads(), Counter[str]()
        for i in range(10_000):
            key = "hot-project" if i % 4 == 0 else f"{rng.getrandbits(64):x}"
            node = (
                candidates(ring, loads, None, key if i % 4 == 0 else None, lambda k=key: k)[0]
                if bounded
                else ring.place(key, 1)[0]
            )
            held[node.name] += 1
            fraction = held[node.name] * step
            loads.note(node.name, fraction, fraction, step)
        return max(held.values()) / (sum(held.values()) / len(ring.active))

    assert run(bounded=True) <= 1 + EPSILON + 1e-9  # no node over 220 = 1.1 x 200
    assert run(bounded=False) > 5  # every hot-project create on one node
