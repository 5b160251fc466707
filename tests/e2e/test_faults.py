"""Faults injected into a real cluster (issue: holding up under faults). Each is a test
that can fail: the fault costs only what it must, and the platform recovers."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.cluster import app_files, cluster, http

pytestmark = pytest.mark.e2e


def test_a_hung_node_costs_its_own_sessions_a_504_and_recovers_on_sigcont(
    tmp_path: Path,
) -> None:
    """SIGSTOP a node: its sessions answer 504 `node_timeout` at the router's upstream
    timeout, the other node's sessions are served as before, and SIGCONT brings it back."""
    with cluster(tmp_path, nodes=2, router_args=("--upstream-timeout", "2")) as c:
        router = c.routers[0].url
        own: dict[str, str] = {}
        for name, node in c.nodes.items():  # node-local creation: an ID of that node
            made = http("POST", f"{node.url}/kontext/preview?wait=ready", {"files": app_files()})
            assert made.status == 201, made.body
            own[name] = made.json()["sessionId"]
        for sid in own.values():
            assert http("GET", f"{router}/preview/{sid}/").status == 200
        hung = c.nodes["node-0"].proc
        hung.signal(signal.SIGSTOP)
        try:
            t = time.monotonic()
            res = http("GET", f"{router}/preview/{own['node-0']}/", timeout=30)
            waited = time.monotonic() - t
            assert res.status == 504 and res.json()["code"] == "node_timeout", res.body
            assert 1.5 < waited < 10, waited  # at the upstream timeout, not later
            t = time.monotonic()
            assert http("GET", f"{router}/preview/{own['node-1']}/", timeout=30).status == 200
            assert time.monotonic() - t < 2, "the healthy node's session waited on the hung one"
        finally:
            hung.signal(signal.SIGCONT)
        deadline = time.monotonic() + 15
        while http("GET", f"{router}/preview/{own['node-0']}/", timeout=30).status != 200:
            assert time.monotonic() < deadline, "the node did not recover after SIGCONT"
            time.sleep(0.2)
