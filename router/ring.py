"""The ring file (CONTRACT §4): parse, validate, and place keys on a consistent-hash ring.

Every router replica must build the *same* ring from the same file, so the hash
function and the virtual-node count are fixed here and never configurable:

- hash: the first 8 bytes of SHA-256 of the point or key name, as a big-endian integer;
- virtual nodes: 160 per unit of weight, the points `{name}-{i}` hashed (uhashring's layout:
  a key goes to the first point after its hash, wrapping around; when two points collide
  the later node in file order keeps it).

Two rings are kept: *routing* (active + draining nodes) for hashed session IDs,
*placement* (active nodes only) for new sessions. The walk is our own bisect over the
sorted points rather than uhashring's `range`, which copies the point list on every call
(0.8-3 ms per `place` at 1,000 nodes on this shared 2-core machine, against 6-11 µs
here: bench/placement.py); tests/unit/test_ring.py checks that both give the same order,
collisions included. The points are hashed once for both rings. Pure: parsing takes text.
"""

from __future__ import annotations

import hashlib
import tomllib
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate, chain, islice
from typing import Literal
from urllib.parse import urlsplit

from previewcore.session_id import is_valid_node_name

VNODES = 160
NodeState = Literal["active", "draining"]
STATES: tuple[NodeState, ...] = ("active", "draining")
_NODE_KEYS = {"name", "url", "state", "weight"}
_BUCKET_SHIFT = 48  # of a 64-bit point: 65,536 buckets
_BUCKETS = 1 << (64 - _BUCKET_SHIFT)


class RingError(ValueError):
    """The ring file cannot be used; the message names the line where it can."""


