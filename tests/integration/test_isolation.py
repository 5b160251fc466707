"""Router and node are peers on a shared core: neither loads the other, nor its metrics.

Each check runs in a fresh interpreter or a real process: inside this test process
both sides are imported by other tests, so `sys.modules` here proves nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import processes
from tests.support.ring import SECRET, ring_text

REPO = Path(__file__).resolve().parents[2]
_LOADED = (
    "import importlib, json, sys\n"
    "for m in sys.argv[1].split(','): importlib.import_module(m)\n"
    "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n"
)


def loaded_packages(*modules: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED, ",".join(modules)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    ("entry", "must_not_load"),
    [
        (("previewnode.app", "previewnode.service", "previewnode.__main__"), {"router"}),
        (("router.app", "router.service", "router.__main__"), {"previewnode"}),
        (("previewcore.auth", "previewcore.urls", "previewcore.wire"), {"router", "previewnode"}),
        (
            ("proxycore.server", "proxycore.forward", "proxycore.tunnel"),
            {"router", "previewnode", "previewcore"},
        ),
    ],
)
def test_a_peer_never_loads_the_other(entry: tuple[str, ...], must_not_load: set[str]) -> None:
    loaded = loaded_packages(*entry)
    assert entry[0].split(".")[0] in loaded  # the import really ran
    assert loaded.isdisjoint(must_not_load), sorted(loaded & must_not_load)


def metrics_of(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_each_process_exports_only_its_own_metric_families(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    with processes(tmp_path) as ps:
        _, node_port = ps.node("node-0", tmp_path / "node-0", secret)
        ring = tmp_path / "ring.toml"
        ring.write_text(ring_text({"node-0": (node_port, "active")}))
        _, router_port = ps.router(ring, secret)
        # a request through each, so request counters have children to export
        urllib.request.urlopen(f"http://127.0.0.1:{router_port}/healthz", timeout=5).close()
        node = families(metrics_of(node_port))
        router = families(metrics_of(router_port))
    assert "preview_node_requests_total" in node
    assert "preview_router_requests_total" in router
    assert not [f for f in node if f.startswith("preview_router_")], sorted(node)
    assert not [f for f in router if f.startswith("preview_node_")], sorted(router)
