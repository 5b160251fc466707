"""Ring file parsing, validation and placement (CONTRACT §4)."""

from __future__ import annotations

import pytest
from uhashring import HashRing

from router.ring import VNODES, Node, Ring, RingError, parse_ring, render_ring, ring_hash

RING = """
[[nodes]]
name = "node-0"
url = "http://10.0.0.10:9000"

[[nodes]]
name = "node-1"
url = "http://10.0.0.11:9000"
state = "draining"
weight = 2

[[nodes]]
name = "node-2"
url = "http://10.0.0.12:9000"
"""


def test_parses_nodes_with_defaults() -> None:
    ring = parse_ring(RING)
    assert list(ring.nodes) == ["node-0", "node-1", "node-2"]
    assert ring.nodes["node-0"] == Node("node-0", "http://10.0.0.10:9000", "active", 1)
    assert ring.nodes["node-1"].state == "draining" and ring.nodes["node-1"].weight == 2
    assert ring.nodes["node-2"].port == 9000 and ring.nodes["node-2"].host == "10.0.0.12"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[nodes]]\nname = "node-0"\nurl = "http://h:1"\ncolour = "red"\n', "line 1"),
        (
            '[[nodes]]\nname = "node-0"\nurl = "http://h:1"\n\n[[nodes]]\nname = "node-0"\nurl = "http://h:2"\n',
            "line 5",
        ),
        ('[[nodes]]\nname = "node-0"\nurl = "ftp://h:1"\n', "url"),
        ('[[nodes]]\nname = "node-0"\nurl = "http://h:1/path"\n', "path"),
        ('[[nodes]]\nname = "node-0"\nurl = "http://h:1"\nstate = "gone"\n', "state"),
        ('[[nodes]]\nname = "node-0"\nurl = "http://h:1"\nweight = 0\n', "weight"),
        ('[[nodes]]\nname = "Node_0"\nurl = "http://h:1"\n', "name"),
        ('[[nodes]]\nname = "node-0"\nurl = "http://h:1"\n[extra]\n', "unknown top-level"),
        ('[[nodes]\nname = "x"', "line"),
    ],
)
def test_bad_rings_give_a_clear_error(text: str, needle: str) -> None:
    with pytest.raises(RingError, match=needle):
        parse_ring(text, "ring.toml")


def test_same_file_same_placement_on_every_replica() -> None:
    a, b = parse_ring(RING), parse_ring(RING)
    for i in range(500):
        assert [n.name for n in a.route(f"k{i}")] == [n.name for n in b.route(f"k{i}")]


def test_placement_uses_active_nodes_and_routing_also_draining() -> None:
    ring = parse_ring(RING)
    placed = {ring.place(f"key-{i}")[0].name for i in range(300)}
    routed = {ring.route(f"key-{i}")[0].name for i in range(300)}
    assert placed == {"node-0", "node-2"}
    assert routed == {"node-0", "node-1", "node-2"}


def test_successors_are_distinct_and_ordered() -> None:
    ring = parse_ring(RING)
    for i in range(100):
        names = [n.name for n in ring.route(f"s{i}")]
        assert len(names) == 3 and len(set(names)) == 3
        assert ring.route(f"s{i}", 1)[0].name == names[0]


def test_adding_a_node_moves_only_a_share_of_keys() -> None:
    before = parse_ring(RING)
    after = parse_ring(RING + '\n[[nodes]]\nname = "node-3"\nurl = "http://10.0.0.13:9000"\n')
    keys = [f"k{i}" for i in range(2000)]
    moved = [k for k in keys if before.route(k)[0].name != after.route(k)[0].name]
    assert all(after.route(k)[0].name == "node-3" for k in moved)  # keys move only to the new node
    assert 0.1 < len(moved) / len(keys) < 0.4  # about a quarter (weights 1, 2, 1, 1 → 1/5)
    # and each moved key's old owner is its next successor: the fallback finds it
    assert all(before.route(k)[0] in after.route(k)[1:] for k in moved)


def test_render_round_trips() -> None:
    ring = parse_ring(RING)
    assert parse_ring(render_ring(ring)) == ring


def test_empty_ring_routes_nowhere() -> None:
    ring = Ring([])
    assert ring.route("x") == [] and ring.place("x") == []


def _uhashring(nodes: list[Node]) -> HashRing:
    conf = {n.name: {"weight": n.weight, "vnodes": VNODES} for n in nodes}
    return HashRing(nodes=conf, hash_fn=ring_hash)


def test_walk_is_uhashrings_order_for_routing_and_placement() -> None:
    """The bisect walk replaced uhashring's `range`: every replica built either way agrees."""
    nodes = [
        Node(
            f"node-{i}",
            f"http://10.0.0.{i}:9000",
            "draining" if i % 5 == 0 else "active",
            1 + i % 3,
        )
        for i in range(40)
    ]
    ring = Ring(nodes)
    routing = _uhashring(nodes)
    placing = _uhashring([n for n in nodes if n.state == "active"])
    for i in range(3000):
        key = f"key-{i}" if i % 2 else f"{i:024x}"
        want = [c["nodename"] for c in routing.range(key, size=3, unique=True)]
        assert [n.name for n in ring.route(key)] == want
        want_all = [c["nodename"] for c in placing.range(key, unique=True)]
        assert [n.name for n in ring.successors(key)] == want_all
        assert [n.name for n in ring.place(key)] == want_all[:3]


def test_walk_wraps_past_the_last_point() -> None:
    ring = parse_ring(RING)
    last = max(
        ring_hash(f"{n.name}-{i}") for n in ring.nodes.values() for i in range(VNODES * n.weight)
    )
    key = next(f"w{i}" for i in range(10**6) if ring_hash(f"w{i}") >= last)
    assert [n.name for n in ring.route(key)] == [
        c["nodename"] for c in _uhashring(list(ring.nodes.values())).range(key, size=3)
    ]


def test_collided_points_go_to_the_later_node_as_in_uhashring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A coarse hash makes points collide; 64-bit SHA-256 points practically never do."""
    import router.ring

    def coarse(key: str) -> int:
        return ring_hash(key) % 5000

    monkeypatch.setattr(router.ring, "ring_hash", coarse)
    nodes = [
        Node(f"node-{i}", f"http://10.0.0.{i}:9000", "draining" if i in (1, 3) else "active")
        for i in range(6)
    ]
    ring = Ring(nodes)
    assert len(ring._routing) < VNODES * len(nodes)  # the case under test: collisions
    conf = {n.name: {"weight": 1, "vnodes": VNODES} for n in nodes}
    routing = HashRing(nodes=conf, hash_fn=coarse)
    placing = HashRing(
        nodes={k: v for k, v in conf.items() if k not in ("node-1", "node-3")}, hash_fn=coarse
    )
    for i in range(500):
        key = f"c{i}"
        assert [n.name for n in ring.route(key)] == [
            c["nodename"] for c in routing.range(key, size=3, unique=True)
        ]
        assert [n.name for n in ring.successors(key)] == [
            c["nodename"] for c in placing.range(key, unique=True)
        ]