def ring_hash(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


@dataclass(frozen=True)
class Node:
    name: str
    url: str
    state: NodeState = "active"
    weight: int = 1

    @cached_property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @cached_property
    def port(self) -> int:
        return urlsplit(self.url).port or 80


class Continuum:
    """Sorted ring points and their owners: the successor walk of one ring.

    The points are 64-bit integers, which Python compares slowly (3 digits of 30 bits:
    a plain bisect over 160,000 of them took 7-11 µs here), so a table by the top 16 bits
    narrows each bisect to the two or three points of one bucket first.
    """

    __slots__ = ("_bucket", "_owners", "_points", "size")

    def __init__(self, points: list[int], owners: list[str]) -> None:
        self._points, self._owners = points, owners
        self.size = len(set(owners))
        counts = [0] * (_BUCKETS + 1)
        for point in points:
            counts[(point >> _BUCKET_SHIFT) + 1] += 1
        # _bucket[b]: index of the first point whose top bits are b or more
        self._bucket = list(accumulate(counts))

    def __len__(self) -> int:
        return len(self._points)

    @classmethod
    def build(cls, nodes: Iterable[tuple[str, list[int]]]) -> Continuum:
        owner: dict[int, str] = {}
        for name, hashes in nodes:  # in file order: a later node keeps a collided point
            owner.update(dict.fromkeys(hashes, name))
        points = sorted(owner)
        return cls(points, [owner[p] for p in points])

    def only(self, names: frozenset[str]) -> Continuum:
        """These nodes' points, still sorted: the ring without the others, unless a point
        of theirs had taken one of these nodes' (a collision; `Ring` checks for none)."""
        keep = [i for i, name in enumerate(self._owners) if name in names]
        return Continuum([self._points[i] for i in keep], [self._owners[i] for i in keep])

    def walk(self, key: str) -> Iterator[str]:
        """Every node once, in ring order from the first point after `key`'s hash."""
        points, owners = self._points, self._owners
        if not points:
            return
        h = ring_hash(key)
        b = h >> _BUCKET_SHIFT
        start = bisect_right(points, h, self._bucket[b], self._bucket[b + 1])
        if start == len(points):
            start = 0
        seen: set[str] = set()
        for i in chain(range(start, len(points)), range(start)):
            name = owners[i]
            if name not in seen:
                seen.add(name)
                yield name
                if len(seen) == self.size:
                    return


def node_points(node: Node) -> list[int]:
    return [ring_hash(f"{node.name}-{i}") for i in range(VNODES * node.weight)]


class Ring:
    """An immutable ring built from validated nodes."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.nodes: dict[str, Node] = {n.name: n for n in nodes}
        self.active: frozenset[str] = frozenset(
            n.name for n in self.nodes.values() if n.state == "active"
        )
        points = [(n.name, node_points(n)) for n in self.nodes.values()]
        self._routing = Continuum.build(points)
        if len(self._routing) == sum(len(hashes) for _, hashes in points):
            # No two points collided: the placement ring is the routing ring's active
            # points, with no second sort (a third of the build at 1,000 nodes).
            self._placement = self._routing.only(self.active)
        else:
            self._placement = Continuum.build(p for p in points if p[0] in self.active)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ring) and self.nodes == other.nodes

    def __hash__(self) -> int:
        return hash(tuple(self.nodes.values()))

    def get(self, name: str) -> Node | None:
        return self.nodes.get(name)

    def route(self, key: str, count: int = 3) -> list[Node]:
        """Owner of a hashed ID, then its next distinct successors (active or draining)."""
        return [self.nodes[name] for name in islice(self._routing.walk(key), count)]

    def place(self, key: str, count: int = 3) -> list[Node]:
        """Where a new session for `key` goes, in order of preference (active nodes only)."""
        return list(islice(self.successors(key), count))

    def successors(self, key: str) -> Iterator[Node]:
        """Every active node in placement order from `key`, lazily: a walk may stop early."""
        return map(self.nodes.__getitem__, self._placement.walk(key))

    def states(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        for node in self.nodes.values():
            counts[node.state] += 1
        return counts


def _table_lines(text: str) -> list[int]:
    """1-based line numbers of each `[[nodes]]` header, so errors can name them."""
    return [
        i
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip().replace(" ", "").startswith("[[nodes]]")
    ]


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise ValueError("url must be a string")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"url {url!r} must be http://HOST[:PORT]")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"url {url!r} must not have a path, query or credentials")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"url {url!r} has a bad port") from exc
    return url.rstrip("/")


def _node(table: object) -> Node:
    if not isinstance(table, dict):
        raise ValueError("each [[nodes]] entry must be a table")
    unknown = set(table) - _NODE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    name = table.get("name")
    if not isinstance(name, str) or not is_valid_node_name(name):
        raise ValueError(
            f"name {name!r} must be 3-20 of [a-z0-9-], no leading/trailing '-', no '--'"
        )
    state = table.get("state", "active")
    if state not in STATES:
        raise ValueError(f"state {state!r} must be one of {', '.join(STATES)}")
    weight = table.get("weight", 1)
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
        raise ValueError(f"weight {weight!r} must be an integer >= 1")
    return Node(name=name, url=_check_url(table.get("url")), state=state, weight=weight)


def parse_ring(text: str, source: str = "ring") -> Ring:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RingError(f"{source}: {exc}") from exc
    unknown = set(doc) - {"nodes"}
    if unknown:
        raise RingError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    tables = doc.get("nodes", [])
    if not isinstance(tables, list):
        raise RingError(f"{source}: 'nodes' must be an array of tables ([[nodes]])")
    lines = _table_lines(text)
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        where = f"{source} line {lines[index]}" if index < len(lines) else source
        try:
            node = _node(table)
        except ValueError as exc:
            raise RingError(f"{where} (node #{index + 1}): {exc}") from exc
        if node.name in seen:
            raise RingError(f"{where} (node #{index + 1}): duplicate node name {node.name!r}")
        seen.add(node.name)
        nodes.append(node)
    return Ring(nodes)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_ring(ring: Ring) -> str:
    """The ring as TOML, one `[[nodes]]` table per node, in file order."""
    blocks = [
        f"[[nodes]]\nname = {_toml_str(n.name)}\nurl = {_toml_str(n.url)}\n"
        f"state = {_toml_str(n.state)}\nweight = {n.weight}\n"
        for n in ring.nodes.values()
    ]
    return "\n".join(blocks)
