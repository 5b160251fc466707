"""The platform under soak: two `preview-node`s and two `preview-router`s on 127.0.0.1,
through the test suite's `Cluster` (one ring file, one secret, each node its own data dir),
so no process code lives here. The first router listens on the public port the nodes
advertise; browsers send that Host to both routers, as to replicas behind one address.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.cluster import Cluster, http
from tests.support.processes import Processes, free_port

READY_WITHIN = 10.0


def start_stack(
    procs: Processes,
    tmp: Path,
    node_flags: Sequence[str] = (),
    router_flags: Sequence[str] = (),
) -> Cluster:
    """Two nodes and two routers, once both routers' /readyz answer 200 (they have a ring)."""
    c = Cluster(procs, tmp, free_port())
    for i in range(2):
        c.start_node(f"node-{i}", *node_flags)
    c.start_router(*router_flags, port=c.public_port)
    c.start_router(*router_flags)
    deadline = time.monotonic() + READY_WITHIN
    for router in c.routers:
        while http("GET", f"{router.url}/readyz", timeout=5).status != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"router :{router.port} has no ring after {READY_WITHIN} s")
            time.sleep(0.05)
    return c


def public_host(c: Cluster) -> str:
    return f"127.0.0.1:{c.public_port}"
