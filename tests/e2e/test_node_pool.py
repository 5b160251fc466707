"""A deleted session leaves no connection of the node's open (found by bench/soak).

The node pools keep-alive connections to each dev server; a page load opens several at
once. After the session is deleted its dev server is gone, so nobody asks the pool for its
address again: those connections must still be closed (the node's housekeeping prunes the
pool), not held for ever with their peer gone. Before the fix the node kept 5 to 6 such
sockets per deleted session, for as long as it ran.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from bench.node.fixture import PACKAGE_JSON, fixture_files
from bench.soak.client import Client
from bench.soak.pages import load_page
from bench.soak.sampler import fd_counts, peer_gone
from bench.soak.tally import Tally, checked
from tests.support.processes import processes
from tests.support.ring import SECRET

pytestmark = pytest.mark.e2e

PUBLIC_HOST = "127.0.0.1:8080"  # the node's default --public-url
CLOSED_WITHIN = 15.0  # housekeeping every 5 s, connections idle 4 s before they go


def orphans(pid: int) -> int:
    """The node's sockets whose peer has closed."""
    return fd_counts(pid, peer_gone())["orphans"]


async def test_a_deleted_sessions_pooled_connections_to_its_dev_server_are_closed(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    with processes(tmp_path) as ps:
        proc, port = ps.node(
            "node-0", tmp_path / "data", secret, public_url=f"http://{PUBLIC_HOST}"
        )
        tally = Tally()
        client = Client(port, PUBLIC_HOST, size=6, timeout=60)
        body = {"files": fixture_files(), "packageJson": PACKAGE_JSON}
        res = await checked(
            tally, client, "create", "POST", "/kontext/preview?wait=ready", 201, body
        )
        assert res is not None, tally.error_samples
        sid = res.json()["sessionId"]
        assert await load_page(tally, client, sid), tally.error_samples  # 6 connections at once
        assert await checked(tally, client, "delete", "DELETE", f"/kontext/preview/{sid}")
        await client.aclose()
        deadline = time.monotonic() + CLOSED_WITHIN
        seen = orphans(proc.pid)
        while seen and time.monotonic() < deadline:
            await trio.sleep(0.5)
            seen = orphans(proc.pid)
        assert seen == 0, f"{seen} sockets to the deleted dev server still open"
