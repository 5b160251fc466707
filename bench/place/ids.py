"""What the mid-run ring change does to the sessions alive then, routed as the router routes.

Every live session's ID goes through `router.routing.session_nodes` (the router's own
lookup) with the ring after the add: an encoded ID `{node}--{rand}{mac}` is minted here
by its holder with `previewcore.session_id.mint`, as the node did when it created the
session (the ID is its owner and 16 random bytes, nothing else, so minting now or then
is the same ID), and counts as moved when the lookup names another node. Then with the
ring after the removal, where an ID of the removed node must get `UnknownSession`.
Client-chosen (hashed) IDs are looked up on the ring alone: whether their first node
changes, and whether the node holding them is still among the nodes a router asks.
"""

from __future__ import annotations

import random
from typing import Any

from bench.place.cluster import Cluster
from bench.place.simulate import OnChange, Timeline
from bench.place.workload import SESSION
from previewcore.errors import UnknownSession
from previewcore.session_id import RAND_BYTES, Keys, mint
from router.routing import session_nodes


def id_moves(keys: Keys, seed: int) -> OnChange:
    def check(cluster: Cluster, t: Timeline) -> dict[str, Any]:
        rng = random.Random(seed)
        encoded = moved = gone = 0
        hashed = first_changed = held_by_first = stranded = 0
        for holder, sessions in cluster.held.items():
            for held in sessions:
                if held is not None and held[0] == SESSION:
                    sid = held[1]
                    before = t.drained.route(sid, 1)[0].name
                    after, _ = session_nodes(sid, t.grown, keys)
                    names = [n.name for n in after]
                    hashed += 1
                    first_changed += names[0] != before
                    held_by_first += names[0] == holder
                    stranded += holder not in names
                    continue
                sid = mint(holder, keys, rng.randbytes(RAND_BYTES))
                encoded += 1
                nodes, _ = session_nodes(sid, t.grown, keys)
                moved += nodes[0].name != holder
                try:
                    session_nodes(sid, t.final, keys)
                except UnknownSession:
                    gone += 1
        return {
            "alive": encoded + hashed,
            "encoded": {"ids": encoded, "moved_by_add": moved, "unknown_after_removal": gone},
            "hashed": {
                "ids": hashed,
                "first_node_changed_by_add": first_changed,
                "first_node_changed_fraction": round(first_changed / hashed, 6) if hashed else None,
                "held_by_first_node_after_add": held_by_first,
                "not_reached_after_add": stranded,
            },
        }

    return check
