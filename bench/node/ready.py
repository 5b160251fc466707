"""Phase `ready`: create -> ready (sequential POST ?wait=ready), each followed by a first
page load and a DELETE; where the time goes (the node's own spawn -> serving histogram, a
bare `node` start and the launcher's imports); then the Vite memory of `vite_pss`."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from contextlib import closing
from typing import Any

from bench.harness.run import bounded, progress
from bench.harness.stats import summary_ms
from bench.node.api import Api, hist_mean
from bench.node.cpu import CpuMeter
from bench.node.memory import RUNTIME_IMPORTS
from bench.node.nodes import REPO, Node, Nodes
from bench.node.page import PageLoader
from bench.node.vite_pss import vite_memory

RUNTIME = REPO / "previewnode" / "runtime"


def phase_ready(nodes: Nodes, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """2. create -> ready, and the page load after it; 4. memory of 1 and of 10 Vites."""
    flags = ("--max-running", "12", "--max-sessions", "1000")
    out: dict[str, Any] = {}
    with (
        nodes.running("ready", *flags) as node,
        closing(Api(node.port)) as api,
        closing(PageLoader(node.port)) as loader,
    ):
        out["create_ready"] = create_ready(node, api, loader, args, files)
        out["memory"] = vite_memory(nodes, node, api, loader, args, files, RUNTIME)
    return out


def create_ready(
    node: Node, api: Api, loader: PageLoader, args: argparse.Namespace, files: dict[str, str]
) -> dict[str, Any]:
    progress(f"create -> ready: {args.ready} sequential POST ?wait=ready + first page load")
    m0 = api.metrics()
    cpu = CpuMeter(node)
    ready, html, page = [], [], []
    created_ready: list[str] = []
    reqs: list[int] = []
    statuses: dict[str, int] = {}
    slowest: dict[str, list[float]] = {}
    for _ in bounded(args.ready, 120):
        sid, st, dt = api.create(files, wait=True)
        ready.append(dt)
        created_ready.append(st)
        load = loader.load(sid)
        html.append(load["html_s"])
        page.append(load["total_s"])
        reqs.append(load["requests"])
        for k, v in load["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in load["slowest_ms"].items():
            slowest.setdefault(k, []).append(v)
        api.delete(sid)
        time.sleep(0.2)
    m1 = api.metrics()
    out = {
        "ready_201_ms": summary_ms(ready),
        "statuses_in_201": {s: created_ready.count(s) for s in set(created_ready)},
        "node_vite_spawn_to_serving_mean_ms": hist_mean(m0, m1, "preview_node_vite_start_seconds"),
        "node_create_to_ready_mean_ms": hist_mean(m0, m1, "preview_node_create_to_ready_seconds"),
        "first_page_html_ms": summary_ms(html),
        "first_page_full_ms": summary_ms(page),
        "first_page_requests": round(statistics.fmean(reqs), 1) if reqs else 0,
        "first_page_statuses": statuses,
        "first_page_slowest_request_ms_mean": {
            k: round(statistics.fmean(v), 1) for k, v in sorted(slowest.items())
        },
        "cpu": cpu.report(),
    }
    out["node_startup"] = node_startup_costs()
    return out


def node_startup_costs(runs: int = 3) -> dict[str, Any]:
    """Where a Vite start goes before Vite itself: `node -e 0`, then importing what the
    launcher imports (vite, plugin-react, @tailwindcss/vite) from the runtime dir."""

    def timed(argv: list[str]) -> float | None:
        best = []
        for _ in range(runs):
            t0 = time.perf_counter()
            try:
                subprocess.run(argv, cwd=RUNTIME, capture_output=True, timeout=30, check=True)
            except (OSError, subprocess.SubprocessError):
                return None
            best.append(time.perf_counter() - t0)
        return round(1000 * statistics.median(best), 1)

    return {
        "node_bare_ms": timed(["node", "-e", "0"]),
        "node_launcher_imports_ms": timed(["node", "--input-type=module", "-e", RUNTIME_IMPORTS]),
    }
